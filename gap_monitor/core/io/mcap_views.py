"""Read MCAP files without copying message payloads, for the offline commands.

`profile build` and `audit` read every message of a recording but look at most payloads only
briefly (a header stamp, a decimated image's bytes). A general reader copies each payload out of
its chunk two or three times; here the file is memory-mapped, uncompressed chunks are read in
place and each message is a `memoryview` into the map (or into the decompressed lz4/zstd chunk),
so a skipped camera frame is never even paged in.

Order and selection are those of rosbags' MCAP reader (what `core.bags` reads with, tested
against it): files in turn; within a file, the chunks of the summary's chunk index merged by log
time, ties going to the chunk earlier in the file; within a chunk, messages sorted by log time
(stable) and only those inside the chunk's stated time range. Files without a chunk index cannot
be read this way (`McapViewError`; the caller falls back to the general reader).

A chunk that states a CRC is checked once when it is read (CRC-32 costs little next to reading the
bytes at all), so a corrupt recording is refused by name (file and chunk offset) instead of
feeding damaged payloads to a profile; a chunk whose CRC is 0 (rosbags writes none) is read as is.
A chunk that does not decompress, or whose records do not frame, is refused the same way.
"""

from __future__ import annotations

import heapq
import importlib
import itertools
import mmap
import struct
import zlib
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

from gap_monitor.errors import GapMonitorError

__all__ = ["McapViewError", "McapViews", "MessageView"]

_CHUNK_OP = 0x06
_MESSAGE_OP = 0x05
_U32 = struct.Struct("<I").unpack_from
_U64 = struct.Struct("<Q").unpack_from
_RECORD = struct.Struct("<BQ").unpack_from  # opcode, length
_MESSAGE = struct.Struct("<HIQ").unpack_from  # channel id, sequence, log time (publish time follows)
_MESSAGE_HEAD = 22  # channel id, sequence, log time, publish time
_EMPTY = memoryview(b"")


class McapViewError(GapMonitorError):
    """The file cannot be read in place (no chunk index, unknown compression) or is corrupt."""


class MessageView(NamedTuple):
    """One message; `data` (the CDR payload) is valid until the reader is closed. (A tuple: one
    is made per message, and a frozen dataclass costs ~4x as much to create.)"""

    topic: str
    msgtype: str
    log_time_ns: int
    data: memoryview


@dataclass(frozen=True)
class _Chunk:
    offset: int
    start_ns: int
    end_ns: int
    compression: str
    uncompressed_size: int
    channels: frozenset[int] | None  # None: the index does not say


