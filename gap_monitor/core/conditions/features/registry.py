"""The registry of feature names: each modality's features with a unit, a description and the
smallest change worth noticing (`resolution`: the scorer floors its tail scale with it, so a
feature that never varied in training does not make a trivial change infinitely surprising)."""

from __future__ import annotations

from dataclasses import dataclass

from gap_monitor.core.io.modalities import MODALITIES as _MODALITY_TABLE
from gap_monitor.errors import MessageError

MODALITIES = tuple(_MODALITY_TABLE)

# Joint features are per joint: the registered name is a prefix, the joint name follows it.
JOINT_SEPARATOR = "."


class FeatureError(MessageError):
    """Input that features cannot be computed from: unknown encoding, empty or mis-sized array."""


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    unit: str
    description: str
    resolution: float


def _specs(*rows: tuple[str, str, float, str]) -> tuple[FeatureSpec, ...]:
    return tuple(FeatureSpec(name, unit, description, res) for name, unit, res, description in rows)


FEATURE_SPECS: dict[str, tuple[FeatureSpec, ...]] = {
    "camera": _specs(
        ("mean_luminance", "level (0-255)", 1.0, "mean Rec.601 luma; mono16 scaled by 1/257"),
        ("luminance_p5", "level (0-255)", 1.0, "5th percentile of luma"),
        ("luminance_p95", "level (0-255)", 1.0, "95th percentile of luma"),
        ("contrast", "level (0-255)", 0.5, "standard deviation of luma"),
        ("dark_fraction", "fraction", 0.005, "fraction of pixels with luma < 16"),
        ("saturated_fraction", "fraction", 0.005, "fraction of pixels with luma >= 250"),
        ("sharpness", "level^2", 1.0, "variance of the 4-neighbour Laplacian, luma <= 320 px wide"),
        ("noise_sigma", "level (0-255)", 0.1, "Immerkaer fast noise estimate on full-size luma"),
        ("colour_cast", "level (0-255)", 0.5, "distance of the mean (R, G, B) from the grey axis"),
    ),
    "depth": _specs(
        ("valid_fraction", "fraction", 0.005, "fraction of pixels that are finite and > 0"),
        ("depth_median_m", "m", 0.01, "median depth of valid pixels"),
        ("depth_p5_m", "m", 0.01, "5th percentile depth of valid pixels"),
        ("depth_p95_m", "m", 0.01, "95th percentile depth of valid pixels"),
        ("near_fraction", "fraction", 0.005, "fraction of all pixels valid and nearer than near_m"),
        ("edge_noise_m", "m", 0.001, "mean |4-neighbour Laplacian| where the cross is all valid"),
    ),
    "imu": _specs(
        ("accel_norm_mean", "m/s^2", 0.01, "mean |acceleration| (about g when not accelerating)"),
        ("accel_std_x", "m/s^2", 0.001, "std of x acceleration over the window"),
        ("accel_std_y", "m/s^2", 0.001, "std of y acceleration over the window"),
        ("accel_std_z", "m/s^2", 0.001, "std of z acceleration over the window"),
        ("gyro_std_x", "rad/s", 1e-4, "std of x angular rate over the window"),
        ("gyro_std_y", "rad/s", 1e-4, "std of y angular rate over the window"),
        ("gyro_std_z", "rad/s", 1e-4, "std of z angular rate over the window"),
        ("gyro_mean_x", "rad/s", 1e-4, "mean x angular rate (bias when still)"),
        ("gyro_mean_y", "rad/s", 1e-4, "mean y angular rate (bias when still)"),
        ("gyro_mean_z", "rad/s", 1e-4, "mean z angular rate (bias when still)"),
        ("nan_count", "count", 1.0, "non-finite accel/gyro values in the window"),
        ("saturation_count", "count", 1.0, "accel/gyro values at or beyond the sensor limits"),
    ),
    "joints": _specs(
        ("position", "fraction of range | rad or m", 0.001,
         "mean position, 0..1 inside the training range; raw without a range"),
        ("velocity_max_abs", "rad/s or m/s", 0.001, "max |velocity| over the window"),
        ("effort_max_abs", "N*m or N", 0.01, "max |effort| over the window"),
        ("nan_count", "count", 1.0, "non-finite position/velocity/effort values in the window"),
    ),
    "wrench": _specs(
        ("force_norm_mean", "N", 0.01, "mean |force| over the window"),
        ("force_norm_std", "N", 0.01, "std of |force| over the window"),
        ("torque_norm_mean", "N*m", 0.001, "mean |torque| over the window"),
        ("torque_norm_std", "N*m", 0.001, "std of |torque| over the window"),
        ("force_offset", "N", 0.01, "median |force| over the quietest quarter (resting offset)"),
        ("torque_offset", "N*m", 0.001, "median |torque| over the quietest quarter"),
        ("nan_count", "count", 1.0, "non-finite force/torque values in the window"),
    ),
}

# Joint features that carry a per-joint suffix; nan_count is one value for the whole arm.
PER_JOINT_FEATURES = ("position", "velocity_max_abs", "effort_max_abs")


def feature_spec(modality: str, name: str) -> FeatureSpec | None:
    """The spec of a feature key (per-joint keys resolve to their prefix); None if unregistered."""
    specs = FEATURE_SPECS.get(modality)
    if specs is None:
        return None
    base = name
    if modality == "joints" and JOINT_SEPARATOR in name:
        base = name.split(JOINT_SEPARATOR, 1)[0]
    for spec in specs:
        if spec.name == base:
            return spec
    return None


def joint_feature_name(feature: str, joint: str) -> str:
    return f"{feature}{JOINT_SEPARATOR}{joint}"


