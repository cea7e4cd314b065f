"""Read recordings offline: rosbag2 folders (MCAP or sqlite3), bare .mcap/.db3 files, ROS 1 bags.

Whatever the source, callers get `RawMessage`s with CDR payloads in log-time order, the same bytes
a `raw=True` subscription delivers, so the live and offline paths share one decoder (cdr.py).
ROS 1 payloads are converted byte-wise to CDR with rosbags, using the bag's own message
definitions and the ROS 2 std_msgs/Header (the ROS 1 `seq` is dropped). Types whose ROS 2
definition differs from the ROS 1 one are not migrated field by field.

rosbags is imported lazily: importing this module costs nothing until a recording is opened.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeAlias

import yaml

from gap_monitor.core.io.mcap_views import McapViewError, McapViews, MessageView
from gap_monitor.errors import RecordingError

if TYPE_CHECKING:
    from rosbags.interfaces import Connection

__all__ = [
    "MessageView",
    "RawMessage",
    "Recording",
    "TopicInfo",
    "open_recording",
]


@dataclass(frozen=True)
class RawMessage:
    """One recorded message: CDR bytes as a raw subscription would receive them."""

    topic: str
    msgtype: str
    log_time_ns: int
    data: bytes


# What `Recording.views` yields: a payload in place (memoryview) or a copy (bytes).
AnyMessage: TypeAlias = "MessageView | RawMessage"


@dataclass(frozen=True)
class TopicInfo:
    """A topic of a recording: its type ("pkg/msg/Name") and message count."""

    msgtype: str
    count: int


# ROS 1 -> CDR payload conversion: (raw bytes, msgtype) -> CDR bytes.
_Converter = Callable[[Any, str], Any]


class Recording:
    """An open recording. Use `open_recording`; close it (or use `with`) when done."""

    def __init__(
        self,
        path: Path,
        kind: str,
        reader: Any,
        converter: _Converter | None,
        read_errors: tuple[type[Exception], ...],
    ) -> None:
        self.path = path
        self.kind = kind  # "rosbag2", "mcap", "sqlite3" or "ros1"
        self._reader = reader
        self._convert = converter
        self._read_errors = read_errors
        # Only CDR connections: a foreign MCAP channel (json, protobuf) is not ours to decode.
        self._connections: list[Connection] = [
            c for c in reader.connections if _serialization_format(c) == "cdr"
        ]
        self._closed = False
        self._views: McapViews | None = None

    def __enter__(self) -> Recording:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._views is not None:
                self._views.close()
            self._reader.close()

    def __repr__(self) -> str:
        return f"Recording({str(self.path)!r}, kind={self.kind!r})"

    @property
    def start_time_ns(self) -> int:
        """Log time of the first message."""
        return int(self._reader.start_time)

    @property
    def end_time_ns(self) -> int:
        """Log time of the last message."""
        return max(int(self._reader.end_time) - 1, self.start_time_ns)  # rosbags: end is exclusive

    def topics(self) -> dict[str, TopicInfo]:
        """Topic name -> (msgtype, count), sorted by name."""
        found: dict[str, TopicInfo] = {}
        for conn in self._connections:
            known = found.get(conn.topic)
            count = int(conn.msgcount) + (known.count if known else 0)
            found[conn.topic] = TopicInfo(known.msgtype if known else conn.msgtype, count)
        return dict(sorted(found.items()))

    def message_count(self, topics: Iterable[str] | None = None) -> int:
        """Messages that `messages(topics)` yields: the total for a progress bar."""
        wanted = None if topics is None else set(topics)
        return sum(
            int(c.msgcount) for c in self._connections if wanted is None or c.topic in wanted
        )

    def messages(
        self,
        topics: Iterable[str] | None = None,
        start_ns: int | None = None,
        stop_ns: int | None = None,
    ) -> Iterator[RawMessage]:
        """Messages in log-time order, optionally only `topics` and log times in [start, stop).

        Topic names the recording lacks are ignored (they yield nothing).
        """
        if self._closed:
            raise RecordingError(f"{self.path}: recording is closed")
        wanted = None if topics is None else set(topics)
        conns = [c for c in self._connections if wanted is None or c.topic in wanted]
        if not conns:
            return
        convert = self._convert
        read = self._reader.messages(conns, start_ns, stop_ns)
        while True:
            # Only the reader's own work is guarded: an error in the caller's code is not bad input.
            try:
                conn, log_time, raw = next(read)
                data = bytes(convert(raw, conn.msgtype) if convert else raw)
            except StopIteration:
                return
            except self._read_errors as exc:
                raise RecordingError(self._read_failure(exc)) from exc
            yield RawMessage(conn.topic, conn.msgtype, int(log_time), data)

    def _read_failure(self, exc: Exception) -> str:
        """What went wrong, in one line: for MCAP storage, which chunk is bad (the general reader
        says only "Chunk checksum mismatch." or fails deep in a decompressor)."""
        files = self._mcap_files()
        if files:
            try:
                with McapViews(files) as views:
                    views.verify()
            except McapViewError as found:
                return str(found)
        return f"{self.path}: {exc or type(exc).__name__}"

    def views(self, topics: Iterable[str] | None = None) -> Iterator[AnyMessage]:
        """`messages(topics)`, the payloads read in place where the storage is indexed MCAP
        (memoryviews valid until the recording is closed: copy what you keep), copied otherwise.

        For reading a whole recording fast (`profile build`, `audit`); same messages, same order."""
        if self._closed:
            raise RecordingError(f"{self.path}: recording is closed")
        views = self._mapped()
        if views is None:
            yield from self.messages(topics)
            return
        wanted = None if topics is None else set(topics)
        try:
            yield from views.messages(wanted)
        except McapViewError as exc:
            raise RecordingError(str(exc)) from exc

    def _mapped(self) -> McapViews | None:
        if self._views is None:
            files = self._mcap_files()
            if files:
                try:
                    self._views = McapViews(files)
                except McapViewError:
                    return None  # e.g. no chunk index: the general reader scans the file
        return self._views

    def _mcap_files(self) -> list[Path] | None:
        """The MCAP storage files in rosbags' order, when their payloads are plain CDR."""
        if self.kind == "mcap":
            return [self.path]
        if self.kind != "rosbag2":
            return None
        try:
            info = yaml.safe_load((self.path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
            names = [PurePath(name).name for name in info["relative_file_paths"]]
        except (OSError, yaml.YAMLError, KeyError, TypeError):
            return None
        # A compressed bag (whole files or each message) is left to rosbags, which undoes that.
        if info.get("storage_identifier") != "mcap" or info.get("compression_format"):
            return None
        files = [self.path / name for name in names]
        return files if files and all(f.suffix == ".mcap" and f.is_file() for f in files) else None

    def __iter__(self) -> Iterator[RawMessage]:
        return self.messages()


def _serialization_format(conn: Connection) -> str:
    return str(getattr(conn.ext, "serialization_format", "cdr"))


def open_recording(path: str | os.PathLike[str]) -> Recording:
    """Open a rosbag2 folder, a .mcap or .db3 file, or a ROS 1 .bag file.

    Raises FileNotFoundError for a missing path and RecordingError for anything else that is not
    one of those (or cannot be read).
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"recording not found: {p}")
    if p.is_dir():
        if not (p / "metadata.yaml").is_file():
            storage = sorted(x.name for x in p.iterdir() if x.suffix in (".mcap", ".db3"))
            hint = f"; open one of its storage files directly: {', '.join(storage)}" if storage else ""
            raise RecordingError(f"{p} is a folder without metadata.yaml, not a rosbag2 recording{hint}")
        return _open_rosbag2(p, "rosbag2")
    suffix = p.suffix
    if suffix == ".mcap":
        return _open_rosbag2(p, "mcap")
    if suffix == ".db3":
        return _open_rosbag2(p, "sqlite3")
    if suffix == ".bag":
        return _open_ros1(p)
    raise RecordingError(
        f"{p} is not a recording: expected a rosbag2 folder (with metadata.yaml), "
        "a .mcap or .db3 file, or a ROS 1 .bag file"
    )


def _open_rosbag2(path: Path, kind: str) -> Recording:
    from rosbags.rosbag2 import Reader, ReaderError
    from rosbags.serde import SerdeError

    try:
        reader = Reader(path)
        reader.open()
    except (ReaderError, KeyError, ValueError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise RecordingError(f"cannot read {kind} recording {path}: {exc}") from exc
    return Recording(path, kind, reader, None, (ReaderError, SerdeError, *_DAMAGED_CHUNK_ERRORS))


# What rosbags' MCAP reader lets escape on a damaged chunk: lz4.frame's RuntimeError ("LZ4F_...
# failed"), the zstd module's error, and the OverflowError/struct.error/EOFError of a record length
# read from garbage. Caught only around the reader's next message (Recording.messages).
_DAMAGED_CHUNK_ERRORS: tuple[type[Exception], ...] = (RuntimeError, OverflowError, struct.error, EOFError)


def _open_ros1(path: Path) -> Recording:
    from rosbags.rosbag1 import Reader, ReaderError
    from rosbags.serde import SerdeError
    from rosbags.typesys import Stores, TypesysError, get_types_from_msg, get_typestore

    try:
        reader = Reader(path)
        reader.open()
    except (ReaderError, ValueError, OSError) as exc:
        raise RecordingError(f"cannot read ROS 1 bag {path}: {exc}") from exc
    try:
        types: dict[str, Any] = {}
        for conn in reader.connections:
            types.update(get_types_from_msg(conn.msgdef.data, conn.msgtype))
        # The CDR layout of a Header is the ROS 2 one; ros1_to_cdr skips the ROS 1 `seq` itself.
        ros2 = get_typestore(Stores.ROS2_JAZZY)
        types["std_msgs/msg/Header"] = ros2.fielddefs["std_msgs/msg/Header"]
        typestore = get_typestore(Stores.EMPTY)
        typestore.register(types)
    except (TypesysError, KeyError, ValueError) as exc:
        reader.close()
        raise RecordingError(f"cannot parse the message definitions in {path}: {exc}") from exc

    def to_cdr(raw: Any, msgtype: str) -> Any:
        return typestore.ros1_to_cdr(raw, msgtype)

    return Recording(path, "ros1", reader, to_cdr, (ReaderError, SerdeError))
