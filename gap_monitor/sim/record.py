"""The simulated rig written to a rosbag2 recording, without ROS (`gap-monitor sim-record`).

The rig (`gap_monitor.sim.rig`: Scheduler + SimRig) is rendered as fast as it can be, not in real
time. Header stamps are what the live `sim` node would stamp: t0 + the scheduled sample time + any
scripted stamp offset. The log (receipt) time is t0 + the scheduled time + a fixed latency: a
scripted stamp offset is a wrong header clock, not a late message, so it leaves the receipt time
alone (as it does live). Messages are serialized with rosbags' Jazzy typestore and written as
rosbag2 (metadata version 8, MCAP storage), so `ros2 bag`, rosbags and `gap-monitor profile build`
read them.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from gap_monitor.core.units import NS_PER_S
from gap_monitor.errors import InputError
from gap_monitor.sim.rig import (
    DEFAULT_TOPICS,
    FRAME_IDS,
    MSG_TYPES,
    ImageSample,
    ImuSample,
    JointSample,
    RigSettings,
    Sample,
    Scheduler,
    SimRig,
    Tick,
    WrenchSample,
)
from gap_monitor.sim.scenario import SIM_STREAMS, Scenario

# A fixed, recognisable epoch (2024-01-01T00:00:00Z) so recordings are reproducible.
DEFAULT_T0_NS = 1_704_067_200 * NS_PER_S
DEFAULT_LATENCY_NS = 1_000_000
# The rig's default focal length goes with its default 640 px width; smaller images keep the field
# of view (and so the image motion relative to the frame) by scaling it.
REFERENCE_WIDTH = 640


class SimSerializer:
    """Sim samples -> CDR bytes through rosbags' ROS 2 Jazzy typestore."""

    def __init__(self) -> None:
        from rosbags.typesys import Stores, get_typestore

        self.typestore = get_typestore(Stores.ROS2_JAZZY)
        types = self.typestore.types
        self._header = types["std_msgs/msg/Header"]
        self._time = types["builtin_interfaces/msg/Time"]
        self._vector3 = types["geometry_msgs/msg/Vector3"]
        self._quaternion = types["geometry_msgs/msg/Quaternion"]
        self._wrench = types["geometry_msgs/msg/Wrench"]
        self._classes = {stream: types[msgtype] for stream, msgtype in MSG_TYPES.items()}
        self._zero_cov = np.zeros(9)
        # sensor_msgs/Imu: covariance[0] = -1 marks "no orientation estimate".
        self._no_orientation_cov = np.zeros(9)
        self._no_orientation_cov[0] = -1.0

    def serialize(self, stream: str, sample: Sample, stamp_ns: int) -> bytes:
        sec, nanosec = divmod(stamp_ns, NS_PER_S)
        header = self._header(self._time(sec, nanosec), FRAME_IDS[stream])
        cls = self._classes[stream]
        msg: Any
        if isinstance(sample, ImageSample):
            pixels = np.ascontiguousarray(sample.pixels)
            channels = 1 if pixels.ndim == 2 else pixels.shape[2]
            step = pixels.shape[1] * channels * pixels.itemsize
            data = pixels.reshape(-1).view(np.uint8)
            msg = cls(header, pixels.shape[0], pixels.shape[1], sample.encoding, 0, step, data)
        elif isinstance(sample, ImuSample):
            msg = cls(
                header,
                self._quaternion(0.0, 0.0, 0.0, 1.0),
                self._no_orientation_cov,
                self._vector(sample.gyro),
                self._zero_cov,
                self._vector(sample.accel),
                self._zero_cov,
            )
        elif isinstance(sample, JointSample):
            msg = cls(
                header,
                list(sample.names),
                np.asarray(sample.position, dtype=np.float64),
                np.asarray(sample.velocity, dtype=np.float64),
                np.asarray(sample.effort, dtype=np.float64),
            )
        elif isinstance(sample, WrenchSample):
            msg = cls(header, self._wrench(self._vector(sample.force), self._vector(sample.torque)))
        else:
            raise TypeError(f"unknown sample type {type(sample).__name__}")
        return bytes(self.typestore.serialize_cdr(msg, MSG_TYPES[stream]))

    def _vector(self, values: Any) -> Any:
        x, y, z = (float(v) for v in values)
        return self._vector3(x, y, z)


