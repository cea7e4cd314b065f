"""The audit's results: settings, findings, per-topic / per-pair / motion-offset results per
recording, and their JSON.

JSON written by `--json OUT.json` (schema `gap_monitor.audit/1`; times in ns, durations in ms):

    {"schema", "worst_level", "fail_on", "failed",
     "recordings":     [{path, kind, start_time_ns, end_time_ns, duration_s, messages, messages_read,
                         topics: {name: {type, count}}, skipped_topics: [{topic, type, reason}],
                         level}],
     "topics":         [{recording, topic, frame_id, name, type, level, count, expected_rate_hz,
                         rate_hz, period_median_ms, jitter_p95_ms, gaps, missed_messages,
                         latency_median_ms, latency_p95_ms, stamp_issues, malformed,
                         first_log_time_ns, last_log_time_ns, timing: {TimingSummary fields}}],
     "pairs":          [{recording, a, b, name, source, level, measured, note, matched, unmatched,
                         unmatched_pct, offset_median_ms, offset_p95_ms, drift_ppm,
                         skew: {SkewSummary fields} | null}],
     "motion_offsets": [{recording, camera, imu, level, offset_ms, uncertainty_ms, confidence,
                         confident, correlation, n_frames, reason}],
     "findings":       [{recording, level, subject, check, message, values}]}

Levels are the names OK / WARN / ERROR. `findings` holds every judged check, OK ones included.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from gap_monitor.core.events import Severity
from gap_monitor.core.timing.motion_offset import MotionOffsetSettings, OffsetEstimate
from gap_monitor.core.timing.skew import SkewLimits, SkewSummary
from gap_monitor.core.timing.stamps import TimingLimits, TimingSummary
from gap_monitor.core.units import NS_PER_S
from gap_monitor.core.values import json_number
from gap_monitor.errors import InputError

__all__ = [
    "AUDIT_SCHEMA",
    "AuditFinding",
    "AuditInputError",
    "AuditResult",
    "AuditSettings",
    "MotionAudit",
    "PairAudit",
    "RecordingAudit",
    "SkippedTopic",
    "TopicAudit",
]



AUDIT_SCHEMA = "gap_monitor.audit/1"


class AuditInputError(InputError):
    """A recording cannot be read, or an argument names topics no recording has (exit code 2)."""


@dataclass(frozen=True)
class AuditSettings:
    """How recordings are judged. The defaults are what `gap-monitor audit` uses."""

    timing_limits: TimingLimits = field(default_factory=TimingLimits)
    # An offline recording holds all there will ever be: judge a pair from a few matches.
    skew_limits: SkewLimits = field(default_factory=lambda: SkewLimits(min_matches=3))
    motion: MotionOffsetSettings = field(default_factory=MotionOffsetSettings)
    estimate_motion: bool = True
    motion_offset_warn_ms: float = 2.0  # |confident camera-IMU offset| above this is a WARN
    # A topic silent for longer than this (and 10 periods) at the start or end of the recording
    # is a WARN: the sensor started late or stopped early.
    edge_silence_s: float = 2.0
    max_timing_samples: int = 2_000_000  # per topic; above it the statistics cover the newest part

    def __post_init__(self) -> None:
        for name in ("motion_offset_warn_ms", "edge_silence_s"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not (math.isfinite(value) and value >= 0)
            ):
                raise ValueError(f"{name}: {value!r}: must be a finite number >= 0")
        if not isinstance(self.estimate_motion, bool):
            raise ValueError(f"estimate_motion: {self.estimate_motion!r}: must be true or false")
        if (
            isinstance(self.max_timing_samples, bool)
            or not isinstance(self.max_timing_samples, int)
            or self.max_timing_samples < 10
        ):
            raise ValueError(f"max_timing_samples: {self.max_timing_samples!r}: must be an integer >= 10")


@dataclass(frozen=True)
class AuditFinding:
    """A Finding of one recording."""

    recording: str
    level: Severity
    subject: str
    check: str
    message: str
    values: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "recording": self.recording,
            "level": self.level.name,
            "subject": self.subject,
            "check": self.check,
            "message": self.message,
            "values": {k: json_number(v) for k, v in self.values.items()},
        }


@dataclass(frozen=True)
class SkippedTopic:
    """A topic the audit cannot time (no header, or a type it does not know), and why."""

    topic: str
    msgtype: str
    reason: str


@dataclass(frozen=True)
class TopicAudit:
    """Timing of one stream: a topic, or one header.frame_id of a topic that carries several."""

    recording: str
    topic: str
    frame_id: str
    msgtype: str
    summary: TimingSummary
    level: Severity
    malformed: int  # messages whose header could not be read
    first_log_time_ns: int
    last_log_time_ns: int

    @property
    def name(self) -> str:
        return self.summary.name

    @property
    def stamp_issues(self) -> dict[str, int]:
        s = self.summary
        return {
            "backwards": s.non_monotonic,
            "repeated": s.duplicate_stamps,
            "zero": s.zero_stamps,
            "missing": s.missing_stamps,
            "ahead_of_log_time": s.future_stamps,
        }

    def to_dict(self) -> dict[str, Any]:
        s = self.summary
        return {
            "recording": self.recording,
            "topic": self.topic,
            "frame_id": self.frame_id,
            "name": self.name,
            "type": self.msgtype,
            "level": self.level.name,
            "count": s.total_messages,
            "expected_rate_hz": json_number(s.expected_rate_hz),
            "rate_hz": json_number(s.rate_hz),
            "period_median_ms": json_number(s.period_median_ms),
            "jitter_p95_ms": json_number(s.jitter_p95_ms),
            "gaps": s.total_gaps,
            "missed_messages": s.total_missed,
            "latency_median_ms": json_number(s.latency_median_ms),
            "latency_p95_ms": json_number(s.latency_p95_ms),
            "stamp_issues": self.stamp_issues,
            "malformed": self.malformed,
            "first_log_time_ns": self.first_log_time_ns,
            "last_log_time_ns": self.last_log_time_ns,
            "timing": _jsonable(asdict(s)),
        }


@dataclass(frozen=True)
class PairAudit:
    """Header-stamp skew of two topics; `summary` is None when the pair could not be measured."""

    recording: str
    a: str
    b: str
    source: str  # "config", "argument" or "images" (every pair of image topics)
    summary: SkewSummary | None
    note: str
    level: Severity

    @property
    def name(self) -> str:
        return f"{self.a} vs {self.b}"

    def to_dict(self) -> dict[str, Any]:
        s = self.summary
        frac = s.unmatched_fraction if s else None
        return {
            "recording": self.recording,
            "a": self.a,
            "b": self.b,
            "name": self.name,
            "source": self.source,
            "level": self.level.name,
            "measured": s is not None,
            "note": self.note,
            "matched": s.matched if s else 0,
            "unmatched": s.unmatched if s else 0,
            "unmatched_pct": json_number(frac * 100 if frac is not None else None),
            "offset_median_ms": json_number(s.offset_median_ms if s else None),
            "offset_p95_ms": json_number(s.offset_p95_ms if s else None),
            "drift_ppm": json_number(s.drift_ppm if s else None),
            "skew": _jsonable(asdict(s)) if s else None,
        }


@dataclass(frozen=True)
class MotionAudit:
    """Camera-IMU offset from motion; `estimate` is None when it was not attempted (see `reason`)."""

    recording: str
    camera: str
    imu: str
    estimate: OffsetEstimate | None
    reason: str
    level: Severity

    def to_dict(self) -> dict[str, Any]:
        e = self.estimate
        offset = e.offset_s if e else None
        uncertainty = e.uncertainty_s if e else None
        return {
            "recording": self.recording,
            "camera": self.camera,
            "imu": self.imu,
            "level": self.level.name,
            "offset_ms": json_number(offset * 1e3 if offset is not None else None),
            "uncertainty_ms": json_number(uncertainty * 1e3 if uncertainty is not None else None),
            "confidence": e.confidence if e else 0.0,
            "confident": e.confident if e else False,
            "correlation": json_number(e.correlation if e else None),
            "n_frames": e.n_frames if e else 0,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class RecordingAudit:
    """Everything the audit found in one recording."""

    path: str
    kind: str
    start_time_ns: int
    end_time_ns: int
    messages: int  # in the recording
    messages_read: int
    topic_types: Mapping[str, tuple[str, int]]  # topic -> (type, count)
    topics: tuple[TopicAudit, ...]
    pairs: tuple[PairAudit, ...]
    motion_offsets: tuple[MotionAudit, ...]
    skipped: tuple[SkippedTopic, ...]
    findings: tuple[AuditFinding, ...]

    @property
    def level(self) -> Severity:
        return max((f.level for f in self.findings), default=Severity.OK)

    @property
    def duration_s(self) -> float:
        return (self.end_time_ns - self.start_time_ns) / NS_PER_S

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "start_time_ns": self.start_time_ns,
            "end_time_ns": self.end_time_ns,
            "duration_s": self.duration_s,
            "messages": self.messages,
            "messages_read": self.messages_read,
            "topics": {t: {"type": ty, "count": n} for t, (ty, n) in self.topic_types.items()},
            "skipped_topics": [
                {"topic": s.topic, "type": s.msgtype, "reason": s.reason} for s in self.skipped
            ],
            "level": self.level.name,
        }


@dataclass(frozen=True)
class AuditResult:
    """The audit of all recordings; `to_json_dict` is what `--json` writes."""

    recordings: tuple[RecordingAudit, ...]

    @property
    def findings(self) -> tuple[AuditFinding, ...]:
        return tuple(f for r in self.recordings for f in r.findings)

    @property
    def worst_level(self) -> Severity:
        return max((r.level for r in self.recordings), default=Severity.OK)

    def failed(self, fail_on: Severity = Severity.ERROR) -> bool:
        return self.worst_level >= fail_on

    def to_json_dict(self, fail_on: Severity = Severity.ERROR) -> dict[str, Any]:
        return {
            "schema": AUDIT_SCHEMA,
            "worst_level": self.worst_level.name,
            "fail_on": fail_on.name,
            "failed": self.failed(fail_on),
            "recordings": [r.to_dict() for r in self.recordings],
            "topics": [t.to_dict() for r in self.recordings for t in r.topics],
            "pairs": [p.to_dict() for r in self.recordings for p in r.pairs],
            "motion_offsets": [m.to_dict() for r in self.recordings for m in r.motion_offsets],
            "findings": [f.to_dict() for f in self.findings],
        }


def _jsonable(d: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, float):
            out[key] = json_number(value)
        elif isinstance(value, tuple):
            out[key] = [json_number(v) if isinstance(v, float) else v for v in value]
        else:
            out[key] = value
    return out
