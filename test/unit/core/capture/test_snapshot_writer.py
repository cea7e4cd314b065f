"""Snapshot writer: rosbag2/MCAP output, windows, trigger policy, atomicity, disk problems."""

from __future__ import annotations

import errno
import importlib
import io
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np
import pytest
import yaml
from mcap.reader import make_reader
from mcap.records import Chunk, ChunkIndex, Footer, MessageIndex
from mcap.stream_reader import StreamReader
from mcap.writer import CompressionType, Writer
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from gap_monitor.core.capture.policy import OutputDirError, SnapshotSettings, TriggerResult, check_ring_buffer
from gap_monitor.core.capture.ring_buffer import RingBuffer
from gap_monitor.core.capture.snapshot_folder import WriteOptions, open_output
from gap_monitor.core.capture.writer import SnapshotWriter
from gap_monitor.core.io.mcap_writer import McapStream

MS = 1_000_000
S = 1_000_000_000
T0 = 1_763_703_012 * S  # 2025-11-21T05:30:12Z
TS = get_typestore(Stores.ROS2_JAZZY)
TMP_RE = re.compile(r"\.tmp-")

Header = TS.types["std_msgs/msg/Header"]
Time = TS.types["builtin_interfaces/msg/Time"]
Imu = TS.types["sensor_msgs/msg/Imu"]
Quaternion = TS.types["geometry_msgs/msg/Quaternion"]
Vector3 = TS.types["geometry_msgs/msg/Vector3"]
Image = TS.types["sensor_msgs/msg/Image"]
CameraInfo = TS.types["sensor_msgs/msg/CameraInfo"]
RegionOfInterest = TS.types["sensor_msgs/msg/RegionOfInterest"]


