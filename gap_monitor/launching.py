"""What `launch/monitor.launch.py` starts, as plain data, so tests check it without `launch`.

The launch file only turns these specs into `launch_ros.actions.Node`s; everything decided here
(executables, parameter files, overrides, remappings) is unit-tested.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PACKAGE = "gap_monitor"
# Distros that know only ROS_LOCALHOST_ONLY. From Iron on it is deprecated for
# ROS_AUTOMATIC_DISCOVERY_RANGE, and Jazzy warns on every process that sets it.
LOCALHOST_ONLY_DISTROS = frozenset({"foxy", "galactic", "humble"})
LOCALHOST_ONLY = "ROS_LOCALHOST_ONLY"
DISCOVERY_RANGE = "ROS_AUTOMATIC_DISCOVERY_RANGE"


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
        # The rig publishes /clock when it runs on sim time, so `sim:=true use_sim_time:=true` works.
        sim_params: tuple[str | dict[str, Any], ...] = ({"use_sim_time": use_sim_time},)
        nodes.append(NodeSpec("sim", "gap_monitor_sim", namespace, sim_params, arguments=args))
    return nodes


def local_discovery(environ: Mapping[str, str]) -> dict[str, str | None]:
    """The discovery variables that keep DDS on this machine under the installed distro
    (`ROS_DISTRO`; unset means a distro with the discovery range, like the venv's Jazzy wheels):
    name -> value, or None for a variable to unset so the distro does not warn about it.

    Measured on Jazzy with Fast DDS (8 s of a local publisher and subscriber): the discovery
    range LOCALHOST alone sent 0 packets on eth0, against 12 with the range SUBNET or unset."""
    if environ.get("ROS_DISTRO", "").strip().lower() in LOCALHOST_ONLY_DISTROS:
        return {LOCALHOST_ONLY: "1", DISCOVERY_RANGE: None}
    return {DISCOVERY_RANGE: "LOCALHOST", LOCALHOST_ONLY: None}


def keep_discovery_local(environ: MutableMapping[str, str]) -> None:
    """Set `local_discovery` in `environ` (e.g. os.environ, a subprocess's env)."""
    for name, value in local_discovery(environ).items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
