"""The simulated rig's node answers ROS tools while it publishes (its parameter services spin)."""

from __future__ import annotations

import pytest
from rcl_interfaces.srv import ListParameters
from rclpy.node import Node
from ros_helpers import spin_until

from gap_monitor.ros import runtime

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_sim_parameter_services_answer_while_it_publishes(context, spawn):
    spawn("gap_monitor.ros.sim_node", "--duration", "20", "--width", "160", "--height", "120")
    probe = Node("param_probe", context=context)
    executor = runtime.make_executor(context)
    executor.add_node(probe)
    try:
        client = probe.create_client(ListParameters, "/gap_monitor_sim/list_parameters")
        assert spin_until(executor, client.service_is_ready, 15.0), "no parameter service on the sim"
        future = client.call_async(ListParameters.Request())
        # `ros2 param list` waits for exactly this answer; a node that never spins gives none.
        assert spin_until(executor, future.done, 5.0), "the sim did not answer list_parameters"
        assert "use_sim_time" in future.result().result.names
    finally:
        executor.remove_node(probe)
        probe.destroy_node()
