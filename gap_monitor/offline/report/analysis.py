"""The report's analysis: `build_report` measures deployment recordings against a training profile
and returns the `model.Report` (the pages and JSON are rendered from it elsewhere).

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
"""

from __future__ import annotations

import math
import os
import time
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from gap_monitor.core.conditions.feed import FeatureFeed, FeedSample, FeedStream
from gap_monitor.core.conditions.persistence import DEFAULT_PERSISTENCE, Persistence
from gap_monitor.core.conditions.profile import FeatureStats, Profile, StreamProfile
from gap_monitor.core.conditions.scoring import (
    MAX_SCORE,
    ConditionMonitor,
    MonitorUpdate,
    TailTable,
    name_list,
    unknown_joints_text,
)
from gap_monitor.core.conditions.settings import ConditionSettings
from gap_monitor.core.config import MonitorConfig
from gap_monitor.core.io import cdr
from gap_monitor.core.io.modalities import MODALITIES, SENSOR_TYPES
from gap_monitor.core.io.recordings import Recording, TopicInfo
from gap_monitor.core.units import NS_PER_S
from gap_monitor.errors import ProfileError, RecordingError
from gap_monitor.offline.audit import (
    AuditInputError,
    AuditResult,
    AuditSettings,
    RecordingAudit,
    RecordingAuditor,
    open_recordings,
)
from gap_monitor.offline.progress import ProgressCallback
from gap_monitor.offline.report.catalogue import load_snapshots, place_snapshot
from gap_monitor.offline.report.model import (
    AlarmEpisode,
    BoolArray,
    FeatureReport,
    FloatArray,
    IntArray,
    RecordingInfo,
    Report,
    ReportInputError,
    ReportSettings,
    StreamReport,
    TopicTrace,
)
from gap_monitor.offline.report.targets import collection_targets

__all__ = ["ProgressCallback", "build_report"]


_PROGRESS_EVERY = 512
_GAP_PERIODS = 3.0  # an arrival interval longer than this many periods is drawn as a gap


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
        opened = open_recordings(deployments)
    except AuditInputError as exc:
        raise ReportInputError(str(exc)) from exc
    monitor = ConditionMonitor(profile)
    collectors = {name: _StreamCollector(name, stream) for name, stream in profile.streams.items()}
    unprofiled: dict[str, str] = {}
    passes: list[_RecordingPass] = []
    audit_settings = AuditSettings(estimate_motion=settings.audit_motion)
    try:
        _require_profiled_messages(opened, profile, config)
        for index, rec in enumerate(opened):
            auditor = RecordingAuditor(rec, config, (), audit_settings)
            passes.append(
                _read_recording(
                    index, rec, auditor, profile, config, conditions, monitor, collectors, unprofiled,
                    progress,
                )
            )  # fmt: skip
    finally:
        for rec in opened:
            rec.close()
    audit = AuditResult(tuple(p.audit for p in passes))
    # Arrival gaps are judged against each topic's expected period, which the audits measured.
    periods = _audit_periods(audit, config)
    pair_topics = {t for r in audit.recordings for p in r.pairs for t in (p.a, p.b)}
    recordings = [p.info(periods, pair_topics) for p in passes]
    traces = [trace for p in passes for trace in p.traces(periods, pair_topics)]
    streams = tuple(c.finish(settings) for c in collectors.values())
    snapshot_entries = [place_snapshot(s, recordings) for s in snapshot_entries]
    targets = collection_targets(streams, settings, snapshot_entries)
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
        return config.conditions.feature_settings(), "the --config file's conditions section"
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
            periods[s.topic] = NS_PER_S / s.rate_hz
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
        self.unknown_joints: dict[str, None] = {}  # in the order first seen

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
        for joint in update.score.unknown_joints:
            self.unknown_joints.setdefault(joint, None)
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
        rule = alarm.persistence if alarm is not None else DEFAULT_PERSISTENCE
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
            below = _persistent_by_segment(strong & (values < st.p1), rec_index, rule)
            above = _persistent_by_segment(strong & (values > st.p99), rec_index, rule)
            features.append(FeatureReport(name, st.unit, st, values, feature_scores[:, i], below, above))
        if self.status == "scored" and self.unknown_joints:
            # New joints are a novel condition of their own; their features are not listed again.
            joints = unknown_joints_text(list(self.unknown_joints))
            self.note = "; ".join(n for n in (self.note, joints) if n)
        elif self.status == "scored" and self.unknown:
            lacking = f"features the profile lacks (ignored): {name_list(sorted(self.unknown))}"
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
        total += (float(t[-1] - t[0]) + step) / NS_PER_S
    return total


