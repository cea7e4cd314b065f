"""One snapshot folder as the writer thread writes it: the streamed MCAP, metadata.yaml, trigger.json.

The MCAP (profile `ros2`, see `rosbag2`) is written into the snapshot's temporary folder as
messages come, in log-time order; `SnapshotFolder.finish` completes it with the trigger records,
writes `metadata.yaml` and `trigger.json`, and fsyncs files and folder. Renaming the folder to
its final name, and everything about when and whether to write, is `writer`'s.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from gap_monitor import __version__
from gap_monitor.core.capture.policy import SnapshotSettings
from gap_monitor.core.capture.ring_buffer import BufferedMessage, TopicInfo
from gap_monitor.core.io import rosbag2
from gap_monitor.core.io.mcap_writer import CHUNK_BYTES, McapStream

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "WRITE_BEHIND_BYTES",
    "SnapshotEnd",
    "SnapshotFolder",
    "SnapshotMcap",
    "SnapshotStart",
    "WriteOptions",
    "folder_size",
    "free_path",
    "fsync_dir",
    "open_output",
    "write_new_file",
]

TRIGGER_RECORD = "gap_monitor.trigger"
SNAPSHOT_RECORD = "gap_monitor.snapshot"
# While streaming, every WRITE_BEHIND_BYTES the file's new pages are handed to the disk and those
# already on it leave the page cache (see `SnapshotMcap.write_behind`).
WRITE_BEHIND_BYTES = 32 * 1024 * 1024
_WRITE_BUFFER_BYTES = 1024 * 1024
# Snapshots hold whatever the robot saw: readable by the owner's group, never by everyone, and
# never writable by others whatever the process umask is.
DIR_MODE = 0o750
FILE_MODE = 0o640


@dataclass
class SnapshotStart:
    """A snapshot as it starts: its planned window, the pre-window messages and its topics."""

    name: str
    path: Path
    start_ns: int
    end_ns: int  # planned; extensions only move it later, a truncation is checked at the end
    messages: list[BufferedMessage]  # pre-window (push order per topic) and latched, clamped
    latched: list[BufferedMessage]  # the clamped latched messages among `messages`
    estimate: int  # bytes of the whole snapshot, for the quotas
    topics: dict[str, TopicInfo]
    safe_ns: int  # messages up to this log time can be written now (the writer holds back the newest)


@dataclass
class SnapshotEnd:
    """A snapshot as it ends: its final window, latched messages, topics and triggers."""

    name: str
    path: Path
    start_ns: int
    end_ns: int
    truncated: bool
    latched: list[BufferedMessage]
    topics: dict[str, TopicInfo]
    triggers: list[dict[str, Any]]


def open_output(path: Path) -> IO[bytes]:
    """A new file (never an existing one) for writing, with a large buffer, mode FILE_MODE
    whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # the umask may have removed bits, or left others' write on
        return os.fdopen(fd, "wb", buffering=_WRITE_BUFFER_BYTES)
    except BaseException:
        os.close(fd)
        raise


def write_new_file(path: Path, data: bytes) -> None:
    """Write `data` to the new file `path` (see `open_output`) and fsync it."""
    _write_synced(open_output, path, data)


@dataclass(frozen=True)
class WriteOptions:
    """How a snapshot's files are written. Not user settings: the defaults are what runs; tests
    and the benchmark vary them.

    Attributes:
        open_file: opens a new file for writing (tests wrap it in a failing or slow file).
        chunk_bytes: MCAP chunk size (uncompressed).
        chunk_crcs: write MCAP chunk CRCs (the benchmark measures what they cost).
        write_behind_bytes: while streaming, hand the MCAP to the disk every this many bytes.
        fadvise: use posix_fadvise for that (and to drop written pages from the page cache);
            False, or when the filesystem refuses the advice, fsync instead.
    """

    open_file: Callable[[Path], IO[bytes]] = open_output
    chunk_bytes: int = CHUNK_BYTES
    chunk_crcs: bool = True
    write_behind_bytes: int = WRITE_BEHIND_BYTES
    fadvise: bool = hasattr(os, "posix_fadvise")


def _order(m: BufferedMessage) -> tuple[int, int]:
    return (m.log_time_ns, m.seq)


class SnapshotMcap:
    """One MCAP being written: header, schemas and channels first, then messages as they come."""

    def __init__(
        self,
        path: Path,
        compression: str,
        definitions: dict[str, str],
        lookup_topics: Callable[[], dict[str, TopicInfo]],
        options: WriteOptions,
    ) -> None:
        self.path = path
        self._definitions = definitions
        self._lookup_topics = lookup_topics
        self._file = options.open_file(path)
        self._writer = McapStream(self._file, compression, options.chunk_bytes, options.chunk_crcs)
        self._write_behind_bytes = options.write_behind_bytes
        self._schema_ids: dict[str, int] = {}
        self._channel_ids: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        self.first_ns: int | None = None
        self.last_ns: int | None = None
        self.message_count = 0
        self._behind = 0  # file offset up to which write_behind ran
        self._fadvise = options.fadvise

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
            if writer.position - self._behind >= self._write_behind_bytes:  # a batch may be gigabytes
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


