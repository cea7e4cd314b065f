"""`monitor`: the gap_monitor node (shadow mode: it publishes diagnostics and events, never commands).

One raw subscription per configured sensor topic, with the QoS its publishers offer; per-topic
receive health on /diagnostics; state changes on ~/events.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from gap_monitor.core.config import (
    ConfigError,
    MonitorConfig,
    StreamConfig,
    config_from_parameters,
    unflatten,
)
from gap_monitor.core.events import Event, Severity
from gap_monitor.core.stream_health import HealthReport, StreamHealth
from gap_monitor.ros import qos, runtime
from gap_monitor.ros.convert import message_class

NODE_NAME = "gap_monitor"
EVENTS_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=100,
    reliability=ReliabilityPolicy.RELIABLE,
    # Late joiners (a dashboard, the demo) still get the recent events.
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)


@dataclass
class MonitoredStream:
    config: StreamConfig
    health: StreamHealth
    subscription: Any = None
    qos: Any = None
    last_level: Severity | None = None
    last_report: HealthReport | None = None
    publishers: int = 0


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "" if value is None else format(value, spec)


class MonitorNode(Node):
    """Thin ROS layer: messages in, core statistics, diagnostics and events out."""

    def __init__(self, config: MonitorConfig | None = None, **node_kwargs: Any) -> None:
        super().__init__(
            NODE_NAME,
            allow_undeclared_parameters=True,
            automatically_declare_parameters_from_overrides=True,
            **node_kwargs,
        )
        if config is None:
            params = {name: p.value for name, p in self.get_parameters_by_prefix("").items()}
            config = config_from_parameters(
                unflatten(params), source=f"{self.get_fully_qualified_name()} parameters"
            )
        self.config = config
        self._clock = self.get_clock()
        now = self._now_ns()
        self.streams: dict[str, MonitoredStream] = {}
        for sc in config.streams:
            health = StreamHealth(
                sc.rate_hz, sc.rate_tolerance, sc.stale_timeout_s, config.health.rate_window_s, started_ns=now
            )
            self.streams[sc.name] = MonitoredStream(sc, health)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._event_pub = self.create_publisher(String, "~/events", EVENTS_QOS)
        self.events_published = 0
        self.internal_errors = 0
        for stream in self.streams.values():
            self._subscribe(stream)
        self.create_timer(config.check_period_s, self._check)
        self.create_timer(config.diagnostics_period_s, self._publish_diagnostics)
        names = ", ".join(f"{s.config.topic} ({s.config.modality})" for s in self.streams.values())
        self.get_logger().info(f"shadow mode; monitoring {len(self.streams)} stream(s): {names or 'none'}")

    def _now_ns(self) -> int:
        return int(self._clock.now().nanoseconds)

    # --- subscriptions ---------------------------------------------------------------------------

    def _desired_qos(self, sc: StreamConfig) -> Any:
        offers = [info.qos_profile for info in self.get_publishers_info_by_topic(sc.topic)]
        return qos.adapted_qos(offers, sc.queue_depth, sc.reliability)

    def _subscribe(self, stream: MonitoredStream) -> None:
        sc = stream.config
        profile = self._desired_qos(sc)
        if stream.subscription is not None:
            if qos.same_qos(profile, stream.qos):
                return
            self.destroy_subscription(stream.subscription)
            self.get_logger().info(f"{sc.topic}: publishers changed; re-subscribing {qos.describe(profile)}")
            # What the old subscription saw (e.g. few best-effort frames) says nothing about the new one.
            stream.health.restart(self._now_ns())
        health = stream.health

        def on_message(data: bytes) -> None:
            health.observe(self._now_ns(), len(data))

        stream.subscription = self.create_subscription(
            message_class(sc.msgtype), sc.topic, on_message, profile, raw=True
        )
        stream.qos = profile
        stream.publishers = self.count_publishers(sc.topic)

    # --- periodic checks -------------------------------------------------------------------------

    def _check(self) -> None:
        for stream in self.streams.values():
            # A publisher that appears after start gets a matching subscription within one check.
            if (
                stream.config.reliability == "auto"
                and self.count_publishers(stream.config.topic) != stream.publishers
            ):
                self._subscribe(stream)
        now = self._now_ns()
        for stream in self.streams.values():
            report = stream.health.report(now)
            stream.last_report = report
            if report.level != stream.last_level:
                if stream.last_level is not None or report.level != Severity.OK:
                    self._emit(
                        Event(
                            kind="stream_state",
                            source=stream.config.topic,
                            severity=report.level,
                            reason=f"{stream.config.topic}: {report.level.name} ({report.message})",
                            time_ns=now,
                            details={"previous": stream.last_level.name if stream.last_level else None},
                        )
                    )
                stream.last_level = report.level

    def _emit(self, event: Event) -> None:
        self._event_pub.publish(String(data=event.to_json()))
        self.events_published += 1
        # rclpy ties a severity to each logging call site, so warn and info need separate calls.
        if event.severity >= Severity.WARN:
            self.get_logger().warning(event.reason)
        else:
            self.get_logger().info(event.reason)

    def _publish_diagnostics(self) -> None:
        now = self._now_ns()
        for stream in self.streams.values():
            # Publishers may appear after start (or change): keep matching what they offer.
            if stream.config.reliability == "auto":
                self._subscribe(stream)
        msg = DiagnosticArray()
        msg.header.stamp = self._clock.now().to_msg()
        msg.status = [self._node_status(now)] + [self._stream_status(s, now) for s in self.streams.values()]
        self._diag_pub.publish(msg)

    def _node_status(self, now_ns: int) -> DiagnosticStatus:
        worst = max((s.last_level or Severity.OK for s in self.streams.values()), default=Severity.OK)
        return DiagnosticStatus(
            level=bytes([Severity.OK]),
            name=f"{self.config.diagnostic_prefix}: monitor",
            message=f"shadow mode; {len(self.streams)} stream(s); worst stream {worst.name}",
            hardware_id=self.get_fully_qualified_name(),
            values=[
                KeyValue(key="mode", value="shadow"),
                KeyValue(key="streams", value=str(len(self.streams))),
                KeyValue(key="events_published", value=str(self.events_published)),
                KeyValue(key="internal_errors", value=str(self.internal_errors)),
            ],
        )

    def _stream_status(self, stream: MonitoredStream, now_ns: int) -> DiagnosticStatus:
        report = stream.last_report or stream.health.report(now_ns)
        sc = stream.config
        values = {
            "modality": sc.modality,
            "type": sc.msgtype,
            "count": str(report.count),
            "rate_hz": _fmt(report.rate_hz),
            "expected_rate_hz": f"{sc.rate_hz:g}",
            "since_last_s": _fmt(report.since_last_s, ".3f"),
            "bytes_per_s": _fmt(report.bytes_per_s, ".0f"),
            "qos": qos.describe(stream.qos) if stream.qos is not None else "",
            "publishers": str(self.count_publishers(sc.topic)),
        }
        return DiagnosticStatus(
            level=bytes([report.level]),
            name=f"{self.config.diagnostic_prefix}: {sc.topic}",
            message=report.message,
            hardware_id=sc.name,
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv if argv is None else argv)
    stop = runtime.StopFlag()
    stop.install()
    runtime.init(args)
    try:
        node = MonitorNode()
    except ConfigError as exc:
        print(f"monitor: refusing to start: {exc}", file=sys.stderr)
        runtime.shutdown()
        return 2
    executor = runtime.make_executor()
    executor.add_node(node)
    try:
        while not stop.is_set():
            try:
                executor.spin_once(timeout_sec=0.1)
            except Exception:  # a bug in one callback must not take the monitor down
                node.internal_errors += 1
                node.get_logger().error(f"callback failed:\n{traceback.format_exc()}")
    finally:
        node.get_logger().info("shutting down")
        executor.remove_node(node)
        node.destroy_node()
        runtime.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