class _RecordingPass:
    """What one read of a deployment recording gave: its audit, and per topic the arrivals."""

    def __init__(
        self,
        index: int,
        rec: Recording,
        audit: RecordingAudit,
        streams: set[str],
        arrivals: dict[str, _Arrivals],
        malformed: dict[str, int],
    ) -> None:
        self.index = index
        self.audit = audit
        self.streams = streams  # topics scored against the profile
        self.arrivals = arrivals
        self.malformed = malformed
        self.path, self.kind = str(rec.path), rec.kind
        self.start_time_ns, self.end_time_ns = rec.start_time_ns, rec.end_time_ns
        self.messages = rec.message_count()

    def _timed(self, periods: Mapping[str, float], pair_topics: set[str]) -> set[str]:
        """The topics the report times: scored streams, those with an expected period, pairs."""
        return {t for t in self.arrivals if t in self.streams or t in periods or t in pair_topics}

    def info(self, periods: Mapping[str, float], pair_topics: set[str]) -> RecordingInfo:
        timed = self._timed(periods, pair_topics)
        return RecordingInfo(
            path=self.path,
            kind=self.kind,
            start_time_ns=self.start_time_ns,
            end_time_ns=self.end_time_ns,
            messages=self.messages,
            messages_read=sum(self.arrivals[t].count for t in timed),
            malformed=self.malformed,
        )

    def traces(self, periods: Mapping[str, float], pair_topics: set[str]) -> list[TopicTrace]:
        return [
            self.arrivals[t].trace(t, self.index, periods.get(t), t in pair_topics)
            for t in self._timed(periods, pair_topics)
            if self.arrivals[t].count
        ]


def _read_recording(
    index: int,
    rec: Recording,
    auditor: RecordingAuditor,
    profile: Profile,
    config: MonitorConfig | None,
    conditions: ConditionSettings,
    monitor: ConditionMonitor,
    collectors: Mapping[str, _StreamCollector],
    unprofiled: dict[str, str],
    progress: ProgressCallback | None,
) -> _RecordingPass:
    """One pass over a recording: its audit, its arrivals and the features of its profiled streams
    (the one feed loop, scored as the monitor scores them)."""
    topics = rec.topics()
    config_topics = {s.name: s.topic for s in config.streams} if config is not None else {}
    streams: dict[str, FeedStream] = {}
    stream_of_topic: dict[str, str] = {}
    for name, stream in profile.streams.items():
        collector = collectors[name]
        topic = _stream_topic(name, topics, config_topics)
        topic_info = topics.get(topic)
        if topic_info is None:
            continue
        collector.topic = topic
        msgtype = topic_info.msgtype
        if stream.modality not in MODALITIES or msgtype not in MODALITIES[stream.modality].msgtypes:
            collector.status, collector.msgtype = "incompatible", msgtype
            collector.note = f"recorded as {msgtype}: no {stream.modality} features from it"
            continue
        collector.status, collector.msgtype, collector.note = "scored", msgtype, ""
        streams[topic] = FeedStream(stream.modality, msgtype)
        stream_of_topic[topic] = name
    for topic, topic_info in topics.items():
        if topic_info.msgtype in SENSOR_TYPES and topic not in stream_of_topic:
            unprofiled.setdefault(topic, topic_info.msgtype)
    audited = set(auditor.topics)
    configured = {s.topic for s in config.streams} if config is not None else set()
    read = audited | set(streams) | (configured & set(topics))
    arrivals = {t: _Arrivals() for t in read}
    malformed_counts: dict[str, int] = {}

    def malformed(topic: str, why: str) -> None:
        malformed_counts[topic] = malformed_counts.get(topic, 0) + 1
        collectors[stream_of_topic[topic]].malformed += 1

    def scored(samples: Sequence[FeedSample]) -> None:
        for sample in samples:
            name = stream_of_topic[sample.topic]
            update = monitor.update(name, sample.features, sample.received_ns)
            collectors[name].add(index, sample.received_ns, sample.features, update)

    feed = FeatureFeed(streams, conditions, malformed)
    total = rec.message_count(read)
    done = 0
    label = rec.path.name
    try:
        for msg in rec.views(read):
            done += 1
            if progress is not None and done % _PROGRESS_EVERY == 0:
                progress(label, done, total)
            try:
                stamp = cdr.header_stamp_ns(msg.data)
            except cdr.CdrError:
                stamp = None
            arrivals[msg.topic].add(msg.log_time_ns, stamp)
            if msg.topic in audited:
                auditor.add(msg)
            if msg.topic in streams:
                # The stamp already read (None: the feed reads it again and reports why it cannot).
                scored(feed.push(msg.topic, msg.log_time_ns, msg.data, stamp))
        scored(feed.flush())
    except RecordingError as exc:
        raise ReportInputError(str(exc)) from exc  # the reading layer names the file and what is wrong
    if progress is not None:
        progress(label, done, total)
    for collector in collectors.values():
        collector.end_recording()
    monitor.reset()  # a new recording is a new session: the alarm starts armed
    return _RecordingPass(index, rec, auditor.finish(), set(streams), arrivals, malformed_counts)


