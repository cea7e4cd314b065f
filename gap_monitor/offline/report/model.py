"""What `gap-monitor report` found, as data: settings, the recordings read, per stream its samples,
scores and alarms, per feature its values against the training statistics, the collection
targets, the snapshot catalogue and the audit. Built by `analysis.build_report`; rendered by
`to_json` and `gap_monitor.render.report_html`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gap_monitor.core.conditions.profile import AlarmCalibration, FeatureStats, Profile
from gap_monitor.core.conditions.scoring import MAX_SCORE, format_value
from gap_monitor.core.conditions.settings import ConditionSettings
from gap_monitor.core.units import NS_PER_S
from gap_monitor.errors import InputError
from gap_monitor.offline.audit import AuditResult
from gap_monitor.offline.report.words import duration, percent, readable_unit

__all__ = [
    "NS_PER_S",
    "AlarmEpisode",
    "BoolArray",
    "CollectionTarget",
    "FeatureReport",
    "FloatArray",
    "IntArray",
    "RecordingInfo",
    "Report",
    "ReportInputError",
    "ReportSettings",
    "SnapshotEntry",
    "SnapshotTrigger",
    "StreamReport",
    "TargetFeature",
    "TopicTrace",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class ReportInputError(InputError):
    """A profile, recording, config or snapshot folder the report cannot use (exit code 2)."""


@dataclass(frozen=True)
class ReportSettings:
    """How the report measures and judges. The defaults are what `gap-monitor report` uses."""

    conditions: ConditionSettings | None = None  # None: from the config, else the profile
    uncalibrated_threshold: float = 4.0  # score threshold for a stream the profile has no alarm for
    min_share: float = 0.005  # persistent novel share of a stream's samples that makes a target
    group_overlap: float = 0.5  # novel-sample overlap that makes two feature sides one condition
    audit_motion: bool = True  # camera-IMU offset from motion in the audit (decodes every frame)
    histogram_bins: int = 48
    max_targets: int = 50

    def __post_init__(self) -> None:
        checks: list[tuple[str, float, float, float]] = [
            ("uncalibrated_threshold", self.uncalibrated_threshold, 0.0, MAX_SCORE),
            ("min_share", self.min_share, 0.0, 1.0),
            ("group_overlap", self.group_overlap, 0.0, 1.0),
        ]
        for name, value, low, high in checks:
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not (math.isfinite(value) and low < value <= high)
            ):
                raise ValueError(f"{name}: {value!r}: a number in ({low:g}, {high:g}]")
        for name, number, low_int, high_int in (
            ("histogram_bins", self.histogram_bins, 4, 1000),
            ("max_targets", self.max_targets, 1, 10_000),
        ):
            if isinstance(number, bool) or not isinstance(number, int) or not low_int <= number <= high_int:
                raise ValueError(f"{name}: {number!r}: an integer in [{low_int}, {high_int}]")
        if not isinstance(self.audit_motion, bool):
            raise ValueError(f"audit_motion: {self.audit_motion!r}: true or false")


@dataclass(frozen=True)
class RecordingInfo:
    """One deployment recording as the feature pass read it."""

    path: str
    kind: str
    start_time_ns: int
    end_time_ns: int
    messages: int  # in the recording
    messages_read: int  # by the feature pass
    malformed: Mapping[str, int]  # topic -> messages features could not be computed from

    @property
    def duration_s(self) -> float:
        return (self.end_time_ns - self.start_time_ns) / NS_PER_S


@dataclass(frozen=True, eq=False)
class FeatureReport:
    """One feature of one stream: training statistics against the deployment's values."""

    name: str
    unit: str
    training: FeatureStats
    values: FloatArray  # deployment values, one per stream sample (NaN when missing)
    scores: FloatArray  # the feature's own score per sample (module notes)
    novel_below: BoolArray  # persistent novel samples below p1
    novel_above: BoolArray

    @property
    def deployment_count(self) -> int:
        return int(np.isfinite(self.values).sum())

    def _share(self, mask: BoolArray) -> float | None:
        n = self.deployment_count
        return float(mask.sum()) / n if n else None

    @property
    def below_share(self) -> float | None:
        """Share of the deployment samples below the training p1."""
        return self._share(self.values < self.training.p1)

    @property
    def above_share(self) -> float | None:
        return self._share(self.values > self.training.p99)

    @property
    def outside_share(self) -> float | None:
        below, above = self.below_share, self.above_share
        return None if below is None or above is None else below + above

    def deployment_quantiles(self) -> dict[str, float | None]:
        finite = self.values[np.isfinite(self.values)]
        if finite.size == 0:
            return {"p1": None, "p50": None, "p99": None, "min": None, "max": None}
        p1, p50, p99 = (float(v) for v in np.quantile(finite, [0.01, 0.5, 0.99]))
        return {"p1": p1, "p50": p50, "p99": p99, "min": float(np.min(finite)), "max": float(np.max(finite))}


@dataclass(frozen=True)
class AlarmEpisode:
    """The stream's calibrated alarm active from `start_ns` (it fired) to `end_ns` (cleared, or
    the last sample when `open`)."""

    stream: str
    recording: int  # index into Report.recordings
    start_ns: int
    end_ns: int
    peak_score: float
    description: str  # StreamScore.describe() when it fired
    open: bool


