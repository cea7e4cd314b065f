"""How often each modality of a stream yields condition features, and the feature parameters."""

from __future__ import annotations

import math
from dataclasses import dataclass


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
