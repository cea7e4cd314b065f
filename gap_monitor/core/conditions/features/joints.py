"""Joint features over a window: where each joint sits relative to its training range, and how
fast and hard it is driven.

Keys are ``<feature>.<joint>`` (see ``joint_feature_name``). With a training range (lo, hi) for a
joint its position is normalised to 0..1 inside the range (beyond it: < 0 or > 1); without one the
raw mean position is reported. Velocity and effort are absent from the output when the messages
carry none (sensor_msgs/JointState allows empty arrays). Non-finite values are left out of the
statistics and counted in ``nan_count``.

A message may name at most ``MAX_JOINTS`` joints: each joint is three features, every one of them
stored per sample for the window and scored every hop, so an unbounded joint list is an unbounded
cost per message; a longer list is a FeatureError (the stream counts the message as malformed).
Up to the cap the statistics are column-wise numpy reductions and the keys are built once per
joint list, so a hop costs well under a millisecond for a 7-joint arm and a few at the cap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from gap_monitor.core.conditions.features import FeatureError, TimeWindow, as_float_matrix, joint_feature_name

JointRanges = Mapping[str, "tuple[float, float]"]

# Real robots publish tens of joints (a humanoid with hands about a hundred); ten times that is
# not a robot's joint list but a broken or hostile publisher.
MAX_JOINTS = 1000


def validate_names(names: Sequence[str]) -> None:
    """FeatureError for an empty, repeated or over-long joint list (``MAX_JOINTS``)."""
    if len(names) > MAX_JOINTS:
        raise FeatureError(f"{len(names)} joints in one message: more than the {MAX_JOINTS} accepted")
    if not names or len(set(names)) != len(names):
        raise FeatureError(f"joint names must be non-empty and unique, got {_shown(names)}")


def _shown(names: Sequence[str], limit: int = 20) -> str:
    listed = repr(list(names[:limit]))
    return listed if len(names) <= limit else f"{listed[:-1]}, ... (+{len(names) - limit} more)]"


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
    validate_names(names)
    validate_ranges(names, ranges)
    return _joint_features(_FeatureKeys(names), positions, velocities, efforts, ranges)


class _FeatureKeys:
    """The feature keys of one joint list, built once (a window emits them every hop)."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        self.keys = {
            label: [joint_feature_name(label, joint) for joint in self.names]
            for label in ("position", "velocity_max_abs", "effort_max_abs")
        }


def _joint_features(
    keys: _FeatureKeys,
    positions: npt.ArrayLike,
    velocities: npt.ArrayLike | None,
    efforts: npt.ArrayLike | None,
    ranges: JointRanges | None,
) -> dict[str, float]:
    names = keys.names
    width = len(names)
    position_rows = as_float_matrix("positions", positions, width)
    if position_rows.shape[0] == 0:
        raise FeatureError("joint window has no samples")
    arrays = [position_rows]
    features: dict[str, float] = {}
    mean_position = _finite_mean(position_rows)
    if ranges:
        for index, joint in enumerate(names):
            if joint in ranges:
                lo, hi = ranges[joint]
                mean_position[index] = (mean_position[index] - lo) / (hi - lo)
    features.update(zip(keys.keys["position"], mean_position.tolist(), strict=True))
    for label, values in (("velocity_max_abs", velocities), ("effort_max_abs", efforts)):
        rows = _optional_rows(label, values, width)
        if rows is None:
            continue
        arrays.append(rows)
        features.update(zip(keys.keys[label], _finite_max(np.abs(rows)).tolist(), strict=True))
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


def _finite_mean(rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Column-wise mean of the finite values; NaN for a column with none."""
    finite = np.isfinite(rows)
    counts = finite.sum(axis=0)
    # Each column summed as one contiguous row: the pairwise sum np.mean does on a 1-D column.
    sums = np.ascontiguousarray(np.where(finite, rows, 0.0).T).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, math.nan)


def _finite_max(rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Column-wise maximum of the finite values; NaN for a column with none."""
    finite = np.isfinite(rows)
    peak = np.where(finite, rows, -np.inf).max(axis=0, initial=-np.inf)
    return np.where(finite.any(axis=0), peak, math.nan)


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
        try:
            validate_names(names)
        except FeatureError as exc:
            raise ValueError(str(exc)) from exc
        validate_ranges(names, ranges)
        self.names = tuple(names)
        self._keys = _FeatureKeys(self.names)
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
        return _joint_features(
            self._keys,
            self._window.array("position"),
            velocity if velocity.size else None,
            effort if effort.size else None,
            self._ranges,
        )
