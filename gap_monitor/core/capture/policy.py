"""Capture policy: what a snapshot is allowed to be, when one may start, and what is kept.

SnapshotSettings (windows, compression, cooldown, rate, quotas, disk space) with its validation;
the decisions the writer applies: the window of a trigger and how far later triggers extend it,
cooldown and rate (`StartLimits`), folder names, the size estimate, quotas and free space
(`over_quota`, `room_needed`); the outcome of a trigger, the status the diagnostics show, and the
ring-buffer requirement. Nothing here writes files or runs threads.

Cooldown counts from the end of the previous snapshot's post window; the rate limit counts new
snapshots started in the last hour. If the clock jumps back by more than a second (sim time
restarted), both start afresh.
"""

from __future__ import annotations

import math
import os
import re
from collections import deque
from collections.abc import Sequence, Set
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gap_monitor.core.capture.ring_buffer import BufferedMessage, RingBuffer
from gap_monitor.core.io.mcap_writer import COMPRESSIONS
from gap_monitor.errors import GapMonitorError

__all__ = [
    "COMPRESSIONS",
    "ON_QUOTA",
    "TMP_MARK",
    "CaptureNotice",
    "OutputDirError",
    "RefusedError",
    "SnapshotSettings",
    "SnapshotStatus",
    "StartLimits",
    "TriggerResult",
    "check_ring_buffer",
    "check_size",
    "estimate_bytes",
    "is_snapshot_name",
    "is_temporary_name",
    "over_quota",
    "room_needed",
    "snapshot_name",
]

ON_QUOTA = ("delete_oldest", "stop")
TMP_MARK = ".tmp-"  # a snapshot folder being written is `<name>.tmp-XXXXXXXX`

_NAME_RE = re.compile(r"^\d{8}T\d{6}Z_[a-z0-9_]+$")
_TMP_RE = re.compile(r"^\d{8}T\d{6}Z_[a-z0-9_]+\.tmp-[A-Za-z0-9_]+$")
_HOUR_NS = 3600 * 10**9
_CLOCK_JUMP_NS = 10**9
_OVERHEAD_BYTES = 64 * 1024


class OutputDirError(OSError):
    """The snapshot output directory cannot be created or written; the message says why."""


