"""The /diagnostics content of a monitor, built in one place.

As with ROS's diagnostic_updater, the checks judge and the builder only collects: one status per
stream, per stream's stamp timing, per skew pair, per stream's conditions, and one each for the
motion offset, the external triggers and capture, named `<prefix>: <what>` so
rqt_robot_monitor and diagnostic_aggregator group them under the node.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from gap_monitor.core.capture.ring_buffer import RingBuffer
from gap_monitor.core.capture.snapshot import SnapshotWriter
from gap_monitor.core.capture.triggers import TriggerSet
from gap_monitor.core.conditions.feed import StreamConditions
from gap_monitor.core.conditions.profile import Profile
from gap_monitor.core.conditions.scoring import StreamScore
from gap_monitor.core.config.model import MonitorConfig, MotionOffsetConfig, StreamConfig
from gap_monitor.core.events import Severity
from gap_monitor.core.timing.health import HealthReport, StreamHealth
from gap_monitor.core.timing.motion_offset import MotionOffsetEstimator, OffsetEstimate
from gap_monitor.core.timing.skew import SkewSummary, SkewTracker
from gap_monitor.core.timing.stamps import Finding, TimingSummary, TimingTracker, worst_finding


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
    def conditions(self) -> Mapping[str, StreamConditions]: ...
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


def format_value(value: float) -> str:
    """Short, readable number for diagnostics values."""
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "" if value is None else format(value, spec)


def build_statuses(
    monitor: MonitorChecks, now_ns: int, publishers: Mapping[str, str] | None = None
) -> list[StatusReport]:
    """Everything for /diagnostics: per stream, timing, skew pair and capture."""
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
    summaries_by_name = {f"{a} vs {b}": s for (a, b), s in monitor.skew.summaries().items()}
    for name, findings in monitor.skew.assess_pairs().items():
        out.append(skew_status(prefix, name, findings, summaries_by_name.get(name)))
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
    if monitor.writer is not None:
        assert monitor.ring is not None
        out.append(capture_status(prefix, monitor.writer, monitor.ring))
    return out


def stream_status(
    prefix: str, sc: StreamConfig, report: HealthReport, malformed: int, qos: str, last_error: str | None
) -> StatusReport:
    values = {
        "modality": sc.modality,
        "type": sc.msgtype,
        "count": str(report.count),
        "rate_hz": _fmt(report.rate_hz),
        "expected_rate_hz": f"{sc.rate_hz:g}",
        "since_last_s": _fmt(report.since_last_s, ".3f"),
        "bytes_per_s": _fmt(report.bytes_per_s, ".0f"),
        "malformed": str(malformed),
        "qos": qos,
    }
    if last_error is not None:
        values["last_error"] = last_error
    return StatusReport(f"{prefix}: {sc.topic}", report.level, report.message, sc.name, values)


def timing_status(
    prefix: str,
    stream: StreamConfig,
    level: Severity,
    s: TimingSummary | None,
    findings: list[Finding] | None,
) -> StatusReport:
    values = {}
    if s is not None:
        values = {
            "stamp_rate_hz": _fmt(s.rate_hz),
            "period_median_ms": _fmt(s.period_median_ms, ".3f"),
            "jitter_p95_ms": _fmt(s.jitter_p95_ms, ".3f"),
            "gaps": str(s.gaps),
            "latency_median_ms": _fmt(s.latency_median_ms, ".3f"),
            "latency_p95_ms": _fmt(s.latency_p95_ms, ".3f"),
            "clock_jumps": str(s.clock_jumps),
        }
    message = "collecting" if s is None or not findings else worst_finding(findings)[1]
    return StatusReport(f"{prefix}: timing {stream.topic}", level, message, stream.name, values)


def skew_status(prefix: str, name: str, findings: list[Finding], sk: SkewSummary | None) -> StatusReport:
    level, message = worst_finding(findings)
    values = {}
    if sk is not None:
        values = {
            "offset_median_ms": _fmt(sk.offset_median_ms, ".3f"),
            "offset_p95_ms": _fmt(sk.offset_p95_ms, ".3f"),
            "drift_ppm": _fmt(sk.drift_ppm, ".1f"),
            "matched": str(sk.matched),
            "unmatched_fraction": _fmt(sk.unmatched_fraction, ".3f"),
        }
    return StatusReport(f"{prefix}: skew {name}", level, message, name, values)


def conditions_status(
    prefix: str,
    stream: StreamConfig,
    features: Mapping[str, float],
    score: StreamScore | None,
    threshold: float | None,
    level: Severity,
    profile_loaded: bool,
) -> StatusReport:
    values = {k: format_value(v) for k, v in features.items()}
    name = f"{prefix}: conditions {stream.topic}"
    if score is None:
        why = "stream not in the profile" if profile_loaded else "no profile loaded"
        message = "collecting features" if not features else f"features only ({why})"
        return StatusReport(name, Severity.OK, message, stream.name, values)
    values["score"] = format_value(score.score)
    values["threshold"] = "" if threshold is None else format_value(threshold)
    if level == Severity.OK:
        message = f"within training conditions (score {format_value(score.score)})"
    else:
        kind = "far outside training conditions" if level == Severity.ERROR else "novel condition"
        message = f"{kind}: {score.describe()}"
    return StatusReport(name, level, message, stream.name, values)


def motion_offset_name(settings: MotionOffsetConfig) -> str:
    return f"{settings.camera} vs {settings.imu}"


def motion_offset_level(
    estimate: OffsetEstimate | None, settings: MotionOffsetConfig
) -> tuple[Severity, str]:
    """Only a confident estimate can raise a level; a weak one says why it is weak."""
    e = estimate
    mo = settings
    if e is None:
        return Severity.OK, "collecting"
    if not e.confident or e.offset_s is None:
        return Severity.OK, e.reason
    ms = e.offset_s * 1000
    text = f"{motion_offset_name(mo)}: motion offset {ms:+.1f} ms"
    if abs(ms) >= mo.error_ms:
        return Severity.ERROR, f"{text} (limit {mo.error_ms:g} ms)"
    if abs(ms) >= mo.warn_ms:
        return Severity.WARN, f"{text} (limit {mo.warn_ms:g} ms)"
    return Severity.OK, f"{text} (within {mo.warn_ms:g} ms)"


def motion_offset_status(
    prefix: str, settings: MotionOffsetConfig, estimate: OffsetEstimate | None
) -> StatusReport:
    level, message = motion_offset_level(estimate, settings)
    e = estimate
    values = {}
    if e is not None:
        values = {
            "offset_ms": _fmt(None if e.offset_s is None else e.offset_s * 1000, ".2f"),
            "uncertainty_ms": _fmt(None if e.uncertainty_s is None else e.uncertainty_s * 1000, ".2f"),
            "confident": str(e.confident).lower(),
            "confidence": _fmt(e.confidence, ".2f"),
            "frames": str(e.n_frames),
            "motion_rms_rad_s": _fmt(e.motion_rms, ".4f"),
        }
    return StatusReport(
        f"{prefix}: motion offset {motion_offset_name(settings)}", level, message, "motion_offset", values
    )


def triggers_status(prefix: str, triggers: TriggerSet) -> StatusReport:
    topics = triggers.topics()
    malformed = sum(triggers.malformed.values())
    values = {"topics": ", ".join(sorted(topics)), "malformed": str(malformed)}
    values.update({f"last_error {t}": e for t, e in triggers.last_error.items()})
    level = Severity.WARN if malformed else Severity.OK
    message = f"{len(topics)} trigger topic(s)" + (f"; {malformed} malformed" if malformed else "")
    return StatusReport(f"{prefix}: triggers", level, message, "triggers", values)


def capture_status(prefix: str, writer: SnapshotWriter, ring: RingBuffer) -> StatusReport:
    st = writer.status()
    stats = ring.stats()
    values = {
        "snapshots_written": str(st.snapshots_written),
        "snapshots_on_disk": str(st.snapshots_on_disk),
        "bytes_used": str(st.bytes_used),
        "quota_bytes": str(st.quota_bytes),
        "buffer_bytes": str(stats.total_bytes),
        "buffer_budget_bytes": str(ring.budget_bytes),
        "last_trigger": str((st.last_trigger or {}).get("reason", "")),
        "last_path": str(st.last_path or ""),
    }
    for topic, t in stats.topics.items():
        values[f"buffer {topic}"] = f"{t.seconds_held:.1f} s, {t.bytes} B"
    if st.capture_stopped:
        level, message = Severity.ERROR, f"capture stopped: {st.stopped_reason}"
    elif st.last_error:
        level, message = Severity.WARN, f"last error: {st.last_error}"
    else:
        level, message = (
            Severity.OK,
            f"{st.snapshots_written} snapshot(s) written; {st.bytes_used} B of {st.quota_bytes} B",
        )
    return StatusReport(f"{prefix}: capture", level, message, "capture", values)
