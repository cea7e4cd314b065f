"""The /diagnostics content: each check's values() with the one missing-value rule, the status
builders, and every status of a fed monitor pinned string for string."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from gap_monitor.core.capture.policy import SnapshotStatus
from gap_monitor.core.capture.ring_buffer import BufferStats, TopicStats
from gap_monitor.core.conditions.profile import AlarmCalibration, Profile
from gap_monitor.core.conditions.profile_builder import ProfileBuilder
from gap_monitor.core.conditions.scoring import FeatureScore, StreamScore, condition_values
from gap_monitor.core.conditions.stream import StreamConditions
from gap_monitor.core.config import MotionOffsetConfig, config_from_parameters
from gap_monitor.core.diagnostics import (
    StatusReport,
    capture_status,
    conditions_status,
    motion_offset_level,
    motion_offset_status,
    novelty_level,
    skew_status,
    stream_status,
    timing_status,
)
from gap_monitor.core.events import Severity
from gap_monitor.core.monitor import Monitor
from gap_monitor.core.timing.health import HealthReport
from gap_monitor.core.timing.motion_offset import OffsetEstimate
from gap_monitor.core.timing.skew import PairSkew
from gap_monitor.core.timing.stamps import Finding, StreamTiming
from gap_monitor.core.values import MISSING, flag, in_ms, json_number, number

NS = 1_000_000_000
MS = 1_000_000
STORE = get_typestore(Stores.ROS2_JAZZY)
T0 = 1_000 * NS

PARAMS = {
    "cameras": {"color": {"topic": "/color", "rate_hz": 20.0}},
    "depth_cameras": {"depth": {"topic": "/depth", "rate_hz": 20.0}},
    "imus": {"imu": {"topic": "/imu", "rate_hz": 200.0}},
    "skew_pairs": {"rgbd": {"a": "/color", "b": "/depth", "offset_warn_ms": 2.0, "offset_error_ms": 10.0}},
    "motion_offset": {"camera": "/color", "imu": "/imu", "period_s": 1.0, "window_s": 2.0},
    "triggers": {"failure_topic": "/robot/failure"},
    # No automatic snapshot: the capture status stays independent of the writer thread.
    "capture": {
        "pre_s": 2.0,
        "post_s": 1.0,
        "buffer_bytes": 8 * 1024 * 1024,
        "min_free_bytes": 0,
        "on_stream_stale": False,
        "on_skew": False,
        "on_novel_condition": False,
    },
}


# --- the one missing-value rule ----------------------------------------------------------------


def test_missing_shows_empty_and_a_number_shows_itself_nan_included() -> None:
    assert MISSING == ""
    assert number(None) == number(None, ".4g") == ""
    assert number(1.23456) == "1.23"
    assert number(1.23456, ".3f") == "1.235"
    assert number(0.0, ".0f") == "0"
    assert [number(v, ".4g") for v in (math.nan, math.inf, -math.inf)] == ["nan", "inf", "-inf"]
    assert number(20.0, "g") == "20"
    assert (flag(True), flag(False)) == ("true", "false")
    assert in_ms(None) is None
    assert in_ms(0.0125) == pytest.approx(12.5)


def test_json_has_null_for_missing_and_for_what_json_cannot_hold() -> None:
    assert [json_number(v) for v in (None, math.nan, math.inf, -math.inf)] == [None] * 4
    assert json_number(3) == 3.0 and isinstance(json_number(3), float)


# --- each check's values() ----------------------------------------------------------------------


def health_report(**changes: Any) -> HealthReport:
    report = HealthReport(
        level=Severity.OK,
        message="200.0 Hz",
        count=1234,
        rate_hz=199.987,
        expected_rate_hz=200.0,
        since_last_s=0.00449,
        bytes_per_s=63201.4,
        resets=0,
    )
    return replace(report, **changes)


def test_health_report_values() -> None:
    assert health_report().values() == {
        "count": "1234",
        "rate_hz": "199.99",
        "expected_rate_hz": "200",
        "since_last_s": "0.004",
        "bytes_per_s": "63201",
    }
    silent = health_report(count=0, rate_hz=None, since_last_s=None, bytes_per_s=None, expected_rate_hz=0.5)
    assert silent.values() == {
        "count": "0",
        "rate_hz": "",
        "expected_rate_hz": "0.5",
        "since_last_s": "",
        "bytes_per_s": "",
    }


def test_timing_summary_values_and_missing_ones() -> None:
    timing = StreamTiming(expected_rate_hz=100.0, name="/imu")
    assert list(timing.summary().values().items()) == [
        ("stamp_rate_hz", ""),
        ("period_median_ms", ""),
        ("jitter_p95_ms", ""),
        ("gaps", "0"),
        ("latency_median_ms", ""),
        ("latency_p95_ms", ""),
        ("clock_jumps", "0"),
    ]
    for k in range(50):
        stamp = T0 + k * 10 * MS
        timing.observe(stamp, stamp + 2 * MS)
    assert timing.summary().values() == {
        "stamp_rate_hz": "100.00",
        "period_median_ms": "10.000",
        "jitter_p95_ms": "0.000",
        "gaps": "0",
        "latency_median_ms": "2.000",
        "latency_p95_ms": "2.000",
        "clock_jumps": "0",
    }


def test_skew_summary_values_and_missing_ones() -> None:
    pair = PairSkew("/a", "/b")
    assert list(pair.summary().values().items()) == [
        ("offset_median_ms", ""),
        ("offset_p95_ms", ""),
        ("drift_ppm", ""),
        ("matched", "0"),
        ("unmatched_pct", ""),
    ]
    summary = replace(pair.summary(), offset_median_ms=-1.23456, offset_p95_ms=2.5, drift_ppm=12.34)
    assert summary.values()["offset_median_ms"] == "-1.235"
    assert summary.values()["offset_p95_ms"] == "+2.500"  # signed: an offset is a - b
    assert summary.values()["drift_ppm"] == "+12.3"


def test_offset_estimate_values_and_missing_ones() -> None:
    estimate = OffsetEstimate(
        offset_s=0.01234,
        confidence=0.812,
        confident=True,
        reason="offset +12.3 ms",
        n_frames=40,
        motion_rms=0.5,
        uncertainty_s=0.0012,
    )
    assert estimate.values() == {
        "offset_ms": "+12.34",
        "uncertainty_ms": "1.20",
        "confident": "true",
        "confidence": "0.81",
        "frames": "40",
        "motion_rms_rad_s": "0.5000",
    }
    none = replace(estimate, offset_s=None, uncertainty_s=None, confident=False, confidence=0.0)
    assert none.values()["offset_ms"] == none.values()["uncertainty_ms"] == ""
    assert none.values()["confident"] == "false"


def stream_score(score: float) -> StreamScore:
    top = (FeatureScore("mean_luminance", 23.0, 1e-6, 80.0, 190.0),)
    return StreamScore("/cam", T0, score, 10**-score, 1e-6, math.nan, 0, 1.0, math.nan, top)


def test_condition_values_features_then_score_and_threshold() -> None:
    features = {"mean_luminance": 123.456, "depth_median_m": math.nan, "valid_fraction": 1.5e-5}
    assert condition_values(features, None, None) == {
        "mean_luminance": "123.5",
        "depth_median_m": "nan",
        "valid_fraction": "1.5e-05",
    }
    scored = condition_values(features, stream_score(12.3456), 4.0)
    assert list(scored)[-2:] == ["score", "threshold"]
    assert (scored["score"], scored["threshold"]) == ("12.35", "4")
    assert condition_values({}, stream_score(math.nan), None) == {"score": "nan", "threshold": ""}


# --- status builders ------------------------------------------------------------------------------

CAM = config_from_parameters({"cameras": {"cam": {"topic": "/cam", "rate_hz": 30.0}}}).streams[0]


def test_stream_status_puts_the_health_values_between_what_the_stream_is_and_how_it_arrives() -> None:
    status = stream_status("gm", CAM, health_report(), 2, "reliable", "bad header")
    assert (status.name, status.level, status.message, status.hardware_id) == (
        "gm: /cam",
        Severity.OK,
        "200.0 Hz",
        "cam",
    )
    assert list(status.values) == [
        "modality",
        "type",
        "count",
        "rate_hz",
        "expected_rate_hz",
        "since_last_s",
        "bytes_per_s",
        "malformed",
        "qos",
        "last_error",
    ]
    assert "last_error" not in stream_status("gm", CAM, health_report(), 0, "", None).values


def test_timing_status_keeps_its_judged_level_and_collects_without_findings() -> None:
    summary = StreamTiming(expected_rate_hz=30.0, name="/cam").summary()
    waiting = timing_status("gm", CAM, Severity.WARN, None, None)
    assert (waiting.level, waiting.message, waiting.values) == (Severity.WARN, "collecting", {})
    warn = Finding(Severity.WARN, "/cam", "rate", "/cam: rate low")
    ok = Finding(Severity.OK, "/cam", "gaps", "/cam: no gaps")
    judged = timing_status("gm", CAM, Severity.WARN, summary, [ok, warn])
    assert (judged.name, judged.message, judged.values) == (
        "gm: timing /cam",
        "/cam: rate low",
        summary.values(),
    )


def test_skew_status_is_the_worst_finding_of_the_pair() -> None:
    findings = [
        Finding(Severity.ERROR, "/a vs /b", "skew", "/a vs /b: far apart"),
        Finding(Severity.WARN, "/a vs /b", "drift", "/a vs /b: drifting"),
    ]
    status = skew_status("gm", "/a vs /b", findings, None)
    assert (status.name, status.level, status.message, status.hardware_id, status.values) == (
        "gm: skew /a vs /b",
        Severity.ERROR,
        "/a vs /b: far apart",
        "/a vs /b",
        {},
    )


def test_novelty_is_a_warning_while_the_alarm_is_on_and_an_error_at_error_factor_x_threshold() -> None:
    assert novelty_level(False, stream_score(50.0), 4.0, 3.0) == Severity.OK
    assert novelty_level(True, stream_score(11.9), 4.0, 3.0) == Severity.WARN
    assert novelty_level(True, stream_score(12.0), 4.0, 3.0) == Severity.ERROR
    assert novelty_level(True, stream_score(50.0), None, 3.0) == Severity.WARN
    assert novelty_level(True, None, 4.0, 3.0) == Severity.WARN


@pytest.mark.parametrize(
    ("score", "level", "message"),
    [
        (2.5, Severity.OK, "within training conditions (score 2.5)"),
        (5.0, Severity.WARN, "novel condition: mean_luminance 23 (training p1-p99 80-190)"),
        (15.0, Severity.ERROR, "far outside training conditions: mean_luminance 23 (training p1-p99 80-190)"),
    ],
)
def test_conditions_status_level_and_message(score: float, level: Severity, message: str) -> None:
    status = conditions_status("gm", CAM, {"mean_luminance": 23.0}, stream_score(score), 4.0, level, True)
    assert (status.name, status.level, status.message) == ("gm: conditions /cam", level, message)
    assert status.values == {"mean_luminance": "23", "score": number(score, ".4g"), "threshold": "4"}


def test_conditions_status_before_a_score_says_why() -> None:
    def message(features: dict[str, float], profile_loaded: bool) -> str:
        return conditions_status("gm", CAM, features, None, None, Severity.OK, profile_loaded).message

    assert message({}, True) == "collecting features"
    assert message({"contrast": 1.0}, False) == "features only (no profile loaded)"
    assert message({"contrast": 1.0}, True) == "features only (stream not in the profile)"


MOTION = MotionOffsetConfig(camera="/cam", imu="/imu", warn_ms=5.0, error_ms=20.0)


@pytest.mark.parametrize(
    ("offset_ms", "confident", "level", "message"),
    [
        (25.0, True, Severity.ERROR, "/cam vs /imu: motion offset +25.0 ms (limit 20 ms)"),
        (-6.0, True, Severity.WARN, "/cam vs /imu: motion offset -6.0 ms (limit 5 ms)"),
        (1.0, True, Severity.OK, "/cam vs /imu: motion offset +1.0 ms (within 5 ms)"),
        (25.0, False, Severity.OK, "weak motion"),  # only a confident estimate can raise a level
    ],
)
def test_motion_offset_level(offset_ms: float, confident: bool, level: Severity, message: str) -> None:
    estimate = OffsetEstimate(offset_ms / 1000, 0.9 if confident else 0.2, confident, "weak motion", 40, 0.4)
    assert motion_offset_level(estimate, MOTION) == (level, message)


def test_motion_offset_status_before_an_estimate() -> None:
    assert motion_offset_level(None, MOTION) == (Severity.OK, "collecting")
    status = motion_offset_status("gm", MOTION, None)
    assert (status.name, status.hardware_id, status.values) == (
        "gm: motion offset /cam vs /imu",
        "motion_offset",
        {},
    )


def snapshot_status(**changes: Any) -> SnapshotStatus:
    status = SnapshotStatus(
        snapshots_written=2,
        snapshots_on_disk=3,
        bytes_used=1000,
        quota_bytes=5000,
        quota_count=10,
        collecting=False,
        queued=0,
        triggers_rejected=0,
        last_trigger=None,
        last_path=None,
        last_error=None,
        capture_stopped=False,
        stopped_reason=None,
    )
    return replace(status, **changes)


BUFFER = BufferStats(
    topics={"/cam": TopicStats("/cam", "sensor_msgs/msg/Image", False, 3, 300, T0, T0 + NS, 1.04, 0, 0, 0)},
    total_bytes=300,
    latched_bytes=0,
    budget_bytes=4096,
    message_count=3,
)


def test_capture_values_and_levels() -> None:
    ok = capture_status("gm", snapshot_status(), BUFFER)
    assert (ok.name, ok.level, ok.message, ok.hardware_id) == (
        "gm: capture",
        Severity.OK,
        "2 snapshot(s) written; 1000 B of 5000 B",
        "capture",
    )
    assert ok.values == {
        "snapshots_written": "2",
        "snapshots_on_disk": "3",
        "bytes_used": "1000",
        "quota_bytes": "5000",
        "triggers_refused": "0",
        "snapshots_refused": "0",
        "snapshots_deleted": "0",
        "snapshots_lost": "0",
        "buffer_bytes": "300",
        "buffer_budget_bytes": "4096",
        "last_trigger": "",
        "last_path": "",
        "buffer /cam": "1.0 s, 300 B",
    }
    written = capture_status(
        "gm", snapshot_status(last_trigger={"reason": "skew"}, last_path=Path("/s/1_skew")), BUFFER
    )
    assert (written.values["last_trigger"], written.values["last_path"]) == ("skew", "/s/1_skew")
    counted = capture_status(
        "gm",
        snapshot_status(triggers_rejected=25, snapshots_refused=1, snapshots_deleted=2, snapshots_lost=3),
        BUFFER,
    ).values
    assert [counted[k] for k in ("triggers_refused", "snapshots_refused", "snapshots_deleted")] == [
        "25",
        "1",
        "2",
    ]
    assert counted["snapshots_lost"] == "3"
    warn = capture_status("gm", snapshot_status(last_error="disk slow"), BUFFER)
    assert (warn.level, warn.message) == (Severity.WARN, "last error: disk slow")
    stopped = capture_status("gm", snapshot_status(capture_stopped=True, stopped_reason="ENOSPC"), BUFFER)
    assert (stopped.level, stopped.message) == (Severity.ERROR, "capture stopped: ENOSPC")


# --- a fed monitor, pinned ------------------------------------------------------------------------


def _header(stamp_ns: int, frame: str) -> object:
    time = STORE.types["builtin_interfaces/msg/Time"](sec=stamp_ns // NS, nanosec=stamp_ns % NS)
    return STORE.types["std_msgs/msg/Header"](stamp=time, frame_id=frame)


def imu_bytes(stamp_ns: int, rng: np.random.Generator, gyro_sigma: float) -> bytes:
    vector = STORE.types["geometry_msgs/msg/Vector3"]
    msg = STORE.types["sensor_msgs/msg/Imu"](
        header=_header(stamp_ns, "imu"),
        orientation=STORE.types["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0),
        orientation_covariance=np.zeros(9),
        angular_velocity=vector(*rng.normal(0.0, gyro_sigma, 3)),
        angular_velocity_covariance=np.zeros(9),
        linear_acceleration=vector(*(rng.normal(0.0, 0.3, 3) + np.array([0.0, 0.0, 9.81]))),
        linear_acceleration_covariance=np.zeros(9),
    )
    return bytes(STORE.serialize_cdr(msg, "sensor_msgs/msg/Imu"))


def image_bytes(stamp_ns: int, frame: str, encoding: str, pixels: np.ndarray) -> bytes:
    h, w = pixels.shape
    msg = STORE.types["sensor_msgs/msg/Image"](
        header=_header(stamp_ns, frame),
        height=h,
        width=w,
        encoding=encoding,
        is_bigendian=0,
        step=pixels.strides[0],
        data=pixels.reshape(-1).view(np.uint8),
    )
    return bytes(STORE.serialize_cdr(msg, "sensor_msgs/msg/Image"))


def imu_profile() -> Profile:
    """/imu trained on a quiet gyro (an alarm at score 3); /color and /depth are not in it."""
    rng = np.random.default_rng(1)
    conditions = StreamConditions("imu", "sensor_msgs/msg/Imu")
    builder = ProfileBuilder()
    for i in range(4000):
        stamp = T0 + i * 5 * MS
        features = conditions.on_message(stamp, imu_bytes(stamp, rng, 0.05))
        if features is not None:
            builder.add("imu", "/imu", features, stamp)
    alarm = AlarmCalibration(threshold=3.0, clear_threshold=1.0, fire_k=1, fire_n=1)
    return builder.build().with_alarm("/imu", alarm)


def fed_monitor(tmp_path: Path) -> tuple[Monitor, int]:
    """3 s of a rig: a shaking IMU, a camera too small for motion tracking, an empty depth image
    3 ms ahead of it, one malformed IMU and one malformed trigger message; checked every 0.2 s."""
    monitor = Monitor(
        config_from_parameters(PARAMS), T0, output_dir=tmp_path / "snaps", profile=imu_profile()
    )
    rng = np.random.default_rng(2)
    texture = np.random.default_rng(3).integers(0, 255, (12, 16), dtype=np.uint8)
    depth = np.zeros((8, 8), dtype=np.uint16)  # no valid pixel: NaN range features
    t = T0
    for k in range(1, 3 * 200 + 1):
        t = T0 + k * 5 * MS
        monitor.on_message("/imu", t + MS, imu_bytes(t, rng, 0.5))
        if k % 10 == 0:
            shifted = np.roll(texture, k // 10, axis=1)
            monitor.on_message("/color", t + MS, image_bytes(t, "color", "mono8", shifted))
            monitor.on_message("/depth", t + MS, image_bytes(t + 3 * MS, "depth", "16UC1", depth))
        if k % 40 == 0:
            monitor.check(t + MS)
    monitor.on_message("/imu", t + MS, b"\x00\x01")
    monitor.on_message("/robot/failure", t + MS, b"\x00\x01")
    now = t + 2 * MS
    monitor.check(now)
    return monitor, now


# (name, level, message, hardware_id, values in order) of every status, as /diagnostics showed them
# before the status building left Monitor.
EXPECTED = [
    (
        "gap_monitor: /color",
        Severity.OK,
        "20.0 Hz",
        "color",
        [
            ("modality", "camera"),
            ("type", "sensor_msgs/msg/Image"),
            ("count", "60"),
            ("rate_hz", "20.00"),
            ("expected_rate_hz", "20"),
            ("since_last_s", "0.001"),
            ("bytes_per_s", "4880"),
            ("malformed", "60"),
            ("qos", ""),
            ("last_error", "motion offset: image: shape (12, 16): must be HxW or HxWxC with H, W >= 16"),
        ],
    ),
    (
        "gap_monitor: /depth",
        Severity.OK,
        "20.0 Hz",
        "depth",
        [
            ("modality", "depth"),
            ("type", "sensor_msgs/msg/Image"),
            ("count", "60"),
            ("rate_hz", "20.00"),
            ("expected_rate_hz", "20"),
            ("since_last_s", "0.001"),
            ("bytes_per_s", "3600"),
            ("malformed", "0"),
            ("qos", ""),
        ],
    ),
    (
        "gap_monitor: /imu",
        Severity.OK,
        "200.5 Hz",
        "imu",
        [
            ("modality", "imu"),
            ("type", "sensor_msgs/msg/Imu"),
            ("count", "601"),
            ("rate_hz", "200.50"),
            ("expected_rate_hz", "200"),
            ("since_last_s", "0.001"),
            ("bytes_per_s", "63201"),
            ("malformed", "1"),
            ("qos", "reliable, keep_last(10)"),
            (
                "last_error",
                "std_msgs/msg/Header: CDR data has 2 bytes, shorter than the 4-byte encapsulation header",
            ),
        ],
    ),
    (
        "gap_monitor: timing /color",
        Severity.OK,
        (
            "/color [color]: last message 0.0 ms ago (period 50 ms); /color [color]: rate 20.00 Hz vs "
            "expected 20 Hz (+0.0 %)"
        ),
        "color",
        [
            ("stamp_rate_hz", "20.00"),
            ("period_median_ms", "50.000"),
            ("jitter_p95_ms", "0.000"),
            ("gaps", "0"),
            ("latency_median_ms", "1.000"),
            ("latency_p95_ms", "1.000"),
            ("clock_jumps", "0"),
        ],
    ),
    (
        "gap_monitor: timing /depth",
        Severity.WARN,
        (
            "/depth [depth]: 44 of 44 header stamps ahead of their receipt time by up to 2.0 ms (clocks not "
            "synchronized?)"
        ),
        "depth",
        [
            ("stamp_rate_hz", "20.00"),
            ("period_median_ms", "50.000"),
            ("jitter_p95_ms", "0.000"),
            ("gaps", "0"),
            ("latency_median_ms", "-2.000"),
            ("latency_p95_ms", "-2.000"),
            ("clock_jumps", "0"),
        ],
    ),
    (
        "gap_monitor: timing /imu",
        Severity.OK,
        (
            "/imu [imu]: last message 0.0 ms ago (period 5 ms); /imu [imu]: rate 200.00 Hz vs expected 200 Hz"
            " (+0.0 %)"
        ),
        "imu",
        [
            ("stamp_rate_hz", "200.00"),
            ("period_median_ms", "5.000"),
            ("jitter_p95_ms", "0.000"),
            ("gaps", "0"),
            ("latency_median_ms", "1.000"),
            ("latency_p95_ms", "1.000"),
            ("clock_jumps", "0"),
        ],
    ),
    (
        "gap_monitor: skew /color vs /depth",
        Severity.WARN,
        "/color vs /depth: -3.0 ms median (limit 2 ms), p95 -3.0 ms over 41 matched messages",
        "/color vs /depth",
        [
            ("offset_median_ms", "-3.000"),
            ("offset_p95_ms", "-3.000"),
            ("drift_ppm", ""),
            ("matched", "41"),
            ("unmatched_pct", "0.0"),
        ],
    ),
    (
        "gap_monitor: conditions /color",
        Severity.OK,
        "features only (stream not in the profile)",
        "color",
        [
            ("mean_luminance", "120.9"),
            ("luminance_p5", "9.55"),
            ("luminance_p95", "238"),
            ("contrast", "75.18"),
            ("dark_fraction", "0.08854"),
            ("saturated_fraction", "0.005208"),
            ("sharpness", "1.069e+05"),
            ("noise_sigma", "77.93"),
            ("colour_cast", "0"),
        ],
    ),
    (
        "gap_monitor: conditions /depth",
        Severity.OK,
        "features only (stream not in the profile)",
        "depth",
        [
            ("valid_fraction", "0"),
            ("depth_median_m", "nan"),
            ("depth_p5_m", "nan"),
            ("depth_p95_m", "nan"),
            ("near_fraction", "0"),
            ("edge_noise_m", "nan"),
        ],
    ),
    (
        "gap_monitor: conditions /imu",
        Severity.ERROR,
        (
            "far outside training conditions: gyro_std_x 0.459 (training p1-p99 0.0457-0.0539); gyro_std_y "
            "0.52 (training p1-p99 0.0437-0.0529); gyro_std_z 0.524 (training p1-p99 0.0433-0.0526)"
        ),
        "imu",
        [
            ("accel_norm_mean", "9.844"),
            ("accel_std_x", "0.283"),
            ("accel_std_y", "0.3201"),
            ("accel_std_z", "0.2968"),
            ("gyro_std_x", "0.4595"),
            ("gyro_std_y", "0.5197"),
            ("gyro_std_z", "0.5241"),
            ("gyro_mean_x", "0.07141"),
            ("gyro_mean_y", "0.00657"),
            ("gyro_mean_z", "-0.07902"),
            ("nan_count", "0"),
            ("saturation_count", "0"),
            ("score", "300"),
            ("threshold", "3"),
        ],
    ),
    (
        "gap_monitor: motion offset /color vs /imu",
        Severity.OK,
        "no frame intervals yet (need at least two frames)",
        "motion_offset",
        [
            ("offset_ms", ""),
            ("uncertainty_ms", ""),
            ("confident", "false"),
            ("confidence", "0.00"),
            ("frames", "0"),
            ("motion_rms_rad_s", "0.0000"),
        ],
    ),
    (
        "gap_monitor: triggers",
        Severity.WARN,
        "1 trigger topic(s); 1 malformed",
        "triggers",
        [
            ("topics", "/robot/failure"),
            ("malformed", "1"),
            (
                "last_error /robot/failure",
                "std_msgs/msg/String: CDR data has 2 bytes, shorter than the 4-byte encapsulation header",
            ),
        ],
    ),
    (
        "gap_monitor: capture",
        Severity.OK,
        "0 snapshot(s) written; 0 B of 10737418240 B",
        "capture",
        [
            ("snapshots_written", "0"),
            ("snapshots_on_disk", "0"),
            ("bytes_used", "0"),
            ("quota_bytes", "10737418240"),
            ("triggers_refused", "0"),
            ("snapshots_refused", "0"),
            ("snapshots_deleted", "0"),
            ("snapshots_lost", "0"),
            ("buffer_bytes", "215044"),
            ("buffer_budget_bytes", "8388608"),
            ("last_trigger", ""),
            ("last_path", ""),
            ("buffer /color", "3.0 s, 14640 B"),
            ("buffer /depth", "3.0 s, 10800 B"),
            ("buffer /imu", "3.0 s, 189602 B"),
            ("buffer /robot/failure", "0.0 s, 2 B"),
        ],
    ),
]


def test_status_list_of_a_fed_monitor_is_pinned(tmp_path: Path) -> None:
    monitor, now = fed_monitor(tmp_path)
    try:
        statuses = monitor.statuses(now, {"/imu": "reliable, keep_last(10)"})
    finally:
        monitor.close(now)
    assert all(isinstance(s, StatusReport) for s in statuses)
    assert [(s.name, s.level, s.message, s.hardware_id, list(s.values.items())) for s in statuses] == EXPECTED
