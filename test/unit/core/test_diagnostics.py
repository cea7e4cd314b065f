"""The /diagnostics content: every status of a fed monitor, pinned string for string."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rosbags.typesys import Stores, get_typestore

from gap_monitor.core.conditions.feed import StreamConditions
from gap_monitor.core.conditions.profile import AlarmCalibration, Profile, ProfileBuilder
from gap_monitor.core.config.model import config_from_parameters
from gap_monitor.core.diagnostics import StatusReport
from gap_monitor.core.events import Severity
from gap_monitor.core.monitor import Monitor

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
            ("unmatched_fraction", "0.000"),
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