class _File:
    def __init__(self, path: Path) -> None:
        from mcap.exceptions import McapError
        from mcap.reader import make_reader

        self.path = path
        with path.open("rb") as f:
            try:
                summary = make_reader(f).get_summary()
            except (McapError, ValueError, struct.error, OSError) as exc:
                raise McapViewError(f"{path}: cannot read the MCAP summary: {exc}") from exc
            if summary is None or not summary.chunk_indexes:
                raise McapViewError(f"{path}: no chunk index to read the messages by")
            try:
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError) as exc:  # e.g. a file system without mmap
                raise McapViewError(f"{path}: cannot map the file: {exc}") from exc
        self.view = memoryview(self._map)
        self.channels: dict[int, tuple[str, str]] = {}
        for cid, channel in summary.channels.items():
            schema = summary.schemas.get(channel.schema_id)
            if channel.message_encoding == "cdr" and schema is not None:
                self.channels[cid] = (channel.topic, schema.name)
        self.chunks = sorted(
            (
                _Chunk(
                    c.chunk_start_offset,
                    c.message_start_time,
                    c.message_end_time,
                    c.compression,
                    c.uncompressed_size,
                    frozenset(c.message_index_offsets) if c.message_index_offsets else None,
                )
                for c in summary.chunk_indexes
            ),
            key=lambda c: c.offset,
        )
        for chunk in self.chunks:
            if chunk.compression not in ("", "lz4", "zstd"):
                self.close()
                raise McapViewError(f"{path}: unsupported chunk compression {chunk.compression!r}")

    def close(self) -> None:
        try:
            self.view.release()
            self._map.close()
        except BufferError:
            pass  # a caller still holds a message view; the map closes when that is collected

    def messages(self, wanted: Collection[int]) -> Iterator[tuple[int, int, memoryview]]:
        """(log time, channel id, payload) of the wanted channels, in rosbags' order."""
        chunks = [c for c in self.chunks if c.channels is None or not c.channels.isdisjoint(wanted)]
        if all(a.end_ns <= b.start_ns for a, b in itertools.pairwise(chunks)):
            for chunk in chunks:
                yield from self._chunk_messages(chunk, wanted)
            return
        # Overlapping chunks: merged lazily (a chunk is read when the merge reaches its start
        # time, so a compressed recording is not decompressed all at once).
        for item in heapq.merge(*(self._lazy(c, wanted) for c in chunks), key=_log_time):
            if item[1] >= 0:
                yield item

    def verify(self) -> None:
        """Read every chunk (CRC, decompression, record framing): McapViewError names a bad one."""
        for chunk in self.chunks:
            self._chunk_messages(chunk, ())

    def _lazy(self, chunk: _Chunk, wanted: Collection[int]) -> Iterator[tuple[int, int, memoryview]]:
        yield chunk.start_ns, -1, _EMPTY  # a placeholder until the merge gets this far
        yield from self._chunk_messages(chunk, wanted)

    def _chunk_messages(self, chunk: _Chunk, wanted: Collection[int]) -> list[tuple[int, int, memoryview]]:
        records, base = self._records(chunk)
        end = len(records)
        pos = 0
        found = []
        unpack_record, unpack_message = _RECORD, _MESSAGE
        lo, hi = chunk.start_ns, chunk.end_ns
        try:
            while pos < end:
                op, length = unpack_record(records, pos)
                body = pos + 9
                pos = body + length
                if pos > end:
                    raise McapViewError(f"{self.path}: chunk at offset {chunk.offset}: record at offset "
                                        f"{base + body - 9} runs past the chunk")
                if op != _MESSAGE_OP:
                    continue
                if length < _MESSAGE_HEAD:
                    raise McapViewError(f"{self.path}: chunk at offset {chunk.offset}: message record at "
                                        f"offset {base + body - 9} is {length} bytes, shorter than its "
                                        "fixed fields")
                cid, _seq, log_time = unpack_message(records, body)
                if cid in wanted and lo <= log_time <= hi:
                    found.append((log_time, cid, records[body + _MESSAGE_HEAD : pos]))
        except struct.error as exc:
            raise McapViewError(f"{self.path}: chunk at offset {chunk.offset}: truncated record") from exc
        found.sort(key=_log_time)
        return found

    def _records(self, chunk: _Chunk) -> tuple[memoryview, int]:
        """The chunk's records (in the map, or decompressed) and their file offset (for errors)."""
        view = self.view
        try:
            op, _length = _RECORD(view, chunk.offset)
            (crc,) = _U32(view, chunk.offset + 9 + 24)  # after start, end, uncompressed size
            pos = chunk.offset + 9 + 28  # start, end, uncompressed size, crc
            (name_length,) = _U32(view, pos)
            pos += 4 + name_length
            (size,) = _U64(view, pos)
            pos += 8
        except struct.error as exc:
            raise McapViewError(f"{self.path}: chunk index points past the file ({chunk.offset})") from exc
        if op != _CHUNK_OP or pos + size > len(view):
            raise McapViewError(f"{self.path}: no chunk at offset {chunk.offset}")
        data = view[pos : pos + size]
        if not chunk.compression:
            self._check_crc(chunk, data, crc)
            return data, pos
        try:
            raw = _DECOMPRESS[chunk.compression]()(data, chunk.uncompressed_size)
        except _DecompressError as exc:
            raise McapViewError(
                f"{self.path}: chunk at offset {chunk.offset} does not decompress "
                f"({chunk.compression}: {exc})"
            ) from exc
        if len(raw) != chunk.uncompressed_size:
            raise McapViewError(
                f"{self.path}: chunk at offset {chunk.offset} decompressed to {len(raw)} bytes, "
                f"not {chunk.uncompressed_size}"
            )
        self._check_crc(chunk, raw, crc)
        return memoryview(raw), pos

    def _check_crc(self, chunk: _Chunk, records: Any, crc: int) -> None:
        """The MCAP CRC is over the uncompressed records; 0 means the writer computed none."""
        if crc and zlib.crc32(records) != crc:
            raise McapViewError(f"{self.path}: chunk at offset {chunk.offset} is corrupt (CRC mismatch)")


def _log_time(item: tuple[int, int, memoryview]) -> int:
    return item[0]


class _DecompressError(Exception):
    """A chunk the decompressor rejects (each library has its own error type)."""


def _lz4() -> Callable[[Any, int], bytes]:
    frame: Any = importlib.import_module("lz4.frame")  # untyped

    def decompress(data: Any, _size: int) -> bytes:
        try:
            return bytes(frame.decompress(data))
        except RuntimeError as exc:  # what lz4.frame raises for a damaged frame (LZ4F_... failed)
            raise _DecompressError(str(exc)) from exc

    return decompress


def _zstd() -> Callable[[Any, int], bytes]:
    zstandard: Any = importlib.import_module("zstandard")

    def decompress(data: Any, size: int) -> bytes:
        try:
            return bytes(zstandard.ZstdDecompressor().decompress(data, max_output_size=size))
        except zstandard.ZstdError as exc:
            raise _DecompressError(str(exc)) from exc

    return decompress


_DECOMPRESS: dict[str, Callable[[], Callable[[Any, int], bytes]]] = {"lz4": _lz4, "zstd": _zstd}


class McapViews:
    """MCAP file(s) of one recording, mapped; `messages` yields `MessageView`s."""

    def __init__(self, files: Sequence[Path]) -> None:
        self._files: list[_File] = []
        try:
            for path in files:
                self._files.append(_File(path))
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> McapViews:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        for f in self._files:
            f.close()
        self._files.clear()

    def verify(self) -> None:
        """Check every chunk of every file; raises McapViewError naming the file and the chunk."""
        for f in self._files:
            f.verify()

    def messages(self, topics: Collection[str] | None = None) -> Iterator[MessageView]:
        for f in self._files:
            wanted = {
                cid: info for cid, info in f.channels.items() if topics is None or info[0] in topics
            }
            if not wanted:
                continue
            for log_time, cid, data in f.messages(wanted):
                topic, msgtype = wanted[cid]
                yield MessageView(topic, msgtype, log_time, data)
