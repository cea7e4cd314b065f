"""launch_pytest: `monitor.launch.py` with the sim publishes /diagnostics. Needs a full ROS 2 install
(launch, launch_ros, launch_pytest); skipped where those are absent, e.g. in the wheel-based venv."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

launch_pytest = pytest.importorskip("launch_pytest", reason="launch_pytest needs a full ROS 2 install")
import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from launch import LaunchDescription  # noqa: E402
from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402

from gap_monitor.launching import share_dir  # noqa: E402

LAUNCH_FILE = Path(__file__).resolve().parents[2] / "launch" / "monitor.launch.py"


@launch_pytest.fixture
def launch_description() -> LaunchDescription:
    path = share_dir() / "launch" / "monitor.launch.py"
    source = PythonLaunchDescriptionSource(str(path if path.is_file() else LAUNCH_FILE))
    return LaunchDescription(
        [
            IncludeLaunchDescription(source, launch_arguments={"sim": "true"}.items()),
            launch_pytest.actions.ReadyToTest(),
        ]
    )


@pytest.mark.launch(fixture=launch_description)
def test_launch_publishes_diagnostics() -> None:
    rclpy.init()
    node = rclpy.create_node("launch_test_listener")
    received: list[DiagnosticArray] = []
    node.create_subscription(DiagnosticArray, "/diagnostics", received.append, 10)
    try:
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline and not any(
            s.name.startswith("gap_monitor: /imu") for m in received for s in m.status
        ):
            rclpy.spin_once(node, timeout_sec=0.2)
        names = {s.name for m in received for s in m.status}
        assert "gap_monitor: /imu/data" in names
    finally:
        node.destroy_node()
        rclpy.shutdown()
