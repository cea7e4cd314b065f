"""McapStream against mcap's own Writer: same records, valid structure, CRCs."""

from __future__ import annotations

import importlib
import io
import struct
import zlib
from typing import Any

import numpy as np
import pytest
from mcap.reader import make_reader
from mcap.records import Chunk, ChunkIndex, Footer, MessageIndex
from mcap.stream_reader import StreamReader
from mcap.writer import CompressionType, Writer

from gap_monitor.core.io.mcap_writer import McapStream

Record = tuple[int, int, bytes, int, int]  # channel index, log time, data, publish time, sequence


def random_records(rng: np.random.Generator, channels: int, count: int, chunk_bytes: int) -> list[Record]:
    """Messages of every size from empty to several chunks, log times in order with ties."""
    out: list[Record] = []
    t = int(rng.integers(0, 10**18))
    for _ in range(count):
        t += int(rng.integers(0, 3)) * int(rng.integers(1, 10**7))
        size = int(
            rng.choice([0, 1, int(rng.integers(2, 200)), int(rng.integers(chunk_bytes, 3 * chunk_bytes))])
        )
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        out.append(
            (
                int(rng.integers(0, channels)),
                t,
                data,
                t - int(rng.integers(0, 10**6)),
                int(rng.integers(0, 2**32)),
            )
        )
    return out


def write_mcap(writer: Any, channels: int, records: list[Record]) -> None:
    """The same calls for mcap's Writer and McapStream."""
    writer.start(profile="ros2", library="test")
    ids = []
    for c in range(channels):
        schema = writer.register_schema(name=f"pkg/msg/T{c}", encoding="ros2msg", data=f"int32 x{c}".encode())
        ids.append(
            writer.register_channel(
                topic=f"/topic{c}", message_encoding="cdr", schema_id=schema, metadata={"k": str(c)}
            )
        )
    for c, log_time, data, publish_time, sequence in records:
        writer.add_message(
            channel_id=ids[c], log_time=log_time, data=data, publish_time=publish_time, sequence=sequence
        )
    writer.add_metadata("gap_monitor.trigger", {"kind": "test", "n": str(len(records))})
    writer.add_metadata("rosbag2", {"serialized_metadata": "x: 1"})
    writer.finish()


def chunk_data(chunk: Any) -> bytes:
    if chunk.compression == "zstd":
        zstandard: Any = importlib.import_module("zstandard")
        return bytes(
            zstandard.ZstdDecompressor().decompress(chunk.data, max_output_size=chunk.uncompressed_size)
        )
    if chunk.compression == "lz4":
        frame: Any = importlib.import_module("lz4.frame")  # untyped
        return bytes(frame.decompress(chunk.data))
    assert chunk.compression == ""
    return bytes(chunk.data)


def check_structure(blob: bytes) -> dict[str, Any]:
    """Parse `blob` record by record with mcap's stream reader and check, independently of the
    writer, what readers rely on: chunk CRCs, message indexes pointing at their messages, chunk
    indexes pointing at their chunks and message indexes, the summary CRC."""
    records = list(StreamReader(io.BytesIO(blob), emit_chunks=True, validate_crcs=True).records)
    chunks: list[tuple[Any, bytes]] = []
    for record in records:
        if isinstance(record, Chunk):
            data = chunk_data(record)
            assert len(data) == record.uncompressed_size
            assert record.uncompressed_crc == zlib.crc32(data) != 0
            chunks.append((record, data))
        elif isinstance(record, MessageIndex):
            _, data = chunks[-1]
            for log_time, offset in record.records:
                opcode, _length, channel_id, _seq, logged = struct.unpack_from("<BQHIQ", data, offset)
                assert (opcode, channel_id, logged) == (0x05, record.channel_id, log_time)
    indexes = [r for r in records if isinstance(r, ChunkIndex)]
    assert len(indexes) == len(chunks)
    for index, (chunk, _) in zip(indexes, chunks, strict=True):
        opcode, length = struct.unpack_from("<BQ", blob, index.chunk_start_offset)
        assert opcode == 0x06 and 9 + length == index.chunk_length
        assert (index.message_start_time, index.message_end_time) == (
            chunk.message_start_time,
            chunk.message_end_time,
        )
        for channel_id, offset in index.message_index_offsets.items():
            opcode, _length, indexed = struct.unpack_from("<BQH", blob, offset)
            assert (opcode, indexed) == (0x07, channel_id)
    (footer,) = [r for r in records if isinstance(r, Footer)]
    footer_at = len(blob) - 8 - (1 + 8 + 8 + 8 + 4)
    covered = blob[footer.summary_start : footer_at + 1 + 8 + 8 + 8]
    assert footer.summary_crc == zlib.crc32(covered) != 0
    return {
        "chunks": [
            (
                i.message_start_time,
                i.message_end_time,
                i.uncompressed_size,
                c.uncompressed_crc,
                sorted(i.message_index_offsets),
            )
            for i, (c, _) in zip(indexes, chunks, strict=True)
        ]
    }


