"""Live: the simulated rig and the monitor node over real DDS (own domain per test)."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_helpers import REPO, spin_until
from sensor_msgs.msg import Image, Imu
from std_msgs.msg import String

from gap_monitor.core.config import CaptureConfig, load_config
from gap_monitor.core.events import Event, Severity
from gap_monitor.core.io.cdr import header_stamp_ns
from gap_monitor.ros import runtime
from gap_monitor.ros.convert import message_class
from gap_monitor.ros.monitor_node import MonitorNode
from gap_monitor.sim.rig import DEFAULT_TOPICS, MSG_TYPES, RigSettings

pytestmark = [pytest.mark.ros, pytest.mark.slow]
NS = 1_000_000_000
CONFIG = REPO / "config" / "monitor.yaml"


def stamp_of(msg: Image) -> int:
    return msg.header.stamp.sec * NS + msg.header.stamp.nanosec


def write_scenario(tmp_path: Path, faults: list[dict[str, Any]], duration: float) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump({"name": "test", "duration_s": duration, "seed": 3, "faults": faults}))
    return path


class Recorder(Node):
    """Raw subscriptions (matching the sim's QoS) that keep receipt times and header stamps."""

    def __init__(self, context, topics: dict[str, str]) -> None:
        super().__init__("recorder", context=context)
        self.receipts: dict[str, list[tuple[int, int | None]]] = defaultdict(list)
        for stream, topic in topics.items():
            qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT)
            if stream in ("camera", "depth", "joints"):
                qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
            self.create_subscription(
                message_class(MSG_TYPES[stream]),
                topic,
                lambda data, s=stream: self.receipts[s].append((time.monotonic_ns(), header_stamp_ns(data))),
                qos,
                raw=True,
            )


def test_sim_publishes_each_topic_at_its_rate(context, spawn, tmp_path):
    recorder = Recorder(context, DEFAULT_TOPICS)
    executor = runtime.make_executor(context)
    executor.add_node(recorder)
    spawn("gap_monitor.ros.sim_node", "--duration", "8")
    assert spin_until(executor, lambda: all(recorder.receipts[s] for s in DEFAULT_TOPICS), 15.0)
    t_start = time.monotonic_ns() + 1 * NS  # let discovery and reliable matching settle
    spin_until(executor, lambda: time.monotonic_ns() > t_start + 4 * NS, 10.0)
    settings = RigSettings()
    for stream in DEFAULT_TOPICS:
        n = sum(1 for t, _ in recorder.receipts[stream] if t_start <= t < t_start + 4 * NS)
        rate = n / 4.0
        assert rate == pytest.approx(settings.rate(stream), rel=0.10), f"{stream}: {rate} Hz"
    # Header stamps advance at the nominal period (hardware-triggered rig).
    imu_stamps = [s for _, s in recorder.receipts["imu"] if s is not None]
    periods = [b - a for a, b in itertools.pairwise(imu_stamps) if b > a]
    assert sorted(periods)[len(periods) // 2] == pytest.approx(NS / 400, abs=1000)


class DiagnosticsWatcher(Node):
    def __init__(self, context) -> None:
        super().__init__("diag_watcher", context=context)
        self.levels: dict[str, list[tuple[int, int]]] = defaultdict(list)
        self.events: list[Event] = []
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        events_qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.create_subscription(
            String, "/gap_monitor/events", lambda m: self.events.append(Event.from_json(m.data)), events_qos
        )

    def _on_diag(self, msg: DiagnosticArray) -> None:
        now = time.time_ns()
        for status in msg.status:
            self.levels[status.name].append((now, status.level[0]))


def test_monitor_reports_ok_then_stale_within_2s_then_ok(context, spawn, tmp_path):
    # Receive health alone: snapshot writing shares this process's CPU with the test's own listeners.
    config = replace(load_config(CONFIG), capture=CaptureConfig(enabled=False))
    monitor = MonitorNode(config, output_dir=tmp_path / "snapshots", context=context)
    watcher = DiagnosticsWatcher(context)
    imu_stamps: list[int] = []
    watcher.create_subscription(
        Imu,
        "/imu/data",
        lambda m: imu_stamps.append(m.header.stamp.sec * NS + m.header.stamp.nanosec),
        QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT),
    )
    executor = runtime.make_executor(context)
    executor.add_node(monitor)
    executor.add_node(watcher)
    scenario = write_scenario(
        tmp_path, [{"kind": "stall", "stream": "imu", "start_s": 5.0, "duration_s": 3.0}], 12
    )
    spawn("gap_monitor.ros.sim_node", "--scenario", str(scenario), "--duration", "12")
    names = [f"gap_monitor: {s.topic}" for s in config.streams]

    def all_ok() -> bool:
        return all(watcher.levels[n] and watcher.levels[n][-1][1] == Severity.OK for n in names)

    assert spin_until(executor, all_ok, 10.0), {n: watcher.levels[n][-3:] for n in names}
    imu = "gap_monitor: /imu/data"
    assert spin_until(executor, lambda: watcher.levels[imu][-1][1] == Severity.STALE, 10.0)
    stale_at = next(t for t, lvl in watcher.levels[imu] if lvl == Severity.STALE)
    assert spin_until(executor, lambda: watcher.levels[imu][-1][1] == Severity.OK, 8.0)
    ok_again_at = watcher.levels[imu][-1][0]
    # Stall start and end from the header stamps around the gap (stamps are wall-clock times).
    gaps = [(a, b) for a, b in itertools.pairwise(imu_stamps) if b - a > NS]
    assert len(gaps) == 1
    stall_start, stall_end = gaps[0][0] + NS // 400, gaps[0][1]
    assert 0 < stale_at - stall_start <= 2 * NS
    assert 0 < ok_again_at - stall_end <= 2 * NS
    # The other streams stayed OK through the stall; the state changes went out as events.
    for n in names:
        if n != imu:
            recent = [lvl for t, lvl in watcher.levels[n] if stall_start <= t <= stall_end]
            assert recent and set(recent) == {Severity.OK}, n
    imu_events = [e for e in watcher.events if e.source == "/imu/data" and e.kind == "stream_state"]
    assert [e.severity for e in imu_events][-2:] == [Severity.STALE, Severity.OK]
    assert monitor.internal_errors == 0


