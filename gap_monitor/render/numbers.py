"""Numbers for people, shared by the text and HTML renderings: one rule for a missing value ("-")."""

from __future__ import annotations

import math

__all__ = ["format_optional"]


def format_optional(value: float | None, fmt: str) -> str:
    """`value` in the format spec `fmt`; "-" when there is none or it is not finite."""
    return "-" if value is None or not math.isfinite(value) else format(value, fmt)
