"""Named scalar features computed from sensor arrays (no message types here).

Each modality module (image, depth, imu, joints, wrench) turns numpy arrays into a plain
``dict[str, float]`` whose keys are registered (`registry`) with a unit and a description, so a
profile, a score or a diagnostic can say what a number means. Windowed modalities (IMU, joints,
wrench) are fed through a `TimeWindow` that emits features every hop.
"""

from gap_monitor.core.conditions.features.numeric import as_float_matrix, percentile_from_cumulative
from gap_monitor.core.conditions.features.registry import (
    FEATURE_SPECS,
    JOINT_SEPARATOR,
    MODALITIES,
    PER_JOINT_FEATURES,
    FeatureError,
    FeatureSpec,
    feature_spec,
    joint_feature_name,
)
from gap_monitor.core.conditions.features.window import TimeWindow

__all__ = [
    "FEATURE_SPECS",
    "JOINT_SEPARATOR",
    "MODALITIES",
    "PER_JOINT_FEATURES",
    "FeatureError",
    "FeatureSpec",
    "TimeWindow",
    "as_float_matrix",
    "feature_spec",
    "joint_feature_name",
    "percentile_from_cumulative",
]
