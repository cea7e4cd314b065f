"""Numbers for people, shared by the text and HTML renderings: one rule for a missing value ("-")."""

from __future__ import annotations

import math
from datetime import datetime, timezone

__all__ = ["format_bytes", "format_optional", "format_utc"]

_NS_PER_S = 1_000_000_000


def format_optional(value: float | None, fmt: str) -> str:
    """`value` in the format spec `fmt`; "-" when there is none or it is not finite."""
    return "-" if value is None or not math.isfinite(value) else format(value, fmt)


def format_utc(ns: int | None) -> str:
    """A time in ns since the epoch as `2024-01-01 12:00:00.000 UTC`; "-" when there is none."""
    if ns is None:
        return "-"
    at = datetime.fromtimestamp(ns / _NS_PER_S, tz=timezone.utc)
    return at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def format_bytes(n: int) -> str:
    """`512 B`, `1.5 KB`, `2.0 MB`, `3.1 GB` (powers of 1000)."""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"
