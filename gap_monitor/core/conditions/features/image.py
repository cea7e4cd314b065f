"""Camera image features: brightness, contrast, exposure clipping, sharpness, noise, colour cast.

Luma is Rec.601 (OpenCV's colour-to-grey conversion, rounded to 8 bits) on a 0..255 scale; mono16
is scaled by 255/65535 = 1/257. Brightness statistics come from an exact histogram of the luma at
full resolution (a 256- or 65536-bin count is cheaper than sorting), so they match
``np.percentile(luma, q)`` (linear interpolation) exactly. Sharpness is measured on luma downscaled
to at most ``SHARPNESS_WIDTH`` pixels wide (area averaging), so the same scene at a higher
resolution does not look sharper or blurrier; noise is estimated at full resolution, where sensor
noise lives.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from gap_monitor.core.conditions.features import FeatureError, percentile_from_cumulative

DARK_LEVEL = 16
SATURATED_LEVEL = 250
SHARPNESS_WIDTH = 320
MONO16_SCALE = 1.0 / 257.0

_TO_GREY = {
    "rgb8": cv2.COLOR_RGB2GRAY,
    "bgr8": cv2.COLOR_BGR2GRAY,
    "8UC3": cv2.COLOR_BGR2GRAY,
    "rgba8": cv2.COLOR_RGBA2GRAY,
    "bgra8": cv2.COLOR_BGRA2GRAY,
    "8UC4": cv2.COLOR_BGRA2GRAY,
}
_CHANNELS = {"rgb8": 3, "bgr8": 3, "8UC3": 3, "rgba8": 4, "bgra8": 4, "8UC4": 4}
_MONO8 = ("mono8", "8UC1")
_MONO16 = ("mono16",)
IMAGE_ENCODINGS = (*_TO_GREY, *_MONO8, *_MONO16)

# Immerkaer (1996), "Fast noise variance estimation": the difference of two Laplacians cancels
# locally linear image structure, leaving mostly noise.
_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)


def image_features(image: npt.NDArray[Any], encoding: str) -> dict[str, float]:
    """Features of an H x W x C (rgb8/bgr8/rgba8/bgra8) or H x W (mono8/mono16) image."""
    luma, levels, scale, colour_cast = _luma(image, encoding)
    height, width = luma.shape
    if height < 3 or width < 3:
        raise FeatureError(f"image {width}x{height}: features need at least 3x3 pixels")
    if levels == 256:
        hist = cv2.calcHist([luma], [0], None, [256], [0, 256]).reshape(-1).astype(np.float64)
    else:
        hist = np.bincount(luma.reshape(-1), minlength=levels).astype(np.float64)
    total = float(luma.size)
    values = np.arange(levels, dtype=np.float64) * scale
    mean = float(hist @ values) / total
    variance = float(hist @ np.square(values - mean)) / total
    cumulative = np.cumsum(hist)
    p5, p95 = (percentile_from_cumulative(cumulative, q) * scale for q in (5.0, 95.0))
    # Thresholds in raw units: luma*scale < 16  <=>  raw < 16/scale (an integer for both scales).
    dark_raw = round(DARK_LEVEL / scale)
    saturated_raw = round(SATURATED_LEVEL / scale)
    dark = float(cumulative[dark_raw - 1]) / total
    saturated = (total - float(cumulative[saturated_raw - 1])) / total
    return {
        "mean_luminance": mean,
        "luminance_p5": p5,
        "luminance_p95": p95,
        "contrast": math.sqrt(max(variance, 0.0)),
        "dark_fraction": dark,
        "saturated_fraction": saturated,
        "sharpness": _sharpness(luma, scale),
        "noise_sigma": _noise_sigma(luma, scale),
        "colour_cast": colour_cast,
    }


def decode_compressed(data: bytes | bytearray | memoryview, fmt: str = "") -> tuple[
    npt.NDArray[Any], str
]:
    """Decode sensor_msgs/CompressedImage data (jpeg or png) to (array, encoding).

    ``fmt`` is the message's ``format`` field ("jpeg", "png", "rgb8; jpeg compressed bgr8", ...);
    when given it must name jpeg or png. Colour comes back in OpenCV's BGR order ("bgr8").
    """
    lowered = fmt.lower()
    if "compresseddepth" in lowered:
        raise FeatureError(f"format {fmt!r} is compressedDepth: use depth.decode_compressed_depth")
    if lowered and not any(name in lowered for name in ("jpeg", "jpg", "png")):
        raise FeatureError(f"format {fmt!r}: only jpeg and png compressed images are supported")
    buffer = np.frombuffer(bytes(data), dtype=np.uint8)
    if buffer.size == 0:
        raise FeatureError("compressed image has no data")
    decoded = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise FeatureError(f"could not decode {buffer.size} bytes as {fmt or 'jpeg/png'}")
    image: npt.NDArray[Any] = np.asarray(decoded)
    if image.ndim == 2:
        return image, "mono16" if image.dtype == np.uint16 else "mono8"
    if image.dtype != np.uint8:
        raise FeatureError(f"decoded {image.dtype} colour image: only 8-bit colour is supported")
    if image.shape[2] == 3:
        return image, "bgr8"
    if image.shape[2] == 4:
        return image, "bgra8"
    raise FeatureError(f"decoded image has {image.shape[2]} channels")


def _luma(image: npt.NDArray[Any], encoding: str) -> tuple[
    npt.NDArray[Any], int, float, float
]:
    """(integer luma, histogram levels, scale to 0..255, colour cast) after validating the input."""
    if not isinstance(image, np.ndarray):
        raise FeatureError(f"image must be a numpy array, got {type(image).__name__}")
    if image.size == 0:
        raise FeatureError(f"image is empty (shape {image.shape})")
    if not image.dtype.isnative:  # a big-endian mono16 message
        image = image.astype(image.dtype.newbyteorder("="))
    if encoding in _TO_GREY:
        channels = _CHANNELS[encoding]
        if image.ndim != 3 or image.shape[2] != channels or image.dtype != np.uint8:
            raise FeatureError(
                f"encoding {encoding!r} needs an H x W x {channels} uint8 array, "
                f"got shape {image.shape} {image.dtype}"
            )
        means = np.asarray(cv2.mean(image)[:3], dtype=np.float64)
        cast = float(np.linalg.norm(means - means.mean()))
        return np.asarray(cv2.cvtColor(image, _TO_GREY[encoding])), 256, 1.0, cast
    if encoding in _MONO8 or encoding in _MONO16:
        wanted = np.uint8 if encoding in _MONO8 else np.uint16
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[:, :, 0]
        if image.ndim != 2 or image.dtype != wanted:
            raise FeatureError(
                f"encoding {encoding!r} needs an H x W {np.dtype(wanted).name} array, "
                f"got shape {image.shape} {image.dtype}"
            )
        if encoding in _MONO8:
            return image, 256, 1.0, 0.0
        return image, 65536, MONO16_SCALE, 0.0
    raise FeatureError(
        f"unsupported image encoding {encoding!r}; supported: {', '.join(IMAGE_ENCODINGS)}"
    )


def _sharpness(luma: npt.NDArray[Any], scale: float) -> float:
    height, width = luma.shape
    grey = luma.astype(np.float32)
    if scale != 1.0:
        grey *= np.float32(scale)
    if width > SHARPNESS_WIDTH:
        new_height = max(3, round(height * SHARPNESS_WIDTH / width))
        grey = cv2.resize(grey, (SHARPNESS_WIDTH, new_height), interpolation=cv2.INTER_AREA)
    # ksize=1 is the 4-neighbour kernel; the border row/column is dropped rather than padded.
    laplacian = cv2.Laplacian(grey, cv2.CV_32F, ksize=1)[1:-1, 1:-1]
    _, std = cv2.meanStdDev(laplacian)
    return float(std[0, 0]) ** 2


def _noise_sigma(luma: npt.NDArray[Any], scale: float) -> float:
    height, width = luma.shape
    response = cv2.filter2D(luma, cv2.CV_32F, _NOISE_KERNEL)[1:-1, 1:-1]
    total_abs = float(cv2.norm(response, cv2.NORM_L1))
    return math.sqrt(math.pi / 2.0) * total_abs / (6.0 * (width - 2) * (height - 2)) * scale
