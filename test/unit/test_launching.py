from pathlib import Path

import pytest
import yaml

from gap_monitor.core.config import node_key_matches
from gap_monitor.launching import default_params_file, keep_discovery_local, local_discovery, monitor_nodes

REPO = Path(__file__).resolve().parents[2]


def test_default_monitor_node_spec():
    (node,) = monitor_nodes()
    assert (node.package, node.executable, node.name, node.namespace) == (
        "gap_monitor",
        "monitor",
        "gap_monitor",
        "",
    )
    params_file, overrides = node.parameters
    assert isinstance(params_file, str)
    assert Path(params_file).name == "monitor.yaml"
    assert Path(params_file).is_file()
    # The file has a key that reaches the node the spec starts.
    keys = yaml.safe_load(Path(params_file).read_text())
    assert any(node_key_matches(k, f"/{node.name}") for k in keys)
    assert overrides == {"use_sim_time": False}
    assert node.remappings == ()


def test_params_file_namespace_sim_time_and_remapping():
    nodes = monitor_nodes(
        params_file="/robot/params.yaml",
        namespace="arm",
        use_sim_time=True,
        diagnostics_topic="/arm/diagnostics",
    )
    (node,) = nodes
    assert node.namespace == "arm"
    assert node.parameters == ("/robot/params.yaml", {"use_sim_time": True})
    assert node.remappings == (("/diagnostics", "/arm/diagnostics"),)


def test_with_sim_adds_the_rig_with_its_scenario():
    monitor, sim = monitor_nodes(with_sim=True, scenario="demo")
    assert monitor.executable == "monitor"
    assert (sim.executable, sim.name, sim.arguments) == ("sim", "gap_monitor_sim", ("--scenario", "demo"))
    assert sim.parameters == ({"use_sim_time": False},)


def test_the_sim_gets_use_sim_time_too():
    """On sim time the rig publishes /clock; without the parameter the monitor would wait forever."""
    _, sim = monitor_nodes(with_sim=True, use_sim_time=True)
    assert sim.parameters == ({"use_sim_time": True},)


def test_default_params_file_is_the_shipped_config():
    assert Path(default_params_file()).read_text() == (REPO / "config" / "monitor.yaml").read_text()


def test_every_launch_argument_is_described():
    # `ros2 launch gap_monitor monitor.launch.py --show-args` prints these; launch is not installed
    # in the venv, so the file is read as source.
    import ast

    tree = ast.parse((REPO / "launch" / "monitor.launch.py").read_text())
    declared = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DeclareLaunchArgument"
    ]
    assert len(declared) >= 6
    undescribed = [
        ast.unparse(node.args[0])
        for node in declared
        if not any(k.arg == "description" for k in node.keywords)
    ]
    assert not undescribed, f"launch arguments without a description: {undescribed}"


@pytest.mark.parametrize("namespace", ["robot1", "fleet/robot1"])
def test_shipped_params_reach_the_monitor_under_a_namespace(namespace):
    (node,) = monitor_nodes(namespace=namespace)
    # The source tree's file: the installed copy equals it once built (test below).
    keys = yaml.safe_load((REPO / "config" / "monitor.yaml").read_text())
    assert any(node_key_matches(k, f"/{node.namespace}/{node.name}") for k in keys), keys


@pytest.mark.parametrize(
    ("distro", "expected"),
    [
        ("humble", {"ROS_LOCALHOST_ONLY": "1", "ROS_AUTOMATIC_DISCOVERY_RANGE": None}),
        ("jazzy", {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "ROS_LOCALHOST_ONLY": None}),
        ("", {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "ROS_LOCALHOST_ONLY": None}),
    ],
)
def test_local_discovery_sets_only_what_the_distro_knows(distro, expected):
    """Jazzy warns on every process when ROS_LOCALHOST_ONLY is set; Humble ignores the range."""
    env = {"ROS_DISTRO": distro, "ROS_LOCALHOST_ONLY": "1", "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}
    assert local_discovery(env) == expected
    keep_discovery_local(env)
    for name, value in expected.items():
        assert env.get(name) == value


def test_no_ros_process_we_start_sets_both_discovery_variables():
    """./dev and CI must not export ROS_LOCALHOST_ONLY for the venv's Jazzy."""
    for script in ("dev", ".ci/run"):
        text = (REPO / script).read_text()
        assert "export ROS_LOCALHOST_ONLY" not in text, script
        assert "export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST" in text, script
