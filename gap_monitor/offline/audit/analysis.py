"""The audit's analysis: the synchronization QA a dataset should pass before it leaves collection.

For every recording (rosbag2 folder, bare .mcap/.db3, ROS 1 .bag) the audit reads each topic whose
type starts with a std_msgs/Header once, in log-time order, and reports:

- per topic (per header.frame_id when a topic carries several): rate (against `rate_hz` of the
  `--config` streams when given), period and jitter from the header stamps, gaps, stamp problems
  (going back, repeated, zero, ahead of the log time), receipt latency = log time - stamp, and
  whether the topic covers the recording or starts late / stops early;
- per pair of topics: the header-stamp offset (median, p95), its drift in ppm and the unmatched
  fraction. Pairs come from the config's `skew_pairs` and `--pairs`; with neither, every pair of
  image topics (Image, CompressedImage) is checked, and since the audit cannot know such pairs
  are meant to be synchronized, their findings stop at WARN;
- per (camera, IMU) combination: the camera-IMU time offset measured from motion (image shift vs.
  gyro), with its confidence and the estimator's reason; only a confident estimate above
  `motion_offset_warn_ms` is a finding (WARN: a constant offset is something to calibrate).

Every judgement is an `AuditFinding` (OK, WARN or ERROR) whose message is a sentence with the
numbers; the results and their JSON are in `model`, the text report in `gap_monitor.render.audit_text`.
"""

from __future__ import annotations

import functools
import os
from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from gap_monitor.core.conditions.stream import imu_fields
from gap_monitor.core.config import MonitorConfig
from gap_monitor.core.events import Severity
from gap_monitor.core.io import cdr
from gap_monitor.core.io.cdr_batch import decode_batch
from gap_monitor.core.io.modalities import COMPRESSED_IMAGE, DEPTH_ENCODINGS, IMAGE_TYPES, IMU
from gap_monitor.core.io.recordings import AnyMessage, Recording, open_recording
from gap_monitor.core.timing.motion_offset import (
    FrameMotion,
    FrameMotionTracker,
    MotionOffsetSettings,
    OffsetEstimate,
    estimate_offset_from_motions,
)
from gap_monitor.core.timing.skew import SkewLimits, SkewSettings, assess_skew, measure_skew
from gap_monitor.core.timing.stamps import (
    TimingLimits,
    TimingSettings,
    TimingSummary,
    TimingTracker,
    assess_summary,
)
from gap_monitor.core.units import NS_PER_S
from gap_monitor.errors import MessageError, RecordingError
from gap_monitor.offline.audit.model import (
    AuditFinding,
    AuditInputError,
    AuditResult,
    AuditSettings,
    MotionAudit,
    PairAudit,
    RecordingAudit,
    SkippedTopic,
    TopicAudit,
)
from gap_monitor.offline.progress import ProgressCallback

__all__ = ["ProgressCallback", "RecordingAuditor", "has_header", "open_recordings", "run_audit"]


_PROGRESS_EVERY = 512  # messages between progress callbacks (the bar rate-limits its drawing)



# ---------------------------------------------------------------------------------------------
# Which topics can be audited


@functools.cache
def _typestore_fields(store_name: str) -> Mapping[str, Any]:
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores[store_name]).fielddefs  # type: ignore[no-any-return]


@functools.cache
def has_header(msgtype: str) -> bool | None:
    """Whether `msgtype` starts with a std_msgs/Header; None for a type the type stores lack."""
    for store in ("ROS2_JAZZY", "ROS2_HUMBLE", "ROS1_NOETIC"):
        fielddefs = _typestore_fields(store)
        if msgtype in fielddefs:
            fields = fielddefs[msgtype][1]
            return bool(fields) and fields[0][1][1] == "std_msgs/msg/Header"
    return None


# ---------------------------------------------------------------------------------------------
# One recording


@dataclass
class _Pair:
    a: str
    b: str
    source: str
    limits: SkewLimits
    cap: Severity = Severity.ERROR  # worst level this pair may report


