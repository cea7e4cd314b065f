"""The monitor's whole analysis, without ROS: raw messages in, statuses and events out.

The node feeds `on_message` from its subscriptions and calls `check` periodically; `gap-monitor
replay` feeds the same class from a recording. Per stream it keeps receive health, header-stamp
timing, pairwise skew and the ring buffer; events that the capture policy names start snapshots.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from gap_monitor import __version__
from gap_monitor.core.capture.policy import CaptureNotice, TriggerResult, check_ring_buffer
from gap_monitor.core.capture.ring_buffer import RingBuffer
from gap_monitor.core.capture.triggers import CAPTURE_KINDS, TriggerSet, build_triggers
from gap_monitor.core.capture.writer import SnapshotWriter
from gap_monitor.core.conditions.feed import FeatureFeed, FeedStream
from gap_monitor.core.conditions.profile import Profile
from gap_monitor.core.conditions.scoring import ConditionMonitor, StreamScore, bounded_features
from gap_monitor.core.config import MonitorConfig, StreamConfig
from gap_monitor.core.diagnostics import (
    StatusReport,
    build_statuses,
    motion_offset_level,
    motion_offset_name,
    novelty_level,
)
from gap_monitor.core.events import Event, Severity
from gap_monitor.core.io import cdr
from gap_monitor.core.io.modalities import COMPRESSED_IMAGE
from gap_monitor.core.timing.health import StreamHealth
from gap_monitor.core.timing.motion_offset import MotionOffsetEstimator, OffsetEstimate
from gap_monitor.core.timing.skew import SkewPair, SkewTracker
from gap_monitor.core.timing.stamps import (
    Finding,
    TimingLimits,
    TimingSummary,
    TimingTracker,
    assess_summary,
    worst_finding,
)
from gap_monitor.core.units import NS_PER_S
from gap_monitor.errors import MessageError

HEADERLESS_TYPES = frozenset({"std_msgs/msg/String", "std_msgs/msg/Bool"})
# Receive health already judges silence from receipt times; timing judges the stamps. Live, one
# lost message is no alarm (DDS drops best-effort samples under load); a lossy stream is.
TIMING_LIMITS = TimingLimits(silence_warn_periods=None, silence_error_periods=None, gaps_warn=None)
# Discovery and QoS matching deliver the first second of a stream in bursts: judge timing after it.
TIMING_WARMUP_NS = 2 * NS_PER_S
TIMING_ASSESS_PERIOD_NS = NS_PER_S


class Monitor:
    """All checks of one monitor instance. Not thread-safe: feed it from one thread."""

    def __init__(
        self,
        config: MonitorConfig,
        now_ns: int,
        output_dir: Path | None = None,
        profile: Profile | None = None,
    ) -> None:
        self.config = config
        self.streams: dict[str, StreamConfig] = {s.topic: s for s in config.streams}
        self.health = {
            s.topic: StreamHealth(
                s.rate_hz, s.rate_tolerance, s.stale_timeout_s, config.health.rate_window_s, now_ns
            )
            for s in config.streams
        }
        self.malformed: dict[str, int] = dict.fromkeys(self.streams, 0)
        # Per topic, when its timing may first be judged (set by its first message).
        self._timing_from_ns: dict[str, int] = {}
        self._next_timing_ns = now_ns
        self._timing_summaries: dict[str, TimingSummary] = {}
        self._timing_findings: dict[str, list[Finding]] = {}
        self.last_error: dict[str, str] = {}
        self.timing: TimingTracker | None = None
        if config.timing.enabled:
            self.timing = TimingTracker(
                {s.topic: s.rate_hz for s in config.streams}, config.timing.timing_settings()
            )
        skew = config.timing.skew_settings()
        self.skew = SkewTracker([SkewPair(p.a, p.b, skew, p.skew_limits()) for p in config.skew_pairs])
        self._skew_topics = self.skew.topics
        self._levels: dict[str, Severity] = {}
        self._pending: list[Event] = []
        cc = config.conditions
        self.conditions: dict[str, FeedStream] = {}
        self.feed: FeatureFeed | None = None
        if cc.enabled:
            settings = cc.feature_settings()
            self.conditions = {s.topic: FeedStream(s.modality, s.msgtype) for s in config.streams}
            # IMU, joint and wrench messages reach their windows a hop's worth at a time: features
            # come at most a hop late, stamped with the receipt time of the message completing them.
            self.feed = FeatureFeed(
                self.conditions, settings, self._feature_error, batch_span_ns=int(cc.hop_s * NS_PER_S)
            )
        self.profile = profile
        # Every snapshot names the profile it was judged against (hashing it once, not per trigger).
        self._profile_id = (
            None if profile is None else {"digest": profile.digest(), "path": config.conditions.profile}
        )
        self.scoring = ConditionMonitor(profile) if profile is not None and cc.enabled else None
        self.latest_features: dict[str, dict[str, float]] = {}
        self.latest_scores: dict[str, StreamScore] = {}
        self.alarm_active: dict[str, bool] = {}
        self.novel_conditions = 0
        mo = config.motion_offset
        self.motion: MotionOffsetEstimator | None = None
        self.motion_estimate: OffsetEstimate | None = None
        self._next_motion_ns = now_ns + int(mo.period_s * NS_PER_S)
        if mo.enabled:
            self.motion = MotionOffsetEstimator(mo.estimator_settings())
        self._motion_topics = frozenset((mo.camera, mo.imu))  # the only ones _feed_motion uses
        self.triggers: TriggerSet | None = (
            build_triggers(config.triggers) if config.triggers.enabled else None
        )
        self.ring: RingBuffer | None = None
        self.writer: SnapshotWriter | None = None
        self._announced_written = 0
        if config.capture.enabled:
            self._start_capture(output_dir, now_ns)

    # --- capture -------------------------------------------------------------------------------

    def _start_capture(self, output_dir: Path | None, now_ns: int) -> None:
        c = self.config.capture
        self.ring = RingBuffer(c.buffer_bytes, default_window_s=c.pre_s + 1.0)
        for s in self.config.streams:
            self.ring.add_topic(s.topic, s.msgtype)
        for topic, msgtype in self.trigger_topics().items():
            if topic not in self.streams:
                self.ring.add_topic(topic, msgtype)
        settings = c.snapshot_settings(output_dir)
        # Snapshot and ring-buffer times are the receipt clock (the node's clock, sim time included).
        self._clock_ns = now_ns
        self.writer = SnapshotWriter(settings, self.ring, clock=lambda: self._clock_ns)
        for problem in check_ring_buffer(settings, self.ring):
            self.last_error["capture"] = problem

    def trigger_topics(self) -> dict[str, str]:
        """Topics the external triggers listen to (topic -> message type)."""
        return self.triggers.topics() if self.triggers is not None else {}

    def add_capture_topic(self, topic: str, msgtype: str, latched: bool = False) -> None:
        """A topic kept for snapshots only (e.g. /tf, commands), not analysed."""
        if self.ring is not None:
            self.ring.add_topic(topic, msgtype, latched=latched)

    def capture(
        self, kind: str, reason: str, source: str, now_ns: int, details: Mapping[str, Any] | None = None
    ) -> TriggerResult | None:
        """Ask for a snapshot around now; None when capture is off. Whatever the outcome, a
        `snapshot` event saying it goes out with the next `check` (a refusal included)."""
        result = self._trigger(kind, reason, source, now_ns, details)
        if result is not None:
            self._pending.append(self._snapshot_event(result, kind, reason, now_ns))
        return result

    def _trigger(
        self, kind: str, reason: str, source: str, now_ns: int, details: Mapping[str, Any] | None
    ) -> TriggerResult | None:
        if self.writer is None:
            return None
        self._clock_ns = now_ns
        trigger = {
            "kind": kind,
            "reason": reason,
            "source": source,
            "time_ns": now_ns,
            "details": dict(details or {}),
            "host": socket.gethostname(),
            "package_version": __version__,
            "config": asdict(self.config),
            "profile": self._profile_id,
        }
        return self.writer.trigger(trigger, now_ns)

    # --- data path -----------------------------------------------------------------------------

    def on_message(self, topic: str, receipt_ns: int, data: bytes, steady_ns: int | None = None) -> None:
        """One raw (CDR) message of a monitored topic, or of a capture-only topic."""
        health = self.health.get(topic)
        ring = self.ring
        if ring is not None:
            ring.push(topic, receipt_ns, data)
        triggers = self.triggers
        if triggers is not None:
            self._pending += triggers.on_message(topic, receipt_ns, data)
        if health is None:
            return
        health.observe(receipt_ns, len(data))
        timing_from = self._timing_from_ns
        if topic not in timing_from:
            timing_from[topic] = receipt_ns + TIMING_WARMUP_NS
        feed = self.feed
        timing = self.timing
        motion = self.motion
        skewed = topic in self._skew_topics
        if timing is None and not skewed and feed is None and motion is None:
            return
        fields = cdr.header_fields(data)  # one cheap parse; on None the slow calls say what is wrong
        if fields is not None:
            stamp, frame_id = fields[0], fields[1]
        else:
            try:
                found = cdr.header_stamp_ns(data)
                frame_id = cdr.header_frame_id(data) if timing is not None else ""
            except cdr.CdrError as exc:
                self._malformed(topic, str(exc))
                return
            if found is None:
                self._malformed(topic, f"{len(data)} bytes: too short for a header")
                return
            stamp = found
        if timing is not None:
            timing.observe(topic, stamp, receipt_ns, frame_id, steady_ns)
        if skewed:
            self.skew.observe(topic, stamp)
        if motion is not None and topic in self._motion_topics:
            self._feed_motion(topic, stamp, data)
        if feed is not None:
            for sample in feed.push(topic, receipt_ns, data, stamp):
                self._on_features(topic, sample.features, sample.received_ns)

    def flush_batches(self) -> None:
        """Features of every message received so far (the batches are otherwise cut by time)."""
        if self.feed is not None:
            for sample in self.feed.flush():
                self._on_features(sample.topic, sample.features, sample.received_ns)

    def _feature_error(self, topic: str, why: str) -> None:
        self._malformed(topic, f"features: {why}")

    def _malformed(self, topic: str, why: str) -> None:
        self.malformed[topic] += 1
        self.last_error[topic] = why

    def _on_features(self, topic: str, features: dict[str, float], now_ns: int) -> None:
        self.latest_features[topic] = features
        if self.scoring is None or topic not in self.scoring.streams:
            return
        update = self.scoring.update(topic, features, now_ns)
        self.latest_scores[topic] = update.score
        if update.joints is not None:
            # Joints never seen in training: the names are the novelty, reported once per change
            # of the set, with or without an alarm (the known joints are still scored).
            self._pending.append(
                Event(
                    "novel_condition",
                    topic,
                    Severity.WARN if update.joints.unknown else Severity.OK,
                    f"{topic}: {update.joints.describe()}",
                    now_ns,
                    {**self._score_details(topic), **update.joints.details()},
                )
            )
        if update.alarm is None:
            return
        self.alarm_active[topic] = update.alarm.active
        if update.alarm.fired:
            self.novel_conditions += 1
            level = self.novelty_level(topic)
            self._pending.append(
                Event(
                    "novel_condition",
                    topic,
                    level,
                    f"{topic}: novel condition: {update.score.describe()}",
                    now_ns,
                    self._score_details(topic),
                )
            )
        elif update.alarm.cleared:
            self._pending.append(
                Event(
                    "novel_condition",
                    topic,
                    Severity.OK,
                    f"{topic}: back within training conditions",
                    now_ns,
                    self._score_details(topic),
                )
            )

    def threshold(self, topic: str) -> float | None:
        """The alarm threshold of a stream's scores (None: not in the profile, or no alarm)."""
        if self.profile is None or topic not in self.profile.streams:
            return None
        alarm = self.profile.streams[topic].alarm
        return None if alarm is None else alarm.threshold

    def novelty_level(self, topic: str) -> Severity:
        """The level of a stream's conditions now (see `diagnostics.novelty_level`)."""
        return novelty_level(
            self.alarm_active.get(topic, False),
            self.latest_scores.get(topic),
            self.threshold(topic),
            self.config.conditions.error_factor,
        )

    def _score_details(self, topic: str) -> dict[str, Any]:
        score = self.latest_scores.get(topic)
        return {} if score is None else score.details(self.threshold(topic))

    def scores(self) -> list[dict[str, Any]]:
        """Latest features and scores per stream, for ~/scores."""
        out = []
        for topic, features in self.latest_features.items():
            entry: dict[str, Any] = {
                "stream": topic,
                # Bounded as the diagnostics are: a 1000-joint stream is 3001 features a hop.
                "features": bounded_features(features, self.latest_scores.get(topic)),
                "features_total": len(features),
                "alarm": self.alarm_active.get(topic, False),
            }
            entry.update(self._score_details(topic))
            out.append(entry)
        return out

    def _feed_motion(self, topic: str, stamp_ns: int, data: bytes) -> None:
        assert self.motion is not None
        mo = self.config.motion_offset
        try:
            if topic == mo.imu:
                x, y, z = cdr.decode_imu(data).angular_velocity.tolist()
                self.motion.add_gyro(stamp_ns, x, y, z)
            elif topic == mo.camera:
                frame = _grey_frame(self.streams[topic].msgtype, data)
                if frame is not None:
                    self.motion.add_frame(stamp_ns, frame)
        except MessageError as exc:  # undecodable, or a frame motion cannot be measured on
            self._malformed(topic, f"motion offset: {exc}")

    def restart_stream(self, topic: str, now_ns: int, reason: str) -> None:
        """Forget a stream's statistics (e.g. a new subscription): its old samples say nothing now."""
        self.health[topic].restart(now_ns)
        self._timing_from_ns.pop(topic, None)
        if self.timing is not None:
            for (t, _), stream in self.timing.streams().items():
                if t == topic:
                    stream.reset(reason)
        if topic in self._skew_topics:
            self.skew.reset()

    def note_clock_jump(self, reason: str) -> None:
        if self.timing is not None:
            self.timing.note_clock_jump(reason)
        self.skew.reset()
        if self.triggers is not None:
            self.triggers.reset_timing()

    # --- periodic ------------------------------------------------------------------------------

    def check(self, now_ns: int) -> list[Event]:
        """Judge every check; an event for each change of level; snapshots for the ones the
        capture policy names; finish due snapshots."""
        self.flush_batches()
        events, self._pending = self._pending, []
        c = self.config.capture
        for topic, health in self.health.items():
            report = health.report(now_ns)
            events += self._transition(
                f"stream {topic}",
                "stream_state",
                topic,
                report.level,
                report.message,
                now_ns,
                {"received": report.count},
            )
        if self.timing is not None and now_ns >= self._next_timing_ns:
            # Stamp statistics over a 10 s window change slowly; judging them once a second is
            # plenty and keeps the main loop free for the messages.
            self._next_timing_ns = now_ns + TIMING_ASSESS_PERIOD_NS
            summaries = self.timing.summaries(now_ns)
            self._timing_summaries = {topic: summary for (topic, _), summary in summaries.items()}
            by_topic: dict[str, list[Finding]] = {}
            for (topic, _), summary in summaries.items():
                if now_ns >= self._timing_from_ns.get(topic, now_ns + 1):
                    by_topic.setdefault(topic, []).extend(assess_summary(summary, TIMING_LIMITS))
            self._timing_findings = by_topic
            for topic, findings in by_topic.items():
                level, message = worst_finding(findings)
                events += self._transition(f"timing {topic}", "timing", topic, level, message, now_ns)
        if self.motion is not None and now_ns >= self._next_motion_ns:
            self._next_motion_ns = now_ns + int(self.config.motion_offset.period_s * NS_PER_S)
            self.motion_estimate = self.motion.estimate()
            mo = self.config.motion_offset
            level, message = motion_offset_level(self.motion_estimate, mo)
            events += self._transition(
                "motion_offset", "motion_offset", motion_offset_name(mo), level, message, now_ns
            )
        for pair, findings in self.skew.assess_pairs().items():
            level, message = worst_finding(findings)
            events += self._transition(f"skew {pair}", "skew", pair, level, message, now_ns)
        if self.writer is not None:
            self._clock_ns = now_ns
            for e in list(events):
                # A stream that never arrived is a setup problem; one that stops is a hard case.
                stalled = e.severity == Severity.STALE and e.details.get("received", 0) > 0
                wanted = {
                    "stream_state": c.on_stream_stale and stalled,
                    "timing": c.on_timing and e.severity >= Severity.WARN,
                    "skew": c.on_skew and e.severity >= Severity.WARN,
                    "motion_offset": c.on_skew and e.severity >= Severity.WARN,
                    "novel_condition": c.on_novel_condition and e.severity >= Severity.WARN,
                }.get(e.kind, e.kind in CAPTURE_KINDS)
                if wanted:
                    result = self._trigger(e.kind, e.reason, e.source, now_ns, e.details)
                    if result is not None:
                        events.append(self._snapshot_event(result, e.kind, e.reason, now_ns))
            self.writer.poll(now_ns)
            events += [self._notice_event(n, now_ns) for n in self.writer.drain_notices()]
            status = self.writer.status()
            if status.snapshots_written > self._announced_written and status.last_path is not None:
                self._announced_written = status.snapshots_written
                events.append(
                    Event(
                        "snapshot_written",
                        "capture",
                        Severity.OK,
                        f"snapshot written: {status.last_path}",
                        now_ns,
                        {"path": str(status.last_path)},
                    )
                )
        return events

    def _snapshot_event(self, result: TriggerResult, kind: str, reason: str, now_ns: int) -> Event:
        if result.accepted:
            return Event(
                "snapshot",
                "capture",
                Severity.OK,
                f"snapshot {result.outcome}: {result.path} ({reason})",
                now_ns,
                {"path": str(result.path), "outcome": result.outcome, "trigger": kind},
            )
        # A trigger not taken is an event too; not a warning: cooldown and rate are by design,
        # and a capture stop is the capture status's ERROR already.
        return Event(
            "snapshot",
            "capture",
            Severity.OK,
            f"snapshot not taken ({result.outcome}): {result.reason}",
            now_ns,
            {"outcome": result.outcome, "trigger": kind, "why": result.reason},
        )

    def _notice_event(self, notice: CaptureNotice, now_ns: int) -> Event:
        """A `snapshot` event for what the writer did on its own (refused, failed, deleted...)."""
        level = {"recovered": Severity.OK, "deleted": Severity.OK, "failed": Severity.ERROR}
        return Event(
            "snapshot",
            "capture",
            level.get(notice.outcome, Severity.WARN),
            f"snapshot {notice.outcome}: {notice.reason}",
            now_ns,
            {
                "outcome": notice.outcome,
                "snapshot": notice.name,
                "path": None if notice.path is None else str(notice.path),
                "why": notice.reason,
            },
        )

    def _transition(
        self,
        key: str,
        kind: str,
        source: str,
        level: Severity,
        message: str,
        now_ns: int,
        details: Mapping[str, Any] | None = None,
    ) -> list[Event]:
        previous = self._levels.get(key)
        if previous == level:
            return []
        self._levels[key] = level
        if previous is None and level == Severity.OK:
            return []
        return [
            Event(
                kind,
                source,
                level,
                f"{source}: {level.name} ({message})",
                now_ns,
                {"previous": previous.name if previous is not None else None, **(details or {})},
            )
        ]

    def statuses(self, now_ns: int, publishers: Mapping[str, str] | None = None) -> list[StatusReport]:
        """Everything for /diagnostics: per stream, timing, skew pair and capture."""
        return build_statuses(self, now_ns, publishers)

    def timing_result(self, topic: str) -> tuple[Severity, TimingSummary | None, list[Finding] | None]:
        """A stream's last timing judgement: level, summary and findings (None before the first)."""
        return (
            self._levels.get(f"timing {topic}", Severity.OK),
            self._timing_summaries.get(topic),
            self._timing_findings.get(topic),
        )

    def close(self, now_ns: int) -> None:
        """Finish what the writer holds: a snapshot whose post window ends by `now_ns` is complete,
        a later one is written truncated."""
        self.flush_batches()
        if self.writer is not None:
            self._clock_ns = now_ns
            self.writer.poll(now_ns)
            self.writer.close(now_ns, timeout_s=30.0)


def _grey_frame(msgtype: str, data: bytes) -> Any:
    """The image of a camera message, for motion tracking (grey or colour; None if undecodable)."""
    if msgtype == COMPRESSED_IMAGE:
        encoded = cdr.decode_compressed_image(data).data
        return cv2.imdecode(np.asarray(encoded), cv2.IMREAD_GRAYSCALE)
    return cdr.decode_image(data).pixels()
