from pathlib import Path

import pytest
import yaml

from gap_monitor.core.config import node_key_matches
from gap_monitor.launching import default_params_file, monitor_nodes

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
