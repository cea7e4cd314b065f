"""The README's first command: the demo runs end to end and reports what it saw."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from ros_helpers import REPO

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_demo_builds_a_profile_detects_faults_and_writes_snapshots(domain_id, tmp_path):
    scenario = tmp_path / "short.yaml"
    scenario.write_text(
        yaml.safe_dump(
            {
                "name": "short",
                "duration_s": 14,
                "seed": 5,
                "faults": [
                    {"kind": "stall", "stream": "imu", "start_s": 4.0, "duration_s": 1.5},
                    {
                        "kind": "lighting_gain",
                        "stream": "camera",
                        "start_s": 7.0,
                        "duration_s": 4.0,
                        "gain": 0.3,
                    },
                ],
            }
        )
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gap_monitor.cli",
            "demo",
            "--duration",
            "14",
            "--scenario",
            str(scenario),
            "--log-dir",
            str(tmp_path / "demo"),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=REPO,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr[-3000:]
    assert "training profile:" in out and (tmp_path / "demo" / "training_profile.yaml").is_file()
    assert "[ 10.0s]" in out  # the live one-line-per-second status
    summary = out.split("summary (times since the sim started)", 1)[1]
    assert "STALE" in summary.split("imu ", 1)[1].splitlines()[0]
    novel = [line for line in summary.splitlines() if "novel condition:" in line]
    assert novel and "/camera/color/image_raw" in novel[0] and "luminance" in novel[0]
    snapshots = [p for p in (tmp_path / "demo" / "snapshots").iterdir() if p.is_dir()]
    kinds = {p.name.split("_", 1)[1] for p in snapshots}
    assert {"stream_state", "novel_condition"} <= kinds
    assert all((p / "metadata.yaml").is_file() and (p / "trigger.json").is_file() for p in snapshots)
    # It ends with the deployment report, whose first collection target is the darkness.
    report = tmp_path / "demo" / "report.html"
    assert "deployment report" in out and str(report) in out and report.is_file()
    collect = [line for line in out.splitlines() if line.strip().startswith("collect:")]
    assert collect and "luminance" in collect[0]
