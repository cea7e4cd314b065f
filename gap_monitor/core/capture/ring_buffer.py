"""Thread-safe ring buffer of raw serialized (CDR) messages, per topic, for snapshot capture.

Each topic keeps the messages of its last `window_s` seconds (relative to that topic's newest
message); all topics together hold at most `total_bytes` of payload, evicting the globally oldest
(earliest pushed) messages first, so the newest always survive. Latched topics (transient-local,
such as /tf_static or a camera_info) keep only their last message per latch key, forever and
outside both limits, so every snapshot can be used on its own. A log time older than a topic's
whole window means the clock jumped back (sim time restarted): that topic's messages are dropped.

Memory: `total_bytes` counts payload bytes only. Each buffered message also costs a fixed
bookkeeping overhead of about `MESSAGE_OVERHEAD_BYTES` (the bytes object header, a small tuple,
two integers and two deque slots), so the worst case is
`total_bytes + message_count * MESSAGE_OVERHEAD_BYTES + latched payloads`; for 1 kHz IMU messages
of ~300 bytes the overhead is about half the payload, for images it is negligible.
"""

from __future__ import annotations

import heapq
import operator
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = [
    "MESSAGE_OVERHEAD_BYTES",
    "BufferStats",
    "BufferedMessage",
    "RingBuffer",
    "TopicInfo",
    "TopicStats",
]

# Upper estimate of the per-message memory on CPython 3.10-3.12 (see module docstring).
MESSAGE_OVERHEAD_BYTES = 256
# Latched topics keep one message per latch key; the cap stops a misbehaving key from growing it.
MAX_LATCH_KEYS = 64

_ORDER = operator.attrgetter("log_time_ns", "seq")
_LOG_TIME = operator.attrgetter("log_time_ns")
_DATA = operator.attrgetter("data")


class BufferedMessage(NamedTuple):
    """One buffered message: the raw serialized bytes and their times (integer ns)."""

    topic: str
    log_time_ns: int
    publish_time_ns: int
    data: bytes
    seq: int  # push order, unique and increasing across the whole buffer
    latched: bool = False


@dataclass(frozen=True)
class TopicInfo:
    """How a topic is buffered (what `add_topic` was given)."""

    topic: str
    msgtype: str
    window_s: float
    latched: bool
    offered_qos_profiles: str


@dataclass(frozen=True)
class TopicStats:
    """What one topic holds now. Times are log times in ns (None when empty)."""

    topic: str
    msgtype: str
    latched: bool
    count: int
    bytes: int
    oldest_ns: int | None
    newest_ns: int | None
    seconds_held: float
    evicted_for_budget: int  # messages dropped early because of the global byte cap
    dropped_oversize: int  # messages larger than the whole budget, never stored
    clock_jumps: int  # times a log time older than the window emptied the topic


@dataclass(frozen=True)
class BufferStats:
    """Whole-buffer view: per-topic stats and byte totals."""

    topics: dict[str, TopicStats]
    total_bytes: int  # payload bytes held under the budget (latched excluded)
    latched_bytes: int
    budget_bytes: int
    message_count: int


@dataclass
class _Topic:
    info: TopicInfo
    window_ns: int
    messages: deque[BufferedMessage] = field(default_factory=deque)
    latched: dict[object, BufferedMessage] = field(default_factory=dict)
    bytes: int = 0
    newest_ns: int | None = None
    # True while every push came at or after the newest before it: `messages` is then sorted by
    # log time and its ends are its oldest and newest (no scan of the held messages).
    in_order: bool = True
    evicted_for_budget: int = 0
    dropped_oversize: int = 0
    clock_jumps: int = 0


