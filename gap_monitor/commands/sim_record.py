"""`gap-monitor sim-record OUT`: record the simulated rig (with a scenario's faults) to a rosbag2
MCAP folder, without ROS."""

from __future__ import annotations

import argparse
import sys
import time

from gap_monitor.commands.arguments import non_negative_number, positive_number
from gap_monitor.commands.base import Command
from gap_monitor.errors import InputError

HELP = "record the simulated rig (with a scenario's faults) to a rosbag2 MCAP folder, without ROS"
STREAMS = "camera,depth,imu,joints,wrench"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", help="new rosbag2 folder to write")
    parser.add_argument(
        "--scenario",
        default="clean",
        help="scenario YAML path, or a name in config/scenarios (default clean)",
    )
    parser.add_argument(
        "--duration", type=positive_number, default=None, help="seconds (default: the scenario's)"
    )
    parser.add_argument("--width", type=int, default=640, help="camera/depth width in pixels (default 640)")
    parser.add_argument("--height", type=int, default=480, help="camera/depth height in pixels (default 480)")
    parser.add_argument(
        "--camera-rate", type=positive_number, default=30.0, help="camera rate in Hz (default 30)"
    )
    parser.add_argument("--streams", default="", help=f"comma-separated subset of {STREAMS} (default: all)")
    parser.add_argument(
        "--start", type=non_negative_number, default=0.0,
        help="rig time (s) at the start: continue the scene's motion from there (default 0)",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from gap_monitor.sim.record import REFERENCE_WIDTH, parse_streams, record_sim
    from gap_monitor.sim.rig import DEFAULT_TOPICS, RigSettings
    from gap_monitor.sim.scenario import resolve_scenario

    scenario = resolve_scenario(args.scenario)
    topics = parse_streams(args.streams) if args.streams else dict(DEFAULT_TOPICS)
    width, height = args.width, args.height
    if width < 8 or height < 8:
        raise InputError("--width/--height", f"{width}x{height}", "at least 8x8 pixels")
    settings = RigSettings(
        width=width,
        height=height,
        camera_rate_hz=args.camera_rate,
        focal_px=RigSettings().focal_px * width / REFERENCE_WIDTH,
    )
    duration = scenario.duration_s if args.duration is None else args.duration
    started = time.monotonic()
    out = record_sim(args.output, scenario, duration, settings, topics, start_s=args.start)
    print(
        f"{out}: {duration:g} s of scenario {scenario.name!r} ({', '.join(topics)}; "
        f"{width}x{height}) in {time.monotonic() - started:.1f} s"
    )
    return 0


COMMAND = Command("sim-record", HELP, add_arguments, run)

if __name__ == "__main__":
    sys.exit(COMMAND.main())
