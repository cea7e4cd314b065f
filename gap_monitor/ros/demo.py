"""The demo: the simulated rig with a scripted scenario, the monitor, and a live view of both.

Starts `sim` and `monitor` as separate processes (as on a robot), watches /diagnostics and the
monitor's events from this process, prints one status line a second and a summary at the end.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from gap_monitor.core.config import load_config
from gap_monitor.core.events import Event, Severity
from gap_monitor.offline.extraction import build_profile
from gap_monitor.offline.report import ReportSettings, build_report
from gap_monitor.render.report_html import write_report
from gap_monitor.ros import runtime
from gap_monitor.sim.record import record_sim
from gap_monitor.sim.rig import RigSettings
from gap_monitor.sim.scenario import Scenario, resolve_scenario

LEVEL_NAMES = {int(s): s.name for s in Severity}


@dataclass
class StreamView:
    name: str
    level: str = "-"
    rate: str = ""
    seconds_in: Counter[str] = field(default_factory=Counter)


class DemoObserver(Node):
    """Listens to what the monitor publishes; never publishes anything itself."""

    def __init__(self, prefix: str, streams: dict[str, str]) -> None:
        super().__init__("gap_monitor_demo_view")
        self.prefix = prefix
        self.views = {topic: StreamView(name) for topic, name in streams.items()}
        self.events: list[Event] = []
        self.diagnostics_seen = 0
        events_qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=100,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self.create_subscription(String, "/gap_monitor/events", self._on_event, events_qos)
        # The demo plays the robot's task stack here: it reports one failure (the monitor only listens).
        self._failure_pub = self.create_publisher(String, FAILURE_TOPIC, 10)

    def report_failure(self, reason: str) -> None:
        self._failure_pub.publish(String(data=reason))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        self.diagnostics_seen += 1
        head = f"{self.prefix}: "
        for status in msg.status:
            topic = status.name[len(head) :] if status.name.startswith(head) else None
            view = self.views.get(topic or "")
            if view is None:
                continue
            level = status.level[0] if isinstance(status.level, bytes) else int(status.level)
            view.level = LEVEL_NAMES.get(level, str(level))
            rate = {kv.key: kv.value for kv in status.values}.get("rate_hz", "")
            view.rate = f"{float(rate):.0f}Hz" if rate else ""
            view.seconds_in[view.level] += 1

    def _on_event(self, msg: String) -> None:
        try:
            self.events.append(Event.from_json(msg.data))
        except (ValueError, KeyError):
            self.get_logger().warning(f"unreadable event: {msg.data[:200]}")

    def status_line(self) -> str:
        return " | ".join(f"{v.name} {v.level} {v.rate}".rstrip() for v in self.views.values())


def _spawn(module: str, args: list[str], log: TextIO) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", module, *args], stdout=log, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen[bytes], name: str, out: TextIO) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        print(f"{name} did not stop within 10 s of SIGTERM; killing it", file=out)
        proc.kill()
        return proc.wait()


TRAINING_S = 90.0
FAILURE_TOPIC = "/robot/failure"
FAILURE_AT_S = 27.0


def build_demo_profile(log_dir: Path, scenario: Scenario, out: TextIO) -> Path:
    """Training data first: a clean recording of the same rig and scene (no faults, another stretch
    of time), then a profile built from it with the same feature code the monitor runs live."""
    recording = log_dir / "training_recording"
    profile_path = log_dir / "training_profile.yaml"
    # Images at the monitor's feature rate are all the profile uses; this keeps the recording small.
    settings = RigSettings(camera_rate_hz=5.0, depth_rate_hz=5.0)
    clean = replace(scenario, name=f"{scenario.name}_clean", faults=())
    t0 = time.monotonic()
    record_sim(recording, clean, TRAINING_S, settings, start_s=200.0)
    print(
        f"training data: {TRAINING_S:.0f} s of the clean rig recorded in {time.monotonic() - t0:.1f} s "
        f"({recording})",
        file=out,
        flush=True,
    )
    t0 = time.monotonic()
    profile = build_profile([recording])
    profile.save(profile_path)
    shutil.rmtree(recording, ignore_errors=True)
    alarms = ", ".join(
        f"{name} {s.modality} (threshold {s.alarm.threshold:.1f})"
        for name, s in profile.streams.items()
        if s.alarm
    )
    print(
        f"training profile: {profile_path} in {time.monotonic() - t0:.1f} s; calibrated alarms: {alarms}",
        file=out,
        flush=True,
    )
    return profile_path


def write_demo_report(log_dir: Path, scenario: Scenario, duration_s: float, out: TextIO) -> Path:
    """The deployment report for the run: the robot's log of the same scenario (the rig recorded
    offline, images at the feature rate) against the training profile, with the run's snapshots."""
    recording = log_dir / "deployment_recording"
    settings = RigSettings(camera_rate_hz=5.0, depth_rate_hz=5.0)
    t0 = time.monotonic()
    record_sim(recording, scenario, duration_s, settings)
    report = build_report(
        log_dir / "training_profile.yaml",
        [recording],
        snapshots=log_dir / "snapshots",
        settings=ReportSettings(audit_motion=False),
    )
    html, _ = write_report(report, log_dir / "report.html")
    shutil.rmtree(recording, ignore_errors=True)
    print(f"\ndeployment report ({time.monotonic() - t0:.1f} s): {html}", file=out)
    for target in report.targets[:5]:
        print(f"  collect: {target.text()}", file=out)
    return html