class _Camera:
    """Frame motion of one camera topic, measured while the recording streams past."""

    def __init__(self, settings: MotionOffsetSettings) -> None:
        self.tracker = FrameMotionTracker(settings.work_width, settings.subpixel_refine)
        self.motions: list[FrameMotion] = []
        self.last_stamp: int | None = None
        self.errors = 0
        self.first_error = ""
        self.not_a_camera = ""

    def add(self, msgtype: str, data: cdr.Buffer) -> None:
        if self.not_a_camera:
            return
        try:
            stamp, image = self._grey(msgtype, data)
            if image is None or (self.last_stamp is not None and stamp <= self.last_stamp):
                return
            motion = self.tracker.update(stamp, image)
        except (MessageError, cv2.error) as exc:  # a malformed, undecodable or unusable frame
            self.errors += 1
            self.first_error = self.first_error or str(exc)
            return
        self.last_stamp = stamp
        if motion is not None:
            self.motions.append(motion)

    def _grey(self, msgtype: str, data: cdr.Buffer) -> tuple[int, npt.NDArray[np.generic] | None]:
        if msgtype == COMPRESSED_IMAGE:
            msg = cdr.decode_compressed_image(data)
            if "compresseddepth" in msg.format.lower().replace(" ", ""):
                self.not_a_camera = f"depth images ({msg.format})"
                return msg.header.stamp_ns, None
            image = cv2.imdecode(msg.data, cv2.IMREAD_GRAYSCALE)
            if image is None:
                raise MessageError(f"cannot decode a {msg.format or 'compressed'} image")
            return msg.header.stamp_ns, image
        raw = cdr.decode_image(data)
        if raw.encoding in DEPTH_ENCODINGS:  # range, not light: its image motion is no camera motion
            self.not_a_camera = f"depth images ({raw.encoding})"
            return raw.header.stamp_ns, None
        return raw.header.stamp_ns, raw.pixels()


class _Gyro:
    """Angular velocities of one IMU topic; messages are decoded BATCH at a time with numpy."""

    BATCH = 4096

    def __init__(self) -> None:
        self.stamps = array("q")
        self.rates = array("d")
        self.with_data = 0  # samples that claim angular velocity (covariance[0] != -1, not all 0)
        self.errors = 0
        self.first_error = ""
        self._pending: list[cdr.Buffer] = []

    def add(self, data: cdr.Buffer) -> None:
        self._pending.append(data)
        if len(self._pending) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        datas, self._pending = self._pending, []
        if not datas:
            return
        batch = decode_batch(datas, cdr.decode_imu, imu_fields, _header_stamp)
        for index in sorted(batch.errors):
            self.errors += 1
            self.first_error = self.first_error or batch.errors[index]
        if not batch.blocks:
            return
        rates = batch.field(2)  # angular velocity
        covariance0 = batch.field(3)[:, 0]
        self.stamps.extend(batch.stamps_ns().tolist())
        self.rates.extend(rates.reshape(-1).tolist())
        # REP 145: covariance[0] = -1 marks a field the sensor does not provide.
        self.with_data += int(((covariance0 != -1.0) & np.any(rates != 0.0, axis=1)).sum())


def _header_stamp(msg: cdr.ImuMsg) -> int:
    return msg.header.stamp_ns