class SnapshotFolder:
    """Writer-thread state of one snapshot: its temporary folder and MCAP, the messages written
    (in order, up to `written_ns`) and those held back until they are safe to write."""

    def __init__(
        self,
        start: SnapshotStart,
        folder: Path,
        settings: SnapshotSettings,
        definitions: dict[str, str],
        lookup_topics: Callable[[], dict[str, TopicInfo]],
        options: WriteOptions,
    ) -> None:
        self.name = start.name
        self.folder = folder
        self.renamed = False
        self._start = start
        self._settings = settings
        self._definitions = definitions
        self._lookup_topics = lookup_topics
        self._options = options
        self._mcap_path = folder / f"{start.name}_0.mcap"
        self._mcap: SnapshotMcap | None = None
        self._held: list[BufferedMessage] = []  # unordered, not written yet
        self._all: list[BufferedMessage] = []  # every non-latched message, for a rewrite
        self._written_ns: int | None = None
        self._disordered = False

    def open(self) -> SnapshotMcap:
        self._mcap = SnapshotMcap(
            self._mcap_path,
            self._settings.compression,
            self._definitions,
            self._lookup_topics,
            self._options,
        )
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

    def complete(self, job: SnapshotEnd) -> SnapshotMcap:
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

    def finish(self, end: SnapshotEnd) -> int:
        """Complete the streamed MCAP with the trigger records, write metadata.yaml and
        trigger.json, fsync files and folder; return the folder's bytes."""
        mcap = self.complete(end)
        mcap_name = mcap.path.name
        topics = [
            rosbag2.BagTopic(
                name, rosbag2.type_name(info.msgtype), info.offered_qos_profiles, mcap.counts.get(name, 0)
            )
            for name, info in end.topics.items()
        ]
        if mcap.first_ns is not None and mcap.last_ns is not None:
            first = mcap.first_ns
            duration = mcap.last_ns - first
        else:
            first, duration = end.start_ns, 0
        message_count = mcap.message_count
        custom_data = {
            "gap_monitor.snapshot": end.name,
            "gap_monitor.triggers": json.dumps(end.triggers, default=_json_default),
        }
        bag_info = rosbag2.bag_metadata(mcap_name, topics, message_count, first, duration, custom_data)
        summary = {
            "snapshot": end.name,
            "start_ns": end.start_ns,
            "end_ns": end.end_ns,
            "pre_s": self._settings.pre_s,
            "post_s": self._settings.post_s,
            "truncated": end.truncated,
            "message_count": message_count,
            "triggers": end.triggers,
        }

        records = []
        for index, trig in enumerate(end.triggers):
            record = {str(k): _as_text(v) for k, v in trig["event"].items()}
            record["snapshot.trigger_ns"] = str(trig["trigger_ns"])
            record["snapshot.trigger_index"] = str(index)
            records.append((TRIGGER_RECORD, record))
        records.append(
            (
                SNAPSHOT_RECORD,
                {k: _as_text(v) for k, v in summary.items() if k != "triggers"}
                | {"trigger_count": str(len(end.triggers))},
            )
        )
        records.append(rosbag2.mcap_metadata_record(bag_info))
        mcap.finish(records)

        open_file = self._options.open_file
        _write_synced(open_file, self.folder / rosbag2.METADATA_FILE, rosbag2.metadata_yaml(bag_info))
        _write_synced(
            open_file,
            self.folder / "trigger.json",
            json.dumps(summary, indent=2, default=_json_default).encode() + b"\n",
        )
        fsync_dir(self.folder)
        return folder_size(self.folder)

    def discard(self) -> None:
        """Remove the temporary folder and everything in it."""
        if self._mcap is not None:
            self._mcap.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def free_path(path: Path) -> Path:
    """`path`, or `path_2`, `path_3`... when it exists."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}_{n}")
    return candidate


def _write_synced(open_file: Callable[[Path], IO[bytes]], path: Path, data: bytes) -> None:
    with open_file(path) as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def fsync_dir(path: Path) -> None:
    """Make the folder's entries (new files, a rename) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as err:
        if err.errno != errno.EINVAL:  # some filesystems cannot fsync a directory
            raise
    finally:
        os.close(fd)


def folder_size(path: Path) -> int:
    """Bytes of the files under `path` (those that vanish meanwhile count 0)."""
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