def test_subscription_follows_the_publishers_qos(context, tmp_path):
    config = load_config(CONFIG)
    monitor = MonitorNode(config, output_dir=tmp_path / "snapshots", context=context)
    pub_node = Node("late_publisher", context=context)
    executor = runtime.make_executor(context)
    executor.add_node(monitor)
    stream = monitor.subscriptions_by_topic["/imu/data"]
    assert stream.qos.reliability == ReliabilityPolicy.BEST_EFFORT  # nobody publishes yet: match anything
    pub = pub_node.create_publisher(
        Imu, "/imu/data", QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    )
    assert spin_until(executor, lambda: stream.qos.reliability == ReliabilityPolicy.RELIABLE, 5.0)
    pub_node.destroy_publisher(pub)
    pub_node.create_publisher(
        Imu, "/imu/data", QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
    )
    assert spin_until(executor, lambda: stream.qos.reliability == ReliabilityPolicy.BEST_EFFORT, 5.0)


def test_node_refuses_to_start_on_bad_config(domain_id):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gap_monitor.ros.monitor_node",
            "--ros-args",
            "-p",
            "imus.imu.topic:=/imu",
            "-p",
            "imus.imu.rate_hz:=-5.0",
            "-p",
            "health.stale_timeout:=1.0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 2
    assert "imus.imu.rate_hz: -5.0: a number in (0, 100000]" in result.stderr
    assert "health.stale_timeout: 1.0: unknown key" in result.stderr


