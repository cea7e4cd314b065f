"""Subscribe with the QoS the publishers offer, as rosbag2 does.

A reliable subscription never matches a best-effort publisher, and a best-effort subscription to a
reliable publisher of large images loses most frames over Fast DDS. So: reliable when every known
publisher is reliable, best-effort otherwise (it matches anything), transient-local when every
publisher is; re-checked as publishers come and go.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy


def adapted_qos(
    publisher_profiles: Iterable[QoSProfile], depth: int, reliability: str = "auto"
) -> QoSProfile:
    offers = list(publisher_profiles)
    if reliability == "reliable":
        rel = ReliabilityPolicy.RELIABLE
    elif reliability == "best_effort" or not offers:
        rel = ReliabilityPolicy.BEST_EFFORT
    else:
        all_reliable = all(p.reliability == ReliabilityPolicy.RELIABLE for p in offers)
        rel = ReliabilityPolicy.RELIABLE if all_reliable else ReliabilityPolicy.BEST_EFFORT
    all_latched = bool(offers) and all(p.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in offers)
    durability = DurabilityPolicy.TRANSIENT_LOCAL if all_latched else DurabilityPolicy.VOLATILE
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=rel, durability=durability)


def same_qos(a: QoSProfile, b: QoSProfile) -> bool:
    return (a.reliability, a.durability, a.depth) == (b.reliability, b.durability, b.depth)


def describe(qos: QoSProfile) -> str:
    def short(policy: Any) -> str:
        return str(policy.name).lower()

    return f"{short(qos.reliability)}/{short(qos.durability)}/depth {qos.depth}"
