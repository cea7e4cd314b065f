"""Run-time parameter changes (`ros2 param set`, `ros2 param load`): which the monitor refuses.

The monitor builds its analysers, ring buffer and snapshot writer once, from the parameters it
starts with. A change it would not apply is refused with the reason, never answered "successful"
and then ignored: a bad value with the validation message (`key: value: allowed`), a valid one with
how to apply it (the params file and a restart). ROS's own parameters (use_sim_time, ...) and
values equal to those in use (a `ros2 param load` of a dump) are accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gap_monitor.core.config.model import ROS_OWN_PARAMETERS
from gap_monitor.core.config.parsing import config_from_parameters, unflatten
from gap_monitor.errors import ConfigError


def is_ros_own(name: str) -> bool:
    """A parameter rclpy owns (`use_sim_time`, `qos_overrides./topic...`), not ours."""
    return name.split(".", 1)[0] in ROS_OWN_PARAMETERS


def change_refusal(in_use: Mapping[str, Any], changes: Mapping[str, Any], source: str) -> str | None:
    """Why a change of flat-named parameters is refused, or None to accept it. `in_use`: the flat
    parameters the monitor runs with; `changes`: name -> new value."""
    ours = {name: value for name, value in changes.items() if not is_ros_own(name)}
    differing = sorted(name for name, value in ours.items() if name not in in_use or in_use[name] != value)
    if not differing:
        return None
    try:
        config_from_parameters(unflatten({**in_use, **ours}), source=source)
    except ConfigError as exc:  # one line: `ros2 param set` prints the reason as it is
        return "; ".join(exc.problems)
    return (
        f"{', '.join(differing)}: not applied at run time (the monitor reads its parameters when it "
        "starts); put the new value in the params file and restart the node"
    )
