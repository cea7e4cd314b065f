"""Raw messages of one sensor stream -> condition features, at the configured rate.

The one path from CDR bytes to feature dicts: the live node and `gap-monitor profile build` both
call it, so training and deployment are measured identically. Images are decimated by header stamp
before they are decoded (skipped frames cost nothing); IMU, joint and wrench samples go into
sliding windows at full rate and give features every hop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from gap_monitor.core import cdr
from gap_monitor.core.config import COMPRESSED_IMAGE_TYPE
from gap_monitor.core.features import FeatureError
from gap_monitor.core.features.depth import depth_features
from gap_monitor.core.features.image import decode_compressed, image_features
from gap_monitor.core.features.imu import ImuLimits, ImuWindow
from gap_monitor.core.features.joints import JointWindow
from gap_monitor.core.features.wrench import WrenchWindow

NS = 1_000_000_000
DEPTH_WORK_WIDTH = 320


class ConditionError(ValueError):
    """A message features could not be computed from (malformed bytes, unknown encoding, ...)."""


@dataclass(frozen=True)
class ConditionSettings:
    """How often each modality yields features, and the feature parameters."""

    image_rate_hz: float = 5.0
    window_s: float = 1.0
    hop_s: float = 0.2
    near_m: float = 0.3
    accel_limit_m_s2: float = 16 * 9.80665
    gyro_limit_rad_s: float = math.radians(2000.0)

    def __post_init__(self) -> None:
        for name in ("image_rate_hz", "window_s", "hop_s", "near_m", "accel_limit_m_s2", "gyro_limit_rad_s"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name}: {value!r}: a number > 0")
        if self.hop_s > self.window_s:
            raise ValueError(f"hop_s: {self.hop_s!r}: at most window_s ({self.window_s:g})")


class StreamConditions:
    """Feature extraction for one stream; `on_message` returns a feature dict when one is due."""

    def __init__(self, modality: str, msgtype: str, settings: ConditionSettings | None = None) -> None:
        self.modality = modality
        self.msgtype = msgtype
        self.settings = settings or ConditionSettings()
        s = self.settings
        self._period_ns = int(NS / s.image_rate_hz)
        self._next_image_ns: int | None = None
        self._imu = ImuWindow(s.window_s, s.hop_s, ImuLimits(s.accel_limit_m_s2, s.gyro_limit_rad_s))
        self._wrench = WrenchWindow(s.window_s, s.hop_s)
        self._joints: JointWindow | None = None
        self._joint_names: tuple[str, ...] = ()
        self.produced = 0

    def on_message(self, time_ns: int, data: bytes) -> dict[str, float] | None:
        """Features when due, else None. `time_ns` is the header stamp (receipt time without one).

        Raises ConditionError for a message features cannot be computed from."""
        try:
            features = self._features(time_ns, data)
        except (cdr.CdrError, FeatureError) as exc:
            raise ConditionError(str(exc)) from exc
        if features is not None:
            self.produced += 1
        return features

    def _due(self, time_ns: int) -> bool:
        """Decimation on the stamps: one frame a period, re-anchored after a gap or a jump back."""
        nxt = self._next_image_ns
        # A frame a little early (stamp jitter, rounding) still counts as the one due.
        if nxt is not None and self._period_ns // 10 < nxt - time_ns <= self._period_ns:
            return False
        on_grid = nxt is not None and time_ns - nxt <= self._period_ns
        self._next_image_ns = (nxt if on_grid and nxt is not None else time_ns) + self._period_ns
        return True

    def _features(self, time_ns: int, data: bytes) -> dict[str, float] | None:
        modality = self.modality
        # Highest-rate modalities first: this runs for every sample.
        if modality == "wrench":
            w = cdr.decode_wrench_stamped(data)
            return self._wrench.add(time_ns, w.force, w.torque)
        if modality == "imu":
            imu = cdr.decode_imu(data)
            return self._imu.add(time_ns, imu.linear_acceleration, imu.angular_velocity)
        if modality in ("camera", "depth"):
            if not self._due(time_ns):
                return None
            pixels, encoding = self._image(data)
            if self.modality == "depth":
                # Every n-th pixel (no interpolation: holes stay holes) keeps the statistics and
                # costs ~1/n^2: a 1280x720 depth frame would otherwise take ~25 ms.
                step = max(1, pixels.shape[1] // DEPTH_WORK_WIDTH)
                return depth_features(pixels[::step, ::step], encoding, self.settings.near_m)
            return image_features(pixels, encoding)
        if modality == "joints":
            js = cdr.decode_joint_state(data)
            names = tuple(js.name)
            if self._joints is None or names != self._joint_names:
                # A driver that changes its joint list starts a new window.
                self._joints = JointWindow(names, self.settings.window_s, self.settings.hop_s)
                self._joint_names = names
            return self._joints.add(
                time_ns, js.position, _optional(js.velocity, names), _optional(js.effort, names)
            )
        raise ConditionError(f"unknown modality {self.modality!r}")

    def _image(self, data: bytes) -> tuple[Any, str]:
        if self.msgtype == COMPRESSED_IMAGE_TYPE:
            msg = cdr.decode_compressed_image(data)
            return decode_compressed(msg.data.tobytes(), msg.format)
        img = cdr.decode_image(data)
        return img.pixels(), img.encoding


def _optional(values: Any, names: tuple[str, ...]) -> Any:
    """JointState velocity/effort may be empty (not measured): pass None rather than a mismatch."""
    arr = np.asarray(values)
    return arr if arr.size == len(names) else None


def conditions_for_streams(
    streams: Mapping[str, tuple[str, str]], settings: ConditionSettings | None = None
) -> dict[str, StreamConditions]:
    """{topic: (modality, msgtype)} -> {topic: StreamConditions}."""
    return {topic: StreamConditions(m, t, settings) for topic, (m, t) in streams.items()}
