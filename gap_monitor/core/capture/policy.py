"""Capture policy: what a snapshot is allowed to be, and when one may start.

SnapshotSettings (windows, compression, cooldown, rate, quotas, disk space) with its validation,
the outcome of a trigger, the status the diagnostics show, and the ring-buffer requirement.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gap_monitor.core.capture.ring_buffer import RingBuffer

__all__ = [
    "COMPRESSIONS",
    "ON_QUOTA",
    "OutputDirError",
    "SnapshotSettings",
    "SnapshotStatus",
    "TriggerResult",
    "check_ring_buffer",
]

COMPRESSIONS = ("none", "lz4", "zstd")
ON_QUOTA = ("delete_oldest", "stop")


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


def check_ring_buffer(settings: SnapshotSettings, ring_buffer: RingBuffer) -> list[str]:
    """Problems that would make snapshots shorter than `pre_s` (empty when none)."""
    return [
        f"topic {info.topic}: window_s {info.window_s:g} < pre_s {settings.pre_s:g}"
        for info in ring_buffer.topics().values()
        if not info.latched and info.window_s < settings.pre_s
    ]


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bad(name: str, value: object, allowed: str) -> None:
    raise ValueError(f"SnapshotSettings.{name}: {value!r} is not allowed; allowed: {allowed}")
