"""Snapshots: the ring buffer's pre-trigger window plus a post-trigger window, as rosbag2 folders.

A snapshot is a folder `<output_dir>/<UTC time>_<kind>/` (e.g. `20261121T053012Z_novel_condition`)
holding `metadata.yaml` (rosbag2 metadata, version 8), one `<name>_0.mcap` (profile `ros2`, schemas
`ros2msg` with full definitions from the ament index, messages `cdr` written as received) and
`trigger.json`. The triggers are also in the MCAP as metadata records named `gap_monitor.trigger`
(one per trigger, string values, nested values JSON-encoded) plus one `gap_monitor.snapshot`.
`ros2 bag info/play`, Foxglove and rosbags open it as it is.

Timeline of one snapshot (times are the owner's clock, integer ns, the same clock that stamps the
ring buffer's log times)::

    trigger(event, t0)          -> pre-window [t0 - pre_s, t0] referenced from the ring buffer
                                   and handed to the writer thread, which starts writing it
    trigger(event2, t1 <= end)  -> the same snapshot: end = max(end, t1 + post_s), capped at
                                   t0 + max_post_s; both triggers recorded
    poll(now)                   -> hands what was pushed since the last poll (O(new messages)) to
                                   the writer thread, which appends it; when now >= end, the
                                   writer finishes the snapshot (index, metadata, fsync, rename)

Cooldown counts from the end of the previous snapshot's post window; the rate limit counts new
snapshots started in the last hour. If the clock jumps back by more than a second (sim time
restarted), both start afresh and an open snapshot is written as it is (marked truncated).

Ring buffer requirement: every non-latched topic must hold at least `pre_s` seconds (its
`window_s`, and `total_bytes` for its data rate); see `check_ring_buffer`. The post-window only
needs the buffer to hold what arrives between two polls, because `poll` collects incrementally.
Collected messages are referenced (not copied) until the snapshot is complete (a rewrite may
need them), so while a snapshot is collected or queued, memory grows by its payload size on top
of the ring buffer's budget.

Files are streamed on one background thread into `<name>.tmp-XXXXXXXX/`: messages are written
in log-time order once they are `_HOLDBACK_NS` older than the poll that collected them, and
handed to the disk every `WRITE_BEHIND_BYTES` (then dropped from the page cache), so little is
left to write when the post window ends. A message that still arrives older than what was
streamed (or a latched message replaced, or a window cut short) makes the writer rewrite the
MCAP sorted at the end, so messages are always in log-time order.
At the end the files are fsynced (files and folder), then the folder is renamed to `<name>/`, so
a folder without the `.tmp-` suffix is always complete; temporary leftovers (from a crash or
SIGKILL) are removed when a writer starts. Quotas are checked when a snapshot starts, against
its size estimated from the pre-window scaled to pre_s + post_s (and again once it is written);
a full disk or any OSError while writing removes the temporary folder and stops capture with a
diagnostic (see `status()`); nothing is raised to the caller.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import json
import math
import os
import queue
import re
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import IO, Any

from gap_monitor import __version__
from gap_monitor.core.capture.policy import (
    OutputDirError,
    SnapshotSettings,
    SnapshotStatus,
    TriggerResult,
)
from gap_monitor.core.capture.ring_buffer import BufferedMessage, RingBuffer, TopicInfo
from gap_monitor.core.io import rosbag2
from gap_monitor.core.io.mcap_writer import McapStream

__all__ = ["WRITE_BEHIND_BYTES", "SnapshotWriter"]

TMP_MARK = ".tmp-"
TRIGGER_RECORD = "gap_monitor.trigger"
SNAPSHOT_RECORD = "gap_monitor.snapshot"

_NAME_RE = re.compile(r"^\d{8}T\d{6}Z_[a-z0-9_]+$")
_TMP_RE = re.compile(r"^\d{8}T\d{6}Z_[a-z0-9_]+\.tmp-[A-Za-z0-9_]+$")
_HOUR_NS = 3600 * 10**9
_CLOCK_JUMP_NS = 10**9
# While streaming, every WRITE_BEHIND_BYTES the file's new pages are handed to the disk and those
# already on it leave the page cache (see `_McapFile.write_behind`).
WRITE_BEHIND_BYTES = 32 * 1024 * 1024
# Messages are streamed only once they are this much older than the poll that collected them:
# callbacks stamp before they push, so a late push of an earlier stamp stays in order. Anything
# that still arrives out of order makes the writer rewrite the file sorted at the end.
_HOLDBACK_NS = 200 * 1_000_000
_OVERHEAD_BYTES = 64 * 1024
_WRITE_BUFFER_BYTES = 1024 * 1024
_COMPRESSION_MODULE = {"lz4": "lz4.frame", "zstd": "zstandard"}
_FADVISE = hasattr(os, "posix_fadvise")


@dataclass
class _Collecting:
    name: str
    path: Path
    first_ns: int
    start_ns: int
    end_ns: int
    after_seq: int
    triggers: list[dict[str, Any]] = field(default_factory=list)


# Commands for the writer thread, in order: one _Start, any _Batch, one _Finish per snapshot.


@dataclass
class _Start:
    name: str
    path: Path
    start_ns: int
    end_ns: int  # planned; extensions only move it later, a truncation is checked at the end
    messages: list[BufferedMessage]  # pre-window (push order per topic) and latched, clamped
    latched: list[BufferedMessage]  # the clamped latched messages among `messages`
    estimate: int  # bytes of the whole snapshot, for the quotas
    topics: dict[str, TopicInfo]
    safe_ns: int  # messages up to this log time can be written now (see _HOLDBACK_NS)


@dataclass
class _Batch:
    name: str
    messages: list[BufferedMessage]
    safe_ns: int


@dataclass
class _Job:
    """The finished snapshot: what `_write_snapshot_files` completes."""

    name: str
    path: Path
    start_ns: int
    end_ns: int
    truncated: bool
    latched: list[BufferedMessage]
    topics: dict[str, TopicInfo]
    triggers: list[dict[str, Any]]


_Command = _Start | _Batch | _Job


class _RefusedError(Exception):
    """A snapshot is not written because of a quota; `stop` says whether capture stops."""

    def __init__(self, reason: str, stop: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stop = stop


class SnapshotWriter:
    """Turns triggers into snapshot folders; see the module docstring for the timeline.

    Args:
        settings: validated `SnapshotSettings`.
        ring_buffer: the buffer the messages come from (its log times use the same clock).
        clock: integer-ns time used when `trigger`/`poll`/`close` get no `now_ns`.

    Raises:
        OutputDirError: output_dir cannot be created or written (the message names the path).
        ValueError: the chosen compression's Python module is not installed.

    `trigger`, `poll` and `status` are thread-safe, never write files and never raise for
    disk problems; writing happens on one background thread. Call `close()` at shutdown.
    """

    def __init__(
        self,
        settings: SnapshotSettings,
        ring_buffer: RingBuffer,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        module = _COMPRESSION_MODULE.get(settings.compression)
        if module is not None and importlib.util.find_spec(module.split(".")[0]) is None:
            raise ValueError(
                f"compression: {settings.compression!r} needs the Python module {module!r}, "
                "which is not installed; install it or use another compression"
            )
        self._settings = settings
        self._buffer = ring_buffer
        self._clock = clock
        self._dir = settings.output_dir
        self._prepare_dir()

        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._collecting: _Collecting | None = None
        self._last_end_ns: int | None = None
        self._last_now: int | None = None
        self._starts: deque[int] = deque()
        self._reserved: set[str] = set()
        self._queued = 0
        self._closed = False
        self._written = 0
        self._rejected = 0
        self._last_trigger: dict[str, Any] | None = None
        self._last_path: Path | None = None
        self._last_error: str | None = None
        self._stopped_reason: str | None = None
        self._on_disk: list[tuple[str, int]] = self._scan()  # oldest first

        self._jobs: queue.Queue[_Command | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="gap_monitor-snapshot-writer", daemon=True)
        self._thread.start()

    @property
    def settings(self) -> SnapshotSettings:
        return self._settings

    def trigger(self, event: Mapping[str, Any], now_ns: int | None = None) -> TriggerResult:
        """Start a snapshot for `event` (kind, reason, time, source, details...), or extend the
        one whose post window is open, or say why not. Cheap: copies references only."""
        now = self._clock() if now_ns is None else now_ns
        s = self._settings
        with self._lock:
            if self._closed:
                return self._reject("closed", "the snapshot writer is closed")
            record = {"trigger_ns": now, "event": dict(event)}
            self._last_trigger = dict(event)
            self._check_clock(now)
            self._advance(now)
            current = self._collecting
            if current is not None:
                current.triggers.append(record)
                cap = current.first_ns + _ns(s.max_post_s)
                current.end_ns = min(max(current.end_ns, now + _ns(s.post_s)), cap)
                return TriggerResult(
                    "extended", current.path, f"joined {current.name}; ends at {current.end_ns}"
                )
            if self._stopped_reason is not None:
                return self._reject("stopped", f"capture stopped: {self._stopped_reason}")
            if self._last_end_ns is not None and now < self._last_end_ns + _ns(s.cooldown_s):
                wait = (self._last_end_ns + _ns(s.cooldown_s) - now) / 1e9
                return self._reject("cooldown", f"cooldown_s {s.cooldown_s:g}: {wait:.3g} s left")
            while self._starts and self._starts[0] <= now - _HOUR_NS:
                self._starts.popleft()
            if len(self._starts) >= s.max_per_hour:
                return self._reject("rate", f"max_per_hour {s.max_per_hour} snapshots already started")
            if s.on_quota == "stop" and (over := self._over_quota(1, 1)):
                self._stopped_reason = f"quota reached ({over}); on_quota is 'stop'"
                return self._reject("stopped", f"capture stopped: {self._stopped_reason}")

            name = self._unique_name(now, event.get("kind", "trigger"))
            start = now - _ns(s.pre_s)
            end = now + _ns(s.post_s)
            # Unsorted: sorting happens on the writer thread, off the caller's path.
            messages, seq = self._buffer.collect(start, now, include_latched=False, ordered=False)
            latched = self._clamped_latched(start, end)
            self._collecting = _Collecting(
                name=name,
                path=self._dir / name,
                first_ns=now,
                start_ns=start,
                end_ns=end,
                after_seq=seq,
                triggers=[record],
            )
            self._jobs.put(
                _Start(
                    name=name,
                    path=self._dir / name,
                    start_ns=start,
                    end_ns=end,
                    messages=latched + messages,
                    latched=latched,
                    estimate=self._estimate(messages, latched, now),
                    topics=self._buffer.topics(),
                    safe_ns=now - _HOLDBACK_NS,
                )
            )
            self._reserved.add(name)
            self._starts.append(now)
            self._advance(now)  # post_s == 0: hand it over at once
            return TriggerResult("started", self._dir / name, f"snapshot {name} started")

    def poll(self, now_ns: int | None = None) -> None:
        """Collect newly buffered messages into the open snapshot and hand it to the writer
        thread once its post window has ended. Call periodically (e.g. 10 Hz, at least 1 Hz)."""
        now = self._clock() if now_ns is None else now_ns
        with self._lock:
            self._check_clock(now)
            self._advance(now)

    def status(self) -> SnapshotStatus:
        """Counts, quota use, last trigger/error and the capture-stopped flag."""
        with self._lock:
            return SnapshotStatus(
                snapshots_written=self._written,
                snapshots_on_disk=len(self._on_disk),
                bytes_used=sum(size for _, size in self._on_disk),
                quota_bytes=self._settings.quota_bytes,
                quota_count=self._settings.quota_count,
                collecting=self._collecting is not None,
                queued=self._queued,
                triggers_rejected=self._rejected,
                last_trigger=None if self._last_trigger is None else dict(self._last_trigger),
                last_path=self._last_path,
                last_error=self._last_error,
                capture_stopped=self._stopped_reason is not None,
                stopped_reason=self._stopped_reason,
            )

    def resume(self) -> None:
        """Clear a capture stop (e.g. after an operator freed disk space); usage is rescanned."""
        with self._lock:
            self._stopped_reason = None
            self._on_disk = self._scan()

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every finalised snapshot is written (an open post window is not forced).
        Returns False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._queued == 0, timeout_s)

    def close(self, now_ns: int | None = None, timeout_s: float | None = None) -> None:
        """Write an open snapshot as it is (marked truncated), finish queued writes, stop the
        thread. Further triggers are rejected with outcome 'closed'."""
        now = self._clock() if now_ns is None else now_ns
        with self._lock:
            if self._closed:
                return
            self._closed = True
            current = self._collecting
            if current is not None:
                self._advance(now)
                if self._collecting is not None:
                    self._collecting.end_ns = max(self._collecting.start_ns, now)
                    self._finalise(truncated=True)
        self._jobs.put(None)
        self._thread.join(timeout_s)

    # -- trigger-side internals (lock held) -----------------------------------------------------

    def _reject(self, outcome: str, reason: str) -> TriggerResult:
        self._rejected += 1
        return TriggerResult(outcome, None, reason)

    def _check_clock(self, now: int) -> None:
        # A clock jumping back (sim time restarted, bag looped) would hold cooldown and rate
        # limits for the length of the jump; start them afresh and close the open snapshot.
        last = self._last_now
        if last is not None and now < last - _CLOCK_JUMP_NS:
            if self._collecting is not None:
                self._finalise(truncated=True)
            self._last_end_ns = None
            self._starts.clear()
            last = None
        self._last_now = now if last is None else max(last, now)

    def _advance(self, now: int) -> None:
        current = self._collecting
        if current is None:
            return
        new, current.after_seq = self._buffer.collect(
            current.start_ns,
            None,
            after_seq=current.after_seq,
            include_latched=False,
            ordered=False,
        )
        if new:
            self._jobs.put(_Batch(current.name, new, min(now - _HOLDBACK_NS, current.end_ns)))
        if now >= current.end_ns:
            self._finalise(truncated=False)

    def _finalise(self, truncated: bool) -> None:
        current = self._collecting
        assert current is not None
        self._collecting = None
        self._last_end_ns = current.end_ns
        start, end = current.start_ns, current.end_ns
        job = _Job(
            name=current.name,
            path=current.path,
            start_ns=start,
            end_ns=end,
            truncated=truncated,
            latched=self._clamped_latched(start, end),
            topics=self._buffer.topics(),
            triggers=list(current.triggers),
        )
        self._queued += 1
        self._jobs.put(job)

    def _clamped_latched(self, start: int, end: int) -> list[BufferedMessage]:
        # Latched messages may be hours old; stamping them at the window start keeps the bag's
        # duration to the window (and plays them first). publish_time keeps the original time.
        latched = self._buffer.latched_messages()
        return [m._replace(log_time_ns=min(max(m.log_time_ns, start), end)) for m in latched]

    def _estimate(self, pre: list[BufferedMessage], latched: list[BufferedMessage], now: int) -> int:
        """Bytes of the snapshot: the pre-window scaled to pre + post (the last second when
        pre_s is 0), plus MCAP record and index bytes (~50 per message), schemas, metadata.yaml
        and trigger.json: an upper bound for 'none' if the rate holds, loose for lz4."""
        s = self._settings
        if s.pre_s > 0:
            sample, seconds = pre, s.pre_s
        else:
            last_second = self._buffer.collect(now - 10**9, now, include_latched=False, ordered=False)
            sample, seconds = last_second[0], 1.0
        window = sum(len(m.data) + 64 for m in sample) * (s.pre_s + s.post_s) / seconds
        return math.ceil(window) + sum(len(m.data) + 64 for m in latched) + _OVERHEAD_BYTES

    def _unique_name(self, now_ns: int, kind: object) -> str:
        stamp = datetime.fromtimestamp(now_ns // 10**9, tz=timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        safe = re.sub(r"[^a-z0-9_]+", "_", str(kind).lower()).strip("_")[:48] or "trigger"
        base = f"{stamp}_{safe}"
        taken = self._reserved | {n for n, _ in self._on_disk}
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        return name

    def _over_quota(self, extra_bytes: int, extra_count: int) -> str:
        """Why the kept snapshots plus the extra ones exceed a quota ("" when they do not)."""
        s = self._settings
        count = len(self._on_disk)
        used = sum(size for _, size in self._on_disk)
        if count + extra_count > s.quota_count:
            return f"{count} + {extra_count} snapshots > quota_count {s.quota_count}"
        if used + extra_bytes > s.quota_bytes:
            return f"{used} + {extra_bytes} bytes > quota_bytes {s.quota_bytes}"
        return ""

    # -- writer thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        stream: _Stream | None = None
        while True:
            command = self._jobs.get()
            if command is None:
                return
            if isinstance(command, _Start):
                stream = self._guarded(None, command.name, partial(self._begin, command))
            elif isinstance(command, _Batch):
                if stream is not None and stream.name == command.name:
                    step = partial(stream.append, command.messages, command.safe_ns)
                    stream = self._guarded(stream, stream.name, step)
            else:
                try:
                    if stream is not None and stream.name == command.name:
                        self._complete(stream, command)
                finally:
                    stream = None
                    with self._idle:
                        self._queued -= 1
                        self._reserved.discard(command.name)
                        self._idle.notify_all()

    def _guarded(
        self, stream: _Stream | None, name: str, step: Callable[[], _Stream | None]
    ) -> _Stream | None:
        """Run one writing step; on failure remove the temporary folder and drop the snapshot
        (its later batches are ignored). A full disk or any OSError stops capture."""
        try:
            result = step()
            return stream if result is None else result
        except OSError as err:
            if stream is not None:
                stream.discard()
            self._stop(name, err)
        except Exception as err:  # a bug must not kill the writer thread or leave a temp folder
            if stream is not None:
                stream.discard()
            with self._lock:
                self._last_error = f"snapshot {name} failed: {type(err).__name__}: {err}"
        return None

    def _begin(self, start: _Start) -> _Stream | None:
        try:
            self._make_room(start.estimate)
        except _RefusedError as refused:
            with self._lock:
                self._last_error = f"snapshot {start.name} not written: {refused.reason}"
                if refused.stop:
                    self._stopped_reason = refused.reason
            return None
        msgtypes = {rosbag2.type_name(t.msgtype) for t in start.topics.values()}
        definitions, problems = rosbag2.message_definitions(msgtypes)
        if problems:
            with self._lock:
                self._last_error = f"snapshot {start.name}: schema left empty: {'; '.join(problems)}"
        folder = Path(tempfile.mkdtemp(prefix=start.name + TMP_MARK, dir=self._dir))
        stream = _Stream(start, folder, self._settings, definitions, self._buffer.topics)
        try:
            stream.open()
            stream.append(start.messages, start.safe_ns)
        except BaseException:
            stream.discard()
            raise
        return stream

    def _complete(self, stream: _Stream, job: _Job) -> None:
        def finish() -> None:
            size = _write_snapshot_files(stream.folder, stream, job, self._settings)
            final = _free_path(job.path)  # someone else may have made the planned folder
            stream.folder.rename(final)
            stream.renamed = True
            _fsync_dir(self._dir)
            with self._lock:
                if all(n != final.name for n, _ in self._on_disk):  # resume() may have rescanned
                    self._on_disk.append((final.name, size))
                    self._on_disk.sort()
                self._written += 1
                self._last_path = final
            self._after_write(final.name)

        def step() -> None:
            try:
                finish()
            except BaseException:
                if not stream.renamed:
                    stream.discard()
                raise

        self._guarded(None, job.name, step)

    def _make_room(self, estimate: int) -> None:
        """Delete the oldest snapshots (or refuse) so one of `estimate` bytes fits the quotas."""
        s = self._settings
        if estimate > s.quota_bytes:
            raise _RefusedError(f"its size (~{estimate} bytes) exceeds quota_bytes {s.quota_bytes}", False)
        while True:
            with self._lock:
                over = self._over_quota(estimate, 1)
                ours = sum(size for _, size in self._on_disk)
                oldest = self._on_disk[0][0] if self._on_disk else None
            free = shutil.disk_usage(self._dir).free
            if free - estimate < s.min_free_bytes:
                if free + ours - estimate < s.min_free_bytes:
                    # Deleting every snapshot would not help: the disk is full of other data.
                    raise _RefusedError(
                        f"{free} bytes free on {self._dir}, need {estimate} + min_free_bytes "
                        f"{s.min_free_bytes}",
                        True,
                    )
                over = over or f"{free} bytes free, min_free_bytes {s.min_free_bytes}"
            if not over:
                return
            if s.on_quota == "stop" or oldest is None:
                raise _RefusedError(f"quota reached ({over}); on_quota is {s.on_quota!r}", True)
            self._delete(oldest)

    def _after_write(self, newest: str) -> None:
        # The estimate is uncompressed, but folder overhead can still tip the total over.
        while True:
            with self._lock:
                over = self._over_quota(0, 0)
                oldest = self._on_disk[0][0] if self._on_disk else None
            if not over:
                return
            if self._settings.on_quota == "stop" or oldest is None or oldest == newest:
                with self._lock:
                    self._stopped_reason = f"quota reached ({over}); on_quota is {self._settings.on_quota!r}"
                return
            self._delete(oldest)

    def _delete(self, name: str) -> None:
        shutil.rmtree(self._dir / name, ignore_errors=True)
        with self._lock:
            self._on_disk = [(n, size) for n, size in self._on_disk if n != name]

    def _stop(self, name: str, err: OSError) -> None:
        code = errno.errorcode.get(err.errno or 0, "")
        where = f" ({err.filename})" if err.filename else ""
        reason = (
            f"writing snapshot {name} failed: {code + ' ' if code else ''}"
            f"{err.strerror or err}{where}; the partial snapshot was removed"
        )
        with self._lock:
            self._last_error = reason
            self._stopped_reason = reason

    # -- output directory ---------------------------------------------------------------------

    def _prepare_dir(self) -> None:
        path = self._dir
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = Path(tempfile.mkstemp(prefix=".gap_monitor-probe-", dir=path)[1])
            try:
                with probe.open("wb") as f:
                    f.write(b"probe")
                    f.flush()
                    os.fsync(f.fileno())
            finally:
                probe.unlink()
        except OSError as err:
            raise OutputDirError(
                f"snapshot output_dir {str(path)!r} is not a writable directory: {err.strerror or err}"
            ) from err
        for child in path.iterdir():
            if _TMP_RE.match(child.name) and child.is_dir():
                shutil.rmtree(child, ignore_errors=True)

    def _scan(self) -> list[tuple[str, int]]:
        found = []
        for child in self._dir.iterdir():
            if _NAME_RE.match(child.name) and child.is_dir():
                found.append((child.name, _folder_size(child)))
        return sorted(found)


# -- file writing (module level so tests can patch `_open_output`) -------------------------------


def _open_output(path: Path) -> IO[bytes]:
    return path.open("xb", buffering=_WRITE_BUFFER_BYTES)


def _order(m: BufferedMessage) -> tuple[int, int]:
    return (m.log_time_ns, m.seq)


class _McapFile:
    """One MCAP being written: header, schemas and channels first, then messages as they come."""

    def __init__(
        self,
        path: Path,
        settings: SnapshotSettings,
        definitions: dict[str, str],
        lookup_topics: Callable[[], dict[str, TopicInfo]],
    ) -> None:
        self.path = path
        self._definitions = definitions
        self._lookup_topics = lookup_topics
        self._file = _open_output(path)
        self._writer = McapStream(self._file, settings.compression)
        self._schema_ids: dict[str, int] = {}
        self._channel_ids: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        self.first_ns: int | None = None
        self.last_ns: int | None = None
        self.message_count = 0
        self._behind = 0  # file offset up to which write_behind ran
        self._fadvise = _FADVISE

    def start(self, topics: Mapping[str, TopicInfo]) -> None:
        self._writer.start(profile=rosbag2.MCAP_PROFILE, library=f"gap_monitor/{__version__}")
        self.register(topics)

    def register(self, topics: Mapping[str, TopicInfo]) -> None:
        """Schemas (sorted) and channels for topics not registered yet."""
        new = {name: info for name, info in topics.items() if name not in self._channel_ids}
        types = {name: rosbag2.type_name(info.msgtype) for name, info in new.items()}
        missing = set(types.values()) - set(self._definitions)
        if missing:  # a topic added after the trigger
            self._definitions.update(rosbag2.message_definitions(missing)[0])
        for msgtype in sorted(set(types.values()) - set(self._schema_ids)):
            self._schema_ids[msgtype] = self._writer.register_schema(
                name=msgtype,
                encoding=rosbag2.SCHEMA_ENCODING,
                data=self._definitions.get(msgtype, "").encode(),
            )
        for name, info in new.items():
            self._channel_ids[name] = self._writer.register_channel(
                topic=name,
                message_encoding=rosbag2.MESSAGE_ENCODING,
                schema_id=self._schema_ids[types[name]],
                metadata=rosbag2.channel_metadata(types[name], info.offered_qos_profiles),
            )
            self.counts[name] = 0

    def add(self, messages: list[BufferedMessage]) -> None:
        """Append `messages`, already in log-time order and not before the last one added."""
        writer = self._writer
        channel_ids, counts = self._channel_ids, self.counts
        for m in messages:
            if m.topic not in channel_ids:
                self.register({m.topic: self._lookup_topics()[m.topic]})
            counts[m.topic] += 1
            writer.add_message(
                channel_ids[m.topic], m.log_time_ns, m.data, m.publish_time_ns, counts[m.topic]
            )
            if writer.position - self._behind >= WRITE_BEHIND_BYTES:  # a batch may be gigabytes
                self.write_behind()
        if messages:
            if self.first_ns is None:
                self.first_ns = messages[0].log_time_ns
            self.last_ns = messages[-1].log_time_ns
            self.message_count += len(messages)

    def write_behind(self) -> None:
        """Hand what was written since the last call to the disk, and drop from the page cache
        what is already on it: on Linux, POSIX_FADV_DONTNEED starts writeback of a range's dirty
        pages (without waiting) and evicts its clean ones. The final fsync then has at most a
        step or two left to wait for, and a snapshot of gigabytes neither pushes the robot's
        working set out of the page cache nor needs fresh pages for every byte it writes (which
        costs a host page fault each in VMs that return free memory to the host). Without
        posix_fadvise, an fsync bounds what is left to the end instead."""
        self._file.flush()
        fd = self._file.fileno()
        end = self._writer.position
        if self._fadvise:
            try:
                if end > self._behind:
                    os.posix_fadvise(fd, self._behind, end - self._behind, os.POSIX_FADV_DONTNEED)
                if self._behind > 0:  # length 0 would mean "to the end of the file"
                    os.posix_fadvise(fd, 0, self._behind, os.POSIX_FADV_DONTNEED)
            except OSError:  # advice the filesystem does not take is no reason to stop capture
                self._fadvise = False
        if not self._fadvise:
            os.fsync(fd)
        self._behind = end

    def finish(self, records: list[tuple[str, dict[str, str]]]) -> None:
        for name, record in records:
            self._writer.add_metadata(name, record)
        self._writer.finish()
        self._file.flush()
        fd = self._file.fileno()
        os.fsync(fd)
        if self._fadvise:  # on disk now; nobody reads a snapshot right after writing it
            with contextlib.suppress(OSError):
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        self._file.close()

    def close(self) -> None:
        # Its buffer may fail to flush (disk full): the file is being discarded anyway.
        with contextlib.suppress(OSError):
            self._file.close()


class _Stream:
    """Writer-thread state of one snapshot: its temporary folder and MCAP, the messages written
    (in order, up to `written_ns`) and those held back until they are safe to write."""

    def __init__(
        self,
        start: _Start,
        folder: Path,
        settings: SnapshotSettings,
        definitions: dict[str, str],
        lookup_topics: Callable[[], dict[str, TopicInfo]],
    ) -> None:
        self.name = start.name
        self.folder = folder
        self.renamed = False
        self._start = start
        self._settings = settings
        self._definitions = definitions
        self._lookup_topics = lookup_topics
        self._mcap_path = folder / f"{start.name}_0.mcap"
        self._mcap: _McapFile | None = None
        self._held: list[BufferedMessage] = []  # unordered, not written yet
        self._all: list[BufferedMessage] = []  # every non-latched message, for a rewrite
        self._written_ns: int | None = None
        self._disordered = False

    def open(self) -> _McapFile:
        self._mcap = _McapFile(self._mcap_path, self._settings, self._definitions, self._lookup_topics)
        self._mcap.start(self._start.topics)
        return self._mcap

    def append(self, messages: list[BufferedMessage], safe_ns: int) -> None:
        """Hold `messages` and write, in order, those not later than `safe_ns`."""
        start = self._start.start_ns
        fresh = [m for m in messages if m.latched or m.log_time_ns >= start]
        self._all.extend(m for m in fresh if not m.latched)
        written = self._written_ns
        if written is not None and any(m.log_time_ns < written for m in fresh):
            self._disordered = True  # streaming stops; the file is rewritten sorted at the end
        self._held.extend(fresh)
        if self._disordered:
            return
        ready = [m for m in self._held if m.log_time_ns <= safe_ns]
        if not ready:
            return
        self._held = [m for m in self._held if m.log_time_ns > safe_ns]
        # The per-topic runs are each in push order: sort() merges such runs in near-linear time.
        ready.sort(key=_order)
        assert self._mcap is not None
        self._mcap.add(ready)
        self._written_ns = ready[-1].log_time_ns

    def complete(self, job: _Job) -> _McapFile:
        """Write what is held (within the final window) and return the MCAP to finish; the file
        is rewritten sorted when the streamed part cannot be kept (messages arrived out of
        order, the window was cut short, or the latched messages changed)."""
        end = job.end_ns
        same_latched = [(m.seq, m.log_time_ns) for m in job.latched] == [
            (m.seq, m.log_time_ns) for m in self._start.latched
        ]
        mcap = self._mcap
        assert mcap is not None
        if self._disordered or not same_latched or (self._written_ns is not None and self._written_ns > end):
            mcap.close()
            self._mcap_path.unlink()
            messages = job.latched + self._all
            mcap = self.open()
        else:
            messages = self._held
        self._held = []
        rest = [m for m in messages if job.start_ns <= m.log_time_ns <= end]
        rest.sort(key=_order)
        mcap.add(rest)
        mcap.register(job.topics)  # topics added since the start, even without messages
        return mcap

    def discard(self) -> None:
        if self._mcap is not None:
            self._mcap.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def _write_snapshot_files(folder: Path, stream: _Stream, job: _Job, settings: SnapshotSettings) -> int:
    """Finish the streamed MCAP, write metadata.yaml and trigger.json into `folder`, fsynced;
    return the folder's bytes."""
    mcap = stream.complete(job)
    mcap_name = mcap.path.name
    topics = [
        rosbag2.BagTopic(
            name, rosbag2.type_name(info.msgtype), info.offered_qos_profiles, mcap.counts.get(name, 0)
        )
        for name, info in job.topics.items()
    ]
    if mcap.first_ns is not None and mcap.last_ns is not None:
        first = mcap.first_ns
        duration = mcap.last_ns - first
    else:
        first, duration = job.start_ns, 0
    message_count = mcap.message_count
    custom_data = {
        "gap_monitor.snapshot": job.name,
        "gap_monitor.triggers": json.dumps(job.triggers, default=_json_default),
    }
    bag_info = rosbag2.bag_metadata(mcap_name, topics, message_count, first, duration, custom_data)
    summary = {
        "snapshot": job.name,
        "start_ns": job.start_ns,
        "end_ns": job.end_ns,
        "pre_s": settings.pre_s,
        "post_s": settings.post_s,
        "truncated": job.truncated,
        "message_count": message_count,
        "triggers": job.triggers,
    }

    records = []
    for index, trig in enumerate(job.triggers):
        record = {str(k): _as_text(v) for k, v in trig["event"].items()}
        record["snapshot.trigger_ns"] = str(trig["trigger_ns"])
        record["snapshot.trigger_index"] = str(index)
        records.append((TRIGGER_RECORD, record))
    records.append(
        (
            SNAPSHOT_RECORD,
            {k: _as_text(v) for k, v in summary.items() if k != "triggers"}
            | {"trigger_count": str(len(job.triggers))},
        )
    )
    records.append(rosbag2.mcap_metadata_record(bag_info))
    mcap.finish(records)

    _write_synced(folder / rosbag2.METADATA_FILE, rosbag2.metadata_yaml(bag_info))
    _write_synced(
        folder / "trigger.json",
        json.dumps(summary, indent=2, default=_json_default).encode() + b"\n",
    )
    _fsync_dir(folder)
    return _folder_size(folder)


def _free_path(path: Path) -> Path:
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}_{n}")
    return candidate


def _write_synced(path: Path, data: bytes) -> None:
    with _open_output(path) as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as err:
        if err.errno != errno.EINVAL:  # some filesystems cannot fsync a directory
            raise
    finally:
        os.close(fd)


def _folder_size(path: Path) -> int:
    total = 0
    for child in path.rglob("*"):
        try:
            if child.is_file():
                total += child.stat().st_size
        except OSError:
            continue
    return total


def _as_text(value: Any) -> str:
    """MCAP metadata values are strings: strings as they are, everything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, default=_json_default)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy arrays
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    return repr(value)


def _ns(seconds: float) -> int:
    return round(seconds * 1e9)
