"""The one feed loop: messages of the configured streams in, condition features out.

Every consumer (the live monitor, profile build, report, replay) pushes its messages through a
`FeatureFeed`, which runs one `StreamConditions` per stream, batches the windowed ones and reports
malformed messages, so training and deployment are measured by identical code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

from gap_monitor.core.conditions.settings import ConditionSettings
from gap_monitor.core.conditions.stream import ConditionError, StreamConditions
from gap_monitor.core.io import cdr
from gap_monitor.core.io.modalities import COMPRESSED_IMAGE, WINDOWED, modality_of

# A windowed stream's batch is cut after this many messages (4096 IMU messages are ~1.3 MB).
BATCH_MAX_MESSAGES = 4096
_NO_SAMPLES: tuple[FeedSample, ...] = ()


class FeedStream(NamedTuple):
    """A stream the feed measures. `modality` None: an image topic whose kind (camera or depth)
    is told by its first readable message (the Image encoding, the CompressedImage format)."""

    modality: str | None
    msgtype: str


class FeedSample(NamedTuple):
    """Features of one stream: `time_ns` is the sample's time on the stream's clock (header
    stamps; receipt or log time for unstamped messages), `received_ns` the receipt (live) or log
    (recorded) time of the message that completed it."""

    topic: str
    modality: str
    features: dict[str, float]
    time_ns: int
    received_ns: int


MalformedCallback = Callable[[str, str], None]  # (topic, why)


class FeatureFeed:
    """Messages of the configured streams in, condition features out.

    Frames are decimated by stamp before decoding; IMU, joint and wrench messages wait in a
    per-stream batch and are decoded with numpy a batch at a time (the features are those of
    message-by-message decoding, tested). A batch is cut at `batch_max` messages, after
    `batch_span_ns` of receipt time when given (live: a hop, so features come at most a hop late),
    and by `flush`. Messages features cannot be computed from go to `on_malformed`; a zero header
    stamp falls back to the receipt time (counted in `time_fallbacks`). One feed covers one
    recording, episode or live session: windows never span two.
    """

    def __init__(
        self,
        streams: Mapping[str, FeedStream],
        settings: ConditionSettings,
        on_malformed: MalformedCallback,
        *,
        batch_span_ns: int | None = None,
        batch_max: int = BATCH_MAX_MESSAGES,
    ) -> None:
        self.settings = settings
        self._streams = dict(streams)
        self._on_malformed = on_malformed
        self._batch_span_ns = batch_span_ns
        self._batch_max = batch_max
        self._conditions: dict[str, StreamConditions] = {}
        self._pending: dict[str, tuple[list[int], list[cdr.Buffer]]] = {}
        self.time_fallbacks: dict[str, int] = dict.fromkeys(self._streams, 0)
        self.samples: dict[str, int] = dict.fromkeys(self._streams, 0)  # feature dicts given per topic
        for topic, stream in self._streams.items():
            if stream.modality is not None:
                self._start(topic, stream.modality)

    def modality(self, topic: str) -> str | None:
        """The stream's modality, None while an image topic's kind is still unknown."""
        conditions = self._conditions.get(topic)
        return conditions.modality if conditions is not None else self._streams[topic].modality

    def _start(self, topic: str, modality: str) -> StreamConditions:
        conditions = StreamConditions(modality, self._streams[topic].msgtype, self.settings)
        self._conditions[topic] = conditions
        if modality in WINDOWED:
            self._pending[topic] = ([], [])
        return conditions

    def push(
        self, topic: str, received_ns: int, data: cdr.Buffer, stamp_ns: int | None = None
    ) -> Sequence[FeedSample]:
        """One message of a fed topic; the features it completes (usually none). `stamp_ns`: its
        header stamp when the caller has parsed it already."""
        batch = self._pending.get(topic)
        if batch is not None:
            receipts, datas = batch
            receipts.append(received_ns)
            datas.append(data)
            if len(datas) >= self._batch_max or (
                self._batch_span_ns is not None and received_ns - receipts[0] >= self._batch_span_ns
            ):
                return self._flush_batch(topic)
            return _NO_SAMPLES
        try:
            # Only image topics start without a modality, and images are never batched.
            conditions = self._conditions.get(topic) or self._start(topic, self._image_kind(topic, data))
            stamp = cdr.header_stamp_ns(data) if stamp_ns is None else stamp_ns
            if not stamp:
                # Drivers that leave the header stamp unset still get features, timed by receipt.
                self.time_fallbacks[topic] += 1
                stamp = received_ns
            features = conditions.on_message(stamp, data)
        except (cdr.CdrError, ConditionError) as exc:
            self._on_malformed(topic, str(exc))
            return _NO_SAMPLES
        if features is None:
            return _NO_SAMPLES
        self.samples[topic] += 1
        return (FeedSample(topic, conditions.modality, features, stamp, received_ns),)

    def _image_kind(self, topic: str, data: cdr.Buffer) -> str:
        msgtype = self._streams[topic].msgtype
        if msgtype == COMPRESSED_IMAGE:
            kind = modality_of(msgtype, compressed_format=cdr.decode_compressed_image(data).format)
        else:
            kind = modality_of(msgtype, image_encoding=cdr.decode_image(data).encoding)
        if kind is None:
            raise ConditionError(f"{msgtype}: no condition features for this message type")
        return kind

    def flush(self) -> list[FeedSample]:
        """The features of every message pushed so far (batches are otherwise cut by size/time)."""
        out: list[FeedSample] = []
        for topic, (_, datas) in self._pending.items():
            if datas:
                out.extend(self._flush_batch(topic))
        return out

    def _flush_batch(self, topic: str) -> list[FeedSample]:
        receipts, datas = self._pending[topic]
        conditions = self._conditions[topic]
        # A zero header stamp falls back to the receipt time, as for a message on its own.
        out = conditions.on_batch(receipts, datas)
        self.time_fallbacks[topic] += out.log_time_fallbacks
        for why in out.malformed:
            self._on_malformed(topic, why)
        samples = [
            FeedSample(topic, conditions.modality, s.features, s.time_ns, receipts[s.position])
            for s in out.features
        ]
        receipts.clear()
        datas.clear()
        self.samples[topic] += len(samples)
        return samples
