"""bags.py on the real recordings and on small recordings written here with rosbags."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from gap_monitor.core.io import cdr
from gap_monitor.core.io.recordings import RawMessage, TopicInfo, open_recording
from gap_monitor.errors import RecordingError

TS = get_typestore(Stores.ROS2_JAZZY)
KUKA_TOPIC = "/joint_states"


def read_all(path: Path, topics: list[str] | None = None) -> list[RawMessage]:
    with open_recording(path) as rec:
        return list(rec.messages(topics))


def assert_log_time_order(messages: list[RawMessage]) -> None:
    times = np.array([m.log_time_ns for m in messages], dtype=np.int64)
    assert np.all(np.diff(times) >= 0)


def test_euroc_topics_and_counts_match_the_readme(real_data_dir: Path) -> None:
    with open_recording(real_data_dir / "euroc_mh01_micro_ros2") as rec:
        assert rec.kind == "rosbag2"
        assert rec.topics() == {
            "/cam0/image_raw": TopicInfo("sensor_msgs/msg/Image", 95),
            "/cam1/image_raw/compressed": TopicInfo("sensor_msgs/msg/CompressedImage", 95),
            "/imu0": TopicInfo("sensor_msgs/msg/Imu", 29120),
        }
        assert rec.message_count() == 95 + 95 + 29120
        assert rec.message_count(["/cam0/image_raw", "/nope"]) == 95
        # The filter reads only the small topics of an 80 MB file.
        cams = list(rec.messages(["/cam0/image_raw", "/cam1/image_raw/compressed"]))
    assert len(cams) == 190
    assert {m.topic for m in cams} == {"/cam0/image_raw", "/cam1/image_raw/compressed"}
    assert_log_time_order(cams)
    first = cdr.decode(cams[0].msgtype, cams[0].data)
    assert isinstance(first, cdr.ImageMsg)
    assert (first.width, first.height, first.encoding) == (752, 480, "mono8")
    # README: log_time == header stamp in this recording.
    assert all(cdr.header_stamp_ns(m.data) == m.log_time_ns for m in cams)


def test_openloris_topics_types_and_iteration(real_data_dir: Path) -> None:
    path = real_data_dir / "openloris_sample_ros2"
    with open_recording(path) as rec:
        topics = rec.topics()
        total = rec.message_count()
        messages = list(rec)
    assert topics["/d400/color/image_raw"].msgtype == "sensor_msgs/msg/Image"
    assert topics["/d400/depth/image_raw"].msgtype == "sensor_msgs/msg/Image"
    assert topics["/d400/aligned_depth_to_color/image_raw"].msgtype == "sensor_msgs/msg/Image"
    assert topics["/t265/fisheye1/image_raw/compressed"].msgtype == "sensor_msgs/msg/CompressedImage"
    assert topics["/d400/accel/sample"].msgtype == "sensor_msgs/msg/Imu"
    assert topics["/d400/gyro/sample"].msgtype == "sensor_msgs/msg/Imu"
    assert len(messages) == total == sum(t.count for t in topics.values())
    for name, info in topics.items():
        assert sum(m.topic == name for m in messages) == info.count
        assert all(m.msgtype == info.msgtype for m in messages if m.topic == name)
    assert_log_time_order(messages)
    color = [m for m in messages if m.topic == "/d400/color/image_raw"]
    img = cdr.decode_image(color[0].data)
    assert (img.width, img.height, img.encoding) == (848, 480, "rgb8")


def test_time_range_filter(real_data_dir: Path) -> None:
    with open_recording(real_data_dir / "kuka_lwr_joint_states_ros2") as rec:
        everything = list(rec.messages())
        start, stop = everything[100].log_time_ns, everything[200].log_time_ns
        window = list(rec.messages(start_ns=start, stop_ns=stop))
        assert rec.start_time_ns == everything[0].log_time_ns
        assert rec.end_time_ns == everything[-1].log_time_ns
    assert [m.log_time_ns for m in window] == [m.log_time_ns for m in everything[100:200]]


def test_ros1_bag_and_its_ros2_conversion_give_the_same_messages(real_data_dir: Path) -> None:
    ros1 = read_all(real_data_dir / "kuka_lwr_joint_states.bag")
    ros2 = read_all(real_data_dir / "kuka_lwr_joint_states_ros2")
    with open_recording(real_data_dir / "kuka_lwr_joint_states.bag") as rec:
        assert rec.kind == "ros1"
        assert rec.topics() == {KUKA_TOPIC: TopicInfo("sensor_msgs/msg/JointState", 4101)}
    assert len(ros1) == len(ros2) == 4101
    for a, b in zip(ros1, ros2, strict=True):
        assert (a.topic, a.msgtype, a.log_time_ns) == (b.topic, b.msgtype, b.log_time_ns)
        ja, jb = cdr.decode_joint_state(a.data), cdr.decode_joint_state(b.data)
        assert ja.header == jb.header
        assert ja.name == jb.name and len(ja.name) == 7
        np.testing.assert_array_equal(ja.position, jb.position)
        np.testing.assert_array_equal(ja.velocity, jb.velocity)
        np.testing.assert_array_equal(ja.effort, jb.effort)
        assert cdr.header_stamp_ns(a.data) == ja.header.stamp_ns


def test_bare_mcap_file_reads_like_its_folder(real_data_dir: Path) -> None:
    folder = real_data_dir / "kuka_lwr_joint_states_ros2"
    with open_recording(folder / "kuka_lwr_joint_states_ros2.mcap") as rec:
        assert rec.kind == "mcap"
        assert rec.topics() == {KUKA_TOPIC: TopicInfo("sensor_msgs/msg/JointState", 4101)}
        bare = list(rec.messages([KUKA_TOPIC]))
    assert bare == read_all(folder)


def write_rosbag2(path: Path, storage: StoragePlugin, messages: list[RawMessage]) -> None:
    with Writer(path, version=9, storage_plugin=storage) as writer:
        conns = {}
        for m in messages:
            if m.topic not in conns:
                conns[m.topic] = writer.add_connection(m.topic, m.msgtype, typestore=TS)
            writer.write(conns[m.topic], m.log_time_ns, m.data)


def sample_messages() -> list[RawMessage]:
    string_t, bool_t = TS.types["std_msgs/msg/String"], TS.types["std_msgs/msg/Bool"]
    out = []
    for i in range(50):
        text = bytes(TS.serialize_cdr(string_t(data=f"n{i}"), "std_msgs/msg/String"))
        flag = bytes(TS.serialize_cdr(bool_t(data=i % 2 == 0), "std_msgs/msg/Bool"))
        out.append(RawMessage("/text", "std_msgs/msg/String", 1_000 + 20 * i, text))
        out.append(RawMessage("/flag", "std_msgs/msg/Bool", 1_005 + 20 * i, flag))
    return out


@pytest.mark.parametrize("storage", [StoragePlugin.SQLITE3, StoragePlugin.MCAP])
def test_rosbag2_folder_in_either_storage(tmp_path: Path, storage: StoragePlugin) -> None:
    written = sample_messages()
    write_rosbag2(tmp_path / "bag", storage, written)
    with open_recording(tmp_path / "bag") as rec:
        assert rec.kind == "rosbag2"
        assert rec.topics() == {
            "/flag": TopicInfo("std_msgs/msg/Bool", 50),
            "/text": TopicInfo("std_msgs/msg/String", 50),
        }
        assert list(rec.messages()) == written
        texts = [cdr.decode_string(m.data).data for m in rec.messages(["/text"])]
    assert texts == [f"n{i}" for i in range(50)]
    storage_file = next((tmp_path / "bag").glob("*.db3" if storage == StoragePlugin.SQLITE3
                         else "*.mcap"))
    with open_recording(storage_file) as rec:
        assert rec.kind == ("sqlite3" if storage == StoragePlugin.SQLITE3 else "mcap")
        assert list(rec.messages()) == written


def test_paths_that_are_not_recordings(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        open_recording(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(RecordingError, match=r"not a recording: expected a rosbag2 folder"):
        open_recording(tmp_path / "notes.txt")
    folder = tmp_path / "loose"
    folder.mkdir()
    (folder / "run.mcap").write_bytes(b"")
    with pytest.raises(RecordingError, match=r"without metadata.yaml.*run\.mcap"):
        open_recording(folder)


@pytest.mark.parametrize("name", ["broken.bag", "broken.mcap", "broken.db3"])
def test_corrupt_files_raise_recording_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"this is not a recording at all" * 10)
    with pytest.raises(RecordingError, match=name), open_recording(path) as rec:
        list(rec.messages())


def test_closed_recording_refuses_to_read(tmp_path: Path) -> None:
    write_rosbag2(tmp_path / "bag", StoragePlugin.MCAP, sample_messages()[:4])
    rec = open_recording(tmp_path / "bag")
    rec.close()
    rec.close()  # idempotent
    with pytest.raises(RecordingError, match="closed"):
        list(rec.messages())
