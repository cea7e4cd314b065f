"""The report's HTML in headless Chromium: it renders without console errors, every plot is in the
rendered DOM with a non-empty box, and the screenshot shows the plots' colours.

Needs Debian's `chromium` (/usr/bin/chromium); skipped with the reason when it is absent.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from gap_monitor.core.io.recordings import open_recording
from gap_monitor.core.monitor import Monitor
from gap_monitor.offline.extraction import build_profile
from gap_monitor.offline.replay import config_for_recording
from gap_monitor.offline.report import build_report
from gap_monitor.render.report_html import write_report
from gap_monitor.render.svg import COLOURS
from gap_monitor.sim.record import record_sim
from gap_monitor.sim.rig import RigSettings
from gap_monitor.sim.scenario import Fault, Scenario

CHROMIUM = Path("/usr/bin/chromium")
NS = 1_000_000_000
RIG = RigSettings(
    width=160, height=120, camera_rate_hz=10.0, depth_rate_hz=10.0, imu_rate_hz=100.0,
    joints_rate_hz=100.0, wrench_rate_hz=200.0, focal_px=125.0,
)  # fmt: skip
# Console output of any level, and uncaught exceptions, as Chromium logs them with --enable-logging.
CONSOLE_PROBLEM = re.compile(r":CONSOLE[:(]|Uncaught")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="headless Chromium not installed (/usr/bin/chromium; Debian package `chromium`)",
    ),
]


def chromium(tmp: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    profile_dir = tmp / f"chromium-profile-{len(list(tmp.glob('chromium-profile-*')))}"
    args = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile_dir}", "--enable-logging=stderr", "--v=0", "--window-size=1280,4000",
        *extra, url,
    ]  # fmt: skip
    return subprocess.run(args, capture_output=True, text=True, timeout=180, check=False)


def console_problems(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if CONSOLE_PROBLEM.search(line)]


@pytest.fixture(scope="module")
def rendered_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report of a sim deployment (darkness, force drift) with snapshots, so every kind of plot
    and marker is on the page."""
    root = tmp_path_factory.mktemp("render")
    record_sim(root / "train", Scenario(seed=5), 30.0, RIG)
    faults = (
        Fault("lighting_gain", "camera", 5.0, 6.0, {"gain": 0.3}),
        Fault("force_drift", "wrench", 12.0, 8.0, {"rate_n_per_s": 4.0}),
    )
    record_sim(root / "deploy", Scenario(seed=5, faults=faults), 20.0, RIG, start_s=30.0)
    profile = build_profile([root / "train"])
    with open_recording(root / "deploy") as rec:
        start, end = rec.start_time_ns, rec.end_time_ns
        config = config_for_recording(rec)
        capture = replace(
            config.capture, enabled=True, min_free_bytes=0, pre_s=1.0, post_s=1.0, cooldown_s=1.0
        )
        monitor = Monitor(replace(config, capture=capture), start, output_dir=root / "snaps", profile=profile)
        next_check = start
        for msg in rec.messages():
            while msg.log_time_ns >= next_check:
                monitor.check(next_check)
                next_check += int(config.check_period_s * NS)
            monitor.on_message(msg.topic, msg.log_time_ns, msg.data)
        monitor.close(end + NS)
    report = build_report(profile, [root / "deploy"], snapshots=root / "snaps")
    assert report.targets and report.snapshots
    html_path, _ = write_report(report, root / "report.html")
    return html_path


def test_console_problem_detection_catches_a_page_error(tmp_path):
    """The check below can fail: a page with a script error is caught."""
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><body><script>throw new Error("boom")</script></body></html>')
    run = chromium(tmp_path, page.as_uri(), "--dump-dom")
    assert run.returncode == 0, run.stderr[-2000:]
    assert any("boom" in line for line in console_problems(run.stderr)), run.stderr[-2000:]


def test_report_renders_without_errors_and_every_plot_is_in_the_dom(rendered_report, tmp_path):
    data = json.loads(rendered_report.with_suffix(".json").read_text())
    plot_ids = [p["id"] for p in data["plots"]]
    assert len(plot_ids) > 20
    # A copy with a probe script measures each plot's rendered box (the report itself has no JS).
    probe = tmp_path / "probe.html"
    script = (
        "<script>window.addEventListener('load',()=>{const out={};"
        "for(const s of document.querySelectorAll('svg.plot')){const r=s.getBoundingClientRect();"
        "out[s.id]=[r.width,r.height,s.querySelectorAll('path,rect,line').length];}"
        "const pre=document.createElement('pre');pre.id='probe';pre.textContent=JSON.stringify(out);"
        "document.body.appendChild(pre);});</script>"
    )
    probe.write_text(rendered_report.read_text().replace("</body>", script + "</body>"))

    plain = chromium(tmp_path, rendered_report.as_uri(), "--dump-dom")
    assert plain.returncode == 0, plain.stderr[-2000:]
    assert console_problems(plain.stderr) == []
    for plot_id in plot_ids:
        assert f'<svg class="plot" id="{plot_id}"' in plain.stdout, plot_id

    measured = chromium(tmp_path, probe.as_uri(), "--dump-dom", "--virtual-time-budget=5000")
    assert measured.returncode == 0, measured.stderr[-2000:]
    found = re.search(r'<pre id="probe">(.*?)</pre>', measured.stdout, re.S)
    assert found, measured.stdout[-2000:]
    boxes = json.loads(found.group(1).replace("&quot;", '"'))
    assert sorted(boxes) == sorted(plot_ids)
    for plot_id, (width, height, marks) in boxes.items():
        assert width > 100 and height > 100 and marks > 10, (plot_id, width, height, marks)


def test_screenshot_shows_the_plots(rendered_report, tmp_path):
    png = tmp_path / "report.png"
    run = chromium(tmp_path, rendered_report.as_uri(), f"--screenshot={png}")
    assert run.returncode == 0, run.stderr[-2000:]
    assert console_problems(run.stderr) == []
    image = cv2.imread(str(png))
    assert image is not None and image.shape[:2] == (4000, 1280)

    def pixels_near(hex_colour: str, tolerance: int = 40) -> int:
        rgb = [int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]
        bgr = np.array(rgb[::-1], dtype=np.int16)
        return int((np.abs(image.astype(np.int16) - bgr).max(axis=2) <= tolerance).sum())

    # The deployment lines (orange), the score lines (blue), the thresholds and alarm spans (red),
    # the snapshot markers (purple) are all on the page.
    assert pixels_near(COLOURS["deployment"]) > 500
    assert pixels_near(COLOURS["training"]) > 500
    assert pixels_near(COLOURS["alarm"], 12) > 500
    assert pixels_near(COLOURS["snapshot"]) > 20
    # Not a blank page: a fair share of the top 1000 rows is not white.
    top = image[:1000]
    assert (top.min(axis=2) < 200).mean() > 0.02
