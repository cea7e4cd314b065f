"""Recording.views (payloads read in place from the mapped MCAP) against Recording.messages
(rosbags' reader): the same messages in the same order, on the real recordings and on files
written here with overlapping chunks, lz4 and zstd chunks, foreign channels and no index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mcap.writer import CompressionType, IndexType, Writer
from rosbags.typesys import Stores, get_typestore

from gap_monitor.core.io.mcap_views import McapViewError, McapViews
from gap_monitor.core.io.recordings import open_recording
from gap_monitor.errors import RecordingError

TS = get_typestore(Stores.ROS2_JAZZY)
REAL = ["euroc_mh01_micro_ros2", "openloris_sample_ros2", "kuka_lwr_joint_states_ros2"]
Row = tuple[str, str, int, bytes]


def both(path: Path, topics: list[str] | None = None, mapped: bool = True) -> tuple[list[Row], list[Row]]:
    """What `messages` and `views` read; `mapped`: whether views must have read in place."""
    with open_recording(path) as rec:
        general = [(m.topic, m.msgtype, m.log_time_ns, bytes(m.data)) for m in rec.messages(topics)]
        views = list(rec.views(topics))
        assert all(isinstance(m.data, memoryview) == mapped for m in views)
        in_place = [(m.topic, m.msgtype, m.log_time_ns, bytes(m.data)) for m in views]
    return general, in_place


@pytest.mark.parametrize("name", REAL)
def test_real_recordings_read_the_same_in_place(real_data_dir: Path, name: str) -> None:
    general, in_place = both(real_data_dir / name)
    assert len(general) > 100
    assert in_place == general


def test_real_recording_topic_selection(real_data_dir: Path) -> None:
    general, in_place = both(real_data_dir / "euroc_mh01_micro_ros2", ["/cam0/image_raw"])
    assert {row[0] for row in general} == {"/cam0/image_raw"}
    assert in_place == general


def string_cdr(text: str) -> bytes:
    return bytes(TS.serialize_cdr(TS.types["std_msgs/msg/String"](data=text), "std_msgs/msg/String"))


def write_mcap(
    path: Path,
    log_times: list[int],
    compression: CompressionType = CompressionType.NONE,
    chunk_size: int = 200,
    index: bool = True,
) -> None:
    with path.open("wb") as f:
        writer = Writer(
            f,
            chunk_size=chunk_size,
            compression=compression,
            index_types=IndexType.ALL if index else IndexType.NONE,
            use_chunking=True,
            use_summary_offsets=index,
        )
        writer.start(profile="ros2", library="test")
        schema = writer.register_schema("std_msgs/msg/String", "ros2msg", b"string data")
        text = writer.register_channel("/text", "cdr", schema)
        other = writer.register_channel("/other", "cdr", schema)
        foreign = writer.register_channel("/json", "json", 0)
        for i, t in enumerate(log_times):
            channel = text if i % 3 else other
            writer.add_message(channel, log_time=t, data=string_cdr(f"m{i}"), publish_time=t)
            if i % 7 == 0:
                writer.add_message(foreign, log_time=t, data=b'{"x": 1}', publish_time=t)
        writer.finish()


def shuffled_times(n: int, seed: int) -> list[int]:
    """Log times that go back and forth (a bag written out of order), with ties."""
    rng = np.random.default_rng(seed)
    base = np.arange(n) * 1_000 + 1_000_000
    jitter = rng.integers(-20_000, 20_000, size=n)
    times = (base + jitter).tolist()
    times[10] = times[11]  # a tie
    return [int(t) for t in times]


@pytest.mark.parametrize(
    "compression", [CompressionType.NONE, CompressionType.LZ4, CompressionType.ZSTD], ids=str
)
def test_overlapping_compressed_chunks_read_in_rosbags_order(
    tmp_path: Path, compression: CompressionType
) -> None:
    path = tmp_path / "run.mcap"
    write_mcap(path, shuffled_times(400, seed=1), compression)
    general, in_place = both(path)
    assert len(general) == 400  # the json channel is not ours to decode
    assert [row[2] for row in general] == sorted(row[2] for row in general)
    assert in_place == general
    assert both(path, ["/other"])[1] == both(path, ["/other"])[0]


def test_in_order_chunks_read_in_place(tmp_path: Path) -> None:
    path = tmp_path / "run.mcap"
    write_mcap(path, [1_000_000 + 1_000 * i for i in range(300)])
    general, in_place = both(path)
    assert in_place == general


def test_file_without_index_falls_back_to_the_general_reader(tmp_path: Path) -> None:
    path = tmp_path / "run.mcap"
    write_mcap(path, [1_000_000 + 1_000 * i for i in range(50)], index=False)
    with pytest.raises(McapViewError, match="chunk index"):
        McapViews([path])
    general, in_place = both(path, mapped=False)
    assert in_place == general


def test_views_die_with_the_recording(tmp_path: Path) -> None:
    path = tmp_path / "run.mcap"
    write_mcap(path, [1_000_000 + 1_000 * i for i in range(30)])
    rec = open_recording(path)
    kept = next(iter(rec.views()))
    assert bytes(kept.data) == string_cdr("m0")
    rec.close()  # a view still held must not make closing fail
    with pytest.raises(RecordingError, match="closed"):
        next(iter(rec.views()))


def test_a_chunk_index_pointing_nowhere_is_a_recording_error(tmp_path: Path) -> None:
    path = tmp_path / "run.mcap"
    write_mcap(path, [1_000_000 + 1_000 * i for i in range(100)])
    data = bytearray(path.read_bytes())
    start = data.find(b"\x06", 8)  # the first chunk record's opcode
    data[start] = 0x07  # no longer a chunk where the index says one is
    path.write_bytes(bytes(data))
    with McapViews([path]) as views, pytest.raises(McapViewError, match="no chunk at offset"):
        list(views.messages())