class RecordingAuditor:
    """The audit of one recording as a consumer of its messages: `topics` to read, `add` each of
    them in log-time order, then `finish`. The report feeds it from the same pass that computes
    its features, so a recording is read once."""

    def __init__(
        self,
        rec: Recording,
        config: MonitorConfig | None,
        pairs: Sequence[tuple[str, str]],
        settings: AuditSettings,
    ) -> None:
        self.rec = rec
        self.label = str(rec.path)
        self.config = config
        self.settings = settings
        self.findings: list[AuditFinding] = []
        self.topic_types = {t: (i.msgtype, i.count) for t, i in rec.topics().items()}
        self.skipped: list[SkippedTopic] = []
        self.timed: list[str] = []
        for topic, (msgtype, _) in self.topic_types.items():
            header = has_header(msgtype)
            if header:
                self.timed.append(topic)
            else:
                why = (
                    "no std_msgs/Header: nothing to time"
                    if header is False
                    else "type unknown to the bundled ROS type stores: cannot tell whether it "
                    "starts with a header"
                )
                self.skipped.append(SkippedTopic(topic, msgtype, why))
        self._check_config_streams()
        self.pairs = self._pairs(pairs)
        self.cameras: dict[str, _Camera] = {}
        self.gyros: dict[str, _Gyro] = {}
        if settings.estimate_motion:
            self._motion_topics()
        self._begin()

    # -- what to measure

    def _add(self, level: Severity, subject: str, check: str, message: str, **values: float) -> None:
        self.findings.append(AuditFinding(self.label, level, subject, check, message, values))

    def _check_config_streams(self) -> None:
        if self.config is None:
            return
        for s in self.config.streams:
            found = self.topic_types.get(s.topic)
            if found is None or found[1] == 0:
                where = "is not in the recording" if found is None else "has no messages"
                self._add(
                    Severity.ERROR,
                    s.topic,
                    "missing",
                    f"{s.topic}: configured stream {s.name!r} ({s.modality}, {s.rate_hz:g} Hz) {where}",
                )
            elif found[0] != s.msgtype:
                self._add(
                    Severity.WARN,
                    s.topic,
                    "type",
                    f"{s.topic}: recorded as {found[0]}, configured as {s.msgtype}",
                )

    def _pairs(self, requested: Sequence[tuple[str, str]]) -> list[_Pair]:
        base = self.settings.skew_limits
        wanted: list[_Pair] = []
        if self.config is not None:
            for cp in self.config.skew_pairs:
                limits = replace(
                    base,
                    offset_warn_ms=cp.offset_warn_ms,
                    offset_error_ms=cp.offset_error_ms,
                    p95_warn_ms=max(base.p95_warn_ms or 0.0, cp.offset_warn_ms),
                )
                wanted.append(_Pair(cp.a, cp.b, "config", limits))
        wanted += [_Pair(a, b, "argument", base) for a, b in requested]
        if not wanted:
            images = [t for t in self.timed if self.topic_types[t][0] in IMAGE_TYPES]
            wanted = [
                _Pair(a, b, "images", base, cap=Severity.WARN)
                for i, a in enumerate(images)
                for b in images[i + 1 :]
            ]
        seen: set[frozenset[str]] = set()
        unique = []
        for p in wanted:
            key = frozenset((p.a, p.b))
            if key not in seen:
                seen.add(key)
                unique.append(p)
        return unique

    def _motion_topics(self) -> None:
        def present(modality: str, types: tuple[str, ...]) -> list[str]:
            """The config's streams of `modality`, else the recording's topics of `types`."""
            configured = [
                s.topic for s in (self.config.streams if self.config else ()) if s.modality == modality
            ]
            if configured:
                return [t for t in configured if t in self.timed]
            found = [t for t in self.timed if self.topic_types[t][0] in types]
            # Unconfigured depth images are told apart by name here (or by encoding when decoded).
            return [t for t in found if modality != "camera" or "depth" not in t]

        cameras = present("camera", IMAGE_TYPES)
        imus = present("imu", (IMU,))
        if not cameras or not imus:
            return
        self.cameras = {t: _Camera(self.settings.motion) for t in cameras}
        self.gyros = {t: _Gyro() for t in imus}

    # -- the pass

    @property
    def topics(self) -> list[str]:
        """The topics this audit reads (those with a header to time)."""
        return self.timed

    def _begin(self) -> None:
        rec, settings = self.rec, self.settings
        counts = [n for t, (_, n) in self.topic_types.items() if t in self.timed]
        timing = TimingSettings(
            window_s=max(1.0, (rec.end_time_ns - rec.start_time_ns) / NS_PER_S + 1.0),
            max_samples=max(10, min(settings.max_timing_samples, max(counts, default=0) + 10)),
        )
        expected: dict[str | tuple[str, str], float] = (
            {s.topic: s.rate_hz for s in self.config.streams} if self.config else {}
        )
        self.tracker = TimingTracker(expected, timing)
        self.first_last: dict[str, list[int]] = {}
        self.malformed: dict[str, tuple[int, str]] = {}
        pair_topics = {t for p in self.pairs for t in (p.a, p.b)}
        self.stamps: dict[str, array[int]] = {t: array("q") for t in pair_topics if t in self.timed}
        self.read = 0

    def add(self, m: AnyMessage) -> None:
        """One message of `topics`, in log-time order."""
        self.read += 1
        span = self.first_last.setdefault(m.topic, [m.log_time_ns, m.log_time_ns])
        span[1] = m.log_time_ns
        fields = cdr.header_fields(m.data)  # one cheap parse; the slow calls say what is wrong
        if fields is not None:
            stamp: int | None = fields[0]
            frame = fields[1]
        else:
            try:
                stamp = cdr.header_stamp_ns(m.data)
                frame = cdr.header_frame_id(m.data) if stamp is not None else ""
            except cdr.CdrError as exc:
                n, first = self.malformed.get(m.topic, (0, str(exc)))
                self.malformed[m.topic] = (n + 1, first)
                return
        self.tracker.observe(m.topic, stamp, m.log_time_ns, frame_id=frame)
        if stamp is not None and m.topic in self.stamps:
            self.stamps[m.topic].append(stamp)
        camera = self.cameras.get(m.topic)
        if camera is not None:
            camera.add(m.msgtype, m.data)
        gyro = self.gyros.get(m.topic)
        if gyro is not None:
            gyro.add(m.data)

    def finish(self) -> RecordingAudit:
        """Judge what the messages showed."""
        for gyro in self.gyros.values():
            gyro.flush()
        rec = self.rec
        topics = self._judge_topics(self.tracker, self.first_last, self.malformed)
        if not topics:
            # An ERROR, not an OK: a QA gate must not pass a recording that holds nothing it checked
            # (the wrong bag, a topic filter that recorded none of the sensors).
            found = ", ".join(f"{t} ({n})" for t, (_, n) in self.topic_types.items()) or "(none)"
            self._add(
                Severity.ERROR,
                self.label,
                "nothing_to_audit",
                f"{self.label}: nothing to audit: no messages on any topic the audit can time (one "
                f"starting with a std_msgs/Header); topics found (messages): {found}",
            )
        pairs = tuple(self._judge_pair(p, self.stamps) for p in self.pairs)
        motion = tuple(self._judge_motion())
        return RecordingAudit(
            path=self.label,
            kind=rec.kind,
            start_time_ns=rec.start_time_ns,
            end_time_ns=rec.end_time_ns,
            messages=rec.message_count(),
            messages_read=self.read,
            topic_types=dict(self.topic_types),
            topics=topics,
            pairs=pairs,
            motion_offsets=motion,
            skipped=tuple(self.skipped),
            findings=tuple(self.findings),
        )

    def run(self, progress: ProgressCallback | None) -> RecordingAudit:
        """The audit on its own: read `topics`, then judge."""
        total = self.rec.message_count(self.timed)
        name = self.rec.path.name
        try:
            for m in self.rec.views(self.timed):
                self.add(m)
                if progress is not None and self.read % _PROGRESS_EVERY == 0:
                    progress(name, self.read, total)
        except RecordingError as exc:
            raise AuditInputError(str(exc)) from exc
        if progress is not None:
            progress(name, self.read, total)
        return self.finish()

    # -- judgement

    def _limits(self, topic: str) -> TimingLimits:
        base = self.settings.timing_limits
        if self.config is None:
            return base
        for s in self.config.streams:
            if s.topic == topic:
                warn = s.rate_tolerance * 100
                return replace(base, rate_warn_pct=warn, rate_error_pct=max(base.rate_error_pct or 0.0, warn))
        return base

    def _judge_topics(
        self,
        tracker: TimingTracker,
        first_last: Mapping[str, list[int]],
        malformed: Mapping[str, tuple[int, str]],
    ) -> tuple[TopicAudit, ...]:
        streams = tracker.streams()
        per_topic: dict[str, int] = {}
        for topic, _ in streams:
            per_topic[topic] = per_topic.get(topic, 0) + 1
        for (topic, _), stream in streams.items():
            if per_topic[topic] == 1:  # name the stream by its topic alone unless it has several
                stream.name = topic
        out = []
        for topic in self.timed:
            bad, first_error = malformed.get(topic, (0, ""))
            if bad:
                self._add(
                    Severity.WARN,
                    topic,
                    "malformed",
                    f"{topic}: {bad} message(s) without a readable header (first: {first_error})",
                    malformed=bad,
                )
        for (topic, frame_id), summary in tracker.summaries().items():
            before = len(self.findings)
            self._judge_stream(topic, summary)
            self._judge_coverage(topic, summary, first_last[topic])
            level = max((f.level for f in self.findings[before:]), default=Severity.OK)
            bad = malformed.get(topic, (0, ""))[0]
            out.append(
                TopicAudit(
                    recording=self.label,
                    topic=topic,
                    frame_id=frame_id,
                    msgtype=self.topic_types[topic][0],
                    summary=summary,
                    level=max(level, Severity.WARN) if bad else level,
                    malformed=bad,
                    first_log_time_ns=first_last[topic][0],
                    last_log_time_ns=first_last[topic][1],
                )
            )
        return tuple(out)

    def _judge_stream(self, topic: str, s: TimingSummary) -> None:
        limits = self._limits(topic)
        if s.messages < limits.min_messages:
            self._add(
                Severity.OK,
                s.name,
                "rate",
                f"{s.name}: only {s.messages} message(s), too few to judge rate, jitter and gaps "
                f"(need {limits.min_messages})",
                messages=s.messages,
            )
            return
        for f in assess_summary(s, limits):
            if f.check == "clock":  # a clock jump inside a dataset is a defect, not noise
                f = replace(f, level=Severity.WARN)
            if f.check == "future" and s.latency_median_ms is not None:
                f = replace(
                    f,
                    message=f"{f.message}; stamps are {-s.latency_median_ms:.2f} ms ahead of the "
                    f"log time at the median (latency {s.latency_median_ms:+.2f} ms)",
                )
            self._add(f.level, f.subject or s.name, f.check, f.message, **f.values)

    def _judge_coverage(self, topic: str, s: TimingSummary, span: list[int]) -> None:
        start, end = self.rec.start_time_ns, self.rec.end_time_ns
        period_s = (s.reference_period_ms or 0.0) / 1000
        limit_s = max(self.settings.edge_silence_s, 10 * period_s)
        lead_s, tail_s = (span[0] - start) / NS_PER_S, (end - span[1]) / NS_PER_S
        if lead_s <= limit_s and tail_s <= limit_s:
            return
        covered_s = (span[1] - span[0]) / NS_PER_S
        self._add(
            Severity.WARN,
            s.name,
            "coverage",
            f"{s.name}: messages cover only {covered_s:.1f} s of the {(end - start) / NS_PER_S:.1f} s "
            f"recording: first {lead_s:.1f} s after the start, last {tail_s:.1f} s before the end "
            f"(limit {limit_s:.1f} s)",
            covered_s=covered_s,
            lead_s=lead_s,
            tail_s=tail_s,
        )

    def _judge_pair(self, p: _Pair, stamps: Mapping[str, array[int]]) -> PairAudit:
        name = f"{p.a} vs {p.b}"
        missing = [t for t in (p.a, p.b) if t not in stamps]
        if missing:
            why = []
            for t in missing:
                if t not in self.topic_types:
                    why.append(f"{t} is not in the recording")
                else:
                    why.append(f"{t} ({self.topic_types[t][0]}) has no header stamps")
            note = "not measured: " + "; ".join(why)
            self._add(Severity.WARN, name, "skew", f"{name}: {note}")
            return PairAudit(self.label, p.a, p.b, p.source, None, note, Severity.WARN)
        if not stamps[p.a] or not stamps[p.b]:
            empty = p.a if not stamps[p.a] else p.b
            note = f"not measured: {empty} has no readable stamps"
            self._add(Severity.WARN, name, "skew", f"{name}: {note}")
            return PairAudit(self.label, p.a, p.b, p.source, None, note, Severity.WARN)
        summary = measure_skew(stamps[p.a], stamps[p.b], SkewSettings(), p.a, p.b)
        level = Severity.OK
        for f in assess_skew(summary, p.limits):
            if f.check == "clock":
                f = replace(f, level=Severity.WARN)
            f = replace(f, level=min(f.level, p.cap))
            level = max(level, f.level)
            self._add(f.level, f.subject, f.check, f.message, **f.values)
        note = "" if p.cap >= Severity.ERROR else "image pair found in the recording: at most WARN"
        return PairAudit(self.label, p.a, p.b, p.source, summary, note, level)

    def _judge_motion(self) -> Iterator[MotionAudit]:
        s = self.settings.motion
        for cam_topic, camera in self.cameras.items():
            for imu_topic, gyro in self.gyros.items():
                subject = f"{cam_topic} vs {imu_topic}"
                estimate: OffsetEstimate | None = None
                level = Severity.OK
                frames = self.topic_types[cam_topic][1]
                if not gyro.stamps:
                    reason = f"not estimated: no readable {imu_topic} messages ({gyro.first_error})"
                elif not gyro.with_data:
                    reason = f"not estimated: {imu_topic} carries no angular velocity (accelerometer only?)"
                elif camera.not_a_camera:
                    reason = f"not estimated: {cam_topic} carries {camera.not_a_camera}"
                elif frames < s.min_intervals + 1:
                    reason = (
                        f"not estimated: {cam_topic} has {frames} frame(s), need at least "
                        f"{s.min_intervals + 1} (min_intervals + 1)"
                    )
                else:
                    rates = np.frombuffer(gyro.rates, dtype=np.float64).reshape(-1, 3)
                    gyro_ns = np.frombuffer(gyro.stamps, dtype=np.int64)
                    estimate = estimate_offset_from_motions(camera.motions, gyro_ns, rates, s)
                    reason = estimate.reason
                    if camera.errors:
                        reason += (
                            f" ({camera.errors} frame(s) of {cam_topic} not decodable, first: "
                            f"{camera.first_error})"
                        )
                if estimate is not None and estimate.confident and estimate.offset_s is not None:
                    ms = estimate.offset_s * 1e3
                    warn = self.settings.motion_offset_warn_ms
                    level = Severity.WARN if abs(ms) > warn else Severity.OK
                    sign = "late" if ms > 0 else "early"
                    text = (
                        f"{subject}: camera stamps are {abs(ms):.1f} ms {sign} relative to the gyro "
                        f"(motion-based estimate {ms:+.1f} ± {(estimate.uncertainty_s or 0) * 1e3:.1f} "
                        f"ms, confidence {estimate.confidence:.2f}"
                    )
                    text += (
                        f", limit {warn:g} ms): correct the camera stamps by subtracting it or "
                        "calibrate the offset"
                        if level == Severity.WARN
                        else ")"
                    )
                    self._add(
                        level, subject, "motion_offset", text, offset_ms=ms, confidence=estimate.confidence
                    )
                else:
                    self._add(
                        Severity.OK,
                        subject,
                        "motion_offset",
                        f"{subject}: no confident motion-based offset: {reason}",
                    )
                yield MotionAudit(self.label, cam_topic, imu_topic, estimate, reason, level)


