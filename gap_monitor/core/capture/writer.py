"""The snapshot writer: the ring buffer's pre-trigger window plus a post-trigger window, as rosbag2
folders, written on a background thread so that a folder is either complete or absent.

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

Whether a trigger may start a snapshot (cooldown, rate, quotas, free space) and how the window
is extended are the `policy`'s decisions; this module applies them. If the clock jumps back by
more than a second (sim time restarted), an open snapshot is written as it is (marked truncated).

Ring buffer requirement: every non-latched topic must hold at least `pre_s` seconds (its
`window_s`, and `total_bytes` for its data rate); see `policy.check_ring_buffer`. The post-window only
needs the buffer to hold what arrives between two polls, because `poll` collects incrementally.
Collected messages are referenced (not copied) until the snapshot is complete (a rewrite may
need them), so while a snapshot is collected or queued, memory grows by its payload size on top
of the ring buffer's budget.

Files are streamed on one background thread into `<name>.tmp-XXXXXXXX/`: messages are written
in log-time order once they are `_HOLDBACK_NS` older than the poll that collected them, and
handed to the disk every `write_behind_bytes` (then dropped from the page cache), so little is
left to write when the post window ends. A message that still arrives older than what was
streamed (or a latched message replaced, or a window cut short) makes the writer rewrite the
MCAP sorted at the end, so messages are always in log-time order.
At the end the files are fsynced (files and folder), then the folder is renamed to `<name>/`, so
a folder without the `.tmp-` suffix is always complete. Temporary leftovers (from a crash or
SIGKILL) are looked at when a writer starts: a complete one is renamed to its final name, an
incomplete one deleted (`recovery`). Folders are created with mode 0750 and files 0640, whatever
the umask. Quotas are checked when a snapshot starts, against
its size estimated from the pre-window scaled to pre_s + post_s (and again once it is written);
a full disk or any OSError while writing removes the temporary folder and stops capture with a
diagnostic (see `status()`); nothing is raised to the caller.

Nothing happens silently: a trigger's result says what was decided then (a started snapshot is
only queued: the quota and free-space check when writing may still refuse it), and everything
the writer decides later -- a snapshot refused, a write failed, an old snapshot deleted to make
room, a leftover recovered or deleted -- is a `CaptureNotice` the owner collects with
`drain_notices()` (the monitor turns them into events) and counts in `status()`.
"""

from __future__ import annotations

import errno
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from gap_monitor.core.capture.policy import (
    TMP_MARK,
    CaptureNotice,
    OutputDirError,
    RefusedError,
    SnapshotSettings,
    SnapshotStatus,
    StartLimits,
    TriggerResult,
    check_size,
    estimate_bytes,
    is_snapshot_name,
    is_temporary_name,
    over_quota,
    room_needed,
    snapshot_name,
)
from gap_monitor.core.capture.recovery import recover_temporary
from gap_monitor.core.capture.ring_buffer import BufferedMessage, RingBuffer
from gap_monitor.core.capture.snapshot_folder import (
    DIR_MODE,
    SnapshotEnd,
    SnapshotFolder,
    SnapshotStart,
    WriteOptions,
    folder_size,
    free_path,
    fsync_dir,
)
from gap_monitor.core.io import rosbag2
from gap_monitor.core.io.mcap_writer import missing_compression_module

__all__ = ["SnapshotWriter"]


# Messages are streamed only once they are this much older than the poll that collected them:
# callbacks stamp before they push, so a late push of an earlier stamp stays in order. Anything
# that still arrives out of order makes the writer rewrite the file sorted at the end.
_HOLDBACK_NS = 200 * 1_000_000


@dataclass
class _Collecting:
    name: str
    path: Path
    first_ns: int
    start_ns: int
    end_ns: int
    after_seq: int
    triggers: list[dict[str, Any]] = field(default_factory=list)


# Commands for the writer thread, in order: one SnapshotStart, any _Batch, one SnapshotEnd per snapshot.


@dataclass
class _Batch:
    name: str
    messages: list[BufferedMessage]
    safe_ns: int


