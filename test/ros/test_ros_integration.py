"""Standard ROS tools against the monitor: `ros2 param set` answers the truth, namespaced monitors
publish distinct status names, and sim time without /clock is said, not silent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.node import Node
from rclpy.parameter import Parameter
from ros_helpers import REPO, spin_until
from rosgraph_msgs.msg import Clock

from gap_monitor.ros import runtime
from gap_monitor.ros.monitor_node import MonitorNode

pytestmark = [pytest.mark.ros, pytest.mark.slow]
CONFIG = REPO / "config" / "monitor.yaml"


def overrides(**extra: object) -> list[Parameter]:
    """What a params file with one IMU stream declares on the node."""
    params = {"imus.imu.topic": "/imu/data", "imus.imu.rate_hz": 400.0, "capture.enabled": False, **extra}
    return [Parameter(name, value=value) for name, value in params.items()]


def double(name: str, value: float) -> ParameterMsg:
    value_msg = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
    return ParameterMsg(name=name, value=value_msg)


def test_parameter_changes_the_monitor_does_not_apply_are_refused_with_the_reason(context):
    """`ros2 param set` calls this service; before, every change answered "successful"."""
    monitor = MonitorNode(context=context, parameter_overrides=overrides())
    client_node = Node("param_client", context=context)
    executor = runtime.make_executor(context)
    executor.add_node(monitor)
    executor.add_node(client_node)
    client = client_node.create_client(SetParameters, "/gap_monitor/set_parameters")
    assert spin_until(executor, client.service_is_ready, 10.0)

    def set_one(param: ParameterMsg) -> tuple[bool, str]:
        future = client.call_async(SetParameters.Request(parameters=[param]))
        assert spin_until(executor, future.done, 5.0)
        (result,) = future.result().results
        return result.successful, result.reason

    ok, why = set_one(double("imus.imu.rate_hz", -5.0))
    assert not ok and why == "imus.imu.rate_hz: -5.0: a number in (0, 100000]"
    ok, why = set_one(double("imus.imu.rate_hz", 200.0))
    assert not ok and "not applied at run time" in why
    ok, why = set_one(double("capture.pre_s", 3.0))  # not in the params file: rclpy refuses it
    assert not ok and "undeclared" in why
    ok, _ = set_one(double("imus.imu.rate_hz", 400.0))  # the value in use: a `ros2 param load`
    assert ok
    assert monitor.get_parameter("imus.imu.rate_hz").value == 400.0
    assert "capture.pre_s" not in monitor.get_parameters_by_prefix("capture")


def test_monitors_in_two_namespaces_publish_distinct_status_names(context):
    monitors = [
        MonitorNode(context=context, namespace=ns, parameter_overrides=overrides())
        for ns in ("robot1", "robot2")
    ]
    watcher = Node("diag_names", context=context)
    names: set[str] = set()
    watcher.create_subscription(
        DiagnosticArray, "/diagnostics", lambda m: names.update(s.name for s in m.status), 10
    )
    executor = runtime.make_executor(context)
    for node in (*monitors, watcher):
        executor.add_node(node)

    def both_seen() -> bool:
        return {"robot1/gap_monitor: /imu/data", "robot2/gap_monitor: /imu/data"} <= names

    assert spin_until(executor, both_seen, 10.0), sorted(names)
    assert not any(n.startswith("gap_monitor:") for n in names)


def test_sim_time_without_clock_is_said_then_the_rig_provides_clock(domain_id, tmp_path):
    """use_sim_time:=true and no /clock: a WARN status and a log line, not silence; the rig on
    sim time publishes /clock (the launch file passes use_sim_time to both)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    log = tmp_path / "monitor.log"
    with log.open("wb") as out:
        monitor = subprocess.Popen(
            [sys.executable, "-m", "gap_monitor.ros.monitor_node", "--ros-args", "--params-file", str(CONFIG),
             "-p", "use_sim_time:=true", "-p", f"capture.output_dir:={tmp_path / 'snapshots'}"],
            stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env,
        )  # fmt: skip
    sim = None
    import rclpy
    from rclpy.context import Context

    ctx = Context()
    rclpy.init(context=ctx, domain_id=domain_id)
    try:
        watcher = Node("clock_watch", context=ctx)
        messages: list[tuple[int, str]] = []
        clocks: list[int] = []

        def on_diagnostics(msg: DiagnosticArray) -> None:
            mine = (s for s in msg.status if s.name == "gap_monitor: monitor")
            messages.extend((s.level[0], s.message) for s in mine)

        watcher.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
        watcher.create_subscription(Clock, "/clock", lambda m: clocks.append(m.clock.sec), 10)
        executor = runtime.make_executor(ctx)
        executor.add_node(watcher)
        waiting = lambda: any("waiting for /clock" in m for _, m in messages)  # noqa: E731
        assert spin_until(executor, waiting, 20.0), messages
        assert all(level == 1 for level, m in messages if "waiting for /clock" in m)  # WARN
        assert "waiting for /clock" in log.read_text()
        sim = subprocess.Popen(
            [sys.executable, "-m", "gap_monitor.ros.sim_node", "--duration", "20", "--width", "160",
             "--height", "120", "--ros-args", "-p", "use_sim_time:=true"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=REPO, env=env,
        )  # fmt: skip
        assert spin_until(executor, lambda: len(clocks) > 50, 20.0), "the rig on sim time published no /clock"
        # On /clock the monitor's own timers run again: its regular statuses come back.
        start = len(messages)
        regular = lambda: any(m.startswith("shadow mode") for _, m in messages[start:])  # noqa: E731
        assert spin_until(executor, regular, 15.0)
        # The watch runs once a second on the steady clock: it says so at its next look.
        assert spin_until(executor, lambda: "/clock received" in log.read_text(), 5.0)
    finally:
        for proc in (sim, monitor):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if ctx.ok():
            rclpy.shutdown(context=ctx)
    assert monitor.returncode == 0, log.read_text()[-2000:]