def shifted(scenario: Scenario, offset_s: float) -> Scenario:
    """The scenario with every fault moved later by `offset_s`."""
    if offset_s == 0:
        return scenario
    faults = tuple(replace(f, start_s=f.start_s + offset_s) for f in scenario.faults)
    return replace(scenario, faults=faults)


def record_sim(
    path: str | Path,
    scenario: Scenario,
    duration_s: float,
    settings: RigSettings | None = None,
    topics: Mapping[str, str] = DEFAULT_TOPICS,
    *,
    start_s: float = 0.0,
    t0_ns: int | None = None,
    latency_ns: int = DEFAULT_LATENCY_NS,
) -> Path:
    """Record `duration_s` of the simulated rig into a new rosbag2 folder at `path`; returns it.

    `topics` maps the streams to record (a subset of camera, depth, imu, joints, wrench) to their
    topic names. `start_s` is the rig's own time at the start of the recording: the camera pose,
    joint trajectory and contact cycle continue from there (a recording that does not repeat an
    earlier one with the same seed), while the scenario's fault times stay relative to the start.
    `t0_ns` is the header stamp at the start; by default DEFAULT_T0_NS + `start_s`, so recordings
    that continue one another also follow one another in time.
    Raises FileExistsError when `path` exists and ValueError for bad arguments.
    """
    from rosbags.rosbag2 import StoragePlugin, Writer

    out = Path(path)
    if out.exists():
        raise FileExistsError(f"{out} already exists; sim-record writes a new rosbag2 folder")
    unknown = sorted(set(topics) - set(SIM_STREAMS))
    if unknown:
        raise ValueError(f"topics: unknown stream(s) {unknown}; streams: {', '.join(SIM_STREAMS)}")
    if not topics:
        raise ValueError("topics: no stream to record")
    if not (np.isfinite(duration_s) and duration_s > 0):
        raise ValueError(f"duration_s: {duration_s!r}: a number of seconds > 0")
    if not (np.isfinite(start_s) and start_s >= 0):
        raise ValueError(f"start_s: {start_s!r}: a number of seconds >= 0")
    if latency_ns < 0:
        raise ValueError(f"latency_ns: {latency_ns!r}: >= 0")
    settings = settings or RigSettings()
    if t0_ns is None:
        t0_ns = DEFAULT_T0_NS + round(start_s * NS_PER_S)
    rig = SimRig(settings, shifted(scenario, start_s))
    scheduler = Scheduler(settings, scenario)
    serializer = SimSerializer()
    writer = Writer(out, version=8, storage_plugin=StoragePlugin.MCAP)
    try:
        _write(writer, rig, scheduler, serializer, topics, duration_s, start_s, t0_ns, latency_ns)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # no half-written recording left behind
        raise
    return out


def _write(
    writer: Any,
    rig: SimRig,
    scheduler: Scheduler,
    serializer: SimSerializer,
    topics: Mapping[str, str],
    duration_s: float,
    start_s: float,
    t0_ns: int,
    latency_ns: int,
) -> None:
    with writer:
        connections = {
            stream: writer.add_connection(topic, MSG_TYPES[stream], typestore=serializer.typestore)
            for stream, topic in topics.items()
        }
        # Scheduled times are sums of float periods: 300 periods of 1/30 s fall short of 10 s.
        end_s = duration_s - 1e-9
        for tick in scheduler.due(end_s):
            connection = connections.get(tick.stream)
            if connection is None:
                continue
            sample = rig.render(Tick(tick.stream, tick.seq, start_s + tick.t_s))
            scheduled_ns = t0_ns + round(tick.t_s * NS_PER_S)
            stamp_ns = scheduled_ns + rig.stamp_offset_ns(tick.stream, start_s + tick.t_s)
            data = serializer.serialize(tick.stream, sample, stamp_ns)
            writer.write(connection, scheduled_ns + latency_ns, data)


def parse_streams(text: str) -> dict[str, str]:
    """Streams "camera,imu" -> {stream: default topic}; InputError naming an unknown stream."""
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in names if s not in DEFAULT_TOPICS]
    if unknown or not names:
        raise InputError(
            "--streams", text, f"a comma-separated subset of {','.join(DEFAULT_TOPICS)} (unknown: {unknown})"
        )
    return {s: DEFAULT_TOPICS[s] for s in names}
