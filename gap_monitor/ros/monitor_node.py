"""`monitor`: the gap_monitor node (shadow mode: it publishes diagnostics and events, never commands).

One raw subscription per configured sensor topic, with the QoS its publishers offer, feeding the
core `Monitor` (receive health, header-stamp timing, pairwise skew, ring buffer and snapshots).
Publishes /diagnostics, ~/events and ~/scores (JSON); serves ~/capture (std_srvs/Trigger).
"""

from __future__ import annotations

import ctypes
import json
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType, JumpThreshold
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String
from std_srvs.srv import Trigger

from gap_monitor.core.capture.log_limit import RefusalLog
from gap_monitor.core.capture.policy import OutputDirError
from gap_monitor.core.config import (
    NODE_NAME,
    MonitorConfig,
    change_refusal,
    check_params_files,
    check_startup,
    config_from_parameters,
    unflatten,
)
from gap_monitor.core.diagnostics import StatusReport
from gap_monitor.core.events import Event, Severity
from gap_monitor.core.io.names import status_prefix
from gap_monitor.core.monitor import Monitor
from gap_monitor.core.text import printable
from gap_monitor.core.timing.sim_clock import CLOCK_WATCH_PERIOD_S, SimClockWatch
from gap_monitor.errors import InputError
from gap_monitor.ros import qos, runtime
from gap_monitor.ros.convert import message_class

EVENTS_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=100,
    reliability=ReliabilityPolicy.RELIABLE,
    # Late joiners (a dashboard, the demo) still get the recent events.
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)


@dataclass
class Subscription:
    """The live raw subscription of one topic and the QoS it was made with."""

    topic: str
    msgtype: str
    depth: int = 50
    reliability: str = "auto"
    handle: Any = None
    qos: Any = None
    publishers: int = 0


