"""Shared by the snapshot tests: a fake sensor rig, ring buffers, settings, and readers of the output."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from mcap.reader import make_reader
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from gap_monitor.core.capture.policy import SnapshotSettings, TriggerResult
from gap_monitor.core.capture.ring_buffer import RingBuffer
from gap_monitor.core.capture.snapshot_folder import WriteOptions
from gap_monitor.core.capture.writer import SnapshotWriter

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


@contextlib.contextmanager
def fake_clock_writers() -> Iterator[Factory]:
    """Makes writers whose clock stands at T0 (tests pass their times); closes them at the end."""
    made: list[SnapshotWriter] = []

    def make(s: SnapshotSettings, rb: RingBuffer, options: WriteOptions | None = None) -> SnapshotWriter:
        w = SnapshotWriter(s, rb, clock=lambda: T0, options=options)
        made.append(w)
        return w

    try:
        yield make
    finally:
        for w in made:
            w.close(timeout_s=30)