def run_demo(
    params_file: str,
    scenario_name: str,
    duration_s: float,
    log_dir: Path,
    out: TextIO = sys.stdout,
) -> int:
    config = load_config(params_file)
    scenario = resolve_scenario(scenario_name)
    log_dir.mkdir(parents=True, exist_ok=True)
    profile_path = build_demo_profile(log_dir, scenario, out)
    print(
        f"gap_monitor demo: scenario {scenario.name!r} for {duration_s:.0f} s "
        f"(ROS_DOMAIN_ID={os.environ.get('ROS_DOMAIN_ID', '0')}, logs in {log_dir})",
        file=out,
    )
    for f in scenario.faults:
        print(f"  scripted: {f.kind} on {f.stream} at {f.start_s:g}-{f.end_s:g} s {f.params or ''}", file=out)
    if duration_s > FAILURE_AT_S:
        print(
            f"  scripted: the robot reports a task failure on {FAILURE_TOPIC} at {FAILURE_AT_S:g} s", file=out
        )
    runtime.init(None)
    observer = DemoObserver(config.diagnostic_prefix, {s.topic: s.name for s in config.streams})
    executor = runtime.make_executor()
    executor.add_node(observer)
    stop = runtime.StopFlag()
    stop.install()
    with (log_dir / "monitor.log").open("w") as mlog, (log_dir / "sim.log").open("w") as slog:
        snapshots = log_dir / "snapshots"
        overrides = {
            "capture.output_dir": snapshots,
            "conditions.profile": profile_path,
            # Short windows and no cooldown, so each of the demo's events leaves its own snapshot.
            "capture.pre_s": 3.0,
            "capture.post_s": 2.0,
            "capture.cooldown_s": 0.0,
            "triggers.failure_topic.topic": FAILURE_TOPIC,
            "triggers.failure_topic.type": "std_msgs/msg/String",
        }
        args = ["--ros-args", "--params-file", params_file]
        for key, value in overrides.items():
            args += ["-p", f"{key}:={value}"]
        monitor = _spawn("gap_monitor.ros.monitor_node", args, mlog)
        # Let the monitor come up first so it sees the whole scenario.
        time.sleep(1.0)
        sim = _spawn(
            "gap_monitor.ros.sim_node",
            ["--scenario", scenario_name, "--duration", f"{duration_s + 2:g}"],
            slog,
        )
        start = time.monotonic()
        next_line = start + 1.0
        failure_sent = False
        try:
            while not stop.is_set() and time.monotonic() - start < duration_s:
                executor.spin_once(timeout_sec=0.05)
                if not failure_sent and time.monotonic() - start >= FAILURE_AT_S:
                    observer.report_failure("demo: the gripper dropped the part")
                    failure_sent = True
                if time.monotonic() >= next_line:
                    print(f"[{next_line - start:5.1f}s] {observer.status_line()}", file=out, flush=True)
                    next_line += 1.0
                if monitor.poll() is not None:
                    print(f"monitor exited early with code {monitor.returncode}; see {log_dir}", file=out)
                    break
        finally:
            sim_rc = _stop(sim, "sim", out)
            monitor_rc = _stop(monitor, "monitor", out)
            # Collect the events the monitor sent while stopping.
            for _ in range(10):
                executor.spin_once(timeout_sec=0.02)
            executor.remove_node(observer)
            observer.destroy_node()
            runtime.shutdown()
    code = _summary(observer, start, monitor_rc, sim_rc, out)
    write_demo_report(log_dir, scenario, duration_s, out)
    return code