@dataclass(frozen=True, eq=False)
class StreamReport:
    """One profile stream over the deployment: its feature samples, scores and alarms."""

    name: str  # profile stream name (the topic)
    topic: str
    modality: str
    msgtype: str | None
    status: str  # "scored", "absent" or "incompatible"
    note: str
    threshold: float
    threshold_source: str  # "calibrated" or "default"
    alarm: AlarmCalibration | None
    features: tuple[FeatureReport, ...]
    times_ns: IntArray  # log time of each feature sample
    recording_index: IntArray
    scores: FloatArray  # the ConditionMonitor's stream score per sample
    alarm_active: BoolArray
    episodes: tuple[AlarmEpisode, ...]
    malformed: int
    observed_s: float  # time the stream yielded samples (sum over recordings)

    @property
    def samples(self) -> int:
        return int(self.times_ns.size)

    def feature(self, name: str) -> FeatureReport:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"feature {name!r} is not in stream {self.name!r}")


@dataclass(frozen=True)
class TargetFeature:
    """One side of one feature outside the training range (module notes: the criterion)."""

    stream: str
    feature: str
    side: str  # "below" or "above"
    cut: float  # the X of "feature below X"
    unit: str
    edge: float  # the training p1 (below) or p99 (above)
    deployment_share: float  # share of the stream's samples beyond the cut
    training_share: float  # share of the training samples beyond the cut (from the histogram)
    novel_share: float  # share of persistent novel samples
    severity: float  # median score of the persistent novel samples
    priority: float
    median_novel_value: float

    def phrase(self) -> str:
        """``mean_luminance below 58``; the unit only when it reads as one."""
        unit = f" {self.unit}" if readable_unit(self.unit) else ""
        return f"{self.feature} {self.side} {format_value(self.cut)}{unit}"


@dataclass(frozen=True)
class CollectionTarget:
    """A condition to record training data under: the lead feature side and the ones that coincide."""

    rank: int
    lead: TargetFeature
    related: tuple[TargetFeature, ...]
    episodes: tuple[tuple[int, int, int], ...]  # (recording index, start ns, end ns)
    snapshots: tuple[str, ...]  # names of snapshots overlapping the episodes
    observed_s: float  # time the stream was observed in the deployment

    @property
    def stream(self) -> str:
        return self.lead.stream

    def text(self) -> str:
        """``/cam: mean_luminance below 58: 18 % of deployment time, 0.2 % of training``."""
        lead = self.lead
        out = (
            f"{lead.stream}: {lead.phrase()}: {percent(lead.deployment_share)} of deployment time "
            f"({duration(lead.deployment_share * self.observed_s)} of {duration(self.observed_s)} "
            f"observed), {percent(lead.training_share)} of training"
        )
        if self.related:
            out += "; with " + ", ".join(r.phrase() for r in self.related[:4])
            if len(self.related) > 4:
                out += f" and {len(self.related) - 4} more"
        return out


@dataclass(frozen=True)
class SnapshotTrigger:
    """Why a snapshot was taken: one trigger from its trigger.json."""

    time_ns: int
    kind: str
    reason: str
    source: str
    top: tuple[str, ...]  # the top features in words (FeatureScore.describe)


@dataclass(frozen=True)
class SnapshotEntry:
    """One snapshot folder of the catalogue: when, why, how long and how big."""

    name: str
    path: str
    start_ns: int | None
    end_ns: int | None
    size_bytes: int
    message_count: int | None
    truncated: bool
    triggers: tuple[SnapshotTrigger, ...]
    recording: int | None = None  # index of the deployment recording it falls in
    problem: str = ""  # why trigger.json could not be read (the entry is still listed)

    @property
    def time_ns(self) -> int | None:
        """When it was triggered: the first trigger's time."""
        return self.triggers[0].time_ns if self.triggers else self.start_ns

    @property
    def duration_s(self) -> float | None:
        if self.start_ns is None or self.end_ns is None:
            return None
        return (self.end_ns - self.start_ns) / NS_PER_S


@dataclass(frozen=True, eq=False)
class TopicTrace:
    """What the feature pass saw of one topic in one recording, for the health and skew lanes."""

    topic: str
    recording: int
    first_ns: int
    last_ns: int
    count: int
    gaps: tuple[tuple[int, int], ...]  # (from, to) log times of arrival gaps
    stamps: IntArray | None  # header stamps, kept for the topics of audited pairs


@dataclass(frozen=True, eq=False)
class Report:
    """Everything `gap-monitor report` found; `write` renders it."""

    profile: Profile
    profile_path: str
    settings: ReportSettings
    conditions: ConditionSettings
    conditions_source: str
    recordings: tuple[RecordingInfo, ...]
    streams: tuple[StreamReport, ...]
    targets: tuple[CollectionTarget, ...]
    snapshots: tuple[SnapshotEntry, ...]
    audit: AuditResult
    unprofiled: tuple[tuple[str, str], ...]  # sensor topics of the recordings the profile lacks
    traces: tuple[TopicTrace, ...]
    generated_ns: int
    build_seconds: float

    def stream(self, name: str) -> StreamReport:
        for s in self.streams:
            if s.name == name:
                return s
        raise KeyError(f"stream {name!r} is not in the report (streams: {[s.name for s in self.streams]})")

    def explains(self, episode: AlarmEpisode) -> bool:
        """Whether a collection target of the episode's stream overlaps it in time; an alarm no
        target explains comes from an unusual combination, no single feature far enough out."""
        return any(
            t.stream == episode.stream
            and rec == episode.recording
            and start <= episode.end_ns
            and end >= episode.start_ns
            for t in self.targets
            for rec, start, end in t.episodes
        )
