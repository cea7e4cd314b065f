"""Input coercion and cheap order statistics the feature modules share."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from gap_monitor.core.conditions.features.registry import FeatureError


def as_float_matrix(name: str, values: npt.ArrayLike, width: int | None) -> npt.NDArray[np.float64]:
    """N x width float64 array (a single row may be given 1-D); FeatureError otherwise."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise FeatureError(f"{name}: not a numeric array ({exc})") from exc
    if array.ndim == 1 and width is not None and array.shape[0] == width:
        array = array.reshape(1, width)
    if array.ndim != 2 or (width is not None and array.shape[1] != width):
        shape = "N x ?" if width is None else f"N x {width}"
        raise FeatureError(f"{name}: expected an {shape} array, got shape {array.shape}")
    return array


def percentile_from_cumulative(cumulative: npt.NDArray[np.float64], percent: float) -> float:
    """np.percentile's linear interpolation, read from cumulative counts of the values 0, 1, 2...

    A histogram of integer pixel values is far cheaper than sorting a frame.
    """
    position = percent / 100.0 * (float(cumulative[-1]) - 1.0)
    below = math.floor(position)
    fraction = position - below
    # The k-th smallest value (0-based) is the first level whose cumulative count exceeds k.
    low = float(np.searchsorted(cumulative, below, side="right"))
    if fraction == 0.0:
        return low
    high = float(np.searchsorted(cumulative, below + 1, side="right"))
    return low + fraction * (high - low)