def _stream_topic(name: str, topics: Mapping[str, TopicInfo], config_topics: Mapping[str, str]) -> str:
    """The recorded topic of a profile stream: its own name, else the config's topic for it."""
    return name if name in topics else config_topics.get(name, name)


def _require_profiled_messages(
    recordings: Sequence[Recording], profile: Profile, config: MonitorConfig | None
) -> None:
    """ReportInputError when no recording has a message on any of the profile's streams: a
    report of nothing would say "no condition outside the training data", as if all were well.
    (One such recording among others is fine: its audit still counts.)"""
    config_topics = {s.name: s.topic for s in config.streams} if config is not None else {}
    found: dict[str, TopicInfo] = {}
    for rec in recordings:
        topics = rec.topics()
        for name, stream in profile.streams.items():
            info = topics.get(_stream_topic(name, topics, config_topics))
            modality = MODALITIES.get(stream.modality)
            if info is not None and info.count and modality is not None and info.msgtype in modality.msgtypes:
                return
        for topic, info in topics.items():
            found.setdefault(topic, info)
    wanted = ", ".join(_stream_topic(n, {}, config_topics) for n in profile.streams) or "none"
    listed = ", ".join(f"{t} ({i.msgtype}, {i.count})" for t, i in sorted(found.items())) or "(none)"
    raise ReportInputError(
        f"{', '.join(str(r.path) for r in recordings)}: no messages on any of the profile's streams "
        f"({wanted}, of a matching type); topics found: {listed}"
    )


class _Arrivals:
    """Arrival times (log time) of one topic and its header stamps."""

    def __init__(self) -> None:
        self.times = array("q")
        self.stamps = array("q")

    @property
    def count(self) -> int:
        return len(self.times)

    def add(self, log_ns: int, stamp: int | None) -> None:
        self.times.append(log_ns)
        if stamp:
            self.stamps.append(stamp)

    def trace(self, topic: str, recording: int, period_ns: float | None, with_stamps: bool) -> TopicTrace:
        """Arrival gaps longer than a few expected periods, and the sorted stamps of pair topics."""
        times = np.frombuffer(self.times, dtype=np.int64)
        gaps: tuple[tuple[int, int], ...] = ()
        if period_ns:
            late = np.flatnonzero(np.diff(times) > _GAP_PERIODS * period_ns)
            gaps = tuple((int(times[k]), int(times[k + 1])) for k in late)
        stamps = None
        if with_stamps:
            stamps = np.sort(np.frombuffer(self.stamps, dtype=np.int64))
        return TopicTrace(topic, recording, int(times[0]), int(times[-1]), times.size, gaps, stamps)


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


def _persistent_by_segment(mask: BoolArray, rec_index: IntArray, rule: Persistence) -> BoolArray:
    """The rule's persistent samples, recording by recording (a run never spans two)."""
    out = np.zeros(mask.size, dtype=bool)
    for rec in np.unique(rec_index):
        where = rec_index == rec
        out[where] = rule.persistent(mask[where])
    return out
