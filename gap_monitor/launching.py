"""What `launch/monitor.launch.py` starts, as plain data, so tests check it without `launch`.

The launch file only turns these specs into `launch_ros.actions.Node`s; everything decided here
(executables, parameter files, overrides, remappings) is unit-tested.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

PACKAGE = "gap_monitor"


@dataclass(frozen=True)
class NodeSpec:
    executable: str
    name: str
    namespace: str = ""
    parameters: tuple[str | dict[str, Any], ...] = ()
    remappings: tuple[tuple[str, str], ...] = ()
    arguments: tuple[str, ...] = ()
    package: str = PACKAGE


def share_dir() -> Path:
    """The installed share/gap_monitor (ament index), else the source tree's top level."""
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(PACKAGE))
    except (ImportError, LookupError, ValueError):
        return Path(__file__).resolve().parent.parent


def default_params_file() -> str:
    return str(share_dir() / "config" / "monitor.yaml")


def monitor_nodes(
    params_file: str | None = None,
    namespace: str = "",
    use_sim_time: bool = False,
    diagnostics_topic: str = "/diagnostics",
    with_sim: bool = False,
    scenario: str = "",
) -> list[NodeSpec]:
    """The monitor node (and optionally the simulated rig) with their parameters and remappings."""
    params: tuple[str | dict[str, Any], ...] = (
        params_file or default_params_file(),
        {"use_sim_time": use_sim_time},
    )
    remaps: tuple[tuple[str, str], ...] = ()
    if diagnostics_topic != "/diagnostics":
        remaps = (("/diagnostics", diagnostics_topic),)
    nodes = [NodeSpec("monitor", "gap_monitor", namespace, params, remaps)]
    if with_sim:
        args = ("--scenario", scenario) if scenario else ()
        nodes.append(NodeSpec("sim", "gap_monitor_sim", namespace, arguments=args))
    return nodes
