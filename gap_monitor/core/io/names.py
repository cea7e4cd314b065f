"""ROS names the whole package shares: the node's default name and the topic name syntax.

They sit at the bottom of core so that the analysers (conditions, capture) and the config that
validates their settings use the same names without importing each other.
"""

from __future__ import annotations

from typing import Any

__all__ = ["NODE_NAME", "is_topic_name", "status_prefix"]

# The monitor node's default name: the key of its parameter file section and its diagnostics prefix.
NODE_NAME = "gap_monitor"


def is_topic_name(topic: Any) -> bool:
    """A fully qualified or relative ROS topic name (letters, digits, `_`, `/`, `~`; no `//`)."""
    if not isinstance(topic, str) or not topic or topic.endswith("/") or "//" in topic:
        return False
    return all(c.isalnum() or c in "/_~" for c in topic) and not topic[0].isdigit()


def status_prefix(fully_qualified_name: str) -> str:
    """The default name prefix of a node's /diagnostics statuses: its fully qualified name without
    the leading slash (`gap_monitor`, `robot1/gap_monitor`), so monitors in two namespaces never
    publish the same status names into one /diagnostics."""
    return fully_qualified_name.lstrip("/") or NODE_NAME