def read_mcap(blob: bytes) -> dict[str, Any]:
    reader = make_reader(io.BytesIO(blob), validate_crcs=True)
    summary = reader.get_summary()
    assert summary is not None
    stats = summary.statistics
    return {
        "messages": [
            (c.topic, m.log_time, m.publish_time, m.sequence, m.data) for _, c, m in reader.iter_messages()
        ],
        "schemas": sorted((s.id, s.name, s.encoding, s.data) for s in summary.schemas.values()),
        "channels": sorted(
            (c.id, c.topic, c.schema_id, c.message_encoding, c.metadata) for c in summary.channels.values()
        ),
        "statistics": (
            stats.message_count,
            stats.schema_count,
            stats.channel_count,
            stats.chunk_count,
            stats.metadata_count,
            stats.message_start_time,
            stats.message_end_time,
            dict(stats.channel_message_counts),
        ),
        "metadata": [(m.name, m.metadata) for m in make_reader(io.BytesIO(blob)).iter_metadata()],
        **check_structure(blob),
    }


@pytest.mark.parametrize("compression", ["none", "lz4", "zstd"])
@pytest.mark.parametrize("seed", range(4))
def test_mcap_stream_matches_mcap_writer(compression: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    chunk_bytes = int(rng.integers(64, 4096))
    channels = int(rng.integers(1, 5))
    records = random_records(rng, channels, int(rng.integers(1, 300)), chunk_bytes)
    ours, theirs = io.BytesIO(), io.BytesIO()
    write_mcap(McapStream(ours, compression, chunk_bytes), channels, records)
    kind = {"none": CompressionType.NONE, "lz4": CompressionType.LZ4, "zstd": CompressionType.ZSTD}
    write_mcap(Writer(theirs, chunk_size=chunk_bytes, compression=kind[compression]), channels, records)
    got, want = read_mcap(ours.getvalue()), read_mcap(theirs.getvalue())
    assert [m[1:] for m in got["messages"]] == [(t, p, s, d) for _, t, d, p, s in records]
    assert got == want


def test_mcap_stream_without_messages_is_valid() -> None:
    out = io.BytesIO()
    write_mcap(McapStream(out, "none"), 2, [])
    got = read_mcap(out.getvalue())
    assert got["messages"] == [] and got["chunks"] == []
    assert got["statistics"][:3] == (0, 2, 2)
    assert len(got["channels"]) == 2


@pytest.mark.parametrize("compression", ["none", "zstd"])
def test_mcap_stream_without_chunk_crcs_is_still_read(compression: str) -> None:
    records = random_records(np.random.default_rng(7), 2, 100, 512)
    out = io.BytesIO()
    write_mcap(McapStream(out, compression, 512, chunk_crcs=False), 2, records)
    blob = out.getvalue()
    chunks = [r for r in StreamReader(io.BytesIO(blob), emit_chunks=True).records if isinstance(r, Chunk)]
    assert chunks and all(c.uncompressed_crc == 0 for c in chunks)  # 0: not computed
    reader = make_reader(io.BytesIO(blob), validate_crcs=True)
    assert [m.data for _, _, m in reader.iter_messages()] == [d for _, _, d, _, _ in records]