def _summary(observer: DemoObserver, start_mono: float, monitor_rc: int, sim_rc: int, out: TextIO) -> int:
    wall_start_ns = time.time_ns() - int((time.monotonic() - start_mono) * 1e9)

    def at(e: Event) -> str:
        return f"{(e.time_ns - wall_start_ns) / 1e9:5.1f}s"

    print("\nsummary (times since the sim started)", file=out)
    by_source: dict[str, list[str]] = defaultdict(list)
    for e in observer.events:
        if e.kind == "stream_state":
            by_source[e.source].append(f"{at(e)} {e.severity.name}")
    for topic, view in observer.views.items():
        seconds = ", ".join(f"{lvl} {n} s" for lvl, n in sorted(view.seconds_in.items()))
        print(f"  {view.name:10s} {topic}: {seconds or 'no diagnostics'}", file=out)
        if by_source.get(topic):
            print(f"  {'':10s} state changes: {'; '.join(by_source[topic])}", file=out)
    findings = [e for e in observer.events if e.kind in ("timing", "skew") and e.severity >= Severity.WARN]
    if findings:
        print("  timing and skew findings:", file=out)
        for e in findings:
            print(f"    {at(e)} {e.severity.name:5s} {e.reason}", file=out)
    novel = [e for e in observer.events if e.kind == "novel_condition"]
    fired = sum(e.severity >= Severity.WARN for e in novel)
    print(f"  novel conditions (against the training profile): {fired}", file=out)
    for e in novel:
        print(f"    {at(e)} {e.severity.name:5s} {e.reason}", file=out)
    for e in observer.events:
        if e.kind in ("failure_topic", "action_aborted", "diagnostics_error", "divergence"):
            print(f"  failure reported: {at(e)} {e.reason}", file=out)
    written = [e for e in observer.events if e.kind == "snapshot_written"]
    print(f"  snapshots written: {len(written)}", file=out)
    paths = [Path(str(e.details.get("path", ""))) for e in written]
    total = sum(f.stat().st_size for p in paths if p.is_dir() for f in p.iterdir())
    if paths:
        where = paths[0].parent
        print(f"    ({total / 1e6:.0f} MB in {where}; open with `ros2 bag info` or Foxglove)", file=out)
    for e in written:
        print(f"    {at(e)} {e.details.get('path', '')}", file=out)
    print(
        f"  events: {len(observer.events)}; /diagnostics messages: {observer.diagnostics_seen}; "
        f"monitor exit {monitor_rc}, sim exit {sim_rc}",
        file=out,
    )
    ok = observer.diagnostics_seen > 0 and monitor_rc == 0 and sim_rc == 0
    return 0 if ok else 1