class RingBuffer:
    """Raw messages per topic, bounded by a per-topic time window and a global byte budget.

    Args:
        total_bytes: payload byte budget shared by all non-latched topics.
        default_window_s: seconds kept per topic unless `add_topic` says otherwise.

    All methods are thread-safe; `push` is amortised O(1) and never raises for a known topic.
    """

    def __init__(self, total_bytes: int, default_window_s: float) -> None:
        if isinstance(total_bytes, bool) or not isinstance(total_bytes, int) or total_bytes <= 0:
            raise ValueError(f"total_bytes: {total_bytes!r} is not allowed; need an int > 0")
        _check_window("default_window_s", default_window_s)
        self._budget = total_bytes
        self._default_window_s = float(default_window_s)
        self._lock = threading.Lock()
        self._topics: dict[str, _Topic] = {}
        # Non-latched messages in push order, for oldest-first eviction across topics. Entries
        # already evicted by their topic's window stay here until popped or compacted.
        self._order: deque[BufferedMessage] = deque()
        self._dead_in_order = 0
        self._total = 0
        self._latched_total = 0
        self._count = 0
        self._seq = 0

    @property
    def budget_bytes(self) -> int:
        """The payload byte budget given at construction."""
        return self._budget

    @property
    def last_seq(self) -> int:
        """Sequence number of the most recent push (0 before any)."""
        with self._lock:
            return self._seq

    def add_topic(
        self,
        topic: str,
        msgtype: str,
        *,
        window_s: float | None = None,
        latched: bool = False,
        offered_qos_profiles: str = "",
    ) -> None:
        """Register a topic before pushing to it.

        Args:
            topic: topic name.
            msgtype: `pkg/msg/Name`.
            window_s: seconds to keep (default: the buffer's default window); ignored if latched.
            latched: keep only the last message (per latch key) forever, outside eviction.
            offered_qos_profiles: rosbag2's YAML string of the publishers' QoS, written to the
                snapshot's metadata as it is.

        Adding the same topic again with identical arguments is a no-op; with different ones it
        is a ValueError (the buffered data would no longer match its description).
        """
        window = self._default_window_s if window_s is None else window_s
        _check_window(f"window_s of {topic}", window)
        info = TopicInfo(topic, msgtype, float(window), bool(latched), offered_qos_profiles)
        with self._lock:
            existing = self._topics.get(topic)
            if existing is not None:
                if existing.info != info:
                    raise ValueError(f"topic {topic!r} is already buffered as {existing.info}; got {info}")
                return
            self._topics[topic] = _Topic(info, round(window * 1e9))

    def topics(self) -> dict[str, TopicInfo]:
        """The registered topics, by name."""
        with self._lock:
            return {name: t.info for name, t in self._topics.items()}

    def push(
        self,
        topic: str,
        log_time_ns: int,
        data: bytes,
        publish_time_ns: int | None = None,
        latch_key: object = None,
    ) -> bool:
        """Buffer one serialized message; returns False when it was too large to keep.

        Args:
            topic: a topic registered with `add_topic` (KeyError otherwise).
            log_time_ns: receipt/log time, integer ns.
            data: the serialized message, kept as it is (no copy for `bytes`).
            publish_time_ns: publisher-side time if known; defaults to `log_time_ns`.
            latch_key: latched topics keep the last message per key (pass the publisher's GID
                so several /tf_static publishers all survive); ignored for other topics.
        """
        if not isinstance(data, bytes):
            data = bytes(data)
        size = len(data)
        publish = log_time_ns if publish_time_ns is None else publish_time_ns
        with self._lock:
            state = self._topics.get(topic)
            if state is None:
                raise KeyError(f"topic {topic!r} was not added to the ring buffer")
            self._seq += 1
            msg = BufferedMessage(topic, log_time_ns, publish, data, self._seq, state.info.latched)
            if state.info.latched:
                self._push_latched(state, msg, latch_key)
                return True
            if size > self._budget:
                state.dropped_oversize += 1
                return False
            if state.newest_ns is not None and log_time_ns < state.newest_ns - state.window_ns:
                # Receipt times only go back in a clock jump (sim time restarted, bag looped):
                # the held messages belong to another timeline and would never age out.
                self._drop_messages(state)
                state.clock_jumps += 1
            state.messages.append(msg)
            state.bytes += size
            self._order.append(msg)
            self._total += size
            self._count += 1
            if state.newest_ns is None or log_time_ns > state.newest_ns:
                state.newest_ns = log_time_ns
            elif log_time_ns < state.newest_ns:
                state.in_order = False
            self._evict_window(state)
            self._evict_budget()
            return True

    def clear(self) -> None:
        """Drop every non-latched message (e.g. after a clock jump); latched ones stay."""
        with self._lock:
            for state in self._topics.values():
                self._drop_messages(state)

    def window(
        self, start_ns: int | None, end_ns: int | None, *, include_latched: bool = True
    ) -> list[BufferedMessage]:
        """Messages with `start_ns <= log_time_ns <= end_ns` (None: unbounded), all topics,
        sorted by log time, plus the latched messages (flagged `latched`, original times)."""
        return self.collect(start_ns, end_ns, include_latched=include_latched)[0]

    def collect(
        self,
        start_ns: int | None,
        end_ns: int | None,
        *,
        after_seq: int | None = None,
        include_latched: bool = True,
        ordered: bool = True,
    ) -> tuple[list[BufferedMessage], int]:
        """Like `window`, optionally only messages pushed after `after_seq`; also returns the
        buffer's `last_seq` read atomically with the messages, so a caller can collect
        incrementally (`after_seq=` the returned value) without gaps or duplicates.

        With `after_seq` the cost is O(new messages); without, O(messages held). `ordered=False`
        skips the final sort (push order per topic), for callers that sort later elsewhere.
        """
        picked: list[BufferedMessage] = []
        with self._lock:
            last = self._seq
            for state in self._topics.values():
                if include_latched and state.latched:
                    picked.extend(state.latched.values())
                if after_seq is None:
                    picked.extend(state.messages)
                    continue
                for msg in reversed(state.messages):
                    if msg.seq <= after_seq:
                        break
                    picked.append(msg)
        lo = -(2**63) if start_ns is None else start_ns
        hi = 2**63 if end_ns is None else end_ns
        result = [m for m in picked if m.latched or lo <= m.log_time_ns <= hi]
        if ordered:
            result.sort(key=_ORDER)
        return result, last

    def latched_messages(self) -> list[BufferedMessage]:
        """The latched messages held now (original times), sorted by log time."""
        with self._lock:
            held = [m for state in self._topics.values() for m in state.latched.values()]
        held.sort(key=_ORDER)
        return held

    def stats(self) -> BufferStats:
        """Per-topic count, bytes, oldest/newest log time, seconds held; and byte totals."""
        with self._lock:
            topics: dict[str, TopicStats] = {}
            for name, state in self._topics.items():
                latched = state.info.latched
                held = state.latched.values() if latched else state.messages
                # The node asks every second with ~20k messages held, scattered over a GiB: a pass
                # over them cost ~5 ms in cache misses. Kept counts and the ends of a sorted
                # deque give the same figures.
                if not latched and state.in_order:
                    messages = state.messages
                    oldest = messages[0].log_time_ns if messages else None
                    newest = messages[-1].log_time_ns if messages else None
                else:
                    times = list(map(_LOG_TIME, held))
                    oldest = min(times, default=None)
                    newest = max(times, default=None)
                held_s = 0.0 if oldest is None or newest is None else (newest - oldest) / 1e9
                topics[name] = TopicStats(
                    topic=name,
                    msgtype=state.info.msgtype,
                    latched=state.info.latched,
                    count=len(held),
                    bytes=sum(map(len, map(_DATA, held))) if latched else state.bytes,
                    oldest_ns=oldest,
                    newest_ns=newest,
                    seconds_held=held_s,
                    evicted_for_budget=state.evicted_for_budget,
                    dropped_oversize=state.dropped_oversize,
                    clock_jumps=state.clock_jumps,
                )
            return BufferStats(
                topics=topics,
                total_bytes=self._total,
                latched_bytes=self._latched_total,
                budget_bytes=self._budget,
                message_count=self._count,
            )

    # -- internals (called with the lock held) --------------------------------------------------

    def _push_latched(self, state: _Topic, msg: BufferedMessage, key: object) -> None:
        old = state.latched.pop(key, None)
        if old is not None:
            self._latched_total -= len(old.data)
        elif len(state.latched) >= MAX_LATCH_KEYS:
            oldest_key = next(iter(state.latched))
            self._latched_total -= len(state.latched.pop(oldest_key).data)
        state.latched[key] = msg
        self._latched_total += len(msg.data)

    def _drop_messages(self, state: _Topic) -> None:
        self._total -= state.bytes
        self._count -= len(state.messages)
        self._dead_in_order += len(state.messages)
        state.messages.clear()
        state.bytes = 0
        state.newest_ns = None
        state.in_order = True

    def _evict_window(self, state: _Topic) -> None:
        assert state.newest_ns is not None
        limit = state.newest_ns - state.window_ns
        messages = state.messages
        while messages and messages[0].log_time_ns < limit:
            old = messages.popleft()
            state.bytes -= len(old.data)
            self._total -= len(old.data)
            self._count -= 1
            self._dead_in_order += 1
        # Dead entries in the push-order deque are skipped lazily; rebuild it when they dominate
        # so its length stays proportional to what is held (amortised O(1) per push).
        if self._dead_in_order > 1024 and self._dead_in_order > self._count:
            self._order = deque(
                heapq.merge(*(t.messages for t in self._topics.values()), key=lambda m: m.seq)
            )
            self._dead_in_order = 0

    def _evict_budget(self) -> None:
        order = self._order
        while self._total > self._budget and order:
            msg = order.popleft()
            state = self._topics[msg.topic]
            # The oldest live entry of the push order is always the head of its topic's deque;
            # anything else here was already evicted by that topic's window.
            if not state.messages or state.messages[0] is not msg:
                self._dead_in_order -= 1
                continue
            state.messages.popleft()
            state.bytes -= len(msg.data)
            self._total -= len(msg.data)
            self._count -= 1
            state.evicted_for_budget += 1


def _check_window(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name}: {value!r} is not allowed; need a number of seconds > 0")
