"""`sim`: publishes the simulated sensor rig (camera, depth, IMU, joints, wrench) with scripted faults.

Messages are published at their scheduled times from the main thread; header stamps are the
scheduled sample times on the wall clock (like a hardware-triggered rig), plus any scripted
stamp offset. With `use_sim_time:=true` the rig is also the clock, as a simulator is: it publishes
/clock with its schedule's time, so nodes on sim time follow the rig (and slow down with it).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from rclpy.executors import Executor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.utilities import remove_ros_args
from rosgraph_msgs.msg import Clock

from gap_monitor.core.units import NS_PER_S
from gap_monitor.errors import InputError
from gap_monitor.ros import runtime
from gap_monitor.ros.convert import message_class, sample_to_message
from gap_monitor.sim.rig import DEFAULT_TOPICS, FRAME_IDS, MSG_TYPES, RigSettings, Scheduler, SimRig, Tick
from gap_monitor.sim.scenario import resolve_scenario

# What typical drivers offer: images and joint states reliable, IMU and F/T as best-effort sensor data.
RELIABLE = {"camera": True, "depth": True, "imu": False, "joints": True, "wrench": False}
LATE_DROP_S = 0.25
CLOCK_PERIOD_S = 0.01  # /clock at 100 Hz, as Gazebo's default; timers on sim time stay smooth


class SimNode(Node):
    def __init__(self, rig: SimRig, topics: dict[str, str] | None = None) -> None:
        super().__init__("gap_monitor_sim")
        self.rig = rig
        self.topics = dict(DEFAULT_TOPICS, **(topics or {}))
        self.published = dict.fromkeys(self.topics, 0)
        self.dropped = 0
        self._pubs = {}
        for stream, topic in self.topics.items():
            reliable = RELIABLE[stream]
            qos = QoSProfile(
                history=HistoryPolicy.KEEP_LAST,
                depth=10 if reliable else 50,
                reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
                durability=DurabilityPolicy.VOLATILE,
            )
            self._pubs[stream] = self.create_publisher(message_class(MSG_TYPES[stream]), topic, qos)
        self._clock_pub = None
        if self.get_parameter("use_sim_time").value:
            self._clock_pub = self.create_publisher(Clock, "/clock", 10)

    def run(self, duration_s: float | None, stop: runtime.StopFlag, executor: Executor) -> None:
        """Publish every scheduled message until `duration_s` (None: forever) or a stop signal.
        Between messages it spins `executor`, so the node's parameter services answer (a node
        that never spins makes `ros2 param list` hang for every node)."""
        scheduler = Scheduler(self.rig.settings, self.rig.scenario)
        # First renders and publishes are slow (allocations, DDS matching); do them before the
        # clock starts so the rig does not begin by dropping late messages.
        for stream in self.topics:
            sample = self.rig.render(Tick(stream, 0, 0.0))
            sample_to_message(sample, 0, FRAME_IDS[stream])
        wall0 = time.time_ns()
        mono0 = time.monotonic()
        next_clock_s = 0.0
        while not stop.is_set():
            now_s = time.monotonic() - mono0
            if duration_s is not None and now_s >= duration_s:
                break
            if self._clock_pub is not None and now_s >= next_clock_s:
                # The rig's time: what it has rendered so far, on the wall clock's origin.
                sim_ns = wall0 + round(min(now_s, scheduler.next_time()) * NS_PER_S)
                msg = Clock()
                msg.clock.sec, msg.clock.nanosec = divmod(sim_ns, NS_PER_S)
                self._clock_pub.publish(msg)
                next_clock_s = now_s + CLOCK_PERIOD_S
            if now_s - scheduler.next_time() > LATE_DROP_S:
                self.dropped += scheduler.drop_until(now_s)
            for tick in scheduler.due(now_s):
                sample = self.rig.render(tick)
                offset_ns = self.rig.stamp_offset_ns(tick.stream, tick.t_s)
                stamp_ns = wall0 + round(tick.t_s * NS_PER_S) + offset_ns
                msg = sample_to_message(sample, stamp_ns, FRAME_IDS[tick.stream])
                self._pubs[tick.stream].publish(msg)
                self.published[tick.stream] += 1
            delay = scheduler.next_time() - (time.monotonic() - mono0)
            if self._clock_pub is not None:
                delay = min(delay, next_clock_s - (time.monotonic() - mono0))
            if delay > 0:
                executor.spin_once(timeout_sec=min(delay, 0.05))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sim", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--scenario", help="scenario YAML path, or the name of one in config/scenarios/")
    p.add_argument("--duration", type=float, default=None, help="seconds to run (default: until stopped)")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--camera-rate", type=float, default=30.0)
    p.add_argument("--depth-width", type=int, default=None, help="depth image width (with --depth-height)")
    p.add_argument("--depth-height", type=int, default=None, help="depth image height (default: camera size)")
    return p


def rig_settings(args: argparse.Namespace) -> RigSettings:
    """The rig from the command line (RigSettings validates it: ValueError naming the field)."""
    return RigSettings(
        width=args.width,
        height=args.height,
        camera_rate_hz=args.camera_rate,
        depth_width=args.depth_width,
        depth_height=args.depth_height,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv if argv is None else argv)
    args = build_parser().parse_args(remove_ros_args(args_in)[1:])
    try:
        scenario = resolve_scenario(args.scenario)
        settings = rig_settings(args)
    except (InputError, ValueError) as exc:  # a bad scenario, or a rig size RigSettings refuses
        print(f"sim: {exc}", file=sys.stderr)
        return 2
    stop = runtime.StopFlag()
    stop.install()
    runtime.init(args_in)
    node = SimNode(SimRig(settings, scenario))
    executor = runtime.make_executor()
    executor.add_node(node)
    dw, dh = settings.depth_size
    node.get_logger().info(
        f"publishing the simulated rig, scenario {scenario.name!r}; "
        f"camera {settings.width}x{settings.height}, depth {dw}x{dh}"
    )
    try:
        node.run(args.duration, stop, executor)
    finally:
        node.get_logger().info(f"published {node.published}, dropped {node.dropped} late")
        executor.remove_node(node)
        node.destroy_node()
        runtime.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
