"""`gap-monitor sim-record`: write the simulated rig to a rosbag2 recording, without ROS.

The rig (`gap_monitor.sim.rig`: Scheduler + SimRig) is rendered as fast as it can be, not in real
time. Header stamps are what the live `sim` node would stamp: t0 + the scheduled sample time + any
scripted stamp offset. The log (receipt) time is t0 + the scheduled time + a fixed latency: a
scripted stamp offset is a wrong header clock, not a late message, so it leaves the receipt time
alone (as it does live). Messages are serialized with rosbags' Jazzy typestore and written as
rosbag2 (metadata version 8, MCAP storage), so `ros2 bag`, rosbags and `gap-monitor profile build`
read them.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from gap_monitor.core.config import ConfigError
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
from gap_monitor.sim.scenario import SIM_STREAMS, Scenario, resolve_scenario

NS = 1_000_000_000
# A fixed, recognisable epoch (2024-01-01T00:00:00Z) so recordings are reproducible.
DEFAULT_T0_NS = 1_704_067_200 * NS
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
        sec, nanosec = divmod(stamp_ns, NS)
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
        t0_ns = DEFAULT_T0_NS + round(start_s * NS)
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
            scheduled_ns = t0_ns + round(tick.t_s * NS)
            stamp_ns = scheduled_ns + rig.stamp_offset_ns(tick.stream, start_s + tick.t_s)
            data = serializer.serialize(tick.stream, sample, stamp_ns)
            writer.write(connection, scheduled_ns + latency_ns, data)


def parse_streams(text: str) -> dict[str, str]:
    """Streams "camera,imu" -> {stream: default topic}; ValueError naming an unknown stream."""
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in names if s not in DEFAULT_TOPICS]
    if unknown or not names:
        raise ValueError(
            f"--streams {text!r}: unknown stream(s) {unknown}; choose from {','.join(DEFAULT_TOPICS)}"
        )
    return {s: DEFAULT_TOPICS[s] for s in names}


def run_from_args(args: argparse.Namespace) -> int:
    try:
        scenario = resolve_scenario(args.scenario)
    except ConfigError as exc:
        print(f"sim-record: {exc}", file=sys.stderr)
        return 2
    try:
        topics = parse_streams(args.streams) if args.streams else dict(DEFAULT_TOPICS)
        width, height = args.width, args.height
        if width < 8 or height < 8:
            raise ValueError(f"--width/--height {width}x{height}: at least 8x8 pixels")
        settings = RigSettings(
            width=width,
            height=height,
            camera_rate_hz=args.camera_rate,
            focal_px=RigSettings().focal_px * width / REFERENCE_WIDTH,
        )
        duration = scenario.duration_s if args.duration is None else args.duration
        started = time.monotonic()
        out = record_sim(args.output, scenario, duration, settings, topics, start_s=args.start)
    except (ValueError, FileExistsError) as exc:
        print(f"sim-record: {exc}", file=sys.stderr)
        return 2
    print(
        f"{out}: {duration:g} s of scenario {scenario.name!r} ({', '.join(topics)}; "
        f"{width}x{height}) in {time.monotonic() - started:.1f} s"
    )
    return 0


def add_parser(subparsers: Any) -> None:
    """Register `sim-record` on the `gap-monitor` command's subparsers."""
    _configure(subparsers.add_parser("sim-record", help=HELP, description=HELP))


HELP = "record the simulated rig (with a scenario's faults) to a rosbag2 MCAP folder, without ROS"


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("output", help="new rosbag2 folder to write")
    p.add_argument(
        "--scenario",
        default="clean",
        help="scenario YAML path, or a name in config/scenarios (default clean)",
    )
    p.add_argument("--duration", type=float, default=None, help="seconds (default: the scenario's)")
    p.add_argument("--width", type=int, default=640, help="camera/depth width in pixels (default 640)")
    p.add_argument("--height", type=int, default=480, help="camera/depth height in pixels (default 480)")
    p.add_argument("--camera-rate", type=float, default=30.0, help="camera rate in Hz (default 30)")
    p.add_argument(
        "--streams", default="", help=f"comma-separated subset of {','.join(DEFAULT_TOPICS)} (default: all)"
    )
    p.add_argument(
        "--start", type=float, default=0.0,
        help="rig time (s) at the start: continue the scene's motion from there (default 0)",
    )  # fmt: skip
    p.set_defaults(func=run_from_args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gap-monitor sim-record", description=HELP)
    _configure(parser)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
