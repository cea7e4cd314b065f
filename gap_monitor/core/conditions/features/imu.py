"""IMU features over a window of samples: gravity check, vibration/noise, gyro bias, bad values.

Statistics use the rows whose three axes are all finite; non-finite values are counted in
``nan_count`` instead of poisoning the window. Standard deviations are population (ddof=0).
Accelerometer and gyro may have different sample counts (some drivers publish them as separate
topics at different rates); with no usable rows a group's features are NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gap_monitor.core.conditions.features import FeatureError, TimeWindow, as_float_matrix

STANDARD_GRAVITY = 9.80665
_AXES = ("x", "y", "z")


@dataclass(frozen=True)
class ImuLimits:
    """Measurement ranges: a value at or beyond them is counted as saturated.

    Defaults are common MEMS full-scale settings (+-16 g, +-2000 deg/s); set the sensor's own.
    """

    accel_m_s2: float = 16.0 * STANDARD_GRAVITY
    gyro_rad_s: float = math.radians(2000.0)

    def __post_init__(self) -> None:
        for name in ("accel_m_s2", "gyro_rad_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"ImuLimits.{name}={value!r}: must be a finite number > 0")


def imu_features(
    accel: npt.ArrayLike, gyro: npt.ArrayLike, limits: ImuLimits | None = None
) -> dict[str, float]:
    """Features of N x 3 accelerations (m/s^2) and M x 3 angular rates (rad/s)."""
    limits = limits or ImuLimits()
    accel_rows = as_float_matrix("accel", accel, 3)
    gyro_rows = as_float_matrix("gyro", gyro, 3)
    if accel_rows.shape[0] == 0 and gyro_rows.shape[0] == 0:
        raise FeatureError("IMU window has no samples")
    finite_accel = accel_rows[np.isfinite(accel_rows).all(axis=1)]
    finite_gyro = gyro_rows[np.isfinite(gyro_rows).all(axis=1)]
    features: dict[str, float] = {}
    if finite_accel.shape[0]:
        features["accel_norm_mean"] = float(np.linalg.norm(finite_accel, axis=1).mean())
        accel_std = finite_accel.std(axis=0)
    else:
        features["accel_norm_mean"] = math.nan
        accel_std = np.full(3, math.nan)
    if finite_gyro.shape[0]:
        gyro_std = finite_gyro.std(axis=0)
        gyro_mean = finite_gyro.mean(axis=0)
    else:
        gyro_std = gyro_mean = np.full(3, math.nan)
    for axis, value in zip(_AXES, accel_std, strict=True):
        features[f"accel_std_{axis}"] = float(value)
    for axis, value in zip(_AXES, gyro_std, strict=True):
        features[f"gyro_std_{axis}"] = float(value)
    for axis, value in zip(_AXES, gyro_mean, strict=True):
        features[f"gyro_mean_{axis}"] = float(value)
    features["nan_count"] = float(
        np.count_nonzero(~np.isfinite(accel_rows)) + np.count_nonzero(~np.isfinite(gyro_rows))
    )
    with np.errstate(invalid="ignore"):
        saturated = np.count_nonzero(np.abs(accel_rows) >= limits.accel_m_s2) + np.count_nonzero(
            np.abs(gyro_rows) >= limits.gyro_rad_s
        )
    features["saturation_count"] = float(saturated)
    return features


class ImuWindow:
    """Feeds IMU samples one at a time; every ``hop_s`` returns the features of the last
    ``window_s``. Pass accel and gyro together (sensor_msgs/Imu) or separately (split topics).
    """

    def __init__(
        self,
        window_s: float = 1.0,
        hop_s: float | None = None,
        limits: ImuLimits | None = None,
        min_samples: int = 2,
    ) -> None:
        if min_samples < 1:
            raise ValueError(f"min_samples={min_samples!r}: must be >= 1")
        self._window = TimeWindow(window_s, hop_s, {"accel": 3, "gyro": 3})
        self._limits = limits or ImuLimits()
        self._min_samples = min_samples

    def reset(self) -> None:
        self._window.reset()

    def add(
        self,
        time_ns: int,
        accel: npt.ArrayLike | None = None,
        gyro: npt.ArrayLike | None = None,
    ) -> dict[str, float] | None:
        """Add one sample; the window's features when a hop is due (and it holds enough samples)."""
        if not self._window.push(time_ns, {"accel": accel, "gyro": gyro}):
            return None
        return self._due_features()

    def add_many(
        self,
        times_ns: npt.NDArray[np.int64],
        accel: npt.NDArray[np.float64],
        gyro: npt.NDArray[np.float64],
    ) -> list[tuple[int, dict[str, float]]]:
        """`add` of N samples (N x 3 each): (sample index, features) for every hop that gives some."""
        rows = {"accel": (accel, None), "gyro": (gyro, None)}
        return self._window.features_many(times_ns, rows, self._due_features)

    def _due_features(self) -> dict[str, float] | None:
        accel_rows = self._window.array("accel")
        gyro_rows = self._window.array("gyro")
        if max(accel_rows.shape[0], gyro_rows.shape[0]) < self._min_samples:
            return None
        return imu_features(accel_rows, gyro_rows, self._limits)
