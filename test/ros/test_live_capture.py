"""Live: scripted faults, a failure message and the ~/capture service each leave a complete snapshot."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_helpers import REPO, spin_until
from rosbags.rosbag2 import Reader
from std_msgs.msg import String
from std_srvs.srv import Trigger

from gap_monitor.core.config import load_config, triggers_from_parameters
from gap_monitor.ros import runtime
from gap_monitor.ros.monitor_node import MonitorNode
from gap_monitor.sim.rig import DEFAULT_TOPICS

pytestmark = [pytest.mark.ros, pytest.mark.slow]
NS = 1_000_000_000
PRE_S, POST_S = 3.0, 2.0


def snapshot_span(folder: Path) -> tuple[set[str], float, dict[str, Any]]:
    with Reader(folder) as reader:
        topics = {c.topic for c in reader.connections if c.msgcount > 0}
        times = [t for _, t, _ in reader.messages()]
    trigger = json.loads((folder / "trigger.json").read_text())
    return topics, (max(times) - min(times)) / NS, trigger


def test_stall_failure_message_and_service_each_write_a_snapshot(context, spawn, tmp_path):
    base = load_config(REPO / "config" / "monitor.yaml")
    config = replace(
        base,
        capture=replace(base.capture, pre_s=PRE_S, post_s=POST_S, cooldown_s=0.0, min_free_bytes=0),
        triggers=triggers_from_parameters(
            {"failure_topic": {"topic": "/robot/failure", "type": "std_msgs/msg/String"}}
        ),
    )
    out = tmp_path / "snapshots"
    monitor = MonitorNode(config, output_dir=out, context=context)
    helper = Node("capture_test", context=context)
    failure_pub = helper.create_publisher(
        String, "/robot/failure", QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    )
    capture = helper.create_client(Trigger, "/gap_monitor/capture")
    executor = runtime.make_executor(context)
    executor.add_node(monitor)
    executor.add_node(helper)
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        yaml.safe_dump(
            {
                "name": "t",
                "duration_s": 30,
                "faults": [{"kind": "stall", "stream": "imu", "start_s": 6.0, "duration_s": 1.5}],
            }
        )
    )
    spawn(
        "gap_monitor.ros.sim_node",
        "--scenario",
        str(scenario),
        "--duration",
        "30",
        "--width",
        "320",
        "--height",
        "240",
    )

    def written() -> list[Path]:
        return sorted(p for p in out.glob("*") if p.is_dir() and ".tmp" not in p.name) if out.exists() else []

    # 1. The scripted stall.
    assert spin_until(executor, lambda: len(written()) >= 1, 20.0)
    # 2. A failure message on the failure topic.
    failure_pub.publish(String(data="gripper dropped the part"))
    assert spin_until(executor, lambda: len(written()) >= 2, 12.0)
    # 3. The manual service answers with the snapshot's path, queued (it may still be refused).
    assert capture.wait_for_service(timeout_sec=5.0)
    future = capture.call_async(Trigger.Request())
    assert spin_until(executor, future.done, 5.0)
    response = future.result()
    assert response.success and response.message.startswith("queued: "), response.message
    queued = Path(response.message.removeprefix("queued: ").split(";", 1)[0])
    assert spin_until(executor, queued.is_dir, 12.0)
    monitor.close()

    kinds = {}
    for folder in written():
        topics, span, trigger = snapshot_span(folder)
        kinds[trigger["triggers"][0]["event"]["kind"]] = (folder, topics, span, trigger)
        assert set(DEFAULT_TOPICS.values()) <= topics, (folder, topics)
        # The configured window, within a camera period (and the IMU gap for the stall snapshot).
        assert span == pytest.approx(PRE_S + POST_S, abs=0.1), folder
    assert set(kinds) == {"stream_state", "failure_topic", "manual"}
    failure = kinds["failure_topic"][3]["triggers"][0]["event"]
    assert "gripper dropped the part" in failure["reason"]
    assert queued == kinds["manual"][0]