@pytest.mark.parametrize(
    ("ros_args", "expected"),
    [
        (["--params-file", "/bin/ls"], "not a text (UTF-8) file"),  # before rclpy: no RCLError
        (["--params-file", "/no/such/params.yaml"], "cannot read"),
        ([], "streams: none configured"),  # `ros2 run gap_monitor monitor` without a params file
    ],
)
def test_node_refuses_to_start_without_usable_params(domain_id, ros_args, expected):
    result = subprocess.run(
        [sys.executable, "-m", "gap_monitor.ros.monitor_node", "--ros-args", *ros_args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 2
    assert expected in result.stderr and "Traceback" not in result.stderr


def test_scripted_stamp_offset_raises_skew_event_within_3s(context, spawn, tmp_path):
    config = replace(load_config(CONFIG), capture=CaptureConfig(enabled=False))
    monitor = MonitorNode(config, context=context)
    watcher = DiagnosticsWatcher(context)
    color_stamps: set[int] = set()
    depth_arrivals: list[tuple[int, int]] = []
    reliable = QoSProfile(depth=30, reliability=ReliabilityPolicy.RELIABLE)
    watcher.create_subscription(
        Image, "/camera/color/image_raw", lambda m: color_stamps.add(stamp_of(m)), reliable
    )
    watcher.create_subscription(
        Image,
        "/camera/depth/image_rect_raw",
        lambda m: depth_arrivals.append((time.time_ns(), stamp_of(m))),
        reliable,
    )
    executor = runtime.make_executor(context)
    executor.add_node(monitor)
    executor.add_node(watcher)
    fault = {"kind": "stamp_offset", "stream": "depth", "start_s": 5.0, "duration_s": 6.0, "offset_ms": 8.0}
    scenario = write_scenario(tmp_path, [fault], 12)
    spawn(
        "gap_monitor.ros.sim_node",
        "--scenario",
        str(scenario),
        "--duration",
        "12",
        "--width",
        "320",
        "--height",
        "240",
    )

    def skew_events() -> list[Event]:
        return [e for e in watcher.events if e.kind == "skew" and e.severity >= Severity.WARN]

    assert spin_until(executor, lambda: bool(skew_events()), 15.0), [e.reason for e in watcher.events]
    onset = next(
        t for t, stamp in depth_arrivals if stamp not in color_stamps and stamp - 8_000_000 in color_stamps
    )
    event = skew_events()[0]
    assert 0 < event.time_ns - onset <= 3 * NS
    assert "+8.0 ms" in event.reason or "-8.0 ms" in event.reason


def test_node_refuses_to_start_on_unwritable_snapshot_dir(domain_id, tmp_path):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the snapshot folder should be")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gap_monitor.ros.monitor_node",
            "--ros-args",
            "--params-file",
            str(CONFIG),
            "-p",
            f"capture.output_dir:={blocker / 'snaps'}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 2
    assert "refusing to start" in result.stderr and str(blocker / "snaps") in result.stderr
    assert "Traceback" not in result.stderr


def test_receipt_times_are_the_node_clock_with_and_without_sim_time(context, tmp_path):
    """Receipt times come from the system clock directly unless sim time is on; switching
    use_sim_time at run time must switch them to /clock before the next message."""
    from rclpy.parameter import Parameter
    from rosgraph_msgs.msg import Clock

    config = load_config(CONFIG)
    monitor = MonitorNode(config, output_dir=tmp_path / "snapshots", context=context)
    other = Node("clock_and_imu", context=context)
    executor = runtime.make_executor(context)
    executor.add_node(monitor)
    executor.add_node(other)
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    imu = other.create_publisher(Imu, "/imu/data", reliable)
    clock = other.create_publisher(Clock, "/clock", 10)
    health = monitor.monitor.health["/imu/data"]

    def receipt_after_publishing() -> int:
        count = health.count
        assert spin_until(executor, lambda: imu.get_subscription_count() > 0, 5.0)
        imu.publish(Imu())
        assert spin_until(executor, lambda: health.count > count, 5.0)
        assert health.last_ns is not None
        return health.last_ns

    before = time.time_ns()
    wall = receipt_after_publishing()
    assert before <= wall <= time.time_ns()

    monitor.set_parameters([Parameter("use_sim_time", value=True)])
    sim_ns = 42 * NS + 5
    msg = Clock()
    msg.clock.sec, msg.clock.nanosec = 42, 5

    def clock_arrived() -> bool:
        clock.publish(msg)
        return monitor.get_clock().now().nanoseconds == sim_ns

    assert spin_until(executor, clock_arrived, 5.0)
    assert receipt_after_publishing() == sim_ns

    monitor.set_parameters([Parameter("use_sim_time", value=False)])
    before = time.time_ns()
    assert before <= receipt_after_publishing() <= time.time_ns()


def test_one_blas_thread_limits_numpys_openblas():
    import ctypes

    from gap_monitor.ros.monitor_node import one_blas_thread

    maps = Path("/proc/self/maps").read_text() if Path("/proc/self/maps").exists() else ""
    paths = {line.split(None, 5)[-1] for line in maps.splitlines() if "openblas" in line.lower()}
    if not paths:
        pytest.skip("numpy here is not linked against OpenBLAS")
    assert one_blas_thread()
    getters = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
               "openblas_get_num_threads64_", "openblas_get_num_threads")
    lib = ctypes.CDLL(sorted(p for p in paths if p.startswith("/"))[0])
    getter = next(getattr(lib, g) for g in getters if hasattr(lib, g))
    assert getter() == 1
