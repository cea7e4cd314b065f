"""Depth image features: coverage, range distribution, near obstacles, surface noise.

16UC1 (millimetres) and 32FC1 (metres) are both reported in metres. A pixel is valid when it is
finite and > 0 (drivers write 0 or NaN where there is no return). Range statistics are over valid
pixels; ``valid_fraction`` and ``near_fraction`` share the all-pixels denominator so they stay
defined when nothing is valid. With no valid pixels the range statistics are NaN, not an error:
a covered or blinded sensor is exactly the condition to report.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from gap_monitor.core.conditions.features import FeatureError, percentile_from_cumulative

DEPTH_ENCODINGS = ("16UC1", "32FC1")
DEFAULT_NEAR_M = 0.3

_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
# compressed_depth_image_transport prefixes the PNG with {int32 format; float32 depthQuant[2]}.
_COMPRESSED_DEPTH_HEADER = struct.Struct("<iff")


def depth_features(
    depth: npt.NDArray[Any], encoding: str, near_m: float = DEFAULT_NEAR_M
) -> dict[str, float]:
    """Features of an H x W depth image (16UC1 uint16 mm, or 32FC1 float32 m)."""
    if not near_m > 0.0 or not math.isfinite(near_m):
        raise ValueError(f"near_m={near_m!r}: must be a finite distance > 0 (metres)")
    if not isinstance(depth, np.ndarray):
        raise FeatureError(f"depth must be a numpy array, got {type(depth).__name__}")
    if depth.ndim == 3 and depth.shape[2] == 1:
        depth = depth[:, :, 0]
    if not depth.dtype.isnative:  # is_bigendian messages
        depth = depth.astype(depth.dtype.newbyteorder("="))
    if encoding == "16UC1":
        _check_shape(depth, encoding, np.dtype(np.uint16))
        return _millimetre_features(depth, near_m)
    if encoding == "32FC1":
        _check_shape(depth, encoding, np.dtype(np.float32))
        return _metre_features(depth, near_m)
    raise FeatureError(
        f"unsupported depth encoding {encoding!r}; supported: {', '.join(DEPTH_ENCODINGS)}"
    )


def decode_compressed_depth(
    data: bytes | bytearray | memoryview, fmt: str
) -> tuple[npt.NDArray[Any], str]:
    """Decode compressed_depth_image_transport data ("16UC1; compressedDepth png") to an array.

    16UC1 comes back as stored (mm). 32FC1 is stored as quantised inverse depth and is restored
    with the header's parameters: depth = a / (value - b), 0 meaning no return (NaN here).
    """
    lowered = fmt.lower()
    if "compresseddepth" not in lowered:
        raise FeatureError(f"format {fmt!r} is not compressedDepth")
    if "rvl" in lowered:
        raise FeatureError(f"format {fmt!r}: RVL compressed depth is not supported (png only)")
    encoding = fmt.split(";", 1)[0].strip()
    if encoding not in DEPTH_ENCODINGS:
        raise FeatureError(f"format {fmt!r}: depth encoding must be one of {DEPTH_ENCODINGS}")
    raw = bytes(data)
    if len(raw) <= _COMPRESSED_DEPTH_HEADER.size:
        raise FeatureError(f"compressedDepth data of {len(raw)} bytes has no image after the header")
    _, quant_a, quant_b = _COMPRESSED_DEPTH_HEADER.unpack_from(raw)
    payload = np.frombuffer(raw, dtype=np.uint8, offset=_COMPRESSED_DEPTH_HEADER.size)
    decoded = cv2.imdecode(payload, cv2.IMREAD_UNCHANGED)
    if decoded is None or decoded.ndim != 2 or decoded.dtype != np.uint16:
        raise FeatureError(f"could not decode compressedDepth data ({len(raw)} bytes) as 16-bit png")
    stored = np.asarray(decoded)
    if encoding == "16UC1":
        return stored, encoding
    values = stored.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        metres = np.float32(quant_a) / (values - np.float32(quant_b))
    metres[stored == 0] = np.nan
    return metres.astype(np.float32), encoding


def _check_shape(depth: npt.NDArray[Any], encoding: str, dtype: np.dtype[Any]) -> None:
    if depth.ndim != 2 or depth.dtype != dtype:
        raise FeatureError(
            f"encoding {encoding!r} needs an H x W {dtype.name} array, "
            f"got shape {depth.shape} {depth.dtype}"
        )
    if depth.size == 0:
        raise FeatureError(f"depth image is empty (shape {depth.shape})")


def _millimetre_features(depth: npt.NDArray[Any], near_m: float) -> dict[str, float]:
    # An exact 65536-bin histogram gives the percentiles without sorting.
    hist = np.bincount(depth.reshape(-1), minlength=65536).astype(np.float64)
    hist[0] = 0.0
    cumulative = np.cumsum(hist)
    valid = float(cumulative[-1])
    total = float(depth.size)
    near_mm = math.ceil(near_m * 1000.0) - 1  # depth_mm < near_m*1000  <=>  depth_mm <= this
    near = float(cumulative[min(near_mm, 65535)]) if near_mm >= 1 else 0.0
    if valid > 0:
        p5, median, p95 = (percentile_from_cumulative(cumulative, q) / 1000.0 for q in (5, 50, 95))
    else:
        p5 = median = p95 = math.nan
    metres = depth.astype(np.float32) * np.float32(0.001)
    return _assemble(valid / total, median, p5, p95, near / total, metres, depth > 0)


def _metre_features(depth: npt.NDArray[Any], near_m: float) -> dict[str, float]:
    with np.errstate(invalid="ignore"):
        valid_mask = np.isfinite(depth) & (depth > 0)
    values = depth[valid_mask]
    total = float(depth.size)
    if values.size:
        p5, median, p95 = (float(v) for v in np.percentile(values, [5.0, 50.0, 95.0]))
    else:
        p5 = median = p95 = math.nan
    near = float(np.count_nonzero(values < near_m))
    filled = np.where(valid_mask, depth, np.float32(0.0)).astype(np.float32)
    return _assemble(values.size / total, median, p5, p95, near / total, filled, valid_mask)


def _assemble(
    valid_fraction: float,
    median: float,
    p5: float,
    p95: float,
    near_fraction: float,
    metres: npt.NDArray[np.float32],
    valid_mask: npt.NDArray[np.bool_],
) -> dict[str, float]:
    return {
        "valid_fraction": float(valid_fraction),
        "depth_median_m": float(median),
        "depth_p5_m": float(p5),
        "depth_p95_m": float(p95),
        "near_fraction": float(near_fraction),
        "edge_noise_m": _edge_noise(metres, valid_mask),
    }


def _edge_noise(metres: npt.NDArray[np.float32], valid_mask: npt.NDArray[np.bool_]) -> float:
    """Mean |4-neighbour Laplacian| over pixels whose whole cross (self + 4 neighbours) is valid."""
    if metres.shape[0] < 3 or metres.shape[1] < 3:
        return math.nan
    filled = np.where(valid_mask, metres, np.float32(0.0)).astype(np.float32)
    laplacian = cv2.Laplacian(filled, cv2.CV_32F, ksize=1)
    # Eroding with a zero border keeps only interior pixels whose cross is fully valid.
    cross_valid = cv2.erode(
        valid_mask.astype(np.uint8), _CROSS, borderType=cv2.BORDER_CONSTANT, borderValue=0
    ).astype(bool)
    if not cross_valid.any():
        return math.nan
    return float(np.mean(np.abs(laplacian[cross_valid]), dtype=np.float64))

