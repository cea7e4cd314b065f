"""`gap-monitor report`: how a deployment's conditions compare with the training profile, as one
self-contained HTML page (plots are inline SVG) plus `report.json` beside it.

What is measured. Every deployment recording is streamed once through the live feature path
(`conditions.StreamConditions`: images decimated by header stamp before they are decoded, IMU /
joint / wrench samples in sliding windows) for each stream of the profile (profile streams are
keyed by topic), and every feature dict goes through a `scoring.ConditionMonitor` on the log
(receipt) clock, as the node scores live. The same pass notes message arrivals (gaps in the health
lanes) and the header stamps of the topic pairs the audit checks (skew over time). The sync audit
itself is `audit.run_audit` over the same recordings (its own pass: it reads header topics only,
plus every camera frame when the camera-IMU motion offset is on).

The feature settings (image rate, window, hop) must match the ones the profile was built with;
they come from `ReportSettings.conditions`, else the `--config` file's `conditions` section, else
the profile itself (a calibrated alarm records the rate it scores at: the image rate for cameras,
1 / hop for windowed streams), else the defaults.

Training range. A feature's training range is its profile p1-p99 (the 1st to 99th percentile of
the training samples); data like the training data falls outside it about 2 % of the time (1 % on
each side). Shares are shares of a stream's feature samples, which the conditions layer yields
evenly in time (one per image at the image rate, one per hop for windows), so they are shares of
the time the stream was flowing.

Collection targets (the criterion). A deployment sample of a feature is *novel* on one side when
it is outside the training range on that side and the feature alone would take the stream's score
over the calibrated alarm threshold T of the profile: its score -log10(min(1, 2 m p)), with p the
two-sided tail probability of the monitor's own tail model (`scoring.TailTable`) and m the stream's
scored features (the Bonferroni factor of the stream score), is at least T. A stream without a
calibrated alarm uses `ReportSettings.uncalibrated_threshold` (said in the report). Novel samples
count only when they persist as the alarm requires: at least fire_k of fire_n consecutive samples
(the calibration's, default 3 of 5) are novel on that side. Since T is set so that held-out
training data exceeds it at most at the calibrated false-alarm rate, a feature side is a collection
target when its persistent novel samples cover at least `min_share` of the stream's samples: more
than a calibrated profile lets in-distribution data do. The sentence a data team acts on names a
cut X: on the low side the least extreme persistent novel value, rounded outward to a round number
and never beyond p1 (mirrored on the high side), with the deployment share beyond X and the
training share beyond X read from the profile's histogram (uniform within each bin).

Severity is the median score of the persistent novel samples. Targets are ranked by
priority = novel share x min(1, severity / (2 T)): the time a condition is certainly outside the
training data, discounted by up to half for conditions only just past the threshold; ties go to
the feature registry's order, which lists the primary features first. Feature sides of the same
stream whose novel samples coincide (overlap of at least `group_overlap` of the smaller set) are
one condition: the highest-priority one names it, the others are listed with it.

`profile compare A B` compares two profiles without recordings: per feature, the overlap of the two
distributions (sum over common bins of the smaller share, both histograms uniform within a bin) and
the share of B outside A's p1-p99 estimated from B's histogram, ranked by that share. Shares read
from a histogram (this one, and the training share of a target's cut) are kept within the bounds
the stored quantiles imply: otherwise an atom (an integer level, a saturated value) at a bin edge
would be spread over its whole bin.
"""

from __future__ import annotations

import html
import json
import math
import os
import time
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gap_monitor.core.conditions.features import FEATURE_SPECS, JOINT_SEPARATOR
from gap_monitor.core.conditions.feed import ConditionError, ConditionSettings, StreamConditions
from gap_monitor.core.conditions.profile import (
    AlarmCalibration,
    FeatureStats,
    Profile,
    ProfileError,
    StreamProfile,
)
from gap_monitor.core.conditions.scoring import (
    MAX_SCORE,
    ConditionMonitor,
    FeatureScore,
    MonitorUpdate,
    TailTable,
    format_value,
)
from gap_monitor.core.config.model import (
    COMPRESSED_IMAGE_TYPE,
    IMAGE_TYPE,
    MonitorConfig,
)
from gap_monitor.core.events import Severity
from gap_monitor.core.io import cdr
from gap_monitor.core.io.recordings import RecordingError, open_recording
from gap_monitor.core.timing.skew import nearest_offsets
from gap_monitor.offline.audit import (
    AuditInputError,
    AuditResult,
    AuditSettings,
    PairAudit,
    TopicAudit,
    run_audit,
)
from gap_monitor.offline.report.histograms import common_edges, distribution_grid, rebin, share_below
from gap_monitor.offline.report.to_json import comparison_json, feature_plot_id, report_json
from gap_monitor.offline.report.words import (
    CRITERION,
    RANGE_NAME,
    duration,
    percent,
    readable_unit,
)

__all__ = [
    "AlarmEpisode",
    "CollectionTarget",
    "FeatureComparison",
    "FeatureReport",
    "ProfileComparison",
    "RecordingInfo",
    "Report",
    "ReportInputError",
    "ReportSettings",
    "SnapshotEntry",
    "SnapshotTrigger",
    "StreamReport",
    "TargetFeature",
    "build_report",
    "compare_profiles",
    "distribution_svg",
    "load_snapshots",
    "persistent",
    "round_cut",
    "share_below",
    "timeline_svg",
]


NS = 1_000_000_000
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
ProgressCallback = Callable[[str, int, int], None]

_PROGRESS_EVERY = 512
_GAP_PERIODS = 3.0  # an arrival interval longer than this many periods is drawn as a gap
_DEFAULT_FIRE = (3, 5)
_TYPES_OF_MODALITY = {
    "camera": (IMAGE_TYPE, COMPRESSED_IMAGE_TYPE),
    "depth": (IMAGE_TYPE, COMPRESSED_IMAGE_TYPE),
    "imu": ("sensor_msgs/msg/Imu",),
    "joints": ("sensor_msgs/msg/JointState",),
    "wrench": ("geometry_msgs/msg/WrenchStamped",),
}
_SENSOR_TYPES = frozenset(t for types in _TYPES_OF_MODALITY.values() for t in types)


class ReportInputError(Exception):
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


# ----------------------------------------------------------------------------------------------
# Result types


@dataclass(frozen=True)
class RecordingInfo:
    path: str
    kind: str
    start_time_ns: int
    end_time_ns: int
    messages: int  # in the recording
    messages_read: int  # by the feature pass
    malformed: Mapping[str, int]  # topic -> messages features could not be computed from

    @property
    def duration_s(self) -> float:
        return (self.end_time_ns - self.start_time_ns) / NS


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
    time_ns: int
    kind: str
    reason: str
    source: str
    top: tuple[str, ...]  # the top features in words (FeatureScore.describe)


@dataclass(frozen=True)
class SnapshotEntry:
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
        return (self.end_ns - self.start_ns) / NS


