"""Joint features over a window: where each joint sits relative to its training range, and how
fast and hard it is driven.

Keys are ``<feature>.<joint>`` (see ``joint_feature_name``). With a training range (lo, hi) for a
joint its position is normalised to 0..1 inside the range (beyond it: < 0 or > 1); without one the
raw mean position is reported. Velocity and effort are absent from the output when the messages
carry none (sensor_msgs/JointState allows empty arrays). Non-finite values are left out of the
statistics and counted in ``nan_count``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from gap_monitor.core.conditions.features import FeatureError, TimeWindow, as_float_matrix, joint_feature_name

JointRanges = Mapping[str, "tuple[float, float]"]


def validate_ranges(names: Sequence[str], ranges: JointRanges | None) -> None:
    """ValueError naming the joint for a range that is not finite lo < hi or names no joint."""
    if not ranges:
        return
    unknown = sorted(set(ranges) - set(names))
    if unknown:
        raise ValueError(f"ranges name unknown joints {unknown}; joints are {list(names)}")
    for joint, bounds in ranges.items():
        lo, hi = bounds
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"ranges[{joint!r}]=({lo!r}, {hi!r}): need finite lo < hi")


def joint_features(
    names: Sequence[str],
    positions: npt.ArrayLike,
    velocities: npt.ArrayLike | None = None,
    efforts: npt.ArrayLike | None = None,
    ranges: JointRanges | None = None,
) -> dict[str, float]:
    """Features of N x J positions (and optional N x J velocities, efforts) for joints ``names``."""
    if len(set(names)) != len(names) or not names:
        raise FeatureError(f"joint names must be non-empty and unique, got {list(names)}")
    validate_ranges(names, ranges)
    width = len(names)
    position_rows = as_float_matrix("positions", positions, width)
    if position_rows.shape[0] == 0:
        raise FeatureError("joint window has no samples")
    arrays = [position_rows]
    features: dict[str, float] = {}
    mean_position = _nan_reduce(position_rows, np.mean)
    for index, joint in enumerate(names):
        value = float(mean_position[index])
        if ranges and joint in ranges:
            lo, hi = ranges[joint]
            value = (value - lo) / (hi - lo)
        features[joint_feature_name("position", joint)] = value
    for label, values in (("velocity_max_abs", velocities), ("effort_max_abs", efforts)):
        rows = _optional_rows(label, values, width)
        if rows is None:
            continue
        arrays.append(rows)
        peak = _nan_reduce(np.abs(rows), np.max)
        for index, joint in enumerate(names):
            features[joint_feature_name(label, joint)] = float(peak[index])
    features["nan_count"] = float(sum(np.count_nonzero(~np.isfinite(a)) for a in arrays))
    return features


def _optional_rows(
    label: str, values: npt.ArrayLike | None, width: int
) -> npt.NDArray[np.float64] | None:
    if values is None:
        return None
    rows = as_float_matrix(label, values, None)
    if rows.size == 0:
        return None
    if rows.shape[1] != width:
        raise FeatureError(f"{label}: {rows.shape[1]} values per sample for {width} joints")
    return rows


def _nan_reduce(
    rows: npt.NDArray[np.float64], reduce: Callable[[npt.NDArray[np.float64]], Any]
) -> npt.NDArray[np.float64]:
    """Column-wise reduce over finite values; NaN for a column with none."""
    result = np.full(rows.shape[1], math.nan)
    finite = np.isfinite(rows)
    for column in range(rows.shape[1]):
        values = rows[finite[:, column], column]
        if values.size:
            result[column] = float(reduce(values))
    return result


class JointWindow:
    """Feeds joint samples one at a time; every ``hop_s`` returns the last ``window_s``'s features."""

    def __init__(
        self,
        names: Sequence[str],
        window_s: float = 1.0,
        hop_s: float | None = None,
        ranges: JointRanges | None = None,
        min_samples: int = 1,
    ) -> None:
        if min_samples < 1:
            raise ValueError(f"min_samples={min_samples!r}: must be >= 1")
        if not names or len(set(names)) != len(names):
            raise ValueError(f"names={list(names)!r}: joint names must be non-empty and unique")
        validate_ranges(names, ranges)
        self.names = tuple(names)
        self._ranges = dict(ranges) if ranges else None
        width = len(self.names)
        self._window = TimeWindow(
            window_s, hop_s, {"position": width, "velocity": width, "effort": width}
        )
        self._min_samples = min_samples

    def reset(self) -> None:
        self._window.reset()

    def add(
        self,
        time_ns: int,
        positions: npt.ArrayLike,
        velocities: npt.ArrayLike | None = None,
        efforts: npt.ArrayLike | None = None,
    ) -> dict[str, float] | None:
        rows: dict[str, npt.ArrayLike | None] = {"position": positions}
        for label, values in (("velocity", velocities), ("effort", efforts)):
            if values is not None and np.size(values) > 0:
                rows[label] = values
        if not self._window.push(time_ns, rows):
            return None
        return self._due_features()

    def add_many(
        self,
        times_ns: npt.NDArray[np.int64],
        positions: npt.NDArray[np.float64],
        velocities: tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]],
        efforts: tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]],
    ) -> list[tuple[int, dict[str, float]]]:
        """`add` of N samples (N x joints each; velocities and efforts with the mask of the
        samples that carry them): (sample index, features) for every hop that gives some."""
        rows = {"position": (positions, None), "velocity": velocities, "effort": efforts}
        return self._window.features_many(times_ns, rows, self._due_features)

    def _due_features(self) -> dict[str, float] | None:
        if self._window.count("position") < self._min_samples:
            return None
        velocity = self._window.array("velocity")
        effort = self._window.array("effort")
        return joint_features(
            self.names,
            self._window.array("position"),
            velocity if velocity.size else None,
            effort if effort.size else None,
            self._ranges,
        )
