"""`run_audit` on the real recordings and on small recordings written with rosbags
(test/offline_fixtures.py): skew pairs, stamps ahead of the log time, the motion offset, progress."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gap_monitor.core.events import Severity
from gap_monitor.core.timing.skew import SkewLimits
from gap_monitor.offline.audit import AuditResult, AuditSettings, run_audit

OPENLORIS = "openloris_sample_ros2"
COLOR = "/d400/color/image_raw"
DEPTH = "/d400/depth/image_raw"
FISHEYE = "/t265/fisheye1/image_raw/compressed"


def by_subject(result: AuditResult, check: str) -> dict[str, Severity]:
    return {f.subject: f.level for f in result.findings if f.check == check}


# ---------------------------------------------------------------------------------------------
# Real recordings


def test_openloris_colour_depth_in_step_fisheye_8_8ms_ahead(real_data_dir: Path) -> None:
    result = run_audit([real_data_dir / OPENLORIS])
    pairs = {frozenset((p.a, p.b)): p for p in result.recordings[0].pairs}
    depth = pairs[frozenset((COLOR, DEPTH))]
    assert depth.summary is not None and abs(depth.summary.offset_median_ms or 1.0) < 0.1
    assert depth.level == Severity.OK
    fisheye = pairs[frozenset((COLOR, FISHEYE))]
    assert fisheye.summary is not None and fisheye.summary.matched == 4
    median = fisheye.summary.offset_median_ms
    assert median is not None
    # README: T265 frames ~8.8 ms before colour; the sign follows a - b.
    assert median * (1 if fisheye.a == COLOR else -1) == pytest.approx(8.8, abs=0.15)
    assert fisheye.level == Severity.WARN
    assert by_subject(result, "skew")[fisheye.name] == Severity.WARN
    assert result.worst_level == Severity.WARN
    # The accelerometer-only Imu topics are no gyro for the motion offset, and says so.
    reasons = {m.imu: m.reason for m in result.recordings[0].motion_offsets}
    assert "no angular velocity" in reasons["/d400/accel/sample"]


@pytest.mark.parametrize("name", ["kuka_lwr_joint_states.bag", "kuka_lwr_joint_states_ros2"])
def test_kuka_stamps_ahead_of_log_time_are_flagged(real_data_dir: Path, name: str) -> None:
    result = run_audit([real_data_dir / name])
    (topic,) = result.recordings[0].topics
    assert topic.topic == "/joint_states" and topic.summary.total_messages == 4101
    # README: header stamps ~4.4 ms ahead of log time, spaced exactly 10 ms.
    assert topic.summary.latency_median_ms == pytest.approx(-4.4, abs=0.1)
    assert topic.summary.period_median_ms == pytest.approx(10.0, abs=1e-3)
    assert topic.level == Severity.WARN
    (future,) = [f for f in result.findings if f.check == "future"]
    assert future.level == Severity.WARN and future.subject == "/joint_states"
    assert re.search(r"4\.[3-5]\d ms ahead of the log time", future.message), future.message


# ---------------------------------------------------------------------------------------------
# Synthetic recordings


def test_pairs_found_in_the_recording_stop_at_warn(stereo_bag: Path) -> None:
    strict = AuditSettings(skew_limits=SkewLimits(min_matches=3, offset_error_ms=4.0))
    found = run_audit([stereo_bag], settings=strict).recordings[0].pairs[0]
    assert found.source == "images" and found.level == Severity.WARN  # nobody said "in step"
    asked = run_audit([stereo_bag], pairs=[("/left", "/right")], settings=strict).recordings[0].pairs[0]
    assert asked.source == "argument" and asked.level == Severity.ERROR


def test_late_camera_is_found_from_motion(late_camera_bag: Path) -> None:
    result = run_audit([late_camera_bag])
    (motion,) = result.recordings[0].motion_offsets
    assert (motion.camera, motion.imu) == ("/cam/image_raw", "/imu")
    assert motion.estimate is not None and motion.estimate.confident, motion.reason
    assert motion.estimate.offset_s is not None
    assert motion.estimate.offset_s * 1e3 == pytest.approx(10.0, abs=2.0)
    assert motion.level == Severity.WARN
    (finding,) = [f for f in result.findings if f.check == "motion_offset"]
    assert finding.level == Severity.WARN and "ms late relative to the gyro" in finding.message
    # Without motion estimation nothing is decoded and no offset is reported.
    still = run_audit([late_camera_bag], settings=AuditSettings(estimate_motion=False))
    assert still.recordings[0].motion_offsets == ()


def test_progress_reaches_the_total(stereo_bag: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    run_audit([stereo_bag], progress=lambda label, done, total: calls.append((label, done, total)))
    assert calls[-1] == ("bag", 120, 120)  # the two image topics; /status has no header
