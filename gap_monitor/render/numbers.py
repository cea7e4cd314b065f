"""Numbers for people, shared by the text and HTML renderings.

The values of a check come from the check itself (`TimingSummary.values()`, `SkewSummary.values()`,
`OffsetEstimate.values()`, in `core/values.py`'s formats); a table shows a missing one as "-".
"""

from __future__ import annotations

from datetime import datetime, timezone

from gap_monitor.core.units import NS_PER_S

__all__ = ["SKEW_COLUMNS", "format_bytes", "format_utc", "shown"]



# A skew pair's columns in a table: (header, key of SkewSummary.values()).
SKEW_COLUMNS = (
    ("matched", "matched"),
    ("median ms", "offset_median_ms"),
    ("p95 ms", "offset_p95_ms"),
    ("drift ppm", "drift_ppm"),
    ("unmatched %", "unmatched_pct"),
)


def shown(value: str) -> str:
    """A check's display value in a table: "-" where it was not measured (core/values.MISSING)."""
    return value or "-"


def format_utc(ns: int | None) -> str:
    """A time in ns since the epoch as `2024-01-01 12:00:00.000 UTC`; "-" when there is none."""
    if ns is None:
        return "-"
    at = datetime.fromtimestamp(ns / NS_PER_S, tz=timezone.utc)
    return at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def format_bytes(n: int) -> str:
    """`512 B`, `1.5 KB`, `2.0 MB`, `3.1 GB` (powers of 1000)."""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"
