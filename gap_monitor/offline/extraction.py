"""Condition features of training recordings, and the calibrated profile built from them.

Building runs the live path offline: every message's CDR bytes go through the same
`conditions.StreamConditions` the monitor node runs (images decimated by header stamp to
`image_rate_hz`, IMU / joint / wrench samples in sliding windows), and the feature dicts go to
`scoring.build_calibrated_profile`, which calibrates each stream's alarm on cross-fitted held-out
scores at the rate the monitor will score at. Profile streams are keyed by topic name, as the
live monitor looks them up.

Streams are picked by message type: sensor_msgs/Image is a depth stream when its first message's
encoding is 16UC1 or 32FC1 and a camera otherwise; CompressedImage is a camera; Imu, JointState
and WrenchStamped are imu, joints and wrench. Other topics are skipped. The time of a message is
its header stamp (the log/receipt time when the stamp is zero or the message too short for one).
A malformed message is counted and reported, never fatal. Each recording starts its streams
afresh: windows never span two recordings.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from gap_monitor.core.conditions.calibration import build_calibrated_profile
from gap_monitor.core.conditions.feed import FeatureFeed, FeedSample, FeedStream
from gap_monitor.core.conditions.profile import (
    FeatureSample,
    Profile,
    SourceRecording,
)
from gap_monitor.core.conditions.settings import ConditionSettings
from gap_monitor.core.io.modalities import IMAGE_TYPES, SENSOR_TYPES, modality_of
from gap_monitor.core.io.recordings import Recording, open_recording
from gap_monitor.errors import InputError, RecordingError
from gap_monitor.offline.progress import ProgressCallback

PROGRESS_EVERY = 256

log = logging.getLogger(__name__)


class ProfilingError(InputError):
    """Input a profile cannot be built from; the message names the path (or topic) and why."""


# ----------------------------------------------------------------------------------------------
# Features from recordings


@dataclass
class TopicSummary:
    """What building saw of one topic, over all recordings."""

    topic: str
    msgtype: str
    modality: str | None = None  # None: an Image topic whose encoding is not known yet
    messages: int = 0
    samples: int = 0  # feature dicts produced
    malformed: int = 0
    last_error: str = ""
    log_time_fallbacks: int = 0  # messages timed by log time (zero or missing header stamp)


@dataclass
class FeatureExtraction:
    """Feature dicts of every stream of the recordings, and what happened on the way."""

    settings: ConditionSettings
    samples: list[FeatureSample] = field(default_factory=list)
    topics: dict[str, TopicSummary] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # topic -> message type
    sources: list[SourceRecording] = field(default_factory=list)
    messages: int = 0
    # The sources' SHA-256, still being computed on another core (see `wait_sources`).
    hashing: list[Future[SourceRecording]] = field(default_factory=list, repr=False)

    def wait_sources(self) -> list[SourceRecording]:
        """`sources`, once the hashing has finished; ProfilingError if a file became unreadable."""
        try:
            self.sources.extend(digest.result() for digest in self.hashing)
        except OSError as exc:
            raise ProfilingError(f"cannot hash a source recording: {exc}") from exc
        self.hashing.clear()
        return self.sources

    def frame_rates(self) -> dict[str, float]:
        """Per stream, the rate the conditions layer yields features at (and the monitor scores at):
        the image rate for cameras and depth, one per hop for windowed streams."""
        rates = {}
        for topic, summary in self.topics.items():
            if summary.modality in ("camera", "depth"):
                rates[topic] = self.settings.image_rate_hz
            elif summary.modality is not None:
                rates[topic] = 1.0 / self.settings.hop_s
        return rates

    def problems(self) -> list[str]:
        """One line per topic with malformed messages or without features."""
        lines = []
        for topic, s in self.topics.items():
            if s.malformed:
                lines.append(
                    f"{topic}: {s.malformed} of {s.messages} message(s) malformed (last: {s.last_error})"
                )
            if s.samples == 0:
                lines.append(f"{topic}: no features ({self._why_no_features(s)})")
        return lines

    def _why_no_features(self, s: TopicSummary) -> str:
        if s.messages == 0:
            return "no messages"
        if s.malformed == s.messages:
            return "every message malformed"
        if s.modality in ("imu", "joints", "wrench"):
            return f"{s.messages} message(s) never filled a {self.settings.window_s:g} s window"
        return f"{s.messages} message(s)"


def extract_features(
    recordings: Sequence[str | Path],
    *,
    topics: Iterable[str] | None = None,
    settings: ConditionSettings | None = None,
    progress: ProgressCallback | None = None,
) -> FeatureExtraction:
    """Run the conditions layer over every sensor topic of the recordings (or only `topics`).

    Raises ProfilingError for a missing or unreadable recording, a requested topic no recording
    has (or whose type has no features), or a topic whose modality differs between recordings."""
    settings = settings or ConditionSettings()
    if not recordings:
        raise ProfilingError("no recordings given")
    wanted = None if topics is None else list(dict.fromkeys(topics))
    result = FeatureExtraction(settings)
    with contextlib.ExitStack() as stack:
        opened: list[tuple[Recording, list[str]]] = []
        for path in recordings:
            rec = stack.enter_context(_open(path))
            selected = []
            for topic, info in rec.topics().items():
                if wanted is not None and topic not in wanted:
                    continue
                if info.msgtype not in SENSOR_TYPES:
                    result.skipped.setdefault(topic, info.msgtype)
                    continue
                known = result.topics.get(topic)
                if known is not None and known.msgtype != info.msgtype:
                    raise ProfilingError(
                        f"{rec.path}: topic {topic} is {info.msgtype}, but {known.msgtype} in an "
                        "earlier recording: one profile stream cannot be both"
                    )
                if known is None:
                    # An image topic's kind (camera or depth) is told by its first message.
                    modality = None if info.msgtype in IMAGE_TYPES else modality_of(info.msgtype)
                    result.topics[topic] = TopicSummary(topic, info.msgtype, modality)
                selected.append(topic)
            opened.append((rec, selected))
        if wanted is not None:
            _check_wanted(wanted, result, [str(p) for p in recordings])
        if not result.topics:
            skipped = ", ".join(f"{t} ({m})" for t, m in sorted(result.skipped.items())) or "none"
            raise ProfilingError(
                f"{', '.join(str(p) for p in recordings)}: no sensor topics (Image, CompressedImage, "
                f"Imu, JointState, WrenchStamped); topics found: {skipped}"
            )
        total = sum(rec.message_count(selected) for rec, selected in opened)
        # The sources' SHA-256 on another core (hashlib releases the GIL) while this one extracts
        # and calibrates: on uncompressed image recordings hashing takes longer than reading.
        hashing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256")
        result.hashing = [hashing.submit(SourceRecording.from_path, rec.path) for rec, _ in opened]
        hashing.shutdown(wait=False)
        for rec, selected in opened:
            _extract_one(rec, selected, result, _reporter(progress, rec.path.name, total))
    return result


def _open(path: str | Path) -> Recording:
    try:
        return open_recording(path)
    except FileNotFoundError as exc:
        raise ProfilingError(f"{path}: no such file or folder") from exc
    except RecordingError as exc:
        raise ProfilingError(str(exc)) from exc


def _check_wanted(wanted: Sequence[str], result: FeatureExtraction, paths: Sequence[str]) -> None:
    for topic in wanted:
        if topic in result.topics:
            continue
        if topic in result.skipped:
            raise ProfilingError(
                f"--topics {topic}: its type {result.skipped[topic]} has no condition features "
                "(supported: Image, CompressedImage, Imu, JointState, WrenchStamped)"
            )
        raise ProfilingError(f"--topics {topic}: not in {', '.join(paths)}")


def _reporter(progress: ProgressCallback | None, label: str, total: int) -> Callable[[int], None]:
    def report(done: int) -> None:
        if progress is not None:
            progress(label, done, total)

    return report


def _extract_one(
    rec: Recording, selected: Sequence[str], result: FeatureExtraction, progress: Callable[[int], None]
) -> None:
    def malformed(topic: str, why: str) -> None:
        summary = result.topics[topic]
        summary.malformed += 1
        summary.last_error = why

    # A feed of its own per recording: windows never span two recordings.
    # Image topics are told apart again in each recording, so a mismatch between them is found.
    streams = {
        t: FeedStream(None if s.msgtype in IMAGE_TYPES else s.modality, s.msgtype)
        for t, s in ((t, result.topics[t]) for t in selected)
    }
    feed = FeatureFeed(streams, result.settings, malformed)
    progress(result.messages)
    try:
        for msg in rec.views(selected):
            result.messages += 1
            if not result.messages % PROGRESS_EVERY:
                progress(result.messages)
            result.topics[msg.topic].messages += 1
            _add_samples(result, feed.push(msg.topic, msg.log_time_ns, msg.data))
        _add_samples(result, feed.flush())
        progress(result.messages)
    except RecordingError as exc:
        raise ProfilingError(str(exc)) from exc  # the reading layer names the file and what is wrong
    for topic in selected:
        summary = result.topics[topic]
        summary.log_time_fallbacks += feed.time_fallbacks[topic]
        modality = feed.modality(topic)
        if summary.modality is not None and modality is not None and modality != summary.modality:
            raise ProfilingError(
                f"{rec.path}: topic {topic} carries {modality} images, but "
                f"{summary.modality} in an earlier recording"
            )
        summary.modality = summary.modality or modality


def _add_samples(result: FeatureExtraction, samples: Sequence[FeedSample]) -> None:
    for sample in samples:
        result.topics[sample.topic].samples += 1
        result.samples.append(FeatureSample(sample.modality, sample.topic, sample.features, sample.time_ns))


def profile_from_features(
    extraction: FeatureExtraction, *, target_false_alarms_per_hour: float = 1.0
) -> Profile:
    """The calibrated profile of an extraction; ProfilingError when no stream gave features."""
    if not extraction.samples:
        problems = "; ".join(extraction.problems()) or "no sensor messages"
        raise ProfilingError(f"no features to build a profile from: {problems}")
    profile = build_calibrated_profile(
        extraction.samples,
        frame_rate_hz=extraction.frame_rates(),
        target_false_alarms_per_hour=target_false_alarms_per_hour,
    )
    return replace(profile, sources=tuple(extraction.wait_sources()))


def build_profile(
    recordings: Sequence[str | Path],
    *,
    topics: Iterable[str] | None = None,
    settings: ConditionSettings | None = None,
    target_false_alarms_per_hour: float = 1.0,
    progress: ProgressCallback | None = None,
) -> Profile:
    """A training-condition profile of the recordings' sensor streams (module notes), each stream's
    alarm calibrated for `target_false_alarms_per_hour`. Malformed messages and streams without
    features are logged as warnings. Raises ProfilingError for unusable input."""
    if not (math.isfinite(target_false_alarms_per_hour) and target_false_alarms_per_hour > 0):
        raise ValueError(
            f"target_false_alarms_per_hour: {target_false_alarms_per_hour!r}: a rate > 0 per hour"
        )
    extraction = extract_features(recordings, topics=topics, settings=settings, progress=progress)
    for line in extraction.problems():
        log.warning("%s", line)
    return profile_from_features(extraction, target_false_alarms_per_hour=target_false_alarms_per_hour)


# ----------------------------------------------------------------------------------------------
# Showing a profile