def header(stamp_ns: int, frame: str) -> Any:
    return Header(stamp=Time(sec=stamp_ns // S, nanosec=stamp_ns % S), frame_id=frame)


def imu_cdr(stamp_ns: int) -> bytes:
    msg = Imu(
        header=header(stamp_ns, "imu_link"),
        orientation=Quaternion(x=0.0, y=0.0, z=0.0, w=1.0),
        orientation_covariance=np.zeros(9),
        angular_velocity=Vector3(x=0.01, y=0.02, z=(stamp_ns // MS) % 1000 / 1000.0),
        angular_velocity_covariance=np.zeros(9),
        linear_acceleration=Vector3(x=0.0, y=0.0, z=9.81),
        linear_acceleration_covariance=np.zeros(9),
    )
    return bytes(TS.serialize_cdr(msg, "sensor_msgs/msg/Imu"))


def image_cdr(stamp_ns: int, width: int = 32, height: int = 24) -> bytes:
    data = np.full(width * height * 3, (stamp_ns // MS) % 251, dtype=np.uint8)
    msg = Image(
        header=header(stamp_ns, "camera"),
        height=height,
        width=width,
        encoding="rgb8",
        is_bigendian=0,
        step=width * 3,
        data=data,
    )
    return bytes(TS.serialize_cdr(msg, "sensor_msgs/msg/Image"))


def camera_info_cdr(stamp_ns: int) -> bytes:
    msg = CameraInfo(
        header=header(stamp_ns, "camera"),
        height=24,
        width=32,
        distortion_model="plumb_bob",
        d=np.zeros(5),
        k=np.eye(3).ravel(),
        r=np.eye(3).ravel(),
        p=np.zeros(12),
        binning_x=0,
        binning_y=0,
        roi=RegionOfInterest(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False),
    )
    return bytes(TS.serialize_cdr(msg, "sensor_msgs/msg/CameraInfo"))


IMU_PERIOD = 10 * MS  # 100 Hz
IMAGE_PERIOD = 100 * MS  # 10 Hz


# What rosbag2 (Humble/Jazzy, metadata version 8) stores for a transient-local publisher.
LATCHED_QOS = """- history: 3
  depth: 0
  reliability: 1
  durability: 1
  deadline:
    sec: 9223372036
    nsec: 854775807
  lifespan:
    sec: 9223372036
    nsec: 854775807
  liveliness: 1
  liveliness_lease_duration:
    sec: 9223372036
    nsec: 854775807
  avoid_ros_namespace_conventions: false"""


def make_buffer(window_s: float = 5.0) -> RingBuffer:
    rb = RingBuffer(total_bytes=64 * 2**20, default_window_s=window_s)
    rb.add_topic("/imu", "sensor_msgs/msg/Imu")
    rb.add_topic("/camera/image", "sensor_msgs/Image")
    rb.add_topic(
        "/camera/camera_info",
        "sensor_msgs/msg/CameraInfo",
        latched=True,
        offered_qos_profiles=LATCHED_QOS,
    )
    return rb


def settings(tmp_path: Path, **kw: Any) -> SnapshotSettings:
    base: dict[str, Any] = {
        "output_dir": tmp_path / "snapshots",
        "pre_s": 2.0,
        "post_s": 1.0,
        "cooldown_s": 0.0,
        "min_free_bytes": 0,
    }
    base.update(kw)
    return SnapshotSettings(**base)


def run_rig(
    rb: RingBuffer,
    writer: SnapshotWriter,
    start_ns: int,
    end_ns: int,
    triggers: dict[int, dict[str, Any]] | None = None,
) -> list[TriggerResult]:
    """Fake clock: IMU at 100 Hz, images at 10 Hz, camera_info once; poll at 10 Hz."""
    results = []
    triggers = triggers or {}
    if start_ns == T0:
        rb.push("/camera/camera_info", start_ns, camera_info_cdr(start_ns))
    for t in range(start_ns, end_ns + 1, IMU_PERIOD):
        rb.push("/imu", t, imu_cdr(t), publish_time_ns=t - 1 * MS)
        if (t - T0) % IMAGE_PERIOD == 0:
            rb.push("/camera/image", t, image_cdr(t))
        if t in triggers:
            results.append(writer.trigger(triggers[t], t))
        if (t - T0) % IMAGE_PERIOD == 0:
            writer.poll(t)
    return results


def complete_snapshots(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.is_dir() and not TMP_RE.search(p.name))


def read_rosbag(folder: Path) -> dict[str, list[tuple[int, Any]]]:
    """Every message via rosbags: deserialized with the Jazzy store and, independently, with a
    store built only from the definitions stored in the bag (checks the ros2msg schemas)."""
    out: dict[str, list[tuple[int, Any]]] = {}
    with Reader(folder) as reader:
        own = get_typestore(Stores.EMPTY)
        for conn in reader.connections:
            own.register(get_types_from_msg(conn.msgdef.data, conn.msgtype))
        for conn, log_time, raw in reader.messages():
            msg = TS.deserialize_cdr(raw, conn.msgtype)
            again = own.deserialize_cdr(raw, conn.msgtype)
            assert again.header.stamp.sec == msg.header.stamp.sec
            assert again.header.frame_id == msg.header.frame_id
            out.setdefault(conn.topic, []).append((log_time, msg))
    return out


def mcap_contents(folder: Path) -> dict[str, Any]:
    (path,) = folder.glob("*.mcap")
    with path.open("rb") as f:
        reader = make_reader(f)
        summary = reader.get_summary()
        assert summary is not None
        messages = list(reader.iter_messages())
        f.seek(0)
        metadata = [(m.name, m.metadata) for m in make_reader(f).iter_metadata()]
        f.seek(0)
        profile = make_reader(f).get_header().profile
    return {
        "profile": profile,
        "schemas": {s.name: s for s in summary.schemas.values()},
        "channels": {c.topic: c for c in summary.channels.values()},
        "messages": messages,
        "metadata": metadata,
    }


class Factory(Protocol):
    def __call__(
        self, s: SnapshotSettings, rb: RingBuffer, options: WriteOptions | None = None
    ) -> SnapshotWriter: ...


@pytest.fixture
def writer_factory() -> Iterator[Factory]:
    made: list[SnapshotWriter] = []

    def make(s: SnapshotSettings, rb: RingBuffer, options: WriteOptions | None = None) -> SnapshotWriter:
        w = SnapshotWriter(s, rb, clock=lambda: T0, options=options)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close(timeout_s=30)

# -- output format and windows ------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["none", "lz4", "zstd"])
def test_snapshot_has_pre_and_post_windows_and_decodes(
    tmp_path: Path, writer_factory: Factory, compression: str
) -> None:
    rb = make_buffer()
    w = writer_factory(settings(tmp_path, compression=compression), rb)
    event = {
        "kind": "novel_condition",
        "reason": "image brightness outside training range",
        "time": T0 + 6 * S,
        "source": "scorer",
        "details": {"feature": "brightness", "score": 5.5, "scores": [1, 2.5]},
    }
    trig = T0 + 6 * S
    (result,) = run_rig(rb, w, T0, T0 + 10 * S, {trig: event})
    assert result.outcome == "started" and result.accepted
    assert w.flush(30)
    status = w.status()
    assert status.snapshots_written == 1 and not status.capture_stopped
    (folder,) = complete_snapshots(tmp_path / "snapshots")
    assert folder == result.path
    assert folder.name == "20251121T053018Z_novel_condition"

    topics = read_rosbag(folder)
    imu_times = [t for t, _ in topics["/imu"]]
    image_times = [t for t, _ in topics["/camera/image"]]
    # Pre and post windows within one message period of the configured seconds.
    assert trig - 2 * S <= imu_times[0] < trig - 2 * S + IMU_PERIOD
    assert trig + 1 * S - IMU_PERIOD < imu_times[-1] <= trig + 1 * S
    assert trig - 2 * S <= image_times[0] < trig - 2 * S + IMAGE_PERIOD
    assert trig + 1 * S - IMAGE_PERIOD < image_times[-1] <= trig + 1 * S
    # Nothing missing in between (100 Hz for 3 s, inclusive ends), in time order.
    assert imu_times == sorted(imu_times)
    assert len(imu_times) == 301
    for log_time, msg in topics["/imu"]:
        assert msg.header.stamp.sec * S + msg.header.stamp.nanosec == log_time
    _, first_image = topics["/camera/image"][0]
    assert (first_image.width, first_image.height, first_image.encoding) == (32, 24, "rgb8")
    assert len(first_image.data) == 32 * 24 * 3
    # The latched camera_info (pushed at T0, long before the window) is there, once, stamped
    # at the window start so the bag's duration stays the window.
    ((info_time, info),) = topics["/camera/camera_info"]
    assert info.distortion_model == "plumb_bob"
    assert info_time == trig - 2 * S

    meta = yaml.safe_load((folder / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["storage_identifier"] == "mcap"
    assert meta["version"] >= 5
    assert meta["relative_file_paths"] == [f"{folder.name}_0.mcap"]
    assert meta["message_count"] == sum(len(v) for v in topics.values())
    assert meta["starting_time"]["nanoseconds_since_epoch"] == trig - 2 * S
    assert meta["duration"]["nanoseconds"] == imu_times[-1] - (trig - 2 * S)
    by_name = {t["topic_metadata"]["name"]: t for t in meta["topics_with_message_count"]}
    assert by_name["/camera/image"]["topic_metadata"]["type"] == "sensor_msgs/msg/Image"
    assert by_name["/imu"]["message_count"] == 301
    for t in by_name.values():
        assert t["topic_metadata"]["serialization_format"] == "cdr"
    assert by_name["/camera/camera_info"]["topic_metadata"]["offered_qos_profiles"] == LATCHED_QOS

    mc = mcap_contents(folder)
    assert mc["profile"] == "ros2"
    assert all(s.encoding == "ros2msg" for s in mc["schemas"].values())
    assert set(mc["schemas"]) == {
        "sensor_msgs/msg/Imu",
        "sensor_msgs/msg/Image",
        "sensor_msgs/msg/CameraInfo",
    }
    assert all(c.message_encoding == "cdr" for c in mc["channels"].values())
    assert len(mc["messages"]) == meta["message_count"]
    imu_pub = [m.publish_time for _, c, m in mc["messages"] if c.topic == "/imu"]
    assert imu_pub[0] == imu_times[0] - 1 * MS  # publish times kept
    triggers = [md for name, md in mc["metadata"] if name == "gap_monitor.trigger"]
    assert len(triggers) == 1
    assert triggers[0]["kind"] == "novel_condition"
    assert triggers[0]["reason"] == event["reason"]
    assert triggers[0]["source"] == "scorer"
    assert int(triggers[0]["time"]) == event["time"]
    assert json.loads(triggers[0]["details"]) == event["details"]
    assert all(isinstance(v, str) for v in triggers[0].values())

    sidecar = json.loads((folder / "trigger.json").read_text())
    assert sidecar["triggers"][0]["event"] == event
    assert sidecar["start_ns"] == trig - 2 * S and sidecar["end_ns"] == trig + 1 * S


def test_trigger_in_the_post_window_extends_the_same_snapshot(
    tmp_path: Path, writer_factory: Factory
) -> None:
    rb = make_buffer()
    w = writer_factory(settings(tmp_path), rb)
    first, second = T0 + 5 * S, T0 + 5 * S + 700 * MS
    results = run_rig(
        rb,
        w,
        T0,
        T0 + 9 * S,
        {first: {"kind": "novel_condition"}, second: {"kind": "action_aborted", "reason": "B"}},
    )
    assert [r.outcome for r in results] == ["started", "extended"]
    assert results[0].path == results[1].path
    assert w.flush(30)
    (folder,) = complete_snapshots(tmp_path / "snapshots")
    imu_times = [t for t, _ in read_rosbag(folder)["/imu"]]
    assert first - 2 * S <= imu_times[0] < first - 2 * S + IMU_PERIOD
    # The post window now ends post_s after the second trigger.
    assert second + 1 * S - IMU_PERIOD < imu_times[-1] <= second + 1 * S
    kinds = [md["kind"] for n, md in mcap_contents(folder)["metadata"] if n == "gap_monitor.trigger"]
    assert kinds == ["novel_condition", "action_aborted"]
    sidecar = json.loads((folder / "trigger.json").read_text())
    assert [t["trigger_ns"] for t in sidecar["triggers"]] == [first, second]


def test_extensions_stop_at_max_post_s(tmp_path: Path, writer_factory: Factory) -> None:
    rb = make_buffer()
    w = writer_factory(settings(tmp_path, post_s=1.0, max_post_s=2.0), rb)
    first = T0 + 5 * S
    trig = {first + k * 500 * MS: {"kind": "k"} for k in range(8)}  # one every 0.5 s for 4 s
    results = run_rig(rb, w, T0, T0 + 12 * S, trig)
    assert results[0].outcome == "started"
    assert w.flush(30)
    folders = complete_snapshots(tmp_path / "snapshots")
    imu_times = [t for t, _ in read_rosbag(folders[0])["/imu"]]
    assert first + 2 * S - IMU_PERIOD < imu_times[-1] <= first + 2 * S
    # Triggers after the capped end start a new snapshot (cooldown 0).
    assert len(folders) == 2


def test_burst_inside_the_post_window_gives_one_file(tmp_path: Path, writer_factory: Factory) -> None:
    rb = make_buffer()
    w = writer_factory(settings(tmp_path, post_s=5.0, cooldown_s=60.0), rb)
    burst = {T0 + 3 * S + k * 100 * MS: {"kind": "novel", "n": k} for k in range(10)}
    results = run_rig(rb, w, T0, T0 + 10 * S, burst)
    assert [r.outcome for r in results] == ["started"] + ["extended"] * 9
    assert w.flush(30)
    (folder,) = complete_snapshots(tmp_path / "snapshots")
    records = [md for n, md in mcap_contents(folder)["metadata"] if n == "gap_monitor.trigger"]
    assert [int(md["n"]) for md in records] == list(range(10))


def test_burst_after_short_post_windows_follows_the_cooldown(tmp_path: Path, writer_factory: Factory) -> None:
    # post 0.05 s, cooldown 0.3 s after a post window closes; triggers every 0.1 s from t=0:
    # 0.0 starts (closes 0.05, free again at 0.35), 0.1-0.3 cooldown, 0.4 starts (closes 0.45,
    # free at 0.75), 0.5-0.7 cooldown, 0.8 starts, 0.9 cooldown.
    rb = make_buffer()
    w = writer_factory(settings(tmp_path, pre_s=0.5, post_s=0.05, cooldown_s=0.3), rb)
    base = T0 + 3 * S
    burst = {base + k * 100 * MS: {"kind": "novel"} for k in range(10)}
    results = run_rig(rb, w, T0, T0 + 5 * S, burst)
    one_cycle = ["started", "cooldown", "cooldown", "cooldown"]
    assert [r.outcome for r in results] == one_cycle * 2 + ["started", "cooldown"]
    assert all(r.path is None and "cooldown" in r.reason for r in results if not r.accepted)
    assert w.flush(30)
    assert len(complete_snapshots(tmp_path / "snapshots")) == 3
    assert w.status().triggers_rejected == 7


def test_burst_is_limited_by_max_per_hour(tmp_path: Path, writer_factory: Factory) -> None:
    rb = make_buffer()
    w = writer_factory(settings(tmp_path, pre_s=0.5, post_s=0.05, max_per_hour=2), rb)
    base = T0 + 3 * S
    burst = {base + k * 100 * MS: {"kind": "novel"} for k in range(10)}
    results = run_rig(rb, w, T0, T0 + 5 * S, burst)
    assert [r.outcome for r in results] == ["started"] * 2 + ["rate"] * 8
    # An hour later the rate allows snapshots again.
    later = base + 3600 * S
    assert w.trigger({"kind": "novel"}, later).outcome == "started"
    w.close(later + 1 * S, timeout_s=30)
    assert len(complete_snapshots(tmp_path / "snapshots")) == 3


def test_clock_jump_back_restarts_cooldown_and_rate(tmp_path: Path, writer_factory: Factory) -> None:
    rb = make_buffer()
    w = writer_factory(settings(tmp_path, post_s=5.0, cooldown_s=600.0, max_per_hour=1), rb)
    run_rig(rb, w, T0, T0 + 3 * S, {T0 + 2 * S: {"kind": "before_jump"}})
    assert w.status().collecting
    # Sim time restarts 1000 s earlier: the open snapshot is closed as it is, limits restart.
    restart = T0 - 1000 * S
    assert w.trigger({"kind": "after_jump"}, restart).outcome == "started"
    w.close(restart + 2 * S, timeout_s=30)
    folders = complete_snapshots(tmp_path / "snapshots")
    assert len(folders) == 2
    flags = {json.loads((f / "trigger.json").read_text())["triggers"][0]["event"]["kind"]: f for f in folders}
    assert json.loads((flags["before_jump"] / "trigger.json").read_text())["truncated"] is True


def test_names_are_sanitised_and_unique(tmp_path: Path, writer_factory: Factory) -> None:
    rb = make_buffer()
    w = writer_factory(settings(tmp_path, pre_s=0.2, post_s=0.0), rb)
    run_rig(rb, w, T0, T0 + 1 * S)
    a = w.trigger({"kind": "Novel Condition / ../../etc"}, T0 + 1 * S)
    b = w.trigger({"kind": "Novel Condition / ../../etc"}, T0 + 1 * S + 10 * MS)
    c = w.trigger({"reason": "no kind given"}, T0 + 1 * S + 20 * MS)
    assert w.flush(30)
    assert a.path is not None and b.path is not None and c.path is not None
    assert a.path.name == "20251121T053013Z_novel_condition_etc"
    assert b.path.name != a.path.name and b.path.name.startswith(a.path.name)
    assert c.path.name == "20251121T053013Z_trigger"
    for p in (a.path, b.path, c.path):
        assert p.parent == tmp_path / "snapshots"
        assert re.fullmatch(r"\d{8}T\d{6}Z_[a-z0-9_]+", p.name)
        assert p.is_dir()


def test_writing_happens_on_a_background_thread(tmp_path: Path, writer_factory: Factory) -> None:
    threads: list[threading.Thread] = []

    def open_file(path: Path) -> IO[bytes]:
        threads.append(threading.current_thread())
        return open_output(path)

    rb = make_buffer()
    w = writer_factory(settings(tmp_path, post_s=0.0), rb, WriteOptions(open_file=open_file))
    run_rig(rb, w, T0, T0 + 3 * S, {T0 + 3 * S: {"kind": "x"}})
    assert w.flush(30)
    # The MCAP, metadata.yaml and trigger.json, each opened on the one writer thread.
    assert len(threads) == 3 and len(set(threads)) == 1
    assert threads[0] is not threading.current_thread()


def test_close_writes_an_open_snapshot_as_truncated(tmp_path: Path) -> None:
    rb = make_buffer()
    w = SnapshotWriter(settings(tmp_path, post_s=10.0), rb)
    run_rig(rb, w, T0, T0 + 4 * S, {T0 + 3 * S: {"kind": "x"}})
    assert w.status().collecting
    w.close(T0 + 4 * S, timeout_s=30)
    (folder,) = complete_snapshots(tmp_path / "snapshots")
    sidecar = json.loads((folder / "trigger.json").read_text())
    assert sidecar["truncated"] is True
    assert max(t for t, _ in read_rosbag(folder)["/imu"]) == T0 + 4 * S
    assert w.trigger({"kind": "late"}, T0 + 5 * S).outcome == "closed"


def test_check_ring_buffer_reports_windows_shorter_than_pre_s(tmp_path: Path) -> None:
    rb = make_buffer(window_s=1.0)
    rb.add_topic("/long", "sensor_msgs/msg/Imu", window_s=30.0)
    problems = check_ring_buffer(settings(tmp_path, pre_s=2.0), rb)
    assert len(problems) == 2
    assert any("/imu" in p for p in problems) and any("/camera/image" in p for p in problems)


# -- quotas -------------------------------------------------------------------------------------


def big_buffer() -> RingBuffer:
    rb = RingBuffer(total_bytes=64 * 2**20, default_window_s=100.0)
    rb.add_topic("/camera/image", "sensor_msgs/msg/Image")
    return rb


def fill_images(rb: RingBuffer, start_ns: int, count: int, size: int = 100_000) -> None:
    side = int((size / 3) ** 0.5)
    for i in range(count):
        t = start_ns + i * IMAGE_PERIOD
        rb.push("/camera/image", t, image_cdr(t, side, side))


def snapshot_every(w: SnapshotWriter, rb: RingBuffer, n: int) -> list[TriggerResult]:
    results = []
    for k in range(n):
        start = T0 + k * 10 * S
        fill_images(rb, start, 20)
        results.append(w.trigger({"kind": f"k{k}"}, start + 2 * S))
        assert w.flush(30)
    return results


def test_quota_count_deletes_the_oldest(tmp_path: Path, writer_factory: Factory) -> None:
    rb = big_buffer()
    s = settings(tmp_path, pre_s=2.0, post_s=0.0, compression="none", quota_count=2)
    w = writer_factory(s, rb)
    results = snapshot_every(w, rb, 4)
    assert all(r.accepted for r in results)
    names = [p.name for p in complete_snapshots(s.output_dir)]
    assert names == [r.path.name for r in results[2:] if r.path is not None]
    st = w.status()
    assert st.snapshots_written == 4 and st.snapshots_on_disk == 2 and not st.capture_stopped


def test_quota_bytes_deletes_the_oldest(tmp_path: Path, writer_factory: Factory) -> None:
    rb = big_buffer()
    # 20 images of ~100 kB per snapshot: two fit in 5 MB, three do not.
    s = settings(tmp_path, pre_s=2.0, post_s=0.0, compression="none", quota_bytes=5_000_000)
    w = writer_factory(s, rb)
    results = snapshot_every(w, rb, 4)
    names = [p.name for p in complete_snapshots(s.output_dir)]
    assert names == [r.path.name for r in results[2:] if r.path is not None]
    used = sum(f.stat().st_size for p in complete_snapshots(s.output_dir) for f in p.iterdir())
    assert used <= 5_000_000
    assert w.status().bytes_used == used


def test_quota_stop_keeps_old_snapshots_and_stops(tmp_path: Path, writer_factory: Factory) -> None:
    rb = big_buffer()
    s = settings(tmp_path, pre_s=2.0, post_s=0.0, compression="none", quota_count=2, on_quota="stop")
    w = writer_factory(s, rb)
    results = snapshot_every(w, rb, 3)
    assert [r.outcome for r in results] == ["started", "started", "stopped"]
    assert len(complete_snapshots(s.output_dir)) == 2
    st = w.status()
    assert st.capture_stopped and st.stopped_reason is not None
    assert "quota_count" in st.stopped_reason


def test_low_free_space_stops_capture_with_a_reason(
    tmp_path: Path, writer_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    rb = big_buffer()
    s = settings(tmp_path, pre_s=2.0, post_s=0.0, min_free_bytes=10**9)
    w = writer_factory(s, rb)

    class Usage:
        total, used, free = 10**10, 10**10 - 10**8, 10**8  # 100 MB free, 1 GB required

    monkeypatch.setattr(shutil, "disk_usage", lambda _path: Usage())
    (result,) = snapshot_every(w, rb, 1)
    assert result.accepted  # decided on the writer thread, not in the caller
    st = w.status()
    assert st.capture_stopped and st.stopped_reason is not None
    assert "min_free_bytes" in st.stopped_reason
    assert complete_snapshots(s.output_dir) == []
    assert w.trigger({"kind": "again"}, T0 + 50 * S).outcome == "stopped"


# -- crash safety and disk errors ---------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from gap_monitor.core.capture.policy import SnapshotSettings
    from gap_monitor.core.capture.ring_buffer import RingBuffer
    from gap_monitor.core.capture.snapshot_folder import WriteOptions, open_output
    from gap_monitor.core.capture.writer import SnapshotWriter

    out = Path(sys.argv[1])

    class Slow:
        # A slow disk: the write takes seconds, so the parent surely kills it mid-way.
        def __init__(self, f):
            self._f = f
        def write(self, data):
            time.sleep(0.03)
            return self._f.write(data)
        def __getattr__(self, name):
            return getattr(self._f, name)
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            self._f.close()

    rb = RingBuffer(400 * 2**20, 100.0)
    rb.add_topic("/camera/image", "sensor_msgs/msg/Image")
    t0 = 1_763_703_012 * 10**9
    for i in range(150):  # 150 MB of 1 MB messages
        rb.push("/camera/image", t0 + i * 10**7, bytes(2**20))
    settings = SnapshotSettings(output_dir=out, pre_s=5, post_s=0, compression="none", min_free_bytes=0)
    w = SnapshotWriter(settings, rb, options=WriteOptions(open_file=lambda path: Slow(open_output(path))))
    print(w.trigger({"kind": "kill_test"}, t0 + 149 * 10**7).outcome, flush=True)
    w.flush()
    print("finished", flush=True)
    """
)


def test_sigkill_mid_write_leaves_no_complete_looking_folder(tmp_path: Path) -> None:
    out = tmp_path / "snapshots"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        partial: list[Path] = []
        while time.monotonic() < deadline and child.poll() is None:
            if out.is_dir():
                partial = [
                    p
                    for p in out.iterdir()
                    if TMP_RE.search(p.name) and any(f.stat().st_size > 0 for f in p.iterdir())
                ]
                if partial:
                    break
            time.sleep(0.01)
        assert partial, "the child never started writing"
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
    assert child.returncode == -signal.SIGKILL
    assert child.stdout is not None and "finished" not in child.stdout.read()
    assert complete_snapshots(out) == []
    assert any(TMP_RE.search(p.name) for p in out.iterdir())
    # The next writer removes the leftovers and does not count them as snapshots.
    rb = make_buffer()
    w = SnapshotWriter(settings(tmp_path), rb)
    try:
        assert list(out.iterdir()) == []
        assert w.status().snapshots_on_disk == 0
    finally:
        w.close()


class FailingFile:
    """A file whose writes fail with `code` once `limit` bytes were written."""

    def __init__(self, f: IO[bytes], path: Path, limit: int, code: int) -> None:
        self._f, self._path, self._limit, self._code = f, path, limit, code
        self._written = 0

    def write(self, data: bytes) -> int:
        if self._written + len(data) > self._limit:
            raise OSError(self._code, os.strerror(self._code), str(self._path))
        self._written += len(data)
        return self._f.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

    def __enter__(self) -> FailingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()


@pytest.mark.parametrize(
    ("failing_file", "limit", "code"),
    [(".mcap", 200_000, errno.ENOSPC), ("metadata.yaml", 0, errno.EDQUOT)],
)
def test_full_disk_mid_write_stops_capture_and_leaves_nothing(
    tmp_path: Path, writer_factory: Factory, failing_file: str, limit: int, code: int
) -> None:
    disk_full = True

    def open_file(path: Path) -> IO[bytes]:
        f = open_output(path)
        if disk_full and path.name.endswith(failing_file):
            return FailingFile(f, path, limit, code)  # type: ignore[return-value]
        return f

    rb = big_buffer()
    s = settings(tmp_path, pre_s=2.0, post_s=0.0, compression="none")
    w = writer_factory(s, rb, WriteOptions(open_file=open_file))
    (result,) = snapshot_every(w, rb, 1)  # trigger() itself must not raise
    assert result.accepted
    st = w.status()
    assert st.capture_stopped and st.stopped_reason is not None
    assert errno.errorcode[code] in st.stopped_reason
    assert failing_file in st.stopped_reason  # names the file that failed
    assert st.last_error == st.stopped_reason
    assert list(s.output_dir.iterdir()) == []  # neither a complete nor a temporary folder
    assert w.trigger({"kind": "again"}, T0 + 50 * S).outcome == "stopped"
    # Once space is back, an operator can resume.
    disk_full = False
    w.resume()
    assert w.trigger({"kind": "again"}, T0 + 60 * S).outcome == "started"
    assert w.flush(30)
    assert len(complete_snapshots(s.output_dir)) == 1


def test_startup_cleans_temp_leftovers_and_counts_existing_snapshots(tmp_path: Path) -> None:
    out = tmp_path / "snapshots"
    (out / "20251121T053012Z_novel.tmp-abc123").mkdir(parents=True)
    (out / "20251121T053012Z_novel.tmp-abc123" / "x_0.mcap").write_bytes(b"partial")
    (out / "20251120T000000Z_old").mkdir()
    (out / "20251120T000000Z_old" / "metadata.yaml").write_bytes(b"x" * 1000)
    (out / "operator_notes").mkdir()  # not ours: never touched
    w = SnapshotWriter(settings(tmp_path), make_buffer())
    try:
        assert sorted(p.name for p in out.iterdir()) == ["20251120T000000Z_old", "operator_notes"]
        st = w.status()
        assert st.snapshots_on_disk == 1 and st.bytes_used == 1000
    finally:
        w.close()


def test_unwritable_output_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(OutputDirError) as info:
        SnapshotWriter(settings(tmp_path, output_dir=blocker / "snapshots"), make_buffer())
    assert isinstance(info.value, OSError)
    assert str(blocker / "snapshots") in str(info.value)
    assert "not a writable directory" in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only directories")
def test_read_only_output_dir_is_a_clear_error(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(OutputDirError, match="ro"):
            SnapshotWriter(settings(tmp_path, output_dir=ro), make_buffer())
    finally:
        ro.chmod(0o700)


# -- settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("pre_s", -1.0),
        ("post_s", "5"),
        ("cooldown_s", float("nan")),
        ("compression", "gzip"),
        ("on_quota", "ignore"),
        ("max_per_hour", 0),
        ("quota_bytes", 1.5),
        ("quota_count", True),
        ("min_free_bytes", -1),
        ("max_post_s", 0.5),
        ("output_dir", ""),
    ],
)
def test_settings_validation_names_field_value_and_allowed(tmp_path: Path, field: str, value: Any) -> None:
    with pytest.raises(ValueError) as info:
        settings(tmp_path, **{field: value})
    text = str(info.value)
    assert field in text and repr(value) in text and "allowed" in text


def test_settings_need_a_window_and_accept_str_paths(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="pre_s"):
        settings(tmp_path, pre_s=0.0, post_s=0.0)
    s = SnapshotSettings(output_dir=str(tmp_path))  # type: ignore[arg-type]
    assert s.output_dir == tmp_path
    assert (s.pre_s, s.post_s, s.compression) == (10.0, 5.0, "lz4")


# -- streaming ----------------------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def temp_mcap_bytes(out: Path) -> int:
    return sum(f.stat().st_size for p in out.iterdir() if TMP_RE.search(p.name) for f in p.glob("*.mcap"))


def test_the_pre_window_is_written_before_the_post_window_ends(
    tmp_path: Path, writer_factory: Factory
) -> None:
    rb = RingBuffer(total_bytes=64 * 2**20, default_window_s=100.0)
    rb.add_topic("/camera/image", "sensor_msgs/msg/Image")
    frame = 2**20
    for i in range(20):  # 20 MB over 2 s: several MCAP chunks and write buffers
        rb.push("/camera/image", T0 + i * IMAGE_PERIOD, image_cdr(T0 + i * IMAGE_PERIOD, 591, 591))
    s = settings(tmp_path, pre_s=2.0, post_s=5.0, compression="none")
    w = writer_factory(s, rb)
    trig = T0 + 2 * S
    assert w.trigger({"kind": "stream"}, trig).outcome == "started"
    # Nothing but the trigger has happened: the post window is open and no poll has run, yet
    # the temporary MCAP fills with the pre-window.
    assert wait_for(lambda: temp_mcap_bytes(s.output_dir) >= 10 * frame)
    assert w.status().collecting and complete_snapshots(s.output_dir) == []
    for i in range(20, 71):  # up to trig + 5 s: the poll there closes the post window
        t = T0 + i * IMAGE_PERIOD
        rb.push("/camera/image", t, image_cdr(t, 32, 24))
        w.poll(t)
    assert w.flush(30)
    (folder,) = complete_snapshots(s.output_dir)
    times = [t for t, _ in read_rosbag(folder)["/camera/image"]]
    assert times == sorted(times)
    assert times[0] == T0 and times[-1] == trig + 5 * S
    assert len(times) == 71  # every frame from T0 to trig + 5 s inclusive


def test_a_late_message_older_than_the_streamed_part_is_still_in_order(
    tmp_path: Path, writer_factory: Factory
) -> None:
    rb = make_buffer()
    w = writer_factory(settings(tmp_path, pre_s=2.0, post_s=2.0), rb)
    trig = T0 + 2 * S
    run_rig(rb, w, T0, T0 + 3 * S, {trig: {"kind": "late"}})
    # By now the writer may have streamed up to ~T0 + 2.8 s; a message stamped 0.75 s earlier
    # arrives (a stalled callback) and must still land in log-time order.
    late = T0 + 2 * S + 55 * MS
    rb.push("/imu", late, imu_cdr(late))
    w.poll(T0 + 3 * S + 1 * MS)
    run_rig(rb, w, T0 + 3 * S + 10 * MS, T0 + 5 * S)
    assert w.flush(30)
    (folder,) = complete_snapshots(tmp_path / "snapshots")
    contents = mcap_contents(folder)
    log_times = [m.log_time for _, _, m in contents["messages"]]
    assert log_times == sorted(log_times)
    imu_times = [t for t, _ in read_rosbag(folder)["/imu"]]
    assert imu_times == sorted(imu_times)
    assert late in imu_times and len(imu_times) == 401 + 1
    sequences = [m.sequence for _, c, m in contents["messages"] if c.topic == "/imu"]
    assert sequences == list(range(1, len(imu_times) + 1))


def test_latched_message_replaced_in_the_post_window_is_written_once(
    tmp_path: Path, writer_factory: Factory
) -> None:
    rb = make_buffer()
    w = writer_factory(settings(tmp_path, pre_s=2.0, post_s=2.0), rb)
    trig = T0 + 3 * S
    run_rig(rb, w, T0, T0 + 4 * S, {trig: {"kind": "latched"}})
    replaced = T0 + 4 * S + 5 * MS
    rb.push("/camera/camera_info", replaced, camera_info_cdr(replaced))
    run_rig(rb, w, T0 + 4 * S + 10 * MS, T0 + 6 * S)
    assert w.flush(30)
    (folder,) = complete_snapshots(tmp_path / "snapshots")
    topics = read_rosbag(folder)
    # As when everything was written at the end: the latched message held then, at its time.
    ((info_time, info),) = topics["/camera/camera_info"]
    assert info_time == replaced
    assert info.header.stamp.sec * S + info.header.stamp.nanosec == replaced
    log_times = [m.log_time for _, _, m in mcap_contents(folder)["messages"]]
    assert log_times == sorted(log_times)


def test_a_topic_added_after_the_trigger_is_in_the_snapshot(tmp_path: Path, writer_factory: Factory) -> None:
    rb = make_buffer()
    w = writer_factory(settings(tmp_path, pre_s=2.0, post_s=2.0), rb)
    trig = T0 + 3 * S
    run_rig(rb, w, T0, T0 + 4 * S, {trig: {"kind": "new_topic"}})
    rb.add_topic("/imu2", "sensor_msgs/msg/Imu")
    rb.add_topic("/silent", "sensor_msgs/msg/Imu")
    for k in range(5):
        t = T0 + 4 * S + (k + 1) * 100 * MS
        rb.push("/imu2", t, imu_cdr(t))
        w.poll(t)
    w.poll(T0 + 6 * S)
    assert w.flush(30)
    (folder,) = complete_snapshots(tmp_path / "snapshots")
    assert len(read_rosbag(folder)["/imu2"]) == 5
    assert {"/imu2", "/silent"} <= set(mcap_contents(folder)["channels"])
    meta = yaml.safe_load((folder / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    counts = {t["topic_metadata"]["name"]: t["message_count"] for t in meta["topics_with_message_count"]}
    assert counts["/imu2"] == 5 and counts["/silent"] == 0


# -- the MCAP stream writer against mcap's own Writer ---------------------------------------------

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


@pytest.mark.parametrize("fadvise", ["works", "absent", "fails"])
def test_write_behind_covers_the_whole_file_and_keeps_it_intact(
    tmp_path: Path, writer_factory: Factory, monkeypatch: pytest.MonkeyPatch, fadvise: str
) -> None:
    """With 16 KiB chunks and write-behind every 32 KiB the snapshot is still complete; with
    posix_fadvise the MCAP is handed to the disk range after range while streaming and dropped
    from the cache once fsynced; without it (or when the filesystem refuses the advice),
    fsyncs while streaming bound what is left, and capture goes on."""
    step = 32 * 1024
    options = WriteOptions(chunk_bytes=16 * 1024, write_behind_bytes=step, fadvise=fadvise != "absent")
    advised: list[tuple[int, int]] = []
    fsyncs: list[int] = []
    real_fadvise = getattr(os, "posix_fadvise", None)
    real_fsync = os.fsync

    def spy_fadvise(fd: int, offset: int, length: int, advice: int) -> None:
        if Path(f"/proc/self/fd/{fd}").readlink().name.endswith(".mcap"):
            advised.append((offset, length))
        if fadvise == "fails":
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        assert real_fadvise is not None
        real_fadvise(fd, offset, length, advice)

    def spy_fsync(fd: int) -> None:
        fsyncs.append(fd)
        real_fsync(fd)

    if fadvise != "absent":
        if real_fadvise is None or not Path("/proc/self/fd").is_dir():
            pytest.skip("posix_fadvise or /proc/self/fd not available")
        monkeypatch.setattr(os, "posix_fadvise", spy_fadvise)
    monkeypatch.setattr(os, "fsync", spy_fsync)
    rb = make_buffer()
    w = writer_factory(settings(tmp_path, compression="none"), rb, options)
    trig = T0 + 3 * S
    run_rig(rb, w, T0, T0 + 5 * S, {trig: {"kind": "behind"}})
    assert w.flush(30)
    (folder,) = complete_snapshots(tmp_path / "snapshots")
    assert len(read_rosbag(folder)["/imu"]) == 301
    (mcap_file,) = folder.glob("*.mcap")
    size = mcap_file.stat().st_size
    assert size > 4 * step
    assert not w.status().capture_stopped and w.status().last_error is None
    if fadvise == "works":
        # Streaming: [mark, end) handed over, then [0, mark) dropped, each range following the
        # last; at the end the whole file (length 0: to its end) is dropped.
        assert advised[-1] == (0, 0)
        streamed = advised[:-1]
        handed = [a for i, a in enumerate(streamed) if i == 0 or streamed[i - 1][0] == 0]
        mark = 0
        for offset, length in handed:
            assert offset == mark and length >= step
            mark = offset + length
        assert (0, mark) not in streamed  # dropped only once a later range was handed over
        assert len(handed) >= size // step - 2
        assert mark > size - 2 * step
    else:
        # fsyncs while streaming, besides those at the end (MCAP, metadata, trigger, 2 folders).
        assert len(fsyncs) - 5 >= size // step - 2
