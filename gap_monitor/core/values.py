"""How a check's values are shown: number formats and the one rule for a missing value.

Each check renders its own values, once: `HealthReport.values()`, `TimingSummary.values()`,
`SkewSummary.values()`, `OffsetEstimate.values()`, `scoring.condition_values` and
`diagnostics.capture_values` return named strings in display form, the form /diagnostics carries
(diagnostic_msgs KeyValue) and any text output can show.

The missing-value rule: a value that was not measured (None: too few messages, nothing matched, no
estimate yet) shows as MISSING, the empty string. A number always shows as itself, NaN and inf
included: a NaN feature (a depth image without one valid pixel) is a measurement that says so.
JSON has no NaN or inf, so `json_number` writes those as null as well.
"""

from __future__ import annotations

import math

MISSING = ""


def number(value: float | None, spec: str = ".2f") -> str:
    """`value` in the format `spec`; MISSING when it was not measured."""
    return MISSING if value is None else format(value, spec)


def flag(value: bool) -> str:
    """A yes/no value as ROS tools write it ("true", "false")."""
    return "true" if value else "false"


def in_ms(seconds: float | None) -> float | None:
    """Seconds to milliseconds; a missing value stays missing."""
    return None if seconds is None else seconds * 1000


def json_number(value: float | None) -> float | None:
    """A number for JSON: None (null) when missing, and for NaN and inf, which JSON cannot hold."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)