_Command = SnapshotStart | _Batch | SnapshotEnd


class SnapshotWriter:
    """Turns triggers into snapshot folders; see the module docstring for the timeline.

    Args:
        settings: validated `SnapshotSettings`.
        ring_buffer: the buffer the messages come from (its log times use the same clock).
        clock: integer-ns time used when `trigger`/`poll`/`close` get no `now_ns`.
        options: how the files are written (`WriteOptions`; the defaults are what runs).

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
        options: WriteOptions | None = None,
    ) -> None:
        module = missing_compression_module(settings.compression)
        if module is not None:
            raise ValueError(
                f"compression: {settings.compression!r} needs the Python module {module!r}, "
                "which is not installed; install it or use another compression"
            )
        self._settings = settings
        self._buffer = ring_buffer
        self._clock = clock
        self._options = WriteOptions() if options is None else options
        self._dir = settings.output_dir
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._notices: list[CaptureNotice] = []
        self._refused = 0
        self._deleted = 0
        self._lost = 0
        self._prepare_dir()

        self._collecting: _Collecting | None = None
        self._limits = StartLimits(settings)
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
                current.end_ns = s.extended_end_ns(current.first_ns, current.end_ns, now)
                return TriggerResult(
                    "extended", current.path, f"joined {current.name}; ends at {current.end_ns}"
                )
            if self._stopped_reason is not None:
                return self._reject("stopped", f"capture stopped: {self._stopped_reason}")
            refusal = self._limits.refusal(now)
            if refusal is not None:
                return self._reject(*refusal)
            if s.on_quota == "stop" and (over := over_quota(s, self._on_disk, 1, 1)):
                self._stopped_reason = f"quota reached ({over}); on_quota is 'stop'"
                return self._reject("stopped", f"capture stopped: {self._stopped_reason}")

            taken = self._reserved | {n for n, _ in self._on_disk}
            name = snapshot_name(now, event.get("kind", "trigger"), taken)
            start, end = s.window_ns(now)
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
                SnapshotStart(
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
            self._limits.started(now)
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
                snapshots_refused=self._refused,
                snapshots_deleted=self._deleted,
                snapshots_lost=self._lost,
            )

    def drain_notices(self) -> list[CaptureNotice]:
        """What the writer did or refused since the last call (oldest first); see `CaptureNotice`."""
        with self._lock:
            notices, self._notices = self._notices, []
            return notices

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

    def _note(self, notice: CaptureNotice) -> None:
        """Record a notice and count it (lock held)."""
        self._notices.append(notice)
        if notice.outcome == "refused":
            self._refused += 1
        elif notice.outcome == "deleted":
            self._deleted += 1
        elif notice.outcome in ("lost", "failed"):
            self._lost += 1

    def _reject(self, outcome: str, reason: str) -> TriggerResult:
        self._rejected += 1
        return TriggerResult(outcome, None, reason)

    def _check_clock(self, now: int) -> None:
        # A clock jumping back would hold the start limits for the length of the jump: close the
        # open snapshot as it is, then start the limits afresh.
        if self._limits.jumped_back(now):
            if self._collecting is not None:
                self._finalise(truncated=True)
            self._limits.restart()
        self._limits.observe(now)

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
        self._limits.ended(current.end_ns)
        start, end = current.start_ns, current.end_ns
        job = SnapshotEnd(
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
        """Bytes of the snapshot, from the pre-window's rate (the last second's when pre_s is 0)."""
        s = self._settings
        if s.pre_s > 0:
            sample, seconds = pre, s.pre_s
        else:
            last_second = self._buffer.collect(now - 10**9, now, include_latched=False, ordered=False)
            sample, seconds = last_second[0], 1.0
        return estimate_bytes(s, sample, seconds, latched)

    # -- writer thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        stream: SnapshotFolder | None = None
        while True:
            command = self._jobs.get()
            if command is None:
                return
            if isinstance(command, SnapshotStart):
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
        self, stream: SnapshotFolder | None, name: str, step: Callable[[], SnapshotFolder | None]
    ) -> SnapshotFolder | None:
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
                self._note(CaptureNotice("failed", name, self._last_error, self._dir / name))
        return None

    def _begin(self, start: SnapshotStart) -> SnapshotFolder | None:
        try:
            self._make_room(start.estimate)
        except RefusedError as refused:
            with self._lock:
                self._last_error = f"snapshot {start.name} not written: {refused.reason}"
                if refused.stop:
                    self._stopped_reason = refused.reason
                stops = "; capture stopped" if refused.stop else ""
                self._note(CaptureNotice("refused", start.name, self._last_error + stops, start.path))
            return None
        msgtypes = {rosbag2.type_name(t.msgtype) for t in start.topics.values()}
        definitions, problems = rosbag2.message_definitions(msgtypes)
        if problems:
            with self._lock:
                self._last_error = f"snapshot {start.name}: schema left empty: {'; '.join(problems)}"
        folder = Path(tempfile.mkdtemp(prefix=start.name + TMP_MARK, dir=self._dir))
        folder.chmod(DIR_MODE)
        stream = SnapshotFolder(
            start, folder, self._settings, definitions, self._buffer.topics, self._options
        )
        try:
            stream.open()
            stream.append(start.messages, start.safe_ns)
        except BaseException:
            stream.discard()
            raise
        return stream

    def _complete(self, stream: SnapshotFolder, job: SnapshotEnd) -> None:
        def finish() -> None:
            size = stream.finish(job)
            final = free_path(job.path)  # someone else may have made the planned folder
            stream.folder.rename(final)
            stream.renamed = True
            fsync_dir(self._dir)
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
        check_size(self._settings, estimate)
        while True:
            with self._lock:
                on_disk = list(self._on_disk)
            free = shutil.disk_usage(self._dir).free
            why = room_needed(self._settings, estimate, on_disk, free)
            if not why:
                return
            self._delete(on_disk[0][0], f"to make room for a snapshot of ~{estimate} bytes ({why})")

    def _after_write(self, newest: str) -> None:
        # The estimate is uncompressed, but folder overhead can still tip the total over.
        while True:
            with self._lock:
                over = over_quota(self._settings, self._on_disk, 0, 0)
                oldest = self._on_disk[0][0] if self._on_disk else None
            if not over:
                return
            if self._settings.on_quota == "stop" or oldest is None or oldest == newest:
                with self._lock:
                    self._stopped_reason = f"quota reached ({over}); on_quota is {self._settings.on_quota!r}"
                return
            self._delete(oldest, f"after writing {newest} ({over})")

    def _delete(self, name: str, why: str) -> None:
        shutil.rmtree(self._dir / name, ignore_errors=True)
        with self._lock:
            size = sum(s for n, s in self._on_disk if n == name)
            self._on_disk = [(n, s) for n, s in self._on_disk if n != name]
            reason = f"deleted the oldest snapshot {name} ({size} bytes), on_quota 'delete_oldest', {why}"
            self._note(CaptureNotice("deleted", name, reason, self._dir / name))

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
            self._note(CaptureNotice("failed", name, reason + "; capture stopped", self._dir / name))

    # -- output directory ---------------------------------------------------------------------

    def _prepare_dir(self) -> None:
        path = self._dir
        try:
            created = [p for p in (path, *path.parents) if not p.exists()]
            path.mkdir(parents=True, exist_ok=True)
            for folder in created:  # an existing folder keeps the mode its owner gave it
                folder.chmod(DIR_MODE)
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
        for child in sorted(path.iterdir()):
            if is_temporary_name(child.name) and child.is_dir():
                try:
                    notice = recover_temporary(child)
                except OSError as err:
                    shutil.rmtree(child, ignore_errors=True)
                    why = f"leftover {child.name} could not be recovered and was deleted: {err}"
                    notice = CaptureNotice("lost", child.name, why)
                self._note(notice)

    def _scan(self) -> list[tuple[str, int]]:
        found = []
        for child in self._dir.iterdir():
            if is_snapshot_name(child.name) and child.is_dir():
                found.append((child.name, folder_size(child)))
        return sorted(found)
