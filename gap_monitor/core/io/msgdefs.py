"""Full ROS 2 message definitions from the ament index, in rosbag2's concatenated `ros2msg` format.

MCAP files with the `ros2` profile store, per schema, the main `.msg` text followed by every type
it depends on (recursively, each once)::

    <main .msg text>
    ================================================================================
    MSG: std_msgs/Header
    <Header.msg text>
    ================================================================================
    MSG: builtin_interfaces/Time
    <Time.msg text>

The `.msg` files are read from `<prefix>/share/<pkg>/msg/<Name>.msg` for each prefix in the
`AMENT_PREFIX_PATH` environment variable (what rosbag2 does through ament_index_cpp), so this
module needs no rclpy and no generated message modules.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path

from gap_monitor.errors import GapMonitorError

__all__ = [
    "MessageDefinitionNotFoundError",
    "ament_prefixes",
    "message_definition",
    "normalize_type",
    "type_description_hash",
]

SEPARATOR = "=" * 80

# Field types that never need a definition of their own.
_BUILTIN_TYPES = frozenset(
    {
        "bool",
        "byte",
        "char",
        "float32",
        "float64",
        "int8",
        "uint8",
        "int16",
        "uint16",
        "int32",
        "uint32",
        "int64",
        "uint64",
        "string",
        "wstring",
    }
)
_NAME = r"[A-Za-z][A-Za-z0-9_]*"
_TYPE_RE = re.compile(rf"^({_NAME})/(?:msg/)?({_NAME})$")

_lock = threading.Lock()
_text_cache: dict[tuple[tuple[str, ...], str], str] = {}
_full_cache: dict[tuple[tuple[str, ...], str], str] = {}


class MessageDefinitionNotFoundError(GapMonitorError, LookupError):
    """A `.msg` file (the type itself or one of its dependencies) is not in any ament prefix."""


def normalize_type(msgtype: str) -> str:
    """`pkg/Name` or `pkg/msg/Name` -> `pkg/msg/Name`; ValueError for anything else."""
    match = _TYPE_RE.match(msgtype.strip())
    if match is None:
        raise ValueError(f"message type {msgtype!r} is not understood; expected 'pkg/msg/Name' or 'pkg/Name'")
    return f"{match.group(1)}/msg/{match.group(2)}"


def ament_prefixes() -> tuple[str, ...]:
    """The prefixes of `AMENT_PREFIX_PATH`, in order, empty entries dropped."""
    raw = os.environ.get("AMENT_PREFIX_PATH", "")
    return tuple(p for p in raw.split(os.pathsep) if p)


def message_definition(msgtype: str, prefixes: Sequence[str] | None = None) -> str:
    """The full concatenated definition of `msgtype` (MCAP schema encoding `ros2msg`).

    Args:
        msgtype: `pkg/msg/Name` or `pkg/Name`.
        prefixes: ament prefixes to search; default: `AMENT_PREFIX_PATH`.

    Dependencies are appended depth-first in order of first use, each exactly once, each headed by
    a line of 80 `=` and `MSG: pkg/Name`, like rosbag2's local message definition source. Results
    are cached per (prefixes, type).

    Raises:
        ValueError: `msgtype` is not a message type name.
        MessageDefinitionNotFoundError: the type or a dependency has no `.msg` file; the message
            names the missing type and every prefix searched.
    """
    root = normalize_type(msgtype)
    search = tuple(prefixes) if prefixes is not None else ament_prefixes()
    key = (search, root)
    with _lock:
        cached = _full_cache.get(key)
    if cached is not None:
        return cached

    parts = [_read_msg(root, search, needed_by=None)]
    seen = {root}

    def append_deps(parent: str, text: str, depth: int) -> None:
        # Real definitions nest a handful of levels; a deep chain means a cycle in broken files.
        if depth > 64:
            raise MessageDefinitionNotFoundError(f"dependency chain of {root} is too deep")
        for dep in _dependencies(text, _package(parent)):
            if dep in seen:
                continue
            seen.add(dep)
            dep_text = _read_msg(dep, search, needed_by=parent)
            parts.append(f"\n{SEPARATOR}\nMSG: {_short(dep)}\n{dep_text}")
            append_deps(dep, dep_text, depth + 1)

    append_deps(root, parts[0], 0)
    full = "".join(parts)
    with _lock:
        _full_cache[key] = full
    return full


def type_description_hash(msgtype: str, prefixes: Sequence[str] | None = None) -> str:
    """The type's `RIHS01_...` hash from the `.json` rosidl installs beside the `.msg`, or "".

    rosbag2 (Iron and newer) stores it as `type_description_hash`; older installs have no `.json`,
    and an empty hash is valid there, so absence is not an error.
    """
    root = normalize_type(msgtype)
    pkg, _, name = root.split("/")
    for prefix in tuple(prefixes) if prefixes is not None else ament_prefixes():
        path = Path(prefix) / "share" / pkg / "msg" / f"{name}.json"
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for entry in doc.get("type_hashes", []):
            if entry.get("type_name") == root and isinstance(entry.get("hash_string"), str):
                return str(entry["hash_string"])
    return ""


def _package(normalized: str) -> str:
    return normalized.split("/", 1)[0]


def _short(normalized: str) -> str:
    pkg, _, name = normalized.split("/")
    return f"{pkg}/{name}"


def _read_msg(normalized: str, prefixes: tuple[str, ...], needed_by: str | None) -> str:
    key = (prefixes, normalized)
    with _lock:
        cached = _text_cache.get(key)
    if cached is not None:
        return cached
    pkg, _, name = normalized.split("/")
    for prefix in prefixes:
        path = Path(prefix) / "share" / pkg / "msg" / f"{name}.msg"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except OSError as err:
            raise MessageDefinitionNotFoundError(f"cannot read {path}: {err}") from err
        with _lock:
            _text_cache[key] = text
        return text
    wanted = f"share/{pkg}/msg/{name}.msg"
    reason = f" (needed by {needed_by})" if needed_by else ""
    where = (
        f"prefixes searched: {list(prefixes)}"
        if prefixes
        else "no prefixes: AMENT_PREFIX_PATH is empty or unset"
    )
    raise MessageDefinitionNotFoundError(
        f"no message definition for {normalized}{reason}: {wanted} not found; {where}"
    )


def _dependencies(text: str, package: str) -> list[str]:
    """Non-builtin field types of a `.msg` text, normalized, in order of first use."""
    deps: list[str] = []
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        token = line.split()[0]
        # Drop array suffixes (`[]`, `[9]`, `[<=3]`) and string bounds (`string<=10`).
        base = re.split(r"[\[<]", token, maxsplit=1)[0]
        if not base or base in _BUILTIN_TYPES:
            continue
        if base == "Header":
            dep = "std_msgs/msg/Header"
        elif "/" in base:
            dep = normalize_type(base)
        else:
            dep = f"{package}/msg/{base}"
        if dep not in deps:
            deps.append(dep)
    return deps
