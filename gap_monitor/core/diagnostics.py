"""The /diagnostics content of a monitor, built in one place.

As with ROS's diagnostic_updater, each check fills its own part and the builder only collects:
the values come from the checks (`HealthReport.values()`, `TimingSummary.values()`, ... with the
one missing-value rule of `core/values.py`), the levels from their findings; one function per
status adds the name (`<prefix>: <what>`, so rqt_robot_monitor and diagnostic_aggregator group the
statuses under the node), message and hardware id, and `build_statuses` collects them. The level
rules that the monitor's events share with the statuses live here too (`motion_offset_level`,
`novelty_level`), so a status and its event never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from gap_monitor.core.capture.policy import SnapshotStatus
from gap_monitor.core.capture.ring_buffer import BufferStats, RingBuffer
from gap_monitor.core.capture.triggers import TriggerSet
from gap_monitor.core.capture.writer import SnapshotWriter
from gap_monitor.core.conditions.feed import FeedStream
from gap_monitor.core.conditions.profile import Profile
from gap_monitor.core.conditions.scoring import StreamScore, condition_values, missing_joints_text
from gap_monitor.core.config import MonitorConfig, MotionOffsetConfig, StreamConfig
from gap_monitor.core.events import Severity
from gap_monitor.core.timing.health import HealthReport, StreamHealth
from gap_monitor.core.timing.motion_offset import MotionOffsetEstimator, OffsetEstimate
from gap_monitor.core.timing.skew import SkewSummary, SkewTracker
from gap_monitor.core.timing.stamps import Finding, TimingSummary, TimingTracker, worst_finding
from gap_monitor.core.values import MISSING


@dataclass(frozen=True)
class StatusReport:
    """One /diagnostics status, ROS-free."""

    name: str
    level: Severity
    message: str
    hardware_id: str
    values: dict[str, str] = field(default_factory=dict)


class MonitorChecks(Protocol):
    """What the statuses are built from (`Monitor` provides it): the checks and their results."""

    @property
    def config(self) -> MonitorConfig: ...
    @property
    def streams(self) -> Mapping[str, StreamConfig]: ...
    @property
    def health(self) -> Mapping[str, StreamHealth]: ...
    @property
    def malformed(self) -> Mapping[str, int]: ...
    @property
    def last_error(self) -> Mapping[str, str]: ...
    @property
    def timing(self) -> TimingTracker | None: ...
    def timing_result(self, topic: str) -> tuple[Severity, TimingSummary | None, list[Finding] | None]: ...
    @property
    def skew(self) -> SkewTracker: ...
    @property
    def conditions(self) -> Mapping[str, FeedStream]: ...
    @property
    def latest_features(self) -> Mapping[str, Mapping[str, float]]: ...
    @property
    def latest_scores(self) -> Mapping[str, StreamScore]: ...
    @property
    def profile(self) -> Profile | None: ...
    def threshold(self, topic: str) -> float | None: ...
    def novelty_level(self, topic: str) -> Severity: ...
    @property
    def motion(self) -> MotionOffsetEstimator | None: ...
    @property
    def motion_estimate(self) -> OffsetEstimate | None: ...
    @property
    def triggers(self) -> TriggerSet | None: ...
    @property
    def writer(self) -> SnapshotWriter | None: ...
    @property
    def ring(self) -> RingBuffer | None: ...


def build_statuses(
    monitor: MonitorChecks, now_ns: int, publishers: Mapping[str, str] | None = None
) -> list[StatusReport]:
    """Everything for /diagnostics, in this order: each stream's receive health, each stream's stamp
    timing, each skew pair, each stream's conditions, the motion offset, the triggers and capture
    (each one that is on). `publishers` says per topic how it is subscribed (QoS, publishers)."""
    prefix = monitor.config.diagnostic_prefix
    out = []
    for topic, health in monitor.health.items():
        out.append(
            stream_status(
                prefix,
                monitor.streams[topic],
                health.report(now_ns),
                monitor.malformed[topic],
                (publishers or {}).get(topic, ""),
                monitor.last_error.get(topic),
            )
        )
    if monitor.timing is not None:
        for topic, stream in monitor.streams.items():
            out.append(timing_status(prefix, stream, *monitor.timing_result(topic)))
    skew_summaries = {s.name: s for s in monitor.skew.summaries().values()}
    for pair, findings in monitor.skew.assess_pairs().items():
        out.append(skew_status(prefix, pair, findings, skew_summaries.get(pair)))
    for topic in monitor.conditions:
        out.append(
            conditions_status(
                prefix,
                monitor.streams[topic],
                monitor.latest_features.get(topic, {}),
                monitor.latest_scores.get(topic),
                monitor.threshold(topic),
                monitor.novelty_level(topic),
                monitor.profile is not None,
            )
        )
    if monitor.motion is not None:
        out.append(motion_offset_status(prefix, monitor.config.motion_offset, monitor.motion_estimate))
    if monitor.triggers is not None:
        out.append(triggers_status(prefix, monitor.triggers))
    if monitor.writer is not None and monitor.ring is not None:
        out.append(capture_status(prefix, monitor.writer.status(), monitor.ring.stats()))
    return out


def stream_status(
    prefix: str, stream: StreamConfig, report: HealthReport, malformed: int, qos: str, last_error: str | None
) -> StatusReport:
    """Receive health of one stream, with what it is and how it is subscribed."""
    values = {
        "modality": stream.modality,
        "type": stream.msgtype,
        **report.values(),
        "malformed": str(malformed),
        "qos": qos,
    }
    if last_error is not None:
        values["last_error"] = last_error
    return StatusReport(f"{prefix}: {stream.topic}", report.level, report.message, stream.name, values)


def timing_status(
    prefix: str,
    stream: StreamConfig,
    level: Severity,
    summary: TimingSummary | None,
    findings: list[Finding] | None,
) -> StatusReport:
    """Header-stamp timing of one stream: its last judged level, "collecting" until it has findings."""
    values = {} if summary is None else summary.values()
    message = "collecting" if summary is None or not findings else worst_finding(findings)[1]
    return StatusReport(f"{prefix}: timing {stream.topic}", level, message, stream.name, values)


def skew_status(prefix: str, pair: str, findings: list[Finding], summary: SkewSummary | None) -> StatusReport:
    """Header-stamp skew of one pair ("a vs b")."""
    level, message = worst_finding(findings)
    values = {} if summary is None else summary.values()
    return StatusReport(f"{prefix}: skew {pair}", level, message, pair, values)


def novelty_level(
    alarm_active: bool, score: StreamScore | None, threshold: float | None, error_factor: float
) -> Severity:
    """WARN while a stream's alarm is on or it has joints never seen in training (the names are
    the novelty, whatever the known joints score); ERROR once its score reaches `error_factor` x
    the alarm threshold while the alarm is on."""
    if not alarm_active:
        return Severity.WARN if score is not None and score.unknown_joints else Severity.OK
    if score is not None and threshold is not None and score.score >= error_factor * threshold:
        return Severity.ERROR
    return Severity.WARN


def conditions_status(
    prefix: str,
    stream: StreamConfig,
    features: Mapping[str, float],
    score: StreamScore | None,
    threshold: float | None,
    level: Severity,
    profile_loaded: bool,
) -> StatusReport:
    """Conditions of one stream: its features (at most MAX_SHOWN_FEATURES), and once scored
    against the profile, how novel."""
    values = condition_values(features, score, threshold)
    name = f"{prefix}: conditions {stream.topic}"
    if score is None:
        why = "stream not in the profile" if profile_loaded else "no profile loaded"
        message = "collecting features" if not features else f"features only ({why})"
        return StatusReport(name, Severity.OK, message, stream.name, values)
    if level == Severity.OK:
        message = f"within training conditions (score {values['score']})"
        if score.missing_joints:  # fewer joints scored than trained on: said, not alarmed
            message += f"; {missing_joints_text(score.missing_joints)}"
    else:
        kind = "far outside training conditions" if level == Severity.ERROR else "novel condition"
        message = f"{kind}: {score.describe()}"
    return StatusReport(name, level, message, stream.name, values)


def motion_offset_name(settings: MotionOffsetConfig) -> str:
    """The camera-IMU combination, as statuses and events name it."""
    return f"{settings.camera} vs {settings.imu}"


def motion_offset_level(
    estimate: OffsetEstimate | None, settings: MotionOffsetConfig
) -> tuple[Severity, str]:
    """Only a confident estimate can raise a level; a weak one says why it is weak."""
    if estimate is None:
        return Severity.OK, "collecting"
    if not estimate.confident or estimate.offset_s is None:
        return Severity.OK, estimate.reason
    ms = estimate.offset_s * 1000
    text = f"{motion_offset_name(settings)}: motion offset {ms:+.1f} ms"
    if abs(ms) >= settings.error_ms:
        return Severity.ERROR, f"{text} (limit {settings.error_ms:g} ms)"
    if abs(ms) >= settings.warn_ms:
        return Severity.WARN, f"{text} (limit {settings.warn_ms:g} ms)"
    return Severity.OK, f"{text} (within {settings.warn_ms:g} ms)"


def motion_offset_status(
    prefix: str, settings: MotionOffsetConfig, estimate: OffsetEstimate | None
) -> StatusReport:
    """The live camera-IMU offset from motion."""
    level, message = motion_offset_level(estimate, settings)
    values = {} if estimate is None else estimate.values()
    name = f"{prefix}: motion offset {motion_offset_name(settings)}"
    return StatusReport(name, level, message, "motion_offset", values)


def triggers_status(prefix: str, triggers: TriggerSet) -> StatusReport:
    """The external triggers: their topics, and messages that could not be read."""
    topics = triggers.topics()
    malformed = sum(triggers.malformed.values())
    values = {"topics": ", ".join(sorted(topics)), "malformed": str(malformed)}
    values.update({f"last_error {t}": e for t, e in triggers.last_error.items()})
    level = Severity.WARN if malformed else Severity.OK
    message = f"{len(topics)} trigger topic(s)" + (f"; {malformed} malformed" if malformed else "")
    return StatusReport(f"{prefix}: triggers", level, message, "triggers", values)


def capture_values(status: SnapshotStatus, buffer: BufferStats) -> dict[str, str]:
    """Snapshots written, refused, deleted and lost, and the ring buffer's fill, in display form
    (`core/values.py`)."""
    values = {
        "snapshots_written": str(status.snapshots_written),
        "snapshots_on_disk": str(status.snapshots_on_disk),
        "bytes_used": str(status.bytes_used),
        "quota_bytes": str(status.quota_bytes),
        # Nothing vanishes silently: triggers refused, snapshots refused, deleted or lost.
        "triggers_refused": str(status.triggers_rejected),
        "snapshots_refused": str(status.snapshots_refused),
        "snapshots_deleted": str(status.snapshots_deleted),
        "snapshots_lost": str(status.snapshots_lost),
        "buffer_bytes": str(buffer.total_bytes),
        "buffer_budget_bytes": str(buffer.budget_bytes),
        "last_trigger": str((status.last_trigger or {}).get("reason", MISSING)),
        "last_path": MISSING if status.last_path is None else str(status.last_path),
    }
    for topic, held in buffer.topics.items():
        values[f"buffer {topic}"] = f"{held.seconds_held:.1f} s, {held.bytes} B"
    return values


def capture_status(prefix: str, status: SnapshotStatus, buffer: BufferStats) -> StatusReport:
    """Capture: ERROR once it stopped (disk full, quota with on_quota=stop), WARN after an error."""
    if status.capture_stopped:
        level, message = Severity.ERROR, f"capture stopped: {status.stopped_reason}"
    elif status.last_error:
        level, message = Severity.WARN, f"last error: {status.last_error}"
    else:
        level = Severity.OK
        message = (
            f"{status.snapshots_written} snapshot(s) written; {status.bytes_used} B of {status.quota_bytes} B"
        )
    return StatusReport(f"{prefix}: capture", level, message, "capture", capture_values(status, buffer))
