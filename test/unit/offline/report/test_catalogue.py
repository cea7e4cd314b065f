"""The snapshot catalogue of the sim's deployment: when, why, how long, how big, where."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gap_monitor.offline.report import Report
from gap_monitor.render.report_html import report_html
from gap_monitor.sim.rig import DEFAULT_TOPICS

NS = 1_000_000_000
LUMINANCE = {"mean_luminance", "luminance_p5", "luminance_p95"}


def _seconds(report: Report, ns: int, recording: int = 0) -> float:
    return (ns - report.recordings[recording].start_time_ns) / NS


@pytest.mark.slow
def test_snapshot_catalogue_lists_when_why_duration_size_and_path(deployment_sim, sim_report):
    folders = sorted(p for p in deployment_sim.snapshots.iterdir() if p.is_dir())
    assert len(folders) == len(sim_report.snapshots) >= 2
    for entry in sim_report.snapshots:
        folder = Path(entry.path)
        assert folder in folders
        assert entry.size_bytes == sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        trigger = json.loads((folder / "trigger.json").read_text())
        assert entry.duration_s == pytest.approx((trigger["end_ns"] - trigger["start_ns"]) / NS)
        assert entry.recording == 0
        assert entry.triggers[0].kind == "novel_condition"
        assert entry.triggers[0].top  # the top features, in words
    first = sim_report.snapshots[0]
    dark = deployment_sim.dark
    assert dark[0] <= _seconds(sim_report, first.time_ns) < dark[1]
    assert any(name in LUMINANCE for name in (t.split(" ")[0] for t in first.triggers[0].top))
    target = next(t for t in sim_report.targets if t.stream == DEFAULT_TOPICS["camera"])
    assert first.name in target.snapshots
    html = report_html(sim_report)
    for entry in sim_report.snapshots:
        assert entry.name in html and entry.path in html
