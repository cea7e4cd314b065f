"""The ROS-free Monitor: synthetic CDR streams in, events, statuses and snapshots out."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_typestore

from gap_monitor.core.config import CaptureConfig, config_from_parameters
from gap_monitor.core.events import Event, Severity
from gap_monitor.core.monitor import Monitor

NS = 1_000_000_000
STORE = get_typestore(Stores.ROS2_JAZZY)
Imu = STORE.types["sensor_msgs/msg/Imu"]
Image = STORE.types["sensor_msgs/msg/Image"]
Header = STORE.types["std_msgs/msg/Header"]
Time = STORE.types["builtin_interfaces/msg/Time"]
Quaternion = STORE.types["geometry_msgs/msg/Quaternion"]
Vector3 = STORE.types["geometry_msgs/msg/Vector3"]

PARAMS = {
    "cameras": {"color": {"topic": "/color", "rate_hz": 20.0}},
    "depth_cameras": {"depth": {"topic": "/depth", "rate_hz": 20.0}},
    "imus": {"imu": {"topic": "/imu", "rate_hz": 200.0}},
    "skew_pairs": {"rgbd": {"a": "/color", "b": "/depth", "offset_warn_ms": 2.0, "offset_error_ms": 10.0}},
    "capture": {
        "pre_s": 2.0,
        "post_s": 1.0,
        "cooldown_s": 0.0,
        "buffer_bytes": 64 * 1024 * 1024,
        "min_free_bytes": 0,
    },
}


def header(stamp_ns: int, frame: str = "f") -> object:
    return Header(stamp=Time(sec=stamp_ns // NS, nanosec=stamp_ns % NS), frame_id=frame)


def imu_bytes(stamp_ns: int) -> bytes:
    msg = Imu(
        header=header(stamp_ns, "imu"),
        orientation=Quaternion(x=0.0, y=0.0, z=0.0, w=1.0),
        orientation_covariance=np.zeros(9),
        angular_velocity=Vector3(x=0.0, y=0.0, z=0.1),
        angular_velocity_covariance=np.zeros(9),
        linear_acceleration=Vector3(x=0.0, y=0.0, z=9.81),
        linear_acceleration_covariance=np.zeros(9),
    )
    return bytes(STORE.serialize_cdr(msg, "sensor_msgs/msg/Imu"))


def image_bytes(stamp_ns: int, frame: str) -> bytes:
    msg = Image(
        header=header(stamp_ns, frame),
        height=4,
        width=4,
        encoding="mono8",
        is_bigendian=0,
        step=4,
        data=np.full(16, 100, dtype=np.uint8),
    )
    return bytes(STORE.serialize_cdr(msg, "sensor_msgs/msg/Image"))


class Rig:
    """Feeds a Monitor as a live node would: receipt time = stamp + 1 ms, checks every 0.2 s."""

    def __init__(self, monitor: Monitor, t0: int = 1_000 * NS) -> None:
        self.monitor = monitor
        self.t = t0
        self.events: list[Event] = []
        self.depth_offset_ns = 0
        self.stalled: set[str] = set()

    def run(self, seconds: float) -> None:
        end = self.t + int(seconds * NS)
        step = NS // 200
        while self.t < end:
            self.t += step
            k = self.t // step
            if "/imu" not in self.stalled:
                self.monitor.on_message("/imu", self.t + NS // 1000, imu_bytes(self.t))
            if k % 10 == 0:
                self.monitor.on_message("/color", self.t + NS // 1000, image_bytes(self.t, "color"))
                self.monitor.on_message(
                    "/depth", self.t + NS // 1000, image_bytes(self.t + self.depth_offset_ns, "depth")
                )
            if k % 40 == 0:
                self.events += self.monitor.check(self.t + NS // 1000)


@pytest.fixture
def monitor(tmp_path: Path) -> Monitor:
    return Monitor(config_from_parameters(PARAMS), 1_000 * NS, output_dir=tmp_path / "snaps")


def test_clean_streams_stay_ok_and_report_every_check(monitor):
    rig = Rig(monitor)
    rig.run(4.0)
    assert [e for e in rig.events if e.severity != Severity.OK] == []
    statuses = {s.name: s for s in monitor.statuses(rig.t + NS // 1000)}
    for name in (
        "gap_monitor: /imu",
        "gap_monitor: timing /imu",
        "gap_monitor: skew /color vs /depth",
        "gap_monitor: capture",
    ):
        assert statuses[name].level == Severity.OK, (name, statuses[name].message)
    assert float(statuses["gap_monitor: /imu"].values["rate_hz"]) == pytest.approx(200.0, rel=0.01)
    assert float(statuses["gap_monitor: timing /imu"].values["period_median_ms"]) == pytest.approx(5.0)
    assert float(statuses["gap_monitor: skew /color vs /depth"].values["offset_median_ms"]) == pytest.approx(
        0.0
    )
    assert monitor.writer is not None and monitor.writer.status().snapshots_written == 0


def test_stamp_offset_raises_skew_event_and_a_snapshot_with_the_pre_window(monitor, tmp_path):
    rig = Rig(monitor)
    rig.run(3.0)
    rig.depth_offset_ns = 7 * NS // 1000
    rig.run(3.0)
    skew = [e for e in rig.events if e.kind == "skew"]
    assert skew and skew[0].severity == Severity.WARN
    assert "+7.0 ms" in skew[0].reason or "-7.0 ms" in skew[0].reason
    started = [e for e in rig.events if e.kind == "snapshot"]
    assert started and started[0].details["outcome"] == "started"
    rig.run(2.0)  # past the post window
    assert monitor.writer is not None and monitor.writer.flush(10.0)
    rig.events += monitor.check(rig.t)
    written = [e for e in rig.events if e.kind == "snapshot_written"]
    assert written
    folder = Path(written[0].details["path"])
    assert folder.parent == tmp_path / "snaps" and folder.name.endswith("_skew")
    with Reader(folder) as reader:
        times = [t for _, t, _ in reader.messages()]
        topics = {c.topic for c in reader.connections}
    assert topics == {"/imu", "/color", "/depth"}
    span_s = (max(times) - min(times)) / NS
    assert span_s == pytest.approx(2.0 + 1.0, abs=0.25)


def test_stall_gives_stale_event_and_snapshot_but_startup_silence_does_not(tmp_path):
    monitor = Monitor(config_from_parameters(PARAMS), 1_000 * NS, output_dir=tmp_path / "snaps")
    early = monitor.check(1_001 * NS)  # nothing received for 1 s: STALE, but no snapshot
    assert {e.severity for e in early} == {Severity.STALE}
    assert not [e for e in early if e.kind == "snapshot"]
    rig = Rig(monitor, t0=1_001 * NS)
    rig.run(3.0)
    rig.stalled.add("/imu")
    rig.run(2.0)
    stale = [
        e
        for e in rig.events
        if e.kind == "stream_state" and e.source == "/imu" and e.severity == Severity.STALE
    ]
    assert stale and stale[0].details["previous"] == "OK" and stale[0].details["received"] > 0
    assert any(e.kind == "snapshot" and e.details["trigger"] == "stream_state" for e in rig.events)


def test_malformed_messages_are_counted_not_raised(monitor):
    monitor.on_message("/imu", 1_000 * NS, b"\x00\x01")
    monitor.on_message("/imu", 1_000 * NS, b"\x07\x07\x00\x00" + bytes(20))
    status = next(s for s in monitor.statuses(1_000 * NS) if s.name == "gap_monitor: /imu")
    assert status.values["malformed"] == "2"
    assert status.values["last_error"]


def test_manual_capture_and_disabled_capture(tmp_path):
    monitor = Monitor(config_from_parameters(PARAMS), 1_000 * NS, output_dir=tmp_path / "snaps")
    result = monitor.capture("manual", "operator saw a slip", "test", 1_000 * NS)
    assert result is not None and result.accepted and result.path is not None
    assert result.path.parent == tmp_path / "snaps"
    off = replace(config_from_parameters(PARAMS), capture=CaptureConfig(enabled=False))
    quiet = Monitor(off, 1_000 * NS)
    assert quiet.capture("manual", "x", "test", 1_000 * NS) is None
    assert not any(s.name.endswith("capture") for s in quiet.statuses(1_000 * NS))


def sim_image_bytes(stamp_ns: int, pixels: np.ndarray) -> bytes:
    h, w = pixels.shape[:2]
    msg = Image(
        header=header(stamp_ns, "cam"),
        height=h,
        width=w,
        encoding="rgb8",
        is_bigendian=0,
        step=w * 3,
        data=pixels.reshape(-1),
    )
    return bytes(STORE.serialize_cdr(msg, "sensor_msgs/msg/Image"))


def sim_imu_bytes(stamp_ns: int, gyro: np.ndarray) -> bytes:
    msg = Imu(
        header=header(stamp_ns, "imu"),
        orientation=Quaternion(x=0.0, y=0.0, z=0.0, w=1.0),
        orientation_covariance=np.zeros(9),
        angular_velocity=Vector3(x=float(gyro[0]), y=float(gyro[1]), z=float(gyro[2])),
        angular_velocity_covariance=np.zeros(9),
        linear_acceleration=Vector3(x=0.0, y=0.0, z=9.81),
        linear_acceleration_covariance=np.zeros(9),
    )
    return bytes(STORE.serialize_cdr(msg, "sensor_msgs/msg/Imu"))


def test_live_motion_offset_flags_a_camera_late_by_12ms():
    from gap_monitor.sim.rig import RigSettings, SimRig
    from gap_monitor.sim.scenario import Scenario

    params = {
        "cameras": {"cam": {"topic": "/cam", "rate_hz": 30.0}},
        "imus": {"imu": {"topic": "/imu", "rate_hz": 400.0}},
        "motion_offset": {
            "camera": "/cam",
            "imu": "/imu",
            "warn_ms": 5.0,
            "period_s": 12.0,
            "window_s": 10.0,
        },
        "capture": {"enabled": False},
    }
    t0 = 1_000 * NS
    monitor = Monitor(config_from_parameters(params), t0)
    rig = SimRig(RigSettings(width=320, height=240, focal_px=250.0), Scenario(seed=4))
    shift_ns = 12_000_000
    events = []
    for k in range(int(12.5 * 400)):
        t = k / 400
        stamp = t0 + int(t * NS)
        monitor.on_message("/imu", stamp + NS // 1000, sim_imu_bytes(stamp, rig.imu(t).gyro))
        if k % 40 == 0 or k % 40 == 13 or k % 40 == 27:  # 30 Hz from the 400 Hz grid (1/30 s ~ 13.3 ticks)
            tc = round(k / 400 * 30) / 30
            cam_stamp = t0 + int(tc * NS) + shift_ns
            monitor.on_message(
                "/cam", cam_stamp + NS // 1000, sim_image_bytes(cam_stamp, rig.camera(tc).pixels)
            )
        if k % 80 == 0:
            events += monitor.check(stamp + NS // 1000)
    found = [e for e in events if e.kind == "motion_offset"]
    assert found and found[0].severity == Severity.WARN, [e.reason for e in events]
    assert "motion offset +1" in found[0].reason and "(limit 5 ms)" in found[0].reason
    status = next(s for s in monitor.statuses(t0 + 13 * NS) if "motion offset" in s.name)
    assert status.values["confident"] == "true"
    assert float(status.values["offset_ms"]) == pytest.approx(12.0, abs=2.0)


def test_novel_condition_fires_with_the_top_feature_snapshots_and_clears(tmp_path):
    from gap_monitor.core.conditions.calibration import build_calibrated_profile
    from gap_monitor.core.conditions.profile import FeatureSample
    from gap_monitor.core.conditions.stream import StreamConditions
    from gap_monitor.sim.rig import RigSettings, SimRig
    from gap_monitor.sim.scenario import Fault, Scenario

    settings = RigSettings(width=160, height=120)
    clean = SimRig(settings, Scenario(seed=21))
    cond = StreamConditions("camera", "sensor_msgs/msg/Image")
    t0 = 1_000 * NS
    samples = []
    for k in range(240 * 5):  # 4 min of clean frames at the 5 Hz feature rate
        t = k / 5
        stamp = t0 + int(t * NS)
        features = cond.on_message(stamp, sim_image_bytes(stamp, clean.camera(t).pixels))
        assert features is not None
        samples.append(FeatureSample("camera", "/cam", features, stamp))
    profile = build_calibrated_profile(samples, frame_rate_hz=5.0)
    params = {
        "cameras": {"cam": {"topic": "/cam", "rate_hz": 5.0}},
        "timing": {"enabled": False},
        "capture": {"pre_s": 2.0, "post_s": 1.0, "min_free_bytes": 0},
    }
    start = t0 + 300 * NS
    monitor = Monitor(config_from_parameters(params), start, output_dir=tmp_path / "snaps", profile=profile)
    dark = SimRig(
        settings, Scenario(seed=21, faults=(Fault("lighting_gain", "camera", 10.0, 6.0, {"gain": 0.3}),))
    )
    events = []
    for k in range(30 * 5):
        t = k / 5
        stamp = start + int(t * NS)
        monitor.on_message("/cam", stamp, sim_image_bytes(stamp, dark.camera(t).pixels))
        events += [(t, e) for e in monitor.check(stamp)]
    novel = [(t, e) for t, e in events if e.kind == "novel_condition"]
    assert [e.severity >= Severity.WARN for _, e in novel] == [True, False], [(t, e.reason) for t, e in novel]
    fired_at, fired = novel[0]
    assert 10.0 <= fired_at <= 10.0 + 10 / 5  # within 10 frames of the fault
    assert "luminance" in fired.reason and "training p1-p99" in fired.reason
    assert fired.details["top"] and fired.details["score"] > fired.details["threshold"]
    assert 16.0 <= novel[1][0] <= 16.0 + 30 / 5  # clears once the light is back
    assert any(e.kind == "snapshot" and e.details["trigger"] == "novel_condition" for _, e in events)
    assert monitor.writer is not None and monitor.writer.flush(30.0)
    trigger = json.loads(next((tmp_path / "snaps").glob("*_novel_condition/trigger.json")).read_text())
    event = trigger["triggers"][0]["event"]
    assert event["profile"]["digest"] == profile.digest()
    assert event["config"]["streams"][0]["topic"] == "/cam"
    assert event["details"]["top"][0]["name"] and event["package_version"] and event["host"]
    status = next(s for s in monitor.statuses(stamp) if s.name == "gap_monitor: conditions /cam")
    assert status.level == Severity.OK and "within training conditions" in status.message
    assert monitor.scores()[0]["stream"] == "/cam" and "mean_luminance" in monitor.scores()[0]["features"]


def test_full_disk_stops_capture_with_a_diagnostic_and_monitoring_goes_on(tmp_path, monkeypatch):
    import errno
    from functools import partial

    from gap_monitor.core import monitor as monitor_module
    from gap_monitor.core.capture.snapshot_folder import WriteOptions, open_output
    from gap_monitor.core.capture.writer import SnapshotWriter

    class FullDisk:
        def __init__(self, f):
            self._f = f

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self._f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._f.close()

    def open_file(path):
        return FullDisk(open_output(path))

    full_disk = WriteOptions(open_file=open_file)
    monkeypatch.setattr(monitor_module, "SnapshotWriter", partial(SnapshotWriter, options=full_disk))
    monitor = Monitor(config_from_parameters(PARAMS), 1_000 * NS, output_dir=tmp_path / "snaps")
    rig = Rig(monitor)
    rig.run(3.0)
    result = monitor.capture("manual", "test", "test", rig.t)
    assert result is not None and result.accepted
    rig.run(2.0)  # the post window ends; the write fails on the writer thread
    assert monitor.writer is not None and monitor.writer.flush(10.0)
    rig.events += monitor.check(rig.t)
    statuses = {s.name: s for s in monitor.statuses(rig.t + NS // 1000)}
    capture = statuses["gap_monitor: capture"]
    assert capture.level == Severity.ERROR, capture.message
    assert "capture stopped" in capture.message and "ENOSPC" in capture.message
    assert not [p for p in (tmp_path / "snaps").iterdir()]  # nothing complete-looking, no temp left
    # Monitoring goes on: a stall is still seen and reported.
    rig.stalled.add("/imu")
    rig.run(2.0)
    assert any(e.kind == "stream_state" and e.severity == Severity.STALE for e in rig.events)
    assert statuses["gap_monitor: /imu"].level == Severity.OK


def test_unset_header_stamps_still_give_features_at_the_configured_rate():
    params = {"cameras": {"cam": {"topic": "/cam", "rate_hz": 20.0}}, "capture": {"enabled": False}}
    monitor = Monitor(config_from_parameters(params), 1_000 * NS)
    for k in range(40):  # 2 s at 20 Hz, every stamp zero
        monitor.on_message("/cam", 1_000 * NS + k * NS // 20, image_bytes(0, "cam"))
    assert monitor.feed is not None and monitor.feed.samples["/cam"] == 10  # 5 Hz over 2 s


def noisy_imu_bytes(stamp_ns: int, rng: np.random.Generator) -> bytes:
    msg = Imu(
        header=header(stamp_ns, "imu"),
        orientation=Quaternion(x=0.0, y=0.0, z=0.0, w=1.0),
        orientation_covariance=np.zeros(9),
        angular_velocity=Vector3(*rng.normal(0.0, 0.05, 3)),
        angular_velocity_covariance=np.zeros(9),
        linear_acceleration=Vector3(*(rng.normal(0.0, 0.3, 3) + np.array([0.0, 0.0, 9.81]))),
        linear_acceleration_covariance=np.zeros(9),
    )
    return bytes(STORE.serialize_cdr(msg, "sensor_msgs/msg/Imu"))


def test_imu_features_come_in_batches_equal_to_message_by_message_and_at_most_a_hop_late() -> None:
    from gap_monitor.core.conditions.stream import StreamConditions

    config = config_from_parameters({"imus": {"imu": {"topic": "/imu", "rate_hz": 200.0}}})
    t0 = 1_000 * NS
    monitor = Monitor(config, t0)
    assert monitor.feed is not None
    reference = StreamConditions("imu", "sensor_msgs/msg/Imu", monitor.feed.settings)
    rng = np.random.default_rng(3)
    hop_ns = int(config.conditions.hop_s * NS)
    expected: list[tuple[int, dict[str, float]]] = []
    for i in range(1000):  # 5 s at 200 Hz
        stamp = t0 + i * 5_000_000
        data = noisy_imu_bytes(stamp, rng)
        monitor.on_message("/imu", stamp + 1_000_000, data)
        features = reference.on_message(stamp, data)
        if features is not None:
            expected.append((stamp, features))
        # Whatever was due a hop ago has reached the monitor without a check() to flush it.
        due = [f for t, f in expected if t <= stamp - hop_ns]
        if due:
            assert monitor.latest_features["/imu"] in [f for _, f in expected]
            assert [f for _, f in expected].index(monitor.latest_features["/imu"]) >= len(due) - 1
    monitor.check(t0 + 1000 * 5_000_000)
    assert len(expected) > 15
    assert monitor.latest_features["/imu"] == expected[-1][1]
    assert monitor.feed.samples["/imu"] == len(expected)


def test_each_analyser_runs_with_the_settings_its_config_section_builds(tmp_path):
    params = {**PARAMS, "timing": {"window_s": 4.0, "skew_window_s": 1.0},
              "conditions": {"image_rate_hz": 10.0, "window_s": 0.5, "hop_s": 0.1},
              "motion_offset": {"camera": "/color", "imu": "/imu", "window_s": 15.0}}
    config = config_from_parameters(params)
    m = Monitor(config, 1_000 * NS, output_dir=tmp_path / "snaps")
    assert m.timing is not None and m.timing.settings == config.timing.timing_settings()
    [pair] = m.skew.pairs
    assert (pair.settings, pair.limits) == (config.timing.skew_settings(), config.skew_pairs[0].skew_limits())
    assert m.feed is not None and m.feed.settings == config.conditions.feature_settings()
    assert m.motion is not None and m.motion.settings == config.motion_offset.estimator_settings()


def test_every_capture_refused_is_an_event_with_its_reason(tmp_path):
    capture: dict[str, float] = {"pre_s": 2.0, "post_s": 0.0, "cooldown_s": 30.0, "min_free_bytes": 0}
    params = {**PARAMS, "capture": capture}
    monitor = Monitor(config_from_parameters(params), 1_000 * NS, output_dir=tmp_path / "snaps")
    results = [monitor.capture("manual", "operator", "test", 1_000 * NS + k) for k in range(26)]
    assert results[0] is not None and results[0].accepted
    assert all(r is not None and r.outcome == "cooldown" for r in results[1:])
    events = [e for e in monitor.check(1_000 * NS + 100) if e.kind == "snapshot"]
    assert [e.details["outcome"] for e in events] == ["started"] + ["cooldown"] * 25
    assert all("cooldown_s 30" in e.details["why"] for e in events[1:])
    assert monitor.writer is not None and monitor.writer.status().triggers_rejected == 25
    monitor.close(1_001 * NS)


def test_writer_notices_become_snapshot_events(tmp_path):
    leftover = tmp_path / "snaps" / "20261121T053012Z_skew.tmp-abc123"
    leftover.mkdir(parents=True)
    (leftover / "partial_0.mcap").write_bytes(b"\x89MCAP0\r\n")
    monitor = Monitor(config_from_parameters(PARAMS), 1_000 * NS, output_dir=tmp_path / "snaps")
    (lost,) = [e for e in monitor.check(1_000 * NS) if e.kind == "snapshot"]
    assert lost.details["outcome"] == "lost" and lost.severity == Severity.WARN
    assert leftover.name in lost.reason and "no metadata.yaml" in lost.reason
    assert not leftover.exists()
    monitor.close(1_000 * NS)