class MonitorNode(Node):
    """Thin ROS layer: raw messages into the core Monitor; its statuses and events out."""

    def __init__(
        self, config: MonitorConfig | None = None, output_dir: Path | None = None, **node_kwargs: Any
    ) -> None:
        # Parameters come from the params file (declared from its overrides); names it does not
        # declare are refused by rclpy, and changes by `_on_set_parameters`.
        super().__init__(NODE_NAME, automatically_declare_parameters_from_overrides=True, **node_kwargs)
        source = f"{self.get_fully_qualified_name()} parameters"
        self._params_in_use = {name: p.value for name, p in self.get_parameters_by_prefix("").items()}
        if config is None:
            config = config_from_parameters(
                unflatten(self._params_in_use),
                source=source,
                default_prefix=status_prefix(self.get_fully_qualified_name()),
            )
        self.add_on_set_parameters_callback(self._on_set_parameters)
        # No streams, no profile, no usable snapshot folder: refuse, as `check-config` says.
        profile = check_startup(config, output_dir, source)
        self.config = config
        self._clock = self.get_clock()
        # Sim time (use_sim_time) makes the clock read /clock; kept current by the jump callback.
        self._read_clock = self._clock_is_not_the_system_clock()
        self.monitor = Monitor(config, self._now_ns(), output_dir=output_dir, profile=profile)
        self.subscriptions_by_topic = {
            s.topic: Subscription(s.topic, s.msgtype, s.queue_depth, s.reliability) for s in config.streams
        }
        for topic, msgtype in self.monitor.trigger_topics().items():
            self.subscriptions_by_topic.setdefault(topic, Subscription(topic, msgtype, 100))
        # Capture-only topics are subscribed once the graph tells their type.
        latched = set(config.capture.latched_topics)
        self._capture_only = {t: t in latched for t in (*config.capture.extra_topics, *latched)}
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._event_pub = self.create_publisher(String, "~/events", EVENTS_QOS)
        self._scores_pub = self.create_publisher(String, "~/scores", 10)
        self.events_published = 0
        self._refusal_log = RefusalLog()  # every refusal is an event; the log gets a sample
        self.internal_errors = 0
        for sub in self.subscriptions_by_topic.values():
            self._subscribe(sub)
        self.create_service(Trigger, "~/capture", self._on_capture)
        self.create_timer(config.check_period_s, self._check)
        self.create_timer(config.diagnostics_period_s, self._publish_diagnostics)
        # With use_sim_time, the timers above run on /clock: without it they never fire, so a
        # steady-clock timer says why the monitor is silent.
        self._sim_clock = SimClockWatch()
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(CLOCK_WATCH_PERIOD_S, self._watch_sim_clock, clock=steady)
        # Sim time restarting or the wall clock stepping must reset the statistics, not alarm.
        self._jump_handle = self._clock.create_jump_callback(
            JumpThreshold(
                min_forward=Duration(seconds=5), min_backward=Duration(nanoseconds=-1), on_clock_change=True
            ),
            post_callback=self._on_clock_jump,
        )
        names = ", ".join(f"{s.topic} ({s.modality})" for s in config.streams)
        self.get_logger().info(f"shadow mode; monitoring {len(config.streams)} stream(s): {names or 'none'}")
        if self.monitor.writer is not None:
            self.get_logger().info(f"snapshots go to {self.monitor.writer.settings.output_dir}")
        if profile is not None:
            self.get_logger().info(
                f"scoring against profile {config.conditions.profile} ({len(profile.streams)} streams)"
            )

    def _now_ns(self) -> int:
        return int(self._clock.now().nanoseconds)

    def _clock_is_not_the_system_clock(self) -> bool:
        # A ROS-time clock with the override off, and a system-time clock, read the system clock.
        return self._clock.clock_type != ClockType.SYSTEM_TIME and (
            self._clock.clock_type != ClockType.ROS_TIME or bool(self._clock.ros_time_is_active)
        )

    # --- subscriptions ---------------------------------------------------------------------------

    def _subscribe(self, sub: Subscription) -> None:
        offers = [info.qos_profile for info in self.get_publishers_info_by_topic(sub.topic)]
        profile = qos.adapted_qos(offers, sub.depth, sub.reliability)
        sub.publishers = len(offers)
        if sub.handle is not None:
            if qos.same_qos(profile, sub.qos):
                return
            self.destroy_subscription(sub.handle)
            self.get_logger().info(f"{sub.topic}: publishers changed; re-subscribing {qos.describe(profile)}")
            if sub.topic in self.monitor.health:
                # What the old subscription saw (e.g. few best-effort frames) says nothing about the new one.
                self.monitor.restart_stream(sub.topic, self._now_ns(), "re-subscribed")
        on_message = self.monitor.on_message
        topic = sub.topic
        now_ns = self._now_ns
        wall_ns = time.time_ns
        steady_ns = time.monotonic_ns

        def callback(data: bytes) -> None:
            # Without sim time the node's clock reads the system clock: the same value as
            # time.time_ns(), without rclpy building a Time object per message.
            on_message(topic, now_ns() if self._read_clock else wall_ns(), data, steady_ns())

        sub.handle = self.create_subscription(message_class(sub.msgtype), topic, callback, profile, raw=True)
        sub.qos = profile

    # --- periodic checks -------------------------------------------------------------------------

    def _check(self) -> None:
        for sub in self.subscriptions_by_topic.values():
            # A publisher that appears after start gets a matching subscription within one check.
            if sub.reliability == "auto" and self.count_publishers(sub.topic) != sub.publishers:
                self._subscribe(sub)
        for event in self.monitor.check(self._now_ns()):
            self._emit(event)
        scores = self.monitor.scores()
        if scores:
            self._scores_pub.publish(String(data=json.dumps(scores, default=float)))

    def _emit(self, event: Event) -> None:
        self._event_pub.publish(String(data=event.to_json()))
        self.events_published += 1
        line = self._refusal_log.line(event)
        if line is None:
            return
        line = printable(line)  # last line of defence: one event, one log line (idempotent)
        # rclpy ties a severity to each logging call site, so warn and info need separate calls.
        if event.severity >= Severity.WARN:
            self.get_logger().warning(line)
        else:
            self.get_logger().info(line)

    def _on_capture(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        now = self._now_ns()
        result = self.monitor.capture(
            "manual", "manual capture service", self.get_fully_qualified_name(), now
        )
        # The monitor queues a `snapshot` event for every outcome; it goes out with the next check.
        if result is None:
            response.success, response.message = False, "capture is disabled (capture.enabled: false)"
        else:
            response.success = result.accepted
            response.message = result.answer()
        return response

    def _on_set_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        """Refuse a change the monitor would not apply (see `core.config.changes`)."""
        changes = {p.name: p.value for p in parameters}
        why = change_refusal(self._params_in_use, changes, f"{self.get_fully_qualified_name()} parameters")
        if why is not None:
            self.get_logger().warning(f"parameter change refused: {why}")
            return SetParametersResult(successful=False, reason=why)
        return SetParametersResult(successful=True)

    def _watch_sim_clock(self) -> None:
        """While use_sim_time is on and /clock does not advance: a throttled warning and a WARN
        status, published here because the regular timers wait for /clock too."""
        active = self._clock.clock_type == ClockType.ROS_TIME and bool(self._clock.ros_time_is_active)
        note = self._sim_clock.observe(active, self._now_ns(), time.monotonic_ns())
        if note.log is not None:
            if note.waiting:
                self.get_logger().warning(note.log)
            else:
                self.get_logger().info(note.log)
        if note.waiting:
            msg = DiagnosticArray()
            status = self._node_status()
            status.level = bytes([Severity.WARN])
            status.message = note.status
            msg.status = [status]
            self._diag_pub.publish(msg)

    def _on_clock_jump(self, jump: Any) -> None:
        # Sim time switched on or off arrives here too (on_clock_change), before the next message.
        self._read_clock = self._clock_is_not_the_system_clock()
        self.monitor.note_clock_jump(f"ROS clock jump of {jump.delta.nanoseconds / 1e9:+.3f} s")

    def _publish_diagnostics(self) -> None:
        for sub in self.subscriptions_by_topic.values():
            # Publishers may change their QoS without changing their number: re-check now and then.
            if sub.reliability == "auto":
                self._subscribe(sub)
        self._subscribe_capture_only()
        now = self._now_ns()
        qos_in_use = {
            t: f"{qos.describe(s.qos)}; {s.publishers} publisher(s)"
            for t, s in self.subscriptions_by_topic.items()
            if s.qos is not None
        }
        statuses = [self._node_status()] + [_to_ros(r) for r in self.monitor.statuses(now, qos_in_use)]
        msg = DiagnosticArray()
        msg.header.stamp = self._clock.now().to_msg()
        msg.status = statuses
        self._diag_pub.publish(msg)

    def _subscribe_capture_only(self) -> None:
        if not self._capture_only:
            return
        types = dict(self.get_topic_names_and_types())
        for topic, latched in list(self._capture_only.items()):
            if topic in types and topic not in self.subscriptions_by_topic:
                msgtype = types[topic][0]
                self.monitor.add_capture_topic(topic, msgtype, latched=latched)
                sub = Subscription(topic, msgtype, 100)
                self.subscriptions_by_topic[topic] = sub
                self._subscribe(sub)
                del self._capture_only[topic]

    def _node_status(self) -> DiagnosticStatus:
        return DiagnosticStatus(
            level=bytes([Severity.OK]),
            name=f"{self.config.diagnostic_prefix}: monitor",
            message=f"shadow mode; {len(self.config.streams)} stream(s)",
            hardware_id=self.get_fully_qualified_name(),
            values=[
                KeyValue(key="mode", value="shadow"),
                KeyValue(key="streams", value=str(len(self.config.streams))),
                KeyValue(key="events_published", value=str(self.events_published)),
                KeyValue(key="internal_errors", value=str(self.internal_errors)),
            ],
        )

    def close(self) -> None:
        """Write any open snapshot before the node goes away."""
        self.monitor.close(self._now_ns())


def _to_ros(report: StatusReport) -> DiagnosticStatus:
    return DiagnosticStatus(
        level=bytes([report.level]),
        name=report.name,
        message=report.message,
        hardware_id=report.hardware_id,
        values=[KeyValue(key=k, value=v) for k, v in report.values.items()],
    )


# Thread-count setters of the OpenBLAS builds numpy ships (scipy-openblas, 64-bit-int, plain).
_OPENBLAS_SETTERS = (
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)


def one_blas_thread() -> bool:
    """Limit the OpenBLAS that numpy loaded to one thread; False when none is found (other BLAS,
    no /proc). The motion-offset estimate's matrix products on a 2-thread OpenBLAS took ~3x the
    CPU of one thread (idle workers spin), for no gain in wall time at these sizes."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return False
    paths = {line.split(None, 5)[-1] for line in maps.splitlines() if "openblas" in line.lower()}
    for path in sorted(p for p in paths if p.startswith("/")):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _OPENBLAS_SETTERS:
            setter = getattr(lib, name, None)
            if setter is not None:
                setter(ctypes.c_int(1))
                return True
    return False


def params_file_refusal(args: Sequence[str]) -> str | None:
    """Why the node must not start on its `--params-file`s, checked before rclpy.init: rcl reads
    them there and dies on a bad one with an RCLError traceback. None when they may be read."""
    try:
        check_params_files(args, NODE_NAME)
    except InputError as exc:
        return f"monitor: refusing to start: {exc}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv if argv is None else argv)
    refusal = params_file_refusal(args)
    if refusal is not None:
        print(refusal, file=sys.stderr)
        return 2
    # One OpenCV thread: the per-frame work is small, and a thread pool on a robot's few cores
    # costs more in hand-offs than it saves, and competes with the robot's own processes.
    # One BLAS thread for the same reason.
    cv2.setNumThreads(1)
    one_blas_thread()
    stop = runtime.StopFlag()
    stop.install()
    runtime.init(args)
    try:
        node = MonitorNode()
    except (InputError, OutputDirError) as exc:  # a bad config or profile, an unwritable folder
        print(f"monitor: refusing to start: {exc}", file=sys.stderr)
        runtime.shutdown()
        return 2
    executor = runtime.make_executor()
    executor.add_node(node)

    def on_error() -> None:  # a bug in one callback must not take the monitor down
        node.internal_errors += 1
        node.get_logger().error(f"callback failed:\n{traceback.format_exc()}")

    try:
        runtime.spin(executor, stop, on_error)
    finally:
        node.get_logger().info("shutting down")
        node.close()
        executor.remove_node(node)
        node.destroy_node()
        runtime.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
