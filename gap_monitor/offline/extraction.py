"""`gap-monitor profile`: build a training-condition profile from recordings, show it, merge profiles.

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

import argparse
import contextlib
import logging
import math
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

from gap_monitor.core.conditions.feed import WINDOWED_MODALITIES, ConditionError, StreamConditions
from gap_monitor.core.conditions.profile import (
    FeatureSample,
    Profile,
    ProfileError,
    SourceRecording,
    StreamProfile,
    merge_profiles,
)
from gap_monitor.core.conditions.scoring import build_calibrated_profile, format_value
from gap_monitor.core.conditions.settings import ConditionSettings
from gap_monitor.core.io import cdr
from gap_monitor.core.io.names import COMPRESSED_IMAGE_TYPE, IMAGE_TYPE
from gap_monitor.core.io.recordings import Recording, RecordingError, open_recording
from gap_monitor.render.progress import ProgressBar

NS = 1_000_000_000
IMU_TYPE = "sensor_msgs/msg/Imu"
JOINT_STATE_TYPE = "sensor_msgs/msg/JointState"
WRENCH_STAMPED_TYPE = "geometry_msgs/msg/WrenchStamped"
# Message type -> modality; sensor_msgs/Image is decided by its encoding (None here).
MODALITY_OF_TYPE: dict[str, str | None] = {
    IMAGE_TYPE: None,
    COMPRESSED_IMAGE_TYPE: "camera",
    IMU_TYPE: "imu",
    JOINT_STATE_TYPE: "joints",
    WRENCH_STAMPED_TYPE: "wrench",
}
DEPTH_ENCODINGS = ("16UC1", "32FC1")
# Messages per `on_batch` call: big enough that numpy does the work, small enough to hold
# (4096 IMU messages are ~1.3 MB).
BATCH_MESSAGES = 4096
PROGRESS_EVERY = 256

log = logging.getLogger(__name__)


class ProfilingError(ValueError):
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


def modality_of_image(data: cdr.Buffer) -> str:
    """Modality of a sensor_msgs/Image: depth for 16UC1/32FC1, else camera; CdrError if undecodable."""
    return "depth" if cdr.decode_image(data).encoding in DEPTH_ENCODINGS else "camera"


def extract_features(
    recordings: Sequence[str | Path],
    *,
    topics: Iterable[str] | None = None,
    settings: ConditionSettings | None = None,
    progress: bool = False,
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
                if info.msgtype not in MODALITY_OF_TYPE:
                    result.skipped.setdefault(topic, info.msgtype)
                    continue
                known = result.topics.get(topic)
                if known is not None and known.msgtype != info.msgtype:
                    raise ProfilingError(
                        f"{rec.path}: topic {topic} is {info.msgtype}, but {known.msgtype} in an "
                        "earlier recording: one profile stream cannot be both"
                    )
                if known is None:
                    result.topics[topic] = TopicSummary(topic, info.msgtype, MODALITY_OF_TYPE[info.msgtype])
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
        bar = ProgressBar(sys.stderr, enabled=None if progress else False)
        # The sources' SHA-256 on another core (hashlib releases the GIL) while this one extracts
        # and calibrates: on uncompressed image recordings hashing takes longer than reading.
        hashing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256")
        result.hashing = [hashing.submit(SourceRecording.from_path, rec.path) for rec, _ in opened]
        hashing.shutdown(wait=False)
        try:
            for rec, selected in opened:
                _extract_one(rec, selected, result, partial(bar, rec.path.name, total=total))
        finally:
            bar.close()
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


def _extract_one(
    rec: Recording, selected: Sequence[str], result: FeatureExtraction, progress: Callable[[int], None]
) -> None:
    streams: dict[str, StreamConditions] = {}
    # IMU, joint and wrench messages wait here and go to `on_batch` BATCH_MESSAGES at a time.
    pending: dict[str, tuple[list[int], list[cdr.Buffer]]] = {}
    progress(result.messages)
    try:
        for msg in rec.views(selected):
            result.messages += 1
            if not result.messages % PROGRESS_EVERY:
                progress(result.messages)
            summary = result.topics[msg.topic]
            summary.messages += 1
            batch = pending.get(msg.topic)
            if batch is not None:
                batch[0].append(msg.log_time_ns)
                batch[1].append(msg.data)
                if len(batch[0]) >= BATCH_MESSAGES:
                    _flush(msg.topic, streams[msg.topic], batch, result)
                continue
            conditions = streams.get(msg.topic)
            try:
                if conditions is None:
                    modality = summary.modality if summary.msgtype != IMAGE_TYPE else None
                    if modality is None:
                        modality = modality_of_image(msg.data)
                    if summary.modality is not None and summary.modality != modality:
                        raise ProfilingError(
                            f"{rec.path}: topic {msg.topic} carries {modality} images, but "
                            f"{summary.modality} in an earlier recording"
                        )
                    summary.modality = modality
                    conditions = streams[msg.topic] = StreamConditions(
                        modality, summary.msgtype, result.settings
                    )
                    if modality in WINDOWED_MODALITIES:
                        pending[msg.topic] = ([msg.log_time_ns], [msg.data])
                        continue
                stamp = cdr.header_stamp_ns(msg.data)
                if not stamp:
                    summary.log_time_fallbacks += 1
                    stamp = msg.log_time_ns
                features = conditions.on_message(stamp, msg.data)
            except (cdr.CdrError, ConditionError) as exc:
                summary.malformed += 1
                summary.last_error = str(exc)
                continue
            if features is not None:
                summary.samples += 1
                result.samples.append(FeatureSample(conditions.modality, msg.topic, features, stamp))
        for topic, batch in pending.items():
            _flush(topic, streams[topic], batch, result)
        progress(result.messages)
    except RecordingError as exc:
        raise ProfilingError(f"{rec.path}: cannot read: {exc}") from exc


def _flush(
    topic: str,
    conditions: StreamConditions,
    batch: tuple[list[int], list[cdr.Buffer]],
    result: FeatureExtraction,
) -> None:
    """The batched messages of a topic through its conditions; the batch is emptied."""
    log_times, datas = batch
    if not datas:
        return
    out = conditions.on_batch(log_times, datas)
    summary = result.topics[topic]
    summary.log_time_fallbacks += out.log_time_fallbacks
    if out.malformed:
        summary.malformed += len(out.malformed)
        summary.last_error = out.malformed[-1]
    summary.samples += len(out.features)
    result.samples.extend(
        FeatureSample(conditions.modality, topic, sample.features, sample.time_ns) for sample in out.features
    )
    log_times.clear()
    datas.clear()


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
    progress: bool = True,
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


def describe_alarm(stream: StreamProfile) -> str:
    alarm = stream.alarm
    if alarm is None:
        return "no calibrated alarm (too little data, or a merged profile)"
    parts = [f"{alarm.fire_k} of {alarm.fire_n} scores > {format_value(alarm.threshold)}"]
    if alarm.instant_threshold > 0:
        parts.append(f"one score > {format_value(alarm.instant_threshold)}")
    if alarm.evidence_threshold > 0:
        parts.append(
            f"the running sum of score - {format_value(alarm.evidence_reference)} > "
            f"{format_value(alarm.evidence_threshold)}"
        )
    rules = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]
    return (
        f"alarm when {rules}, clears after {alarm.clear_n} < {format_value(alarm.clear_threshold)} "
        f"(scored at {alarm.frame_rate_hz:g} Hz, {alarm.target_false_alarms_per_hour:g} false alarm/h)"
    )


def format_profile(profile: Profile, origin: str = "") -> str:
    """A readable summary: sources, then per stream its modality, sample count, alarm, and each
    feature's p1 / p50 / p99 with its unit."""
    lines = []
    created = (
        datetime.fromtimestamp(profile.created_ns / NS, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        if profile.created_ns
        else "unknown"
    )
    head = f"{origin}: " if origin else ""
    lines.append(
        f"{head}profile schema {profile.schema_version}, created {created}, "
        f"{len(profile.streams)} stream(s), digest {profile.digest()[:12]}"
    )
    if profile.sources:
        lines.append("sources:")
        for s in profile.sources:
            lines.append(f"  {s.path} ({s.size_bytes / 1e6:.1f} MB, sha256 {s.sha256[:12]})")
    for name, stream in profile.streams.items():
        span = max(0, stream.last_time_ns - stream.first_time_ns) / NS
        lines.append("")
        lines.append(f"{name}  [{stream.modality}]  {stream.sample_count} samples over {span:.1f} s")
        lines.append(f"  {describe_alarm(stream)}")
        rows = [("feature", "p1", "p50", "p99", "unit")]
        for feature, stats in stream.features.items():
            if stats.count == 0:
                rows.append((feature, "-", "-", "-", stats.unit))
                continue
            rows.append((
                feature,
                format_value(stats.quantile("p1")),
                format_value(stats.quantile("p50")),
                format_value(stats.quantile("p99")),
                stats.unit,
            ))  # fmt: skip
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        for row in rows:
            cells = [row[0].ljust(widths[0])] + [row[i].rjust(widths[i]) for i in (1, 2, 3)]
            lines.append("  " + "  ".join(cells) + "  " + row[4])
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Command line


def _cmd_build(args: argparse.Namespace) -> int:
    started = time.monotonic()
    try:
        settings = ConditionSettings(image_rate_hz=args.image_rate)
        if not (math.isfinite(args.target_fa_per_hour) and args.target_fa_per_hour > 0):
            raise ValueError(f"--target-fa-per-hour {args.target_fa_per_hour!r}: a rate > 0 per hour")
        extraction = extract_features(
            args.recordings, topics=args.topics, settings=settings, progress=not args.no_progress
        )
        profile = profile_from_features(extraction, target_false_alarms_per_hour=args.target_fa_per_hour)
    except (ProfilingError, ValueError) as exc:
        print(f"profile build: {exc}", file=sys.stderr)
        return 2
    output = Path(args.output)
    try:
        profile.save(output)
    except OSError as exc:
        print(f"profile build: {output}: cannot write: {exc}", file=sys.stderr)
        return 2
    elapsed = time.monotonic() - started
    print(
        f"{output}: {len(profile.streams)} stream(s) from {len(extraction.sources)} recording(s), "
        f"{extraction.messages:,} messages in {elapsed:.1f} s"
    )
    for name, stream in profile.streams.items():
        alarm = stream.alarm
        threshold = f"alarm > {format_value(alarm.threshold)}" if alarm else "no alarm"
        summary = extraction.topics[name]
        print(f"  {name}  {stream.modality}  {stream.sample_count} samples  {threshold}  ({summary.msgtype})")
    for topic, msgtype in sorted(extraction.skipped.items()):
        print(f"  skipped {topic} ({msgtype}: no condition features)")
    for line in extraction.problems():
        print(f"  warning: {line}", file=sys.stderr)
    return 0


def _load(path: str) -> Profile:
    if not Path(path).is_file():
        raise ProfileError(f"profile {path}: no such file")
    return Profile.load(path)


def _cmd_show(args: argparse.Namespace) -> int:
    try:
        profile = _load(args.profile)
    except ProfileError as exc:
        print(f"profile show: {exc}", file=sys.stderr)
        return 2
    print(format_profile(profile, args.profile))
    return 0


def _cmd_merge(args: argparse.Namespace) -> int:
    if len(args.profiles) < 2:
        print("profile merge: give at least two profiles to merge", file=sys.stderr)
        return 2
    try:
        merged = merge_profiles([_load(p) for p in args.profiles])
    except ProfileError as exc:
        print(f"profile merge: {exc}", file=sys.stderr)
        return 2
    output = Path(args.output)
    try:
        merged.save(output)
    except OSError as exc:
        print(f"profile merge: {output}: cannot write: {exc}", file=sys.stderr)
        return 2
    print(f"{output}: {len(merged.streams)} stream(s) merged from {len(args.profiles)} profiles")
    print(
        "  note: merging drops the calibrated alarms (the merged profile scores differently); "
        "build one profile from all the recordings to get alarms"
    )
    return 0


HELP = "training-condition profiles: build from recordings, show, merge"


def add_parser(subparsers: Any) -> None:
    """Register `profile {build,show,merge}` on the `gap-monitor` command's subparsers."""
    _configure(subparsers.add_parser("profile", help=HELP, description=HELP))


def _configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="profile_command", required=True, metavar="{build,show,merge,compare}")

    build = sub.add_parser(
        "build",
        help="build a profile from training recordings (the live feature path, calibrated alarms)",
    )
    build.add_argument("recordings", nargs="+", help="rosbag2 folders, .mcap/.db3 files or ROS 1 .bag files")
    build.add_argument("-o", "--output", required=True, help="profile YAML to write")
    build.add_argument(
        "--topics", nargs="+", default=None, help="only these topics (default: every sensor topic)"
    )
    build.add_argument(
        "--image-rate", type=float, default=ConditionSettings().image_rate_hz,
        help="images per second the monitor decodes, as in its config (default %(default)g)",
    )  # fmt: skip
    build.add_argument(
        "--target-fa-per-hour", type=float, default=1.0,
        help="false alarms per hour per stream the alarm is calibrated for (default %(default)g)",
    )  # fmt: skip
    build.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    build.set_defaults(func=_cmd_build)

    show = sub.add_parser("show", help="print a profile's streams, alarms and feature ranges")
    show.add_argument("profile")
    show.set_defaults(func=_cmd_show)

    merge = sub.add_parser("merge", help="merge profiles (e.g. built from different recordings)")
    merge.add_argument("profiles", nargs="+", help="two or more profile YAML files")
    merge.add_argument("-o", "--output", required=True, help="merged profile YAML to write")
    merge.set_defaults(func=_cmd_merge)

    from gap_monitor.offline.report import add_compare_parser  # the report module renders comparisons

    add_compare_parser(sub)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gap-monitor profile", description=HELP)
    _configure(parser)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    logging.basicConfig(format="%(levelname)s: %(message)s")
    sys.exit(main())
