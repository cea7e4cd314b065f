"""Force-torque features over a window: load level, vibration, resting offset (sensor drift).

The resting offset is the median norm over the quietest quarter of the window, quietness being
how little the vector changed since the previous sample: a drifting bias shows there even while
the arm works through the rest of the window. Windows of fewer than 4 samples use all samples.
Rows with a non-finite component are left out and counted in ``nan_count``.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from gap_monitor.core.conditions.features import FeatureError, TimeWindow, as_float_matrix


def wrench_features(force: npt.ArrayLike, torque: npt.ArrayLike) -> dict[str, float]:
    """Features of N x 3 forces (N) and N x 3 torques (N*m)."""
    force_rows = as_float_matrix("force", force, 3)
    torque_rows = as_float_matrix("torque", torque, 3)
    if force_rows.shape[0] == 0 and torque_rows.shape[0] == 0:
        raise FeatureError("wrench window has no samples")
    force_mean, force_std, force_offset = _norm_stats(force_rows)
    torque_mean, torque_std, torque_offset = _norm_stats(torque_rows)
    nan_count = np.count_nonzero(~np.isfinite(force_rows)) + np.count_nonzero(
        ~np.isfinite(torque_rows)
    )
    return {
        "force_norm_mean": force_mean,
        "force_norm_std": force_std,
        "torque_norm_mean": torque_mean,
        "torque_norm_std": torque_std,
        "force_offset": force_offset,
        "torque_offset": torque_offset,
        "nan_count": float(nan_count),
    }


def resting_offset(vectors: npt.NDArray[np.float64]) -> float:
    """Median norm over the quarter of samples that changed least since their predecessor."""
    norms = np.linalg.norm(vectors, axis=1)
    if norms.shape[0] < 4:
        return float(np.median(norms)) if norms.size else math.nan
    change = np.linalg.norm(np.diff(vectors, axis=0), axis=1)
    change = np.concatenate([change[:1], change])  # the first sample borrows its successor's
    quiet = np.argsort(change, kind="stable")[: norms.shape[0] // 4]
    return float(np.median(norms[quiet]))


def _norm_stats(rows: npt.NDArray[np.float64]) -> tuple[float, float, float]:
    finite = rows[np.isfinite(rows).all(axis=1)]
    if finite.shape[0] == 0:
        return math.nan, math.nan, math.nan
    norms = np.linalg.norm(finite, axis=1)
    return float(norms.mean()), float(norms.std()), resting_offset(finite)


class WrenchWindow:
    """Feeds wrench samples one at a time; every ``hop_s`` returns the last ``window_s``'s features."""

    def __init__(
        self, window_s: float = 1.0, hop_s: float | None = None, min_samples: int = 2
    ) -> None:
        if min_samples < 1:
            raise ValueError(f"min_samples={min_samples!r}: must be >= 1")
        self._window = TimeWindow(window_s, hop_s, {"force": 3, "torque": 3})
        self._min_samples = min_samples

    def reset(self) -> None:
        self._window.reset()

    def add(
        self, time_ns: int, force: npt.ArrayLike, torque: npt.ArrayLike
    ) -> dict[str, float] | None:
        if not self._window.push(time_ns, {"force": force, "torque": torque}):
            return None
        return self._due_features()

    def add_many(
        self,
        times_ns: npt.NDArray[np.int64],
        force: npt.NDArray[np.float64],
        torque: npt.NDArray[np.float64],
    ) -> list[tuple[int, dict[str, float]]]:
        """`add` of N samples (N x 3 each): (sample index, features) for every hop that gives some."""
        rows = {"force": (force, None), "torque": (torque, None)}
        return self._window.features_many(times_ns, rows, self._due_features)

    def _due_features(self) -> dict[str, float] | None:
        force_rows = self._window.array("force")
        if force_rows.shape[0] < self._min_samples:
            return None
        return wrench_features(force_rows, self._window.array("torque"))