# ---------------------------------------------------------------------------------------------
# Entry points


def open_recordings(
    recordings: Sequence[str | os.PathLike[str]], pairs: Sequence[tuple[str, str]] = ()
) -> list[Recording]:
    """Every recording opened before any is read, so a bad path fails at once, not after an hour;
    AuditInputError too when a `pairs` topic is in none of them. The caller closes them."""
    if not recordings:
        raise AuditInputError("no recordings given")
    for a, b in pairs:
        if not a or not b or a == b:
            raise AuditInputError(f"pair {a},{b}: need two different topic names")
    opened: list[Recording] = []
    try:
        for path in recordings:
            try:
                opened.append(open_recording(path))
            except (OSError, RecordingError) as exc:
                raise AuditInputError(f"cannot read recording {path}: {exc}") from exc
        everywhere = {t for rec in opened for t in rec.topics()}
        for a, b in pairs:
            absent = [t for t in (a, b) if t not in everywhere]
            if absent:
                raise AuditInputError(
                    f"--pairs {a},{b}: {', '.join(absent)} in none of the recordings; their topics: "
                    f"{', '.join(sorted(everywhere)) or '(none)'}"
                )
    except AuditInputError:
        for rec in opened:
            rec.close()
        raise
    return opened


def run_audit(
    recordings: Sequence[str | os.PathLike[str]],
    *,
    config: MonitorConfig | None = None,
    pairs: Sequence[tuple[str, str]] = (),
    settings: AuditSettings | None = None,
    progress: ProgressCallback | None = None,
) -> AuditResult:
    """Audit each recording; AuditInputError when one cannot be read or a `pairs` topic is in none."""
    settings = settings or AuditSettings()
    opened = open_recordings(recordings, pairs)
    try:
        audits = tuple(RecordingAuditor(rec, config, pairs, settings).run(progress) for rec in opened)
    finally:
        for rec in opened:
            rec.close()
    return AuditResult(audits)
