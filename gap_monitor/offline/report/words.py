"""The report's words: the training range's name, the collection-target criterion, and shares,
durations and units as the report's sentences (and the HTML) put them."""

from __future__ import annotations

import math

__all__ = ["CRITERION", "RANGE_NAME", "duration", "percent", "readable_unit"]

RANGE_NAME = "p1-p99"


CRITERION = (
    "A feature side is a collection target when, on that side of the training p1-p99 range, "
    "persistent novel samples cover at least min_share of the stream's deployment samples. A sample "
    "is novel when the feature alone would take the stream's score over the profile's calibrated "
    "alarm threshold (score -log10 min(1, 2 m p), p the two-sided tail probability of the "
    "monitor's tail model, m the stream's scored features); novel samples persist when fire_k of "
    "fire_n consecutive samples are novel (the calibrated alarm's rule). Held-out training data "
    "exceeds that threshold at most at the calibrated false-alarm rate."
)


def percent(share: float | None) -> str:
    """A share as a percentage for people: "-" when unknown, "< 0.1 %" for a trace, else 1-2 digits."""
    if share is None or not math.isfinite(share):
        return "-"
    value = 100.0 * share
    if value == 0:
        return "0 %"
    if value < 0.1:
        return "< 0.1 %"
    if value < 10:
        return f"{value:.1f} %"
    return f"{value:.0f} %"


def duration(seconds: float) -> str:
    """`12.3 s`, `4.5 min` or `1.2 h`."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def readable_unit(unit: str) -> bool:
    """Physical units read well after a number; descriptive ones ("level (0-255)") do not."""
    return bool(unit) and not any(c in unit for c in "(|") and unit not in ("fraction", "count")
