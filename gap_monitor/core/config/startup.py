"""What must hold before the monitor node starts, checked the same way by the node and `check-config`.

Two stages. Before rclpy starts, the `--params-file`s in the node's ROS arguments are read with our
parser (`check_params_files`): rcl would otherwise die on a missing, binary or non-YAML file with an
RCLError traceback, and a file keyed for another node (`gap_monitor:` under a namespace) would
silently give the node no parameters. Once the config is validated, `check_startup` checks what
the node needs to run: at least one stream, a profile that loads, a usable snapshot folder. Every
problem is listed at once, as a `ConfigError` (one line each; exit 2).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gap_monitor.core.conditions.profile import Profile
from gap_monitor.core.config.model import MonitorConfig
from gap_monitor.core.config.parsing import params_document
from gap_monitor.core.io.mcap_writer import missing_compression_module
from gap_monitor.core.io.modalities import MODALITIES
from gap_monitor.core.io.names import NODE_NAME
from gap_monitor.errors import ConfigError, ProfileError, describe_problem

__all__ = [
    "check_params_file",
    "check_params_files",
    "check_startup",
    "node_key_matches",
    "node_name_from_ros_args",
    "output_dir_problem",
    "params_files_in_ros_args",
]

_PARAMS = "ros__parameters"


def _ros_arguments(args: Sequence[str]) -> list[str]:
    """The arguments rcl reads: those after each `--ros-args`, up to a `--` (or the end)."""
    found: list[str] = []
    inside = False
    for arg in args:
        if arg == "--ros-args":
            inside = True
        elif arg == "--" and inside:
            inside = False
        elif inside:
            found.append(arg)
    return found


def params_files_in_ros_args(args: Sequence[str]) -> list[str]:
    """The files given by `--params-file FILE` among the ROS arguments, in order."""
    ros = _ros_arguments(args)
    return [ros[i + 1] for i, arg in enumerate(ros[:-1]) if arg == "--params-file"]


def node_name_from_ros_args(args: Sequence[str], default_name: str = NODE_NAME) -> str:
    """The node's fully qualified name after `-r __node:=NAME` and `-r __ns:=/NS` remaps."""
    ros = _ros_arguments(args)
    name, namespace = default_name, "/"
    for i, arg in enumerate(ros[:-1]):
        if arg not in ("-r", "--remap"):
            continue
        lhs, _, value = ros[i + 1].partition(":=")
        # A node-specific rule (`gap_monitor:__ns:=/x`) applies only to the node of that name.
        target, _, key = lhs.rpartition(":")
        if target and target != default_name:
            continue
        if key == "__node" and value:
            name = value
        elif key == "__ns" and value:
            namespace = value if value.startswith("/") else f"/{value}"
    return f"{namespace.rstrip('/')}/{name}"


def node_key_matches(key: str, fully_qualified_name: str) -> bool:
    """Whether a params file's node key applies to a node, as rcl decides: a key without a leading
    `/` is in the root namespace, `*` matches one name token and `/**` any number of them."""
    pattern = "".join(
        "(?:/[^/]+)*" if part == "**" else "/" + re.escape(part).replace(r"\*", "[^/]+")
        for part in key.lstrip("/").split("/")
    )
    return re.fullmatch(pattern, fully_qualified_name) is not None


def check_params_file(path: str | Path) -> dict[str, Any]:
    """A params file's top level, checked as rcl reads it: readable text, YAML, and every node
    section holding a `ros__parameters` mapping. Raises ConfigError listing what is wrong."""
    doc = params_document(path)
    problems = [
        f"{key}: a node section holding '{_PARAMS}' (a mapping of parameters)"
        for key, section in doc.items()
        if not isinstance(section, Mapping) or not isinstance(section.get(_PARAMS), Mapping)
    ]
    if problems:
        raise ConfigError(problems, str(path))
    return doc


def check_params_files(args: Sequence[str], default_name: str = NODE_NAME) -> None:
    """Read every `--params-file` among `args` (a node's command line) as rcl would, but saying in
    one line what is wrong: missing, not text, not YAML, a section without `ros__parameters`, or
    no section that reaches this node. Raises ConfigError; returns when rclpy may read them."""
    files = params_files_in_ros_args(args)
    node = node_name_from_ros_args(args, default_name)
    keys = [str(key) for path in files for key in check_params_file(path)]
    if files and not any(node_key_matches(key, node) for key in keys):
        listed = ", ".join(repr(k) for k in keys)
        raise ConfigError(
            [f"no section for node {node} (keys: {listed}): key it '/**' (any node) or {node!r}"],
            ", ".join(files),
        )


def output_dir_problem(path: Path) -> str | None:
    """Why the snapshot writer could not use `path` (which it creates if missing), else None.
    Nothing is created: the nearest existing folder must let us create and write in it."""
    probe = path
    try:
        while not probe.exists():
            if probe.parent == probe:
                return f"{str(path)!r} has no existing parent folder"
            probe = probe.parent
        if not probe.is_dir():
            return f"{str(probe)!r} is not a directory"
    except OSError as exc:
        return f"{str(probe)!r}: {exc.strerror or exc}"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{str(probe)!r} is not writable"
    return None


def check_startup(
    config: MonitorConfig, output_dir: Path | None = None, source: str = "config"
) -> Profile | None:
    """What the node checks before it starts, for a validated config: at least one stream, the
    profile loads, the snapshot folder is usable (`output_dir` overrides the config's) and its
    compression is installed. Returns the loaded profile (None without one); raises ConfigError
    listing every problem."""
    problems = []
    if not config.streams:
        sections = ", ".join(m.config_key for m in MODALITIES.values())
        problems.append(
            f"streams: none configured: a stream under one of {sections} (is the params file keyed "
            f"'/**' or by this node's name, and given with --params-file?)"
        )
    profile = None
    if config.conditions.profile:
        try:
            profile = Profile.load(Path(config.conditions.profile).expanduser())
        except ProfileError as exc:
            problems.append(describe_problem("conditions.profile", config.conditions.profile, str(exc)))
    if config.capture.enabled:
        settings = config.capture.snapshot_settings(output_dir)
        reason = output_dir_problem(settings.output_dir)
        if reason is not None:
            problems.append(
                describe_problem(
                    "capture.output_dir", str(settings.output_dir), f"a writable directory ({reason})"
                )
            )
        module = missing_compression_module(settings.compression)
        if module is not None:
            problems.append(
                describe_problem(
                    "capture.compression",
                    settings.compression,
                    f"needs the Python module {module!r}, which is not installed",
                )
            )
    if problems:
        raise ConfigError(problems, source)
    return profile