@dataclass(frozen=True)
class SnapshotSettings:
    """Where and how snapshots are written, and the limits that protect the disk.

    Attributes:
        output_dir: folder that receives one sub-folder per snapshot.
        pre_s: seconds before the trigger, taken from the ring buffer.
        post_s: seconds after the (last) trigger.
        compression: MCAP chunk compression: 'none', 'lz4' or 'zstd'.
        cooldown_s: no new snapshot starts until this long after the previous one's post window
            closed (triggers inside an open post window extend it instead).
        max_per_hour: at most this many new snapshots start in any sliding hour.
        quota_bytes: total size of the snapshots kept in output_dir.
        quota_count: number of snapshots kept in output_dir.
        min_free_bytes: free disk space to leave after writing a snapshot.
        on_quota: 'delete_oldest' (make room by deleting the oldest snapshots) or 'stop'
            (stop capturing, keep what is there).
        max_post_s: extensions never push the end beyond first trigger + max_post_s.
    """

    output_dir: Path
    pre_s: float = 10.0
    post_s: float = 5.0
    compression: str = "lz4"
    cooldown_s: float = 30.0
    max_per_hour: int = 20
    quota_bytes: int = 10 * 1024**3
    quota_count: int = 200
    min_free_bytes: int = 1024**3
    on_quota: str = "delete_oldest"
    max_post_s: float = 60.0

    def __post_init__(self) -> None:
        if not isinstance(self.output_dir, (str, os.PathLike)) or not str(self.output_dir):
            _bad("output_dir", self.output_dir, "a non-empty path")
        object.__setattr__(self, "output_dir", Path(self.output_dir))
        for name in ("pre_s", "post_s", "cooldown_s", "max_post_s"):
            value = getattr(self, name)
            if not _is_number(value) or value < 0:
                _bad(name, value, "a number of seconds >= 0")
        if self.pre_s + self.post_s <= 0:
            _bad("pre_s", self.pre_s, "pre_s + post_s > 0 (a snapshot needs a window)")
        if self.max_post_s < self.post_s:
            _bad("max_post_s", self.max_post_s, f"a value >= post_s ({self.post_s})")
        if self.compression not in COMPRESSIONS:
            _bad("compression", self.compression, ", ".join(repr(c) for c in COMPRESSIONS))
        if self.on_quota not in ON_QUOTA:
            _bad("on_quota", self.on_quota, ", ".join(repr(c) for c in ON_QUOTA))
        for name in ("max_per_hour", "quota_bytes", "quota_count"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                _bad(name, value, "an integer >= 1")
        if not _is_int(self.min_free_bytes) or self.min_free_bytes < 0:
            _bad("min_free_bytes", self.min_free_bytes, "an integer >= 0")

    def window_ns(self, trigger_ns: int) -> tuple[int, int]:
        """The window of a snapshot triggered at `trigger_ns`: pre_s before it to post_s after."""
        return trigger_ns - _ns(self.pre_s), trigger_ns + _ns(self.post_s)

    def extended_end_ns(self, first_ns: int, end_ns: int, trigger_ns: int) -> int:
        """The end of an open snapshot (first triggered at `first_ns`, ending at `end_ns`) once a
        trigger at `trigger_ns` joins it: post_s after that trigger, at most first + max_post_s."""
        return min(max(end_ns, trigger_ns + _ns(self.post_s)), first_ns + _ns(self.max_post_s))


@dataclass(frozen=True)
class TriggerResult:
    """What `trigger` did.

    `outcome` is 'started' (a new snapshot), 'extended' (joined the snapshot whose post window is
    open), or a rejection: 'cooldown', 'rate', 'stopped' (capture stopped: quota or disk) or
    'closed'. `path` is the planned final folder when accepted.
    """

    outcome: str
    path: Path | None
    reason: str

    @property
    def accepted(self) -> bool:
        return self.outcome in ("started", "extended")

    def answer(self) -> str:
        """What a requester is told: a refusal and why, or what was queued and that it may still
        be refused (the quota and free-space check runs when the snapshot is written)."""
        if not self.accepted:
            return f"{self.outcome}: {self.reason}"
        what = "queued" if self.outcome == "started" else "joined the open snapshot"
        return (
            f"{what}: {self.path}; written when its post window ends, unless the quota or free-space "
            "check then refuses it (a 'snapshot' event on ~/events says which)"
        )


@dataclass(frozen=True)
class CaptureNotice:
    """Something the writer did, or could not do, with no caller to answer: the monitor turns each
    into a `snapshot` event (so a log line), so that no snapshot appears or vanishes silently.

    `outcome` is 'recovered' (a complete snapshot left under its temporary name by a crash, now
    renamed), 'lost' (an incomplete one, deleted), 'refused' (a started snapshot not written:
    quota or free space), 'failed' (writing failed; the partial folder was removed) or 'deleted'
    (an old snapshot removed to make room, on_quota 'delete_oldest'). `path` is the folder
    concerned (final for 'recovered', else the one removed or planned).
    """

    outcome: str
    name: str
    reason: str
    path: Path | None = None

    @property
    def lost_data(self) -> bool:
        """Whether recorded data is gone (every outcome but 'recovered')."""
        return self.outcome != "recovered"


@dataclass(frozen=True)
class SnapshotStatus:
    """A point-in-time view for diagnostics."""

    snapshots_written: int  # by this writer since it started
    snapshots_on_disk: int  # complete snapshot folders in output_dir
    bytes_used: int  # their total size
    quota_bytes: int
    quota_count: int
    collecting: bool  # a snapshot's post window is open
    queued: int  # snapshots finalised and not yet written
    triggers_rejected: int
    last_trigger: dict[str, Any] | None
    last_path: Path | None
    last_error: str | None
    capture_stopped: bool
    stopped_reason: str | None
    snapshots_refused: int = 0  # started, then not written (quota, free space, size)
    snapshots_deleted: int = 0  # old ones removed to make room (on_quota 'delete_oldest')
    snapshots_lost: int = 0  # writing failed, or an incomplete leftover removed at start


def check_ring_buffer(settings: SnapshotSettings, ring_buffer: RingBuffer) -> list[str]:
    """Problems that would make snapshots shorter than `pre_s` (empty when none)."""
    return [
        f"topic {info.topic}: window_s {info.window_s:g} < pre_s {settings.pre_s:g}"
        for info in ring_buffer.topics().values()
        if not info.latched and info.window_s < settings.pre_s
    ]


class StartLimits:
    """When a new snapshot may start: not within cooldown_s of the previous one's end, and not
    when max_per_hour snapshots started in the last hour. Not thread-safe (the writer's lock).

    A clock jumping back (sim time restarted, bag looped) would hold both limits for the length
    of the jump: the owner asks `jumped_back` for every time it sees and then calls `restart`.
    """

    def __init__(self, settings: SnapshotSettings) -> None:
        self._settings = settings
        self._last_end_ns: int | None = None
        self._latest_ns: int | None = None
        self._starts: deque[int] = deque()

    def jumped_back(self, now_ns: int) -> bool:
        """Whether `now_ns` is more than a second before the latest time seen."""
        return self._latest_ns is not None and now_ns < self._latest_ns - _CLOCK_JUMP_NS

    def restart(self) -> None:
        """Forget the previous end, the starts and the latest time (after a clock jump)."""
        self._last_end_ns = None
        self._starts.clear()
        self._latest_ns = None

    def observe(self, now_ns: int) -> None:
        """Note a time seen (the latest one counts for `jumped_back`)."""
        latest = self._latest_ns
        self._latest_ns = now_ns if latest is None else max(latest, now_ns)

    def refusal(self, now_ns: int) -> tuple[str, str] | None:
        """('cooldown' or 'rate', why) when a snapshot may not start at `now_ns`, else None."""
        s = self._settings
        if self._last_end_ns is not None and now_ns < self._last_end_ns + _ns(s.cooldown_s):
            wait = (self._last_end_ns + _ns(s.cooldown_s) - now_ns) / 1e9
            return "cooldown", f"cooldown_s {s.cooldown_s:g}: {wait:.3g} s left"
        while self._starts and self._starts[0] <= now_ns - _HOUR_NS:
            self._starts.popleft()
        if len(self._starts) >= s.max_per_hour:
            return "rate", f"max_per_hour {s.max_per_hour} snapshots already started"
        return None

    def started(self, now_ns: int) -> None:
        self._starts.append(now_ns)

    def ended(self, end_ns: int) -> None:
        """A snapshot's post window closed at `end_ns`: the cooldown counts from there."""
        self._last_end_ns = end_ns


class RefusedError(GapMonitorError):
    """A snapshot is not written because of a quota; `stop` says whether capture stops."""

    def __init__(self, reason: str, stop: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stop = stop


def snapshot_name(now_ns: int, kind: object, taken: Set[str]) -> str:
    """`<UTC time>_<kind>` (kind made safe for a folder name), suffixed `_2`, `_3`... past `taken`."""
    stamp = datetime.fromtimestamp(now_ns // 10**9, tz=timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    safe = re.sub(r"[^a-z0-9_]+", "_", str(kind).lower()).strip("_")[:48] or "trigger"
    base = f"{stamp}_{safe}"
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    return name


def is_snapshot_name(name: str) -> bool:
    """Whether `name` is a complete snapshot folder's name."""
    return _NAME_RE.match(name) is not None


def is_temporary_name(name: str) -> bool:
    """Whether `name` is a snapshot folder still being written (or left by a crash)."""
    return _TMP_RE.match(name) is not None


def estimate_bytes(
    settings: SnapshotSettings,
    sample: Sequence[BufferedMessage],
    sample_s: float,
    latched: Sequence[BufferedMessage],
) -> int:
    """Bytes of a snapshot whose messages come at the rate of `sample` (those of `sample_s`
    seconds) over pre_s + post_s, plus `latched`, MCAP record and index bytes (~50 per message),
    schemas, metadata.yaml and trigger.json: an upper bound for 'none' if the rate holds, loose
    for lz4."""
    window = sum(len(m.data) + 64 for m in sample) * (settings.pre_s + settings.post_s) / sample_s
    return math.ceil(window) + sum(len(m.data) + 64 for m in latched) + _OVERHEAD_BYTES


def over_quota(
    settings: SnapshotSettings, on_disk: Sequence[tuple[str, int]], extra_bytes: int, extra_count: int
) -> str:
    """Why the kept snapshots (name, bytes) plus the extra ones exceed a quota ("" when they
    do not)."""
    s = settings
    count = len(on_disk)
    used = sum(size for _, size in on_disk)
    if count + extra_count > s.quota_count:
        return f"{count} + {extra_count} snapshots > quota_count {s.quota_count}"
    if used + extra_bytes > s.quota_bytes:
        return f"{used} + {extra_bytes} bytes > quota_bytes {s.quota_bytes}"
    return ""


def check_size(settings: SnapshotSettings, estimate: int) -> None:
    """Raises RefusedError (capture goes on) when a snapshot of `estimate` bytes alone exceeds
    quota_bytes."""
    if estimate > settings.quota_bytes:
        raise RefusedError(f"its size (~{estimate} bytes) exceeds quota_bytes {settings.quota_bytes}", False)


def room_needed(
    settings: SnapshotSettings, estimate: int, on_disk: Sequence[tuple[str, int]], free_bytes: int
) -> str:
    """Why a snapshot of `estimate` bytes (one `check_size` accepts) does not fit beside the
    kept ones (name, bytes; oldest first) with `free_bytes` free on the disk: "" when it fits,
    else the oldest is to be deleted and the question asked again.

    Raises:
        RefusedError: deleting snapshots cannot make room (the disk is full of other data) or
            may not (on_quota is 'stop').
    """
    s = settings
    over = over_quota(s, on_disk, estimate, 1)
    ours = sum(size for _, size in on_disk)
    if free_bytes - estimate < s.min_free_bytes:
        if free_bytes + ours - estimate < s.min_free_bytes:
            # Deleting every snapshot would not help: the disk is full of other data.
            raise RefusedError(
                f"{free_bytes} bytes free on {s.output_dir}, need {estimate} + min_free_bytes "
                f"{s.min_free_bytes}",
                True,
            )
        over = over or f"{free_bytes} bytes free, min_free_bytes {s.min_free_bytes}"
    if over and (s.on_quota == "stop" or not on_disk):
        raise RefusedError(f"quota reached ({over}); on_quota is {s.on_quota!r}", True)
    return over


def _ns(seconds: float) -> int:
    return round(seconds * 1e9)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bad(name: str, value: object, allowed: str) -> None:
    raise ValueError(f"SnapshotSettings.{name}: {value!r} is not allowed; allowed: {allowed}")
