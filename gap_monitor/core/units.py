"""Time units: every time in the package is an integer count of nanoseconds, as ROS stamps are."""

from __future__ import annotations

__all__ = ["NS_PER_MS", "NS_PER_S"]

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000