@dataclass(frozen=True, eq=False)
class _TopicTrace:
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
    traces: tuple[_TopicTrace, ...]
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

    def to_html(self) -> str:
        return _report_html(self)

    def write(self, html_path: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write the HTML and `<stem>.json` beside it (each atomically); returns both paths."""
        target = Path(html_path)
        json_path = target.with_suffix(".json")
        _write_atomic(json_path, json.dumps(report_json(self), indent=1, allow_nan=False) + "\n")
        _write_atomic(target, self.to_html())
        return target, json_path


# ----------------------------------------------------------------------------------------------
# Building


def build_report(
    profile: Profile | str | os.PathLike[str],
    deployments: Sequence[str | os.PathLike[str]],
    *,
    snapshots: str | os.PathLike[str] | None = None,
    config: MonitorConfig | None = None,
    settings: ReportSettings | None = None,
    progress: ProgressCallback | None = None,
) -> Report:
    """Measure the deployment recordings against the profile (module notes).

    Raises ReportInputError for an unreadable profile, recording or snapshot folder."""
    started = time.monotonic()
    settings = settings or ReportSettings()
    if not deployments:
        raise ReportInputError("no deployment recordings given")
    profile_path = ""
    if not isinstance(profile, Profile):
        profile_path = str(profile)
        if not Path(profile_path).is_file():
            raise ReportInputError(f"profile {profile_path}: no such file")
        try:
            profile = Profile.load(profile_path)
        except ProfileError as exc:
            raise ReportInputError(str(exc)) from exc
    conditions, conditions_source = _condition_settings(profile, config, settings)
    snapshot_entries = load_snapshots(snapshots) if snapshots is not None else []
    try:
        audit = run_audit(
            deployments,
            config=config,
            settings=AuditSettings(estimate_motion=settings.audit_motion),
            progress=None if progress is None else (lambda label, d, t: progress(f"audit {label}", d, t)),
        )
    except AuditInputError as exc:
        raise ReportInputError(str(exc)) from exc
    periods = _audit_periods(audit, config)
    pair_topics = {t for r in audit.recordings for p in r.pairs for t in (p.a, p.b)}
    monitor = ConditionMonitor(profile)
    collectors = {name: _StreamCollector(name, stream) for name, stream in profile.streams.items()}
    recordings: list[RecordingInfo] = []
    traces: list[_TopicTrace] = []
    unprofiled: dict[str, str] = {}
    for index, path in enumerate(deployments):
        info, rec_traces = _feature_pass(
            index,
            path,
            profile,
            config,
            conditions,
            monitor,
            collectors,
            periods,
            pair_topics,
            unprofiled,
            progress,
        )
        recordings.append(info)
        traces.extend(rec_traces)
    streams = tuple(c.finish(settings) for c in collectors.values())
    snapshot_entries = [_place_snapshot(s, recordings) for s in snapshot_entries]
    targets = _collection_targets(streams, settings, snapshot_entries)
    return Report(
        profile=profile,
        profile_path=profile_path,
        settings=settings,
        conditions=conditions,
        conditions_source=conditions_source,
        recordings=tuple(recordings),
        streams=streams,
        targets=targets,
        snapshots=tuple(snapshot_entries),
        audit=audit,
        unprofiled=tuple(sorted(unprofiled.items())),
        traces=tuple(traces),
        generated_ns=time.time_ns(),
        build_seconds=time.monotonic() - started,
    )


def _condition_settings(
    profile: Profile, config: MonitorConfig | None, settings: ReportSettings
) -> tuple[ConditionSettings, str]:
    if settings.conditions is not None:
        return settings.conditions, "given settings"
    if config is not None:
        c = config.conditions
        return (
            ConditionSettings(
                image_rate_hz=c.image_rate_hz, window_s=c.window_s, hop_s=c.hop_s, near_m=c.near_m
            ),
            "the --config file's conditions section",
        )
    image_rates = {
        round(s.alarm.frame_rate_hz, 6)
        for s in profile.streams.values()
        if s.alarm is not None and s.alarm.frame_rate_hz > 0 and s.modality in ("camera", "depth")
    }
    hop_rates = {
        round(s.alarm.frame_rate_hz, 6)
        for s in profile.streams.values()
        if s.alarm is not None and s.alarm.frame_rate_hz > 0 and s.modality not in ("camera", "depth")
    }
    base = ConditionSettings()
    found = []
    if len(image_rates) == 1:
        base = replace(base, image_rate_hz=float(next(iter(image_rates))))
        found.append(f"image rate {base.image_rate_hz:g} Hz")
    if len(hop_rates) == 1:
        hop = 1.0 / next(iter(hop_rates))
        if hop <= base.window_s:
            base = replace(base, hop_s=hop)
            found.append(f"hop {base.hop_s:g} s")
    if found:
        return base, "the profile's calibrated alarm rates (" + ", ".join(found) + "); the rest defaults"
    return base, "defaults (no --config, and the profile records no rates)"


def _audit_periods(audit: AuditResult, config: MonitorConfig | None) -> dict[str, float]:
    """Expected period (ns) per topic: the config's rate, else the audit's median period."""
    periods: dict[str, float] = {}
    for r in audit.recordings:
        for t in r.topics:
            if t.summary.period_median_ms and t.topic not in periods:
                periods[t.topic] = t.summary.period_median_ms * 1e6
    if config is not None:
        for s in config.streams:
            periods[s.topic] = NS / s.rate_hz
    return periods


class _StreamCollector:
    """Feature rows, scores and alarm states of one profile stream over all recordings."""

    def __init__(self, name: str, profile: StreamProfile) -> None:
        self.name = name
        self.profile = profile
        self.topic = name
        self.msgtype: str | None = None
        self.status = "absent"
        self.note = "not in the deployment recordings"
        self.names = [n for n, s in profile.features.items() if s.count > 0]
        self._index = {n: i for i, n in enumerate(self.names)}
        self.columns: list[array[float]] = [array("d") for _ in self.names]
        self.times = array("q")
        self.recording = array("q")
        self.scores = array("d")
        self.active = array("b")
        self.episodes: list[AlarmEpisode] = []
        self._open: tuple[int, int, float, str] | None = None  # (recording, start, peak, text)
        self.malformed = 0
        self.unknown: set[str] = set()

    def add(self, recording: int, time_ns: int, features: Mapping[str, float], update: MonitorUpdate) -> None:
        row = [math.nan] * len(self.names)
        for key, value in features.items():
            i = self._index.get(key)
            if i is None:
                self.unknown.add(key)
            else:
                row[i] = math.nan if value is None else float(value)
        for column, value in zip(self.columns, row, strict=True):
            column.append(value)
        self.times.append(time_ns)
        self.recording.append(recording)
        score = float(update.score.score)
        self.scores.append(score)
        alarm = update.alarm
        self.active.append(1 if alarm is not None and alarm.active else 0)
        if alarm is None:
            return
        if alarm.fired:
            self._open = (recording, time_ns, score, update.score.describe())
        elif self._open is not None:
            rec, start, peak, text = self._open
            peak = max(peak, score) if math.isfinite(score) else peak
            self._open = (rec, start, peak, text)
            if alarm.cleared:
                self.episodes.append(AlarmEpisode(self.name, rec, start, time_ns, peak, text, False))
                self._open = None

    def end_recording(self) -> None:
        if self._open is not None:
            rec, start, peak, text = self._open
            last = self.times[-1] if self.times else start
            self.episodes.append(AlarmEpisode(self.name, rec, start, last, peak, text, True))
            self._open = None

    def finish(self, settings: ReportSettings) -> StreamReport:
        alarm = self.profile.alarm
        threshold = alarm.threshold if alarm is not None else settings.uncalibrated_threshold
        fire_k, fire_n = (alarm.fire_k, alarm.fire_n) if alarm is not None else _DEFAULT_FIRE
        times = np.frombuffer(self.times, dtype=np.int64).copy() if self.times else np.zeros(0, np.int64)
        rec_index = (
            np.frombuffer(self.recording, dtype=np.int64).copy() if self.recording else np.zeros(0, np.int64)
        )
        matrix = np.full((times.size, len(self.names)), np.nan)
        for i, column in enumerate(self.columns):
            if column:
                matrix[:, i] = np.frombuffer(column, dtype=np.float64)
        stats = [self.profile.features[n] for n in self.names]
        feature_scores = _feature_scores(stats, matrix)
        features = []
        for i, name in enumerate(self.names):
            values = matrix[:, i]
            st = stats[i]
            strong = feature_scores[:, i] >= threshold
            below = _persistent_by_segment(strong & (values < st.p1), rec_index, fire_k, fire_n)
            above = _persistent_by_segment(strong & (values > st.p99), rec_index, fire_k, fire_n)
            features.append(FeatureReport(name, st.unit, st, values, feature_scores[:, i], below, above))
        if self.status == "scored" and self.unknown:
            lacking = f"features the profile lacks (ignored): {', '.join(sorted(self.unknown))}"
            self.note = "; ".join(n for n in (self.note, lacking) if n)
        return StreamReport(
            name=self.name,
            topic=self.topic,
            modality=self.profile.modality,
            msgtype=self.msgtype,
            status=self.status,
            note=self.note,
            threshold=float(threshold),
            threshold_source="calibrated" if alarm is not None else "default",
            alarm=alarm,
            features=tuple(features),
            times_ns=times,
            recording_index=rec_index,
            scores=np.frombuffer(self.scores, dtype=np.float64).copy() if self.scores else np.zeros(0),
            alarm_active=(
                np.frombuffer(self.active, dtype=np.int8).astype(bool) if self.active else np.zeros(0, bool)
            ),
            episodes=tuple(self.episodes),
            malformed=self.malformed,
            observed_s=_observed_seconds(times, rec_index),
        )


def _observed_seconds(times: IntArray, rec_index: IntArray) -> float:
    """Per recording, the span of the samples plus one median interval; summed."""
    total = 0.0
    for rec in np.unique(rec_index):
        t = times[rec_index == rec]
        if t.size == 0:
            continue
        step = float(np.median(np.diff(t))) if t.size > 1 else 0.0
        total += (float(t[-1] - t[0]) + step) / NS
    return total


def _feature_pass(
    index: int,
    path: str | os.PathLike[str],
    profile: Profile,
    config: MonitorConfig | None,
    conditions: ConditionSettings,
    monitor: ConditionMonitor,
    collectors: Mapping[str, _StreamCollector],
    periods: Mapping[str, float],
    pair_topics: set[str],
    unprofiled: dict[str, str],
    progress: ProgressCallback | None,
) -> tuple[RecordingInfo, list[_TopicTrace]]:
    try:
        rec = open_recording(path)
    except (OSError, RecordingError) as exc:
        raise ReportInputError(f"cannot read recording {path}: {exc}") from exc
    with rec:
        topics = rec.topics()
        config_topics = {s.name: s.topic for s in config.streams} if config is not None else {}
        streams: dict[str, StreamConditions] = {}
        stream_of_topic: dict[str, str] = {}
        for name, stream in profile.streams.items():
            collector = collectors[name]
            topic = name if name in topics else config_topics.get(name, name)
            topic_info = topics.get(topic)
            if topic_info is None:
                continue
            collector.topic = topic
            msgtype = topic_info.msgtype
            if msgtype not in _TYPES_OF_MODALITY.get(stream.modality, ()):
                collector.status, collector.msgtype = "incompatible", msgtype
                collector.note = f"recorded as {msgtype}: no {stream.modality} features from it"
                continue
            collector.status, collector.msgtype, collector.note = "scored", msgtype, ""
            streams[topic] = StreamConditions(stream.modality, msgtype, conditions)
            stream_of_topic[topic] = name
        for topic, topic_info in topics.items():
            if topic_info.msgtype in _SENSOR_TYPES and topic not in stream_of_topic:
                unprofiled.setdefault(topic, topic_info.msgtype)
        timed = set(streams) | {t for t in topics if t in periods} | (pair_topics & set(topics))
        watch = {t: _Arrivals(periods.get(t), keep_stamps=t in pair_topics) for t in timed}
        malformed: dict[str, int] = {}
        total = rec.message_count(timed)
        done = 0
        label = f"features {rec.path.name}"
        try:
            for msg in rec.messages(timed):
                done += 1
                if progress is not None and done % _PROGRESS_EVERY == 0:
                    progress(label, done, total)
                try:
                    stamp = cdr.header_stamp_ns(msg.data)
                except cdr.CdrError:
                    stamp = None
                watch[msg.topic].add(msg.log_time_ns, stamp)
                conditions_of_topic = streams.get(msg.topic)
                if conditions_of_topic is None:
                    continue
                try:
                    features = conditions_of_topic.on_message(stamp or msg.log_time_ns, msg.data)
                except ConditionError:
                    malformed[msg.topic] = malformed.get(msg.topic, 0) + 1
                    collectors[stream_of_topic[msg.topic]].malformed += 1
                    continue
                if features is None:
                    continue
                name = stream_of_topic[msg.topic]
                update = monitor.update(name, features, msg.log_time_ns)
                collectors[name].add(index, msg.log_time_ns, features, update)
        except RecordingError as exc:
            raise ReportInputError(f"{rec.path}: cannot read: {exc}") from exc
        if progress is not None:
            progress(label, done, total)
        for collector in collectors.values():
            collector.end_recording()
        monitor.reset()  # a new recording is a new session: the alarm starts armed
        info = RecordingInfo(
            path=str(rec.path),
            kind=rec.kind,
            start_time_ns=rec.start_time_ns,
            end_time_ns=rec.end_time_ns,
            messages=rec.message_count(),
            messages_read=done,
            malformed=malformed,
        )
        traces = [w.trace(topic, index) for topic, w in watch.items() if w.count]
    return info, traces


class _Arrivals:
    """Arrival gaps (log time) of one topic and, for pair topics, its header stamps."""

    def __init__(self, period_ns: float | None, keep_stamps: bool) -> None:
        self.gap_ns = _GAP_PERIODS * period_ns if period_ns else None
        self.stamps: array[int] | None = array("q") if keep_stamps else None
        self.first = 0
        self.last = 0
        self.count = 0
        self.gaps: list[tuple[int, int]] = []

    def add(self, log_ns: int, stamp: int | None) -> None:
        if self.count == 0:
            self.first = log_ns
        elif self.gap_ns is not None and log_ns - self.last > self.gap_ns:
            self.gaps.append((self.last, log_ns))
        self.last = log_ns
        self.count += 1
        if self.stamps is not None and stamp:
            self.stamps.append(stamp)

    def trace(self, topic: str, recording: int) -> _TopicTrace:
        stamps = None
        if self.stamps is not None:
            stamps = (
                np.sort(np.frombuffer(self.stamps, dtype=np.int64)) if self.stamps else np.zeros(0, np.int64)
            )
        return _TopicTrace(topic, recording, self.first, self.last, self.count, tuple(self.gaps), stamps)


def _feature_scores(stats: Sequence[FeatureStats], matrix: FloatArray) -> FloatArray:
    """Each feature's own score: -log10 min(1, 2 m p), the stream score it alone would give."""
    if not stats or matrix.shape[0] == 0:
        return np.zeros(matrix.shape)
    table = TailTable.from_stats(stats)
    p = table.probabilities(matrix)
    m = len(stats)
    with np.errstate(divide="ignore"):
        scores = -np.log10(np.clip(2.0 * m * p, 10.0**-MAX_SCORE, 1.0))
    return np.asarray(np.where(np.isnan(p), np.nan, scores + 0.0), dtype=np.float64)


def persistent(mask: BoolArray, fire_k: int, fire_n: int) -> BoolArray:
    """The True samples that lie in some run of `fire_n` consecutive samples holding at least
    `fire_k` True ones (the alarm's persistence rule); a series shorter than fire_n is one run."""
    size = int(mask.size)
    if size == 0:
        return np.zeros(0, dtype=bool)
    if size < fire_n:
        return mask.copy() if int(mask.sum()) >= fire_k else np.zeros(size, dtype=bool)
    cumulative = np.concatenate([[0], np.cumsum(mask, dtype=np.int64)])
    starts = np.flatnonzero(cumulative[fire_n:] - cumulative[:-fire_n] >= fire_k)
    delta = np.zeros(size + 1, dtype=np.int64)
    np.add.at(delta, starts, 1)
    np.add.at(delta, starts + fire_n, -1)
    return np.asarray(mask & (np.cumsum(delta[:-1]) > 0), dtype=bool)


def _persistent_by_segment(mask: BoolArray, rec_index: IntArray, fire_k: int, fire_n: int) -> BoolArray:
    out = np.zeros(mask.size, dtype=bool)
    for rec in np.unique(rec_index):
        where = rec_index == rec
        out[where] = persistent(mask[where], fire_k, fire_n)
    return out


# ----------------------------------------------------------------------------------------------
# Collection targets


def _registry_order(modality: str, feature: str) -> int:
    base = feature.split(JOINT_SEPARATOR, 1)[0] if modality == "joints" else feature
    for i, spec in enumerate(FEATURE_SPECS.get(modality, ())):
        if spec.name == base:
            return i
    return len(FEATURE_SPECS.get(modality, ()))


def _target_feature(
    stream: StreamReport, feature: FeatureReport, side: str, settings: ReportSettings
) -> TargetFeature | None:
    novel = feature.novel_below if side == "below" else feature.novel_above
    n = feature.deployment_count
    count = int(novel.sum())
    if n == 0 or count == 0 or count / n < settings.min_share:
        return None
    st = feature.training
    values = feature.values
    finite = values[np.isfinite(values)]
    novel_values = values[novel]
    if side == "below":
        cut = round_cut(float(np.max(novel_values)), st.p1, side)
        deployment_share = float((finite <= cut).sum()) / n
        training_share = share_below(st, cut, strict=False)
        edge = st.p1
    else:
        cut = round_cut(float(np.min(novel_values)), st.p99, side)
        deployment_share = float((finite >= cut).sum()) / n
        training_share = 1.0 - share_below(st, cut, strict=True)
        edge = st.p99
    severity = float(np.median(feature.scores[novel]))
    novel_share = count / n
    priority = novel_share * min(1.0, severity / (2.0 * stream.threshold))
    return TargetFeature(
        stream=stream.name,
        feature=feature.name,
        side=side,
        cut=float(cut),
        unit=feature.unit,
        edge=float(edge),
        deployment_share=deployment_share,
        training_share=max(0.0, min(1.0, training_share)),
        novel_share=novel_share,
        severity=severity,
        priority=priority,
        median_novel_value=float(np.median(novel_values)),
    )


def round_cut(value: float, edge: float, side: str) -> float:
    """The roundest number between `value` and halfway to the training `edge` (below: `value` <=
    edge; above: `value` >= edge), nearest to `value`; `value` itself when there is none."""
    if side == "below":
        low, high = value, value + (edge - value) / 2.0
    else:
        low, high = value - (value - edge) / 2.0, value
    if not (math.isfinite(low) and math.isfinite(high)) or not high > low:
        return value
    exponent = math.floor(math.log10(max(abs(low), abs(high), high - low))) + 1
    for e in range(exponent, exponent - 15, -1):
        for mantissa in (1.0, 0.5, 0.2):
            step = mantissa * 10.0**e
            candidate = math.ceil(low / step) * step if side == "below" else math.floor(high / step) * step
            if low <= candidate <= high:
                return float(round(candidate, 12) + 0.0)
    return value


def _collection_targets(
    streams: Sequence[StreamReport], settings: ReportSettings, snapshots: Sequence[SnapshotEntry]
) -> tuple[CollectionTarget, ...]:
    groups: list[tuple[tuple[float, int, str, int], CollectionTarget]] = []
    for stream in streams:
        candidates: list[tuple[TargetFeature, BoolArray, int]] = []
        for feature in stream.features:
            for side in ("below", "above"):
                target = _target_feature(stream, feature, side, settings)
                if target is not None:
                    mask = feature.novel_below if side == "below" else feature.novel_above
                    candidates.append((target, mask, _registry_order(stream.modality, feature.name)))
        candidates.sort(key=lambda c: (-c[0].priority, c[2], c[0].feature, c[0].side))
        used = [False] * len(candidates)
        for i, (lead, lead_mask, order) in enumerate(candidates):
            if used[i]:
                continue
            used[i] = True
            related = []
            for j in range(i + 1, len(candidates)):
                other, mask, _ = candidates[j]
                if used[j]:
                    continue
                overlap = int((lead_mask & mask).sum())
                if overlap >= settings.group_overlap * min(int(lead_mask.sum()), int(mask.sum())):
                    used[j] = True
                    related.append(other)
            episodes = _episodes(stream, lead_mask)
            names = tuple(
                s.name
                for s in snapshots
                if s.start_ns is not None
                and s.end_ns is not None
                and any(s.start_ns <= end and s.end_ns >= start for _, start, end in episodes)
            )
            key = (-lead.priority, order, stream.name, 0 if lead.side == "below" else 1)
            groups.append(
                (key, CollectionTarget(0, lead, tuple(related), episodes, names, stream.observed_s))
            )
    groups.sort(key=lambda g: g[0])
    return tuple(
        replace(target, rank=rank) for rank, (_, target) in enumerate(groups[: settings.max_targets], start=1)
    )


def _episodes(stream: StreamReport, mask: BoolArray) -> tuple[tuple[int, int, int], ...]:
    """Runs of novel samples (a gap of up to the alarm's window joins them), per recording."""
    window = stream.alarm.fire_n if stream.alarm is not None else _DEFAULT_FIRE[1]
    out = []
    for rec in np.unique(stream.recording_index):
        where = np.flatnonzero((stream.recording_index == rec) & mask)
        if where.size == 0:
            continue
        breaks = np.flatnonzero(np.diff(where) > window)
        starts = np.concatenate([[where[0]], where[breaks + 1]])
        ends = np.concatenate([where[breaks], [where[-1]]])
        out += [
            (int(rec), int(stream.times_ns[a]), int(stream.times_ns[b]))
            for a, b in zip(starts, ends, strict=True)
        ]
    return tuple(out)


# ----------------------------------------------------------------------------------------------
# Snapshots


def load_snapshots(directory: str | os.PathLike[str]) -> list[SnapshotEntry]:
    """Every complete snapshot folder (one with trigger.json, no `.tmp-` in its name) under
    `directory`, oldest first. An unreadable trigger.json is listed with the problem, not fatal.

    Raises ReportInputError when `directory` does not exist."""
    root = Path(directory)
    if not root.is_dir():
        raise ReportInputError(f"--snapshots {root}: no such folder")
    entries = []
    for trigger_file in sorted(root.rglob("trigger.json")):
        folder = trigger_file.parent
        if any(".tmp-" in part for part in folder.relative_to(root).parts) or ".tmp-" in folder.name:
            continue
        entries.append(_read_snapshot(folder, trigger_file))
    entries.sort(key=lambda e: (e.time_ns is None, e.time_ns or 0, e.name))
    return entries


def _read_snapshot(folder: Path, trigger_file: Path) -> SnapshotEntry:
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    try:
        data = json.loads(trigger_file.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        triggers = []
        for raw in data.get("triggers") or []:
            event = raw.get("event") or {}
            details = event.get("details") or {}
            top = []
            for item in details.get("top") or []:
                try:
                    top.append(
                        FeatureScore(
                            str(item["name"]),
                            float(item["value"]),
                            float(item["tail_prob"]),
                            float(item["p1"]),
                            float(item["p99"]),
                        ).describe()
                    )
                except (KeyError, TypeError, ValueError):
                    continue
            triggers.append(
                SnapshotTrigger(
                    time_ns=int(raw.get("trigger_ns", event.get("time_ns", 0))),
                    kind=str(event.get("kind", "")),
                    reason=str(event.get("reason", "")),
                    source=str(event.get("source", "")),
                    top=tuple(top),
                )
            )
        return SnapshotEntry(
            name=folder.name,
            path=str(folder),
            start_ns=_int_or_none(data.get("start_ns")),
            end_ns=_int_or_none(data.get("end_ns")),
            size_bytes=size,
            message_count=_int_or_none(data.get("message_count")),
            truncated=bool(data.get("truncated", False)),
            triggers=tuple(triggers),
        )
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        return SnapshotEntry(
            folder.name,
            str(folder),
            None,
            None,
            size,
            None,
            False,
            (),
            None,
            f"trigger.json unreadable: {exc}",
        )


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value)


def _place_snapshot(entry: SnapshotEntry, recordings: Sequence[RecordingInfo]) -> SnapshotEntry:
    t = entry.time_ns
    if t is None:
        return entry
    for i, r in enumerate(recordings):
        if r.start_time_ns <= t <= r.end_time_ns:
            return replace(entry, recording=i)
    return entry


# ----------------------------------------------------------------------------------------------
# Profile comparison


@dataclass(frozen=True)
class FeatureComparison:
    stream: str
    feature: str
    unit: str
    a: FeatureStats
    b: FeatureStats
    overlap: float  # sum over common bins of the smaller share (1: same histogram)
    below_share: float  # share of B below A's p1 (from B's histogram)
    above_share: float

    @property
    def outside_share(self) -> float:
        return self.below_share + self.above_share

    def text(self) -> str:
        parts = []
        if self.below_share > 0:
            parts.append(f"below {format_value(self.a.p1)}: {percent(self.below_share)}")
        if self.above_share > 0:
            parts.append(f"above {format_value(self.a.p99)}: {percent(self.above_share)}")
        where = f" ({', '.join(parts)})" if parts else ""
        return (
            f"{self.stream}: {self.feature}: {percent(self.outside_share)} of B outside A's {RANGE_NAME}"
            f"{where}; overlap {self.overlap:.2f}"
        )


@dataclass(frozen=True)
class ProfileComparison:
    a_label: str
    b_label: str
    a: Profile
    b: Profile
    features: tuple[FeatureComparison, ...]  # ranked: most of B outside A first
    only_in_a: tuple[str, ...]  # "stream" or "stream feature"
    only_in_b: tuple[str, ...]
    histogram_bins: int = 48

    def to_html(self) -> str:
        return _compare_html(self)

    def format_text(self, limit: int = 30) -> str:
        lines = [f"A = {self.a_label}", f"B = {self.b_label}", ""]
        lines.append(f"features ranked by the share of B outside A's {RANGE_NAME} (about 2 % if alike):")
        for i, f in enumerate(self.features[:limit], start=1):
            lines.append(f"{i:3d}. {f.text()}")
        if len(self.features) > limit:
            lines.append(f"     ... and {len(self.features) - limit} more")
        if self.only_in_a:
            lines.append("only in A: " + ", ".join(self.only_in_a))
        if self.only_in_b:
            lines.append("only in B: " + ", ".join(self.only_in_b))
        return "\n".join(lines)

    def write(self, html_path: str | os.PathLike[str]) -> tuple[Path, Path]:
        target = Path(html_path)
        json_path = target.with_suffix(".json")
        _write_atomic(json_path, json.dumps(comparison_json(self), indent=1, allow_nan=False) + "\n")
        _write_atomic(target, self.to_html())
        return target, json_path


def compare_profiles(
    a: Profile, b: Profile, a_label: str = "A", b_label: str = "B", histogram_bins: int = 48
) -> ProfileComparison:
    """How much of profile B's conditions profile A covers, per feature (module notes)."""
    rows = []
    only_a: list[str] = [s for s in a.streams if s not in b.streams]
    only_b: list[str] = [s for s in b.streams if s not in a.streams]
    for name, sa in a.streams.items():
        sb = b.streams.get(name)
        if sb is None:
            continue
        for feature, fa in sa.features.items():
            fb = sb.features.get(feature)
            if fb is None:
                only_a.append(f"{name} {feature}")
                continue
            if fa.count == 0 or fb.count == 0:
                continue
            edges = common_edges(fa, fb, histogram_bins)
            overlap = float(np.minimum(rebin(fa.histogram, edges), rebin(fb.histogram, edges)).sum())
            below = share_below(fb, fa.p1, strict=True)
            above = 1.0 - share_below(fb, fa.p99, strict=False)
            rows.append(
                FeatureComparison(
                    name,
                    feature,
                    fa.unit or fb.unit,
                    fa,
                    fb,
                    min(1.0, overlap),
                    max(0.0, below),
                    max(0.0, above),
                )
            )
        only_b += [f"{name} {f}" for f in sb.features if f not in sa.features]
    rows.sort(key=lambda r: (-r.outside_share, r.overlap, r.stream, r.feature))
    return ProfileComparison(
        a_label, b_label, a, b, tuple(rows), tuple(only_a), tuple(only_b), histogram_bins
    )


# ----------------------------------------------------------------------------------------------
# JSON


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


# ----------------------------------------------------------------------------------------------
# Dates and sizes


def _utc(ns: int | None) -> str:
    if ns is None:
        return "-"
    return datetime.fromtimestamp(ns / NS, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def _bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


# ----------------------------------------------------------------------------------------------
# SVG plotting (no dependency: a few primitives, linear scales, round ticks)


COLOURS = {
    "training": "#4c72b0",
    "deployment": "#dd8452",
    "threshold": "#c44e52",
    "alarm": "#f4c7c3",
    "snapshot": "#8172b3",
    "axis": "#444444",
    "grid": "#e5e5e5",
    "text": "#222222",
    Severity.OK.name: "#55a868",
    Severity.WARN.name: "#e1a100",
    Severity.ERROR.name: "#c44e52",
    Severity.STALE.name: "#8c8c8c",
}
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _f(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if math.isfinite(value) else "0"


class _Scale:
    """Linear map from data [d0, d1] to pixels [r0, r1]."""

    def __init__(self, d0: float, d1: float, r0: float, r1: float) -> None:
        if not d1 > d0:
            pad = max(abs(d0) * 0.05, 1e-9)
            d0, d1 = d0 - pad, d1 + pad
        self.d0, self.d1, self.r0, self.r1 = d0, d1, r0, r1

    def __call__(self, value: float) -> float:
        return self.r0 + (value - self.d0) / (self.d1 - self.d0) * (self.r1 - self.r0)

    def ticks(self, count: int = 5) -> list[float]:
        span = self.d1 - self.d0
        raw = span / max(1, count)
        magnitude = 10.0 ** math.floor(math.log10(raw))
        step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
        first = math.ceil(self.d0 / step - 1e-9) * step
        out: list[float] = []
        value = first
        while value <= self.d1 + step * 1e-9 and len(out) < 50:
            out.append(0.0 if abs(value) < step * 1e-9 else value)
            value += step
        return out


class _Svg:
    def __init__(self, plot_id: str, width: int, height: int, label: str) -> None:
        self.plot_id, self.width, self.height, self.label = plot_id, width, height, label
        self.parts: list[str] = []

    def add(self, element: str) -> None:
        self.parts.append(element)

    def line(
        self,
        x1: float,
        y1: float,
        x2: float,
        y2: float,
        stroke: str,
        width: float = 1.0,
        dash: str = "",
        title: str = "",
    ) -> None:
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        body = f"<title>{_e(title)}</title>" if title else ""
        self.add(
            f'<line x1="{_f(x1)}" y1="{_f(y1)}" x2="{_f(x2)}" y2="{_f(y2)}" stroke="{stroke}" '
            f'stroke-width="{_f(width)}"{extra}>{body}</line>'
        )

    def rect(
        self,
        x: float,
        y: float,
        w: float,
        h: float,
        fill: str,
        opacity: float = 1.0,
        title: str = "",
        cls: str = "",
    ) -> None:
        body = f"<title>{_e(title)}</title>" if title else ""
        extra = f' class="{cls}"' if cls else ""
        self.add(
            f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(max(w, 0.0))}" height="{_f(max(h, 0.0))}" '
            f'fill="{fill}" fill-opacity="{opacity:g}"{extra}>{body}</rect>'
        )

    def path(
        self,
        d: str,
        stroke: str = "none",
        fill: str = "none",
        width: float = 1.0,
        opacity: float = 1.0,
        cls: str = "",
    ) -> None:
        extra = f' class="{cls}"' if cls else ""
        self.add(
            f'<path d="{d}" stroke="{stroke}" fill="{fill}" stroke-width="{_f(width)}" '
            f'fill-opacity="{opacity:g}"{extra}/>'
        )

    def text(
        self,
        x: float,
        y: float,
        text: str,
        size: float = 11,
        anchor: str = "start",
        fill: str = COLOURS["text"],
        weight: str = "",
        rotate: bool = False,
        title: str = "",
    ) -> None:
        attrs = f' font-weight="{weight}"' if weight else ""
        if rotate:
            attrs += f' transform="rotate(-90 {_f(x)} {_f(y)})"'
        body = _e(text) + (f"<title>{_e(title)}</title>" if title else "")
        self.add(
            f'<text x="{_f(x)}" y="{_f(y)}" font-size="{size:g}" text-anchor="{anchor}" fill="{fill}"{attrs}>'
            f"{body}</text>"
        )

    def render(self) -> str:
        return (
            f'<svg class="plot" id="{_e(self.plot_id)}" width="{self.width}" height="{self.height}" '
            f'viewBox="0 0 {self.width} {self.height}" role="img" aria-label="{_e(self.label)}" '
            f'font-family="{_e(FONT)}"><title>{_e(self.label)}</title>' + "".join(self.parts) + "</svg>"
        )


def _tick_label(value: float, step: float) -> str:
    if step >= 1 and abs(value) < 1e6:
        return f"{value:.0f}"
    return format_value(value)


def _x_axis(svg: _Svg, scale: _Scale, y: float, label: str, count: int = 5) -> None:
    svg.line(scale.r0, y, scale.r1, y, COLOURS["axis"])
    ticks = scale.ticks(count)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    for t in ticks:
        x = scale(t)
        svg.line(x, y, x, y + 4, COLOURS["axis"])
        # Labels at the ends stay inside the plot.
        anchor = "end" if x > scale.r1 - 12 else "start" if x < scale.r0 - 30 else "middle"
        svg.text(x, y + 15, _tick_label(t, step), size=10, anchor=anchor)
    if label:
        svg.text((scale.r0 + scale.r1) / 2, y + 30, label, size=10.5, anchor="middle")


def _y_axis(svg: _Svg, scale: _Scale, x: float, x_end: float, label: str, count: int = 4) -> None:
    svg.line(x, scale.r0, x, scale.r1, COLOURS["axis"])
    ticks = scale.ticks(count)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    for t in ticks:
        y = scale(t)
        svg.line(x, y, x_end, y, COLOURS["grid"], 0.8)
        svg.line(x - 4, y, x, y, COLOURS["axis"])
        svg.text(x - 6, y + 3.5, _tick_label(t, step), size=10, anchor="end")
    if label:
        svg.text(x - 38, (scale.r0 + scale.r1) / 2, label, size=10.5, anchor="middle", rotate=True)


def _step_path(edges: FloatArray, shares: FloatArray, xs: _Scale, ys: _Scale, closed: bool) -> str:
    points = [f"M{_f(xs(edges[0]))},{_f(ys(0.0))}"]
    for i, share in enumerate(shares):
        y = ys(100.0 * share)
        points.append(f"L{_f(xs(edges[i]))},{_f(y)}L{_f(xs(edges[i + 1]))},{_f(y)}")
    points.append(f"L{_f(xs(edges[-1]))},{_f(ys(0.0))}")
    if closed:
        points.append("Z")
    return "".join(points)


def distribution_svg(
    plot_id: str,
    title: str,
    unit: str,
    edges: FloatArray,
    training: FloatArray,
    deployment: FloatArray,
    p1: float,
    p99: float,
    labels: tuple[str, str] = ("training", "deployment"),
    note: str = "",
) -> str:
    """Two distributions over the same bins (shares in %), with the training p1 and p99."""
    width, height = 380, 250
    left, right, top, bottom = 52, 12, 58, 46
    svg = _Svg(plot_id, width, height, f"{title}: {labels[0]} and {labels[1]} distributions")
    xs = _Scale(float(edges[0]), float(edges[-1]), left, width - right)
    peak = max(float(np.max(training, initial=0.0)), float(np.max(deployment, initial=0.0)), 1e-6)
    ys = _Scale(0.0, 100.0 * peak * 1.08, height - bottom, top)
    lo, hi = xs(max(p1, xs.d0)), xs(min(p99, xs.d1))
    svg.rect(lo, top, hi - lo, height - bottom - top, "#eef3fa", 1.0, title=f"training {RANGE_NAME}")
    _y_axis(svg, ys, left, width - right, "% of samples per bin")
    svg.path(
        _step_path(edges, training, xs, ys, True),
        stroke=COLOURS["training"],
        fill=COLOURS["training"],
        width=1.2,
        opacity=0.35,
        cls="training",
    )
    svg.path(
        _step_path(edges, deployment, xs, ys, False),
        stroke=COLOURS["deployment"],
        width=2.0,
        cls="deployment",
    )
    marks = [(v, n) for v, n in ((p1, "p1"), (p99, "p99")) if xs.d0 <= v <= xs.d1]
    for value, name in marks:
        x = xs(value)
        svg.line(
            x,
            top,
            x,
            height - bottom,
            COLOURS["axis"],
            1.0,
            "4 3",
            f"training {name} = {format_value(value)}",
        )

    def label_x(x: float) -> float:
        return min(max(x, left + 16), width - right - 16)

    if len(marks) == 2 and xs(p99) - xs(p1) < 24:
        x = label_x((xs(p1) + xs(p99)) / 2)
        svg.text(x, top - 3, "p1-p99", size=9.5, anchor="middle", fill=COLOURS["axis"])
    else:
        for value, name in marks:
            svg.text(label_x(xs(value)), top - 3, name, size=9.5, anchor="middle", fill=COLOURS["axis"])
    _x_axis(svg, xs, height - bottom, unit or "value", 4)
    svg.text(8, 14, title, size=12, weight="600")
    if note:
        svg.text(8, 28, note, size=10, fill="#555555")
    # Legend: one row under the title.
    svg.rect(8, 36, 12, 8, COLOURS["training"], 0.45)
    svg.text(24, 44, labels[0], size=10)
    svg.line(92, 40, 106, 40, COLOURS["deployment"], 2.0)
    svg.text(110, 44, labels[1], size=10)
    svg.line(186, 40, 198, 40, COLOURS["axis"], 1.0, "4 3")
    svg.text(202, 44, f"training {RANGE_NAME} (shaded)", size=10)
    return svg.render()


def _envelope(
    x: FloatArray, values: FloatArray, x0: float, x1: float, both: bool = False
) -> list[tuple[float, float]]:
    """(x, y) points: all of them when few, else per pixel column its maximum (scores: peaks
    survive) or, with `both`, its minimum and maximum (a signed quantity such as a skew)."""
    keep = np.isfinite(values)
    x, v = x[keep], values[keep]
    columns = max(1, int(x1 - x0))
    if x.size <= 2 * columns:
        return [(float(a), float(b)) for a, b in zip(x, v, strict=True)]
    cols = np.clip(np.floor(x - x0), 0, columns).astype(np.int64)
    order = np.argsort(cols, kind="stable")
    cols, x, v = cols[order], x[order], v[order]
    starts = np.flatnonzero(np.concatenate([[True], np.diff(cols) > 0]))
    centres = np.add.reduceat(x, starts) / np.diff(np.concatenate([starts, [x.size]]))
    peaks = np.maximum.reduceat(v, starts)
    if not both:
        return [(float(a), float(b)) for a, b in zip(centres, peaks, strict=True)]
    lows = np.minimum.reduceat(v, starts)
    out: list[tuple[float, float]] = []
    for c, lo, hi in zip(centres, lows, peaks, strict=True):
        out += [(float(c), float(lo)), (float(c), float(hi))]
    return out


def timeline_svg(report: Report, rec_index: int) -> str:
    """One recording's lanes: novelty score per stream, stream health per topic, skew per pair,
    with alarms and snapshots marked; x is seconds since the recording's start."""
    rec = report.recordings[rec_index]
    width = 1120
    left, right = 230, 20
    t0 = rec.start_time_ns
    xs = _Scale(0.0, max(rec.duration_s, 1e-3), left, width - right)

    def x_of(ns: int) -> float:
        return xs((ns - t0) / NS)

    def x_arr(ns: IntArray) -> FloatArray:
        return np.asarray(
            xs.r0 + ((ns - t0) / NS - xs.d0) / (xs.d1 - xs.d0) * (xs.r1 - xs.r0), dtype=np.float64
        )

    lanes: list[tuple[str, int, Callable[[_Svg, float, float], None], str]] = []
    for s in report.streams:
        sel = s.recording_index == rec_index
        if not sel.any():
            continue
        lanes.append((s.name, 78, _score_lane(s, sel, x_of, x_arr, xs), f"novelty score of {s.name}"))
    audit_rec = next((r for r in report.audit.recordings if r.path == rec.path), None)
    traces = {t.topic: t for t in report.traces if t.recording == rec_index}
    if audit_rec is not None:
        for topic_audit in audit_rec.topics:
            findings = [f.message for f in audit_rec.findings if f.subject == topic_audit.topic]
            lanes.append(
                (
                    topic_audit.name,
                    20,
                    _health_lane(topic_audit, traces.get(topic_audit.topic), x_of, findings),
                    f"health of {topic_audit.name}",
                )
            )
        for pair in audit_rec.pairs:
            ta, tb = traces.get(pair.a), traces.get(pair.b)
            if ta is None or tb is None or ta.stamps is None or tb.stamps is None:
                continue
            if ta.stamps.size == 0 or tb.stamps.size == 0:
                continue
            # Stamps on another clock (sim time in a wall-clock log) are drawn where they arrived.
            shift = ta.first_ns - int(ta.stamps[0])
            shift = shift if abs(shift) > NS else 0
            lanes.append(
                (
                    f"skew {pair.a} - {pair.b}",
                    56,
                    _skew_lane(pair, ta.stamps + shift, tb.stamps + shift, x_of, x_arr, xs.r1),
                    f"skew {pair.name}",
                )
            )
    top = 34
    height = top + sum(h + 10 for _, h, _, _ in lanes) + 44
    svg = _Svg(f"timeline-{rec_index}", width, height, f"timeline of {rec.path}")
    svg.text(
        8,
        16,
        f"{Path(rec.path).name}: {rec.duration_s:.1f} s from {_utc(rec.start_time_ns)}",
        size=12,
        weight="600",
    )
    y = float(top)
    for label, h, draw, _ in lanes:
        short = label if len(label) <= 34 else "…" + label[-33:]
        svg.text(left - 8, y + min(h, 20) / 2 + 4, short, size=10.5, anchor="end", title=label)
        draw(svg, y, y + h)
        y += h + 10
    _x_axis(svg, xs, y, "seconds since the start of the recording", 10)
    # Snapshots: a line across every lane.
    for n, snap in enumerate(report.snapshots, start=1):
        if snap.recording != rec_index or snap.time_ns is None:
            continue
        x = x_of(snap.time_ns)
        why = snap.triggers[0].reason if snap.triggers else snap.name
        svg.line(x, top - 6, x, y, COLOURS["snapshot"], 1.4, "2 2", f"snapshot {snap.name}: {why}")
        svg.text(
            x + 2,
            top - 8,
            f"S{n}",
            size=10,
            fill=COLOURS["snapshot"],
            weight="600",
            title=f"snapshot {snap.name}: {why}",
        )
    return svg.render()


def _score_lane(
    s: StreamReport,
    sel: BoolArray,
    x_of: Callable[[int], float],
    x_arr: Callable[[IntArray], FloatArray],
    xs: _Scale,
) -> Callable[[_Svg, float, float], None]:
    def draw(svg: _Svg, y0: float, y1: float) -> None:
        times, scores = s.times_ns[sel], s.scores[sel]
        finite = scores[np.isfinite(scores)]
        top_score = float(np.max(finite)) if finite.size else 0.0
        ymax = max(1.5 * s.threshold, min(top_score * 1.05, 4.0 * s.threshold), 1.0)
        ys = _Scale(0.0, ymax, y1, y0)
        svg.rect(xs.r0, y0, xs.r1 - xs.r0, y1 - y0, "#fafafa")
        # Alarm active: shaded spans.
        active = s.alarm_active[sel]
        if active.any():
            idx = np.flatnonzero(active)
            breaks = np.flatnonzero(np.diff(idx) > 1)
            for a, b in zip(
                np.concatenate([[idx[0]], idx[breaks + 1]]),
                np.concatenate([idx[breaks], [idx[-1]]]),
                strict=True,
            ):
                xa, xb = x_of(int(times[a])), x_of(int(times[b]))
                svg.rect(
                    xa,
                    y0,
                    max(xb - xa, 1.5),
                    y1 - y0,
                    COLOURS["alarm"],
                    0.8,
                    title="alarm active",
                    cls="alarm",
                )
        for tick in ys.ticks(2):
            svg.text(xs.r0 - 3, ys(tick) + 3, _tick_label(tick, 1.0), size=8.5, anchor="end", fill="#777777")
        points = _envelope(x_arr(times), np.minimum(scores, ymax), xs.r0, xs.r1)
        if points:
            d = "M" + "L".join(f"{_f(x)},{_f(ys(v))}" for x, v in points)
            svg.path(d, stroke=COLOURS["training"], width=1.2, cls="score")
        yt = ys(s.threshold)
        kind = "calibrated alarm threshold" if s.threshold_source == "calibrated" else "assumed threshold"
        svg.line(
            xs.r0, yt, xs.r1, yt, COLOURS["threshold"], 1.0, "5 3", f"{kind} {format_value(s.threshold)}"
        )
        svg.text(
            xs.r1 - 2,
            yt - 3,
            f"threshold {format_value(s.threshold)}",
            size=9,
            anchor="end",
            fill=COLOURS["threshold"],
        )
        if top_score > ymax:
            svg.text(
                xs.r0 + 2,
                y0 + 9,
                f"scores above {format_value(ymax)} drawn at the top",
                size=8.5,
                fill="#777777",
            )
        for e in s.episodes:
            if e.recording != int(s.recording_index[sel][0]):
                continue
            x = x_of(e.start_ns)
            svg.path(f"M{_f(x)},{_f(y0)}l-4,-7h8z", fill=COLOURS["threshold"], cls="alarm-fired")
            svg.add(
                f"<g><title>{_e('alarm fired: ' + e.description)}</title>"
                f'<rect x="{_f(x - 5)}" y="{_f(y0 - 8)}" width="10" height="9" fill-opacity="0"/></g>'
            )

    return draw


def _health_lane(
    topic: TopicAudit, trace: _TopicTrace | None, x_of: Callable[[int], float], findings: Sequence[str]
) -> Callable[[_Svg, float, float], None]:
    def draw(svg: _Svg, y0: float, y1: float) -> None:
        level = topic.level.name
        xa, xb = x_of(topic.first_log_time_ns), x_of(topic.last_log_time_ns)
        summary = topic.summary
        rate = f"{summary.rate_hz:.1f} Hz" if summary.rate_hz else "rate -"
        tip = f"{topic.name}: {level}, {summary.total_messages} msgs, {rate}"
        if findings:
            tip += " | " + " | ".join(findings[:4])
        svg.rect(xa, y0 + 3, max(xb - xa, 1.5), y1 - y0 - 6, COLOURS[level], 0.85, title=tip, cls="health")
        if trace is not None:
            for a, b in trace.gaps:
                ga, gb = x_of(a), x_of(b)
                svg.rect(
                    ga,
                    y0,
                    max(gb - ga, 1.2),
                    y1 - y0,
                    "#222222",
                    0.9,
                    title=f"gap of {(b - a) / 1e6:.0f} ms",
                    cls="gap",
                )

    return draw


def _skew_lane(
    pair: PairAudit,
    a: IntArray,
    b: IntArray,
    x_of: Callable[[int], float],
    x_arr: Callable[[IntArray], FloatArray],
    x_end: float,
) -> Callable[[_Svg, float, float], None]:
    def draw(svg: _Svg, y0: float, y1: float) -> None:
        ref, other, sign = (a, b, 1.0) if a.size <= b.size else (b, a, -1.0)
        offsets_ms = np.asarray(sign * nearest_offsets(ref, other) / 1e6, dtype=np.float64)
        # Stamps serve as the time axis here: close enough to the log times for a timeline.
        level = pair.level.name
        low = float(min(0.0, offsets_ms.min()))
        high = float(max(0.0, offsets_ms.max()))
        ys = _Scale(low, high if high > low else low + 1.0, y1, y0)
        svg.line(x_of(int(ref[0])), ys(0.0), x_of(int(ref[-1])), ys(0.0), COLOURS["grid"], 1.0)
        points = _envelope(x_arr(ref), offsets_ms, x_arr(ref[:1])[0], x_arr(ref[-1:])[0] + 1.0, both=True)
        d = "M" + "L".join(f"{_f(x)},{_f(ys(v))}" for x, v in points)
        svg.path(d, stroke=COLOURS[level], width=1.3, cls="skew")
        med = float(np.median(offsets_ms))
        svg.text(
            x_end,
            y0 + 9,
            f"{pair.name}: median {med:+.2f} ms [{level}]",
            size=9,
            anchor="end",
            fill="#555555",
        )
        first = x_arr(ref[:1])[0]
        for tick in sorted({round(low, 3), round(high, 3)}):
            svg.text(first - 3, ys(tick) + 3, f"{tick:+.2f} ms", size=8.5, anchor="end", fill="#777777")

    return draw


# ----------------------------------------------------------------------------------------------
# HTML


_CSS = """
body{font-family:FONT_STACK;margin:0;color:#222;background:#fff}
main{max-width:1160px;margin:0 auto;padding:16px 20px 60px}
h1{font-size:22px;margin:8px 0 4px}
h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}p,li{line-height:1.45;font-size:14px}
table{border-collapse:collapse;font-size:12.5px;margin:6px 0 12px}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#666}.small{font-size:12px}
.lvl-OK{color:#2e7d32}.lvl-WARN{color:#a66f00;font-weight:600}.lvl-ERROR{color:#c62828;font-weight:700}
.grid{display:flex;flex-wrap:wrap;gap:6px}
figure{margin:0}figure.timeline{margin:8px 0 16px;overflow-x:auto}
ol.targets li{margin-bottom:6px}
code{font-size:12.5px;background:#f6f6f6;padding:0 3px}
nav a{margin-right:12px;font-size:13px}
""".replace("FONT_STACK", FONT)


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Iterable[int] = ()) -> str:
    num = set(numeric)
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(f'<td class="n">{c}</td>' if i in num else f"<td>{c}</td>" for i, c in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{_e(title)}</title>'
        f"<style>{_CSS}</style></head><body><main>{body}</main></body></html>\n"
    )


def _level(name: str) -> str:
    return f'<span class="lvl-{_e(name)}">{_e(name)}</span>'


def _report_html(report: Report) -> str:
    out: list[str] = []
    out.append("<h1>Deployment conditions against the training profile</h1>")
    out.append(
        f'<p class="muted small">generated {_utc(report.generated_ns)} in {report.build_seconds:.1f} s; '
        f"profile {_e(report.profile_path or '(in memory)')} (digest {report.profile.digest()[:12]}, "
        f"{len(report.profile.streams)} streams, built from "
        f"{', '.join(_e(s.path) for s in report.profile.sources) or 'unknown recordings'})</p>"
    )
    out.append(
        '<nav><a href="#targets">collection targets</a><a href="#timeline">timeline</a>'
        '<a href="#distributions">distributions</a><a href="#snapshots">snapshots</a>'
        '<a href="#audit">sync audit</a><a href="#method">method</a></nav>'
    )
    rows = [
        [
            _e(r.path),
            _e(r.kind),
            _utc(r.start_time_ns),
            f"{r.duration_s:.1f}",
            f"{r.messages:,}",
            f"{r.messages_read:,}",
        ]
        for r in report.recordings
    ]
    out.append("<h3>Deployment recordings</h3>")
    out.append(
        _table(["recording", "kind", "start", "duration s", "messages", "read for features"], rows, [3, 4, 5])
    )
    alarms = sum(len(s.episodes) for s in report.streams)
    out.append(
        f"<p>{len(report.targets)} collection target(s); {alarms} alarm(s) of the calibrated monitor; "
        f"sync audit: {_level(report.audit.worst_level.name)}; {len(report.snapshots)} snapshot(s).</p>"
    )
    out.append(_targets_html(report))
    out.append('<h2 id="timeline">Timeline</h2>')
    out.append(
        '<p class="small muted">Per stream: the monitor\'s novelty score (blue; -log10 p), its alarm '
        "threshold (red dashed), alarm-active spans (shaded) and alarms firing (red triangles). Per "
        "topic: the audit's level over the time it was recorded (green OK, amber WARN, red ERROR) with "
        "arrival gaps longer than three periods in black. Per audited pair: the header-stamp offset. "
        "Snapshots are the purple dashed lines S1, S2, ... (see the catalogue).</p>"
    )
    for i in range(len(report.recordings)):
        out.append(f'<figure class="timeline">{timeline_svg(report, i)}</figure>')
    out.append(_episodes_html(report))
    out.append(_distributions_html(report))
    out.append(_snapshots_html(report))
    out.append(_audit_html(report))
    out.append(_method_html(report))
    return _page("gap_monitor deployment report", "".join(out))


def _unexplained_html(report: Report) -> str:
    lines = []
    for s in report.streams:
        for e in s.episodes:
            if report.explains(e):
                continue
            rec = report.recordings[e.recording]
            at = (e.start_ns - rec.start_time_ns) / NS
            lines.append(
                f"<li>{_e(s.name)} in {_e(Path(rec.path).name)} at {at:.1f} s "
                f"for {(e.end_ns - e.start_ns) / NS:.1f} s: {_e(e.description)}</li>"
            )
    if not lines:
        return ""
    return (
        "<p>Alarms of the calibrated monitor that no single feature explains (an unusual combination "
        "of features each inside or near its range; see the distributions):</p><ul>"
        + "".join(lines)
        + "</ul>"
    )


def _targets_html(report: Report) -> str:
    out = ['<h2 id="targets">Collection targets</h2>']
    if not report.targets:
        out.append(
            "<p>No condition of the deployment lies outside the training data beyond the calibrated "
            'rate (criterion in <a href="#method">method</a>): nothing to collect for.</p>'
        )
        out.append(_unexplained_html(report))
        return "".join(out)
    out.append(
        "<p>Conditions the deployment met and the training data did not cover, most time and most "
        'severe first. Record training data under these conditions:</p><ol class="targets">'
    )
    for t in report.targets:
        snaps = (
            f' <span class="small muted">examples: {_e(", ".join(t.snapshots[:3]))}</span>'
            if t.snapshots
            else ""
        )
        out.append(f"<li>{_e(t.text())}{snaps}</li>")
    out.append("</ol>")
    rows = []
    for t in report.targets:
        lead = t.lead
        rows.append(
            [
                str(t.rank),
                _e(t.stream),
                _e(lead.phrase()),
                percent(lead.deployment_share),
                percent(lead.training_share),
                percent(lead.novel_share),
                format_value(lead.severity),
                format_value(lead.median_novel_value),
                f"{format_value(lead.edge)} ({'p1' if lead.side == 'below' else 'p99'})",
                _e(lead.unit),
                str(len(t.episodes)),
                _e(", ".join(r.phrase() for r in t.related)) or "-",
            ]
        )
    out.append(
        _table(
            [
                "#",
                "stream",
                "condition",
                "deployment",
                "training",
                "novel",
                "severity",
                "median value",
                "training edge",
                "unit",
                "episodes",
                "co-occurring",
            ],
            rows,
            [0, 3, 4, 5, 6, 7, 10],
        )
    )
    out.append(_unexplained_html(report))
    return "".join(out)


def _episodes_html(report: Report) -> str:
    rows = []
    for s in report.streams:
        for e in s.episodes:
            rec = report.recordings[e.recording]
            rows.append(
                [
                    _e(s.name),
                    _e(Path(rec.path).name),
                    f"{(e.start_ns - rec.start_time_ns) / NS:.1f}",
                    f"{(e.end_ns - e.start_ns) / NS:.1f}" + (" (open)" if e.open else ""),
                    format_value(e.peak_score),
                    _e(e.description),
                ]
            )
    if not rows:
        return "<p>The calibrated monitor raised no alarm over the deployment.</p>"
    return "<h3>Alarms</h3>" + _table(
        ["stream", "recording", "fired at s", "lasted s", "peak score", "when it fired"], rows, [2, 3, 4]
    )


def _distributions_html(report: Report) -> str:
    out = ['<h2 id="distributions">Distributions per stream and feature</h2>']
    out.append(
        f'<p class="small muted">Training (the profile\'s histogram, spread uniformly within its bins) '
        f"against the deployment (features computed from the recordings by the live path), as shares "
        f"of samples in common bins. The shaded band is the training {RANGE_NAME} range; the share "
        f"outside it is in each plot's second line (about 2 % for data like the training).</p>"
    )
    bins = report.settings.histogram_bins
    for si, s in enumerate(report.streams):
        head = f"{s.name} [{s.modality}]"
        out.append(f"<h3>{_e(head)}</h3>")
        if s.status != "scored":
            out.append(f"<p>{_e(s.status)}: {_e(s.note)}</p>")
            continue
        alarm = (
            f"alarm threshold {format_value(s.threshold)} (calibrated, {s.alarm.fire_k} of {s.alarm.fire_n})"
            if s.alarm is not None
            else f"no calibrated alarm: threshold {format_value(s.threshold)} assumed"
        )
        out.append(
            f'<p class="small">{s.samples} samples over {duration(s.observed_s)} ({_e(s.msgtype or "")}); '
            f"{alarm}; {len(s.episodes)} alarm(s); {s.malformed} malformed message(s)"
            f"{'; ' + _e(s.note) if s.note else ''}</p>"
        )
        figures = []
        rows = []
        for fi, f in enumerate(s.features):
            st = f.training
            if f.deployment_count:
                edges, training, deployment, clipped = distribution_grid(f.training, f.values, bins)
                note = (
                    f"outside {RANGE_NAME}: {percent(f.outside_share)} (below {percent(f.below_share)}, "
                    f"above {percent(f.above_share)})"
                )
                if clipped:
                    note += f"; {clipped} beyond the axis"
                figures.append(
                    "<figure>"
                    + distribution_svg(
                        feature_plot_id(si, fi),
                        f.name,
                        f.unit,
                        edges,
                        training,
                        deployment,
                        st.p1,
                        st.p99,
                        note=note,
                    )
                    + "</figure>"
                )
            q = f.deployment_quantiles()
            rows.append(
                [
                    _e(f.name),
                    _e(f.unit),
                    format_value(st.p1),
                    format_value(st.quantile("p50")),
                    format_value(st.p99),
                    "-" if q["p50"] is None else format_value(q["p50"]),
                    str(f.deployment_count),
                    percent(f.below_share),
                    percent(f.above_share),
                    percent(float(f.novel_below.sum() + f.novel_above.sum()) / f.deployment_count)
                    if f.deployment_count
                    else "-",
                ]
            )
        out.append(
            _table(
                [
                    "feature",
                    "unit",
                    "training p1",
                    "p50",
                    "p99",
                    "deployment p50",
                    "samples",
                    "below p1",
                    "above p99",
                    "novel",
                ],
                rows,
                [2, 3, 4, 5, 6, 7, 8, 9],
            )
        )
        out.append(f'<div class="grid">{"".join(figures)}</div>')
    if report.unprofiled:
        out.append("<h3>Sensor topics the profile does not cover</h3>")
        out.append(_table(["topic", "type"], [[_e(t), _e(ty)] for t, ty in report.unprofiled]))
    return "".join(out)


def _snapshots_html(report: Report) -> str:
    out = ['<h2 id="snapshots">Snapshot catalogue</h2>']
    if not report.snapshots:
        out.append("<p>No snapshots given (<code>--snapshots DIR</code>).</p>")
        return "".join(out)
    rows = []
    for n, s in enumerate(report.snapshots, start=1):
        why = "<br>".join(
            f"<b>{_e(t.kind)}</b>: {_e(t.reason)}"
            + (f'<br><span class="small">top: {_e("; ".join(t.top))}</span>' if t.top else "")
            for t in s.triggers
        ) or _e(s.problem)
        where = "outside the deployment recordings"
        if s.recording is not None and s.time_ns is not None:
            rec = report.recordings[s.recording]
            where = f"{_e(Path(rec.path).name)} at {(s.time_ns - rec.start_time_ns) / NS:.1f} s"
        rows.append(
            [
                f"S{n}",
                _utc(s.time_ns),
                where,
                why,
                "-"
                if s.duration_s is None
                else f"{s.duration_s:.1f}" + (" (truncated)" if s.truncated else ""),
                _bytes(s.size_bytes),
                "-" if s.message_count is None else str(s.message_count),
                f"<code>{_e(s.path)}</code>",
            ]
        )
    out.append(
        _table(["", "when", "where", "why", "duration s", "size", "messages", "path"], rows, [4, 5, 6])
    )
    return "".join(out)


def _audit_html(report: Report) -> str:
    out = ['<h2 id="audit">Sync audit</h2>']
    out.append(
        f"<p>From <code>gap-monitor audit</code> over the same recordings: worst level "
        f"{_level(report.audit.worst_level.name)}.</p>"
    )
    for r in report.audit.recordings:
        out.append(f"<h3>{_e(Path(r.path).name)}: {_level(r.level.name)}</h3>")
        rows = []
        for t in r.topics:
            s = t.summary
            rate = _fmt_opt(s.rate_hz, ".2f") + (f" ({s.expected_rate_hz:g})" if s.expected_rate_hz else "")
            rows.append(
                [
                    _e(t.name),
                    _e(t.msgtype.replace("/msg/", "/")),
                    str(s.total_messages),
                    rate,
                    _fmt_opt(s.period_median_ms, ".3f"),
                    _fmt_opt(s.jitter_p95_ms, ".3f"),
                    str(s.total_gaps),
                    _fmt_opt(s.latency_median_ms, ".2f"),
                    _level(t.level.name),
                ]
            )
        out.append(
            _table(
                [
                    "topic",
                    "type",
                    "count",
                    "rate Hz",
                    "period ms",
                    "jitter p95 ms",
                    "gaps",
                    "latency ms",
                    "level",
                ],
                rows,
                [2, 3, 4, 5, 6, 7],
            )
        )
        if r.pairs:
            rows = []
            for p in r.pairs:
                s2 = p.summary
                rows.append(
                    [
                        _e(p.name),
                        _e(p.source),
                        str(s2.matched) if s2 else "-",
                        _fmt_opt(s2.offset_median_ms if s2 else None, "+.3f"),
                        _fmt_opt(s2.offset_p95_ms if s2 else None, "+.3f"),
                        _fmt_opt(s2.drift_ppm if s2 else None, "+.1f"),
                        _fmt_opt(
                            s2.unmatched_fraction * 100 if s2 and s2.unmatched_fraction is not None else None,
                            ".1f",
                        ),
                        _level(p.level.name),
                    ]
                )
            out.append(
                _table(
                    [
                        "pair (offset = a - b)",
                        "source",
                        "matched",
                        "median ms",
                        "p95 ms",
                        "drift ppm",
                        "unmatched %",
                        "level",
                    ],
                    rows,
                    [2, 3, 4, 5, 6],
                )
            )
        motions = [m for m in r.motion_offsets if m.estimate is not None]
        if motions:
            rows = [
                [
                    _e(m.camera),
                    _e(m.imu),
                    _fmt_opt(
                        m.estimate.offset_s * 1e3 if m.estimate and m.estimate.offset_s is not None else None,
                        "+.1f",
                    ),
                    f"{m.estimate.confidence:.2f}" if m.estimate else "-",
                    _level(m.level.name),
                    _e(m.reason),
                ]
                for m in motions
            ]
            out.append(_table(["camera", "IMU", "offset ms", "confidence", "level", "note"], rows, [2, 3]))
        bad = [f for f in r.findings if f.level >= Severity.WARN]
        if bad:
            out.append(
                "<ul>" + "".join(f"<li>{_level(f.level.name)} {_e(f.message)}</li>" for f in bad) + "</ul>"
            )
        else:
            out.append("<p>No finding above OK.</p>")
    return "".join(out)


def _fmt_opt(value: float | None, spec: str) -> str:
    return "-" if value is None or not math.isfinite(value) else format(value, spec)


def _method_html(report: Report) -> str:
    c = report.conditions
    return (
        '<h2 id="method">Method</h2>'
        f"<p>Features: the live path (<code>conditions.StreamConditions</code>) with image rate "
        f"{c.image_rate_hz:g} Hz, window {c.window_s:g} s, hop {c.hop_s:g} s, near {c.near_m:g} m, "
        f"taken from {_e(report.conditions_source)}. They must match the settings the profile was "
        "built with.</p>"
        f"<p>Training range: the profile's {RANGE_NAME} per feature. Shares are shares of a stream's "
        "feature samples, which come evenly in time while the stream flows.</p>"
        f"<p>Collection targets: {_e(CRITERION)} Here min_share = {percent(report.settings.min_share)}; "
        "streams without a calibrated alarm use threshold "
        f"{format_value(report.settings.uncalibrated_threshold)}. "
        'The cut X in "feature below X" is the least extreme persistent novel value rounded outward (never '
        "beyond the training edge); the training share beyond X is read from the profile's histogram. "
        "Severity is the median score of the novel samples; targets are ranked by novel share x min(1, "
        "severity / (2 x threshold)), and feature sides whose novel samples coincide are one condition.</p>"
    )


def _compare_html(c: ProfileComparison) -> str:
    out = ["<h1>Profile coverage comparison</h1>"]
    out.append(
        f"<p>A = <code>{_e(c.a_label)}</code> (digest {c.a.digest()[:12]}), B = <code>{_e(c.b_label)}</code> "
        f"(digest {c.b.digest()[:12]}). Per feature: the share of B outside A's {RANGE_NAME} (estimated from "
        "B's histogram within the bounds of its quantiles; about 2 % when B is like A) and the overlap "
        "of the two distributions (1 = same).</p>"
    )
    rows = [
        [
            str(i),
            _e(f.stream),
            _e(f.feature),
            percent(f.outside_share),
            percent(f.below_share),
            percent(f.above_share),
            f"{f.overlap:.2f}",
            format_value(f.a.p1),
            format_value(f.a.p99),
            format_value(f.b.p1),
            format_value(f.b.p99),
            _e(f.unit),
        ]
        for i, f in enumerate(c.features, start=1)
    ]
    out.append(
        _table(
            [
                "#",
                "stream",
                "feature",
                "B outside A",
                "below A p1",
                "above A p99",
                "overlap",
                "A p1",
                "A p99",
                "B p1",
                "B p99",
                "unit",
            ],
            rows,
            [0, 3, 4, 5, 6, 7, 8, 9, 10],
        )
    )
    if c.only_in_a:
        out.append(f"<p>Only in A: {_e(', '.join(c.only_in_a))}</p>")
    if c.only_in_b:
        out.append(f"<p>Only in B: {_e(', '.join(c.only_in_b))}</p>")
    figures = []
    for i, f in enumerate(c.features, start=1):
        edges = common_edges(f.a, f.b, c.histogram_bins)
        figures.append(
            "<figure>"
            + distribution_svg(
                f"cmp-{i}",
                f"{f.stream} {f.feature}",
                f.unit,
                edges,
                rebin(f.a.histogram, edges),
                rebin(f.b.histogram, edges),
                f.a.p1,
                f.a.p99,
                labels=("A", "B"),
                note=f"B outside A's {RANGE_NAME}: {percent(f.outside_share)}; overlap {f.overlap:.2f}",
            )
            + "</figure>"
        )
    out.append(f'<div class="grid">{"".join(figures)}</div>')
    return _page("gap_monitor profile comparison", "".join(out))
