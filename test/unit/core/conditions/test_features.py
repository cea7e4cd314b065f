"""Feature extractors against values computed by hand on small arrays."""

from __future__ import annotations

import math
import struct

import cv2
import numpy as np
import pytest

from gap_monitor.core.conditions.features import (
    FEATURE_SPECS,
    PER_JOINT_FEATURES,
    FeatureError,
    TimeWindow,
    feature_spec,
    joint_feature_name,
)
from gap_monitor.core.conditions.features.depth import decode_compressed_depth, depth_features
from gap_monitor.core.conditions.features.image import decode_compressed, image_features
from gap_monitor.core.conditions.features.imu import ImuLimits, ImuWindow, imu_features
from gap_monitor.core.conditions.features.joints import JointWindow, joint_features
from gap_monitor.core.conditions.features.wrench import WrenchWindow, resting_offset, wrench_features
from gap_monitor.errors import MessageError

RAMP = (np.arange(1, 17, dtype=np.uint8) * 10).reshape(4, 4)  # 10, 20, ..., 160
# One bright pixel at (1, 1): the only 4x4 pattern whose interior Laplacian is easy to do by hand.
SPOT = np.zeros((4, 4), dtype=np.uint8)
SPOT[1, 1] = 8


def spec_names(modality: str) -> set[str]:
    return {spec.name for spec in FEATURE_SPECS[modality]}


# ---------------------------------------------------------------------------------------------
# Camera images


def test_mono8_ramp_brightness_statistics_by_hand() -> None:
    features = image_features(RAMP, "mono8")
    assert features["mean_luminance"] == pytest.approx(85.0)
    # Population std of 10k, k = 1..16: 10 * sqrt((16^2 - 1) / 12).
    assert features["contrast"] == pytest.approx(10.0 * math.sqrt(255.0 / 12.0))
    # Linear interpolation: p5 sits at rank 0.75 (10 -> 20), p95 at rank 14.25 (150 -> 160).
    assert features["luminance_p5"] == pytest.approx(17.5)
    assert features["luminance_p95"] == pytest.approx(152.5)
    assert features["dark_fraction"] == pytest.approx(1 / 16)  # only the 10 is below 16
    assert features["saturated_fraction"] == 0.0
    assert features["colour_cast"] == 0.0
    # A linear ramp has zero Laplacian and zero Immerkaer response everywhere inside.
    assert features["sharpness"] == pytest.approx(0.0, abs=1e-9)
    assert features["noise_sigma"] == pytest.approx(0.0, abs=1e-9)


def test_single_spot_sharpness_and_noise_by_hand() -> None:
    features = image_features(SPOT, "mono8")
    # Interior Laplacians: (1,1) -32, (1,2) 8, (2,1) 8, (2,2) 0 -> mean -4, variance 272.
    assert features["sharpness"] == pytest.approx(272.0)
    # Immerkaer kernel at the interior: 4*8, -2*8, -2*8, 1*8 -> sum |.| = 72 over 2*2 pixels.
    assert features["noise_sigma"] == pytest.approx(math.sqrt(math.pi / 2.0) * 72.0 / (6.0 * 4.0))
    assert features["mean_luminance"] == pytest.approx(0.5)
    assert features["luminance_p95"] == pytest.approx(2.0)  # rank 14.25: 0 + 0.25 * 8
    assert features["dark_fraction"] == 1.0


def test_saturated_fraction_counts_from_250() -> None:
    image = np.full((4, 4), 100, dtype=np.uint8)
    image[0, :] = [249, 250, 251, 255]
    assert image_features(image, "mono8")["saturated_fraction"] == pytest.approx(3 / 16)


def test_mono16_is_scaled_to_the_8_bit_range() -> None:
    ramp16 = RAMP.astype(np.uint16) * 257
    assert image_features(ramp16, "mono16") == pytest.approx(image_features(RAMP, "mono8"))
    edge = np.full((4, 4), 30000, dtype=np.uint16)
    edge[0, 0] = 4111  # 15.996 on the 8-bit scale: dark
    edge[0, 1] = 4112  # exactly 16: not dark
    edge[0, 2] = 64250  # exactly 250: saturated
    features = image_features(edge, "mono16")
    assert features["dark_fraction"] == pytest.approx(1 / 16)
    assert features["saturated_fraction"] == pytest.approx(1 / 16)
    expected_mean = edge.astype(np.float64).mean() / 257.0
    assert features["mean_luminance"] == pytest.approx(expected_mean)


def test_big_endian_arrays_are_read_in_their_byte_order() -> None:
    ramp16 = RAMP.astype(np.uint16) * 257
    assert image_features(ramp16.astype(">u2"), "mono16") == pytest.approx(
        image_features(ramp16, "mono16")
    )
    check_depth_by_hand(depth_features(DEPTH_MM.astype(">u2"), "16UC1"))


def test_colour_order_and_cast() -> None:
    colour = np.zeros((4, 4, 3), dtype=np.uint8)
    colour[:, :] = (200, 100, 0)
    as_rgb = image_features(colour, "rgb8")
    as_bgr = image_features(colour, "bgr8")
    # Rec.601 luma of R=200, G=100, B=0 is 118.5; read as BGR it is R=0, G=100, B=200: 81.5.
    assert as_rgb["mean_luminance"] == pytest.approx(118.5, abs=0.5)
    assert as_bgr["mean_luminance"] == pytest.approx(81.5, abs=0.5)
    # Channel means (200, 100, 0) are (100, 0, -100) from their average.
    assert as_rgb["colour_cast"] == pytest.approx(math.sqrt(2.0) * 100.0)
    grey = np.repeat(RAMP[:, :, None], 3, axis=2)
    grey_features = image_features(grey, "rgb8")
    assert grey_features["colour_cast"] == 0.0
    assert grey_features["mean_luminance"] == pytest.approx(85.0)
    alpha = np.concatenate([colour, np.full((4, 4, 1), 7, dtype=np.uint8)], axis=2)
    assert image_features(alpha, "rgba8")["colour_cast"] == pytest.approx(as_rgb["colour_cast"])


def test_brightness_statistics_match_numpy_on_a_full_frame() -> None:
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    luma = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float64)
    features = image_features(frame, "bgr8")
    assert features["mean_luminance"] == pytest.approx(luma.mean())
    assert features["contrast"] == pytest.approx(luma.std())
    assert features["luminance_p5"] == pytest.approx(np.percentile(luma, 5))
    assert features["luminance_p95"] == pytest.approx(np.percentile(luma, 95))
    assert features["dark_fraction"] == pytest.approx(np.mean(luma < 16))
    assert features["saturated_fraction"] == pytest.approx(np.mean(luma >= 250))


def test_sharpness_does_not_depend_on_resolution() -> None:
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (240, 320)).astype(np.float32), (0, 0), 1.5)
    base = cv2.normalize(texture, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    reference = image_features(base, "mono8")["sharpness"]
    for width in (640, 1280):
        scaled = cv2.resize(base, (width, width * 3 // 4), interpolation=cv2.INTER_CUBIC)
        assert image_features(scaled, "mono8")["sharpness"] == pytest.approx(reference, rel=0.2)
    blurred = cv2.GaussianBlur(base, (0, 0), 3.0)
    assert image_features(blurred, "mono8")["sharpness"] < 0.2 * reference


def test_noise_estimate_tracks_added_noise() -> None:
    rng = np.random.default_rng(1)
    smooth = np.tile(np.linspace(40, 200, 640), (480, 1))
    noisy = np.clip(smooth + rng.normal(0.0, 5.0, smooth.shape), 0, 255).astype(np.uint8)
    # Rounding to 8 bits adds ~0.29 levels of noise; the estimate should sit near 5.
    assert image_features(noisy, "mono8")["noise_sigma"] == pytest.approx(5.0, rel=0.1)


@pytest.mark.parametrize(
    ("image", "encoding", "message"),
    [
        (np.zeros((4, 4), np.uint8), "yuv422", "unsupported image encoding"),
        (np.zeros((4, 4), np.uint16), "mono8", "uint8"),
        (np.zeros((4, 4, 3), np.uint8), "mono8", "uint8"),
        (np.zeros((4, 4), np.uint8), "rgb8", "H x W x 3"),
        (np.zeros((4, 4, 4), np.uint8), "bgr8", "H x W x 3"),
        (np.zeros((0, 4), np.uint8), "mono8", "empty"),
        (np.zeros((2, 8), np.uint8), "mono8", "at least 3x3"),
    ],
)
def test_bad_images_raise_feature_error(image: np.ndarray, encoding: str, message: str) -> None:
    with pytest.raises(FeatureError, match=message):
        image_features(image, encoding)


def test_feature_error_is_bad_input_of_one_message() -> None:
    with pytest.raises(MessageError):
        image_features([[1, 2], [3, 4]], "mono8")  # type: ignore[arg-type]


def test_decode_compressed_png_and_jpeg() -> None:
    ok, png = cv2.imencode(".png", RAMP)
    assert ok
    decoded, encoding = decode_compressed(png.tobytes(), "mono8; png compressed mono8")
    assert encoding == "mono8"
    np.testing.assert_array_equal(decoded, RAMP)
    ok, png16 = cv2.imencode(".png", RAMP.astype(np.uint16) * 257)
    decoded16, encoding16 = decode_compressed(png16.tobytes(), "png")
    assert encoding16 == "mono16"
    assert image_features(decoded16, encoding16)["mean_luminance"] == pytest.approx(85.0)
    colour = np.zeros((32, 32, 3), dtype=np.uint8)
    colour[:, :] = (10, 120, 240)  # B, G, R
    ok, jpeg = cv2.imencode(".jpg", colour, [cv2.IMWRITE_JPEG_QUALITY, 95])
    decoded_colour, colour_encoding = decode_compressed(jpeg.tobytes(), "bgr8; jpeg compressed bgr8")
    assert colour_encoding == "bgr8"
    assert image_features(decoded_colour, colour_encoding)["mean_luminance"] == pytest.approx(
        image_features(colour, "bgr8")["mean_luminance"], abs=3.0
    )


@pytest.mark.parametrize(
    ("data", "fmt", "message"),
    [
        (b"", "png", "no data"),
        (b"not an image at all", "jpeg", "could not decode"),
        (b"\x89PNG", "tiff", "only jpeg and png"),
        (b"\x89PNG", "16UC1; compressedDepth png", "compressedDepth"),
    ],
)
def test_decode_compressed_errors(data: bytes, fmt: str, message: str) -> None:
    with pytest.raises(FeatureError, match=message):
        decode_compressed(data, fmt)


# ---------------------------------------------------------------------------------------------
# Depth

DEPTH_MM = np.array(
    [[0, 1000, 1000, 1000], [1000, 1000, 1000, 1000], [1000, 1000, 2000, 1000], [200, 1000, 1000, 0]],
    dtype=np.uint16,
)


def check_depth_by_hand(features: dict[str, float]) -> None:
    assert features["valid_fraction"] == pytest.approx(14 / 16)
    # Valid, sorted: 200, 1000 x 12, 2000 (14 values).
    assert features["depth_median_m"] == pytest.approx(1.0)
    assert features["depth_p5_m"] == pytest.approx(0.2 + 0.65 * 0.8)  # rank 0.65
    assert features["depth_p95_m"] == pytest.approx(1.0 + 0.35 * 1.0)  # rank 12.35
    assert features["near_fraction"] == pytest.approx(1 / 16)  # the 0.2 m pixel
    # Interior Laplacians (m): (1,1) 0, (1,2) 1, (2,1) 1, (2,2) -4 -> mean |.| 1.5.
    assert features["edge_noise_m"] == pytest.approx(1.5, rel=1e-6)


def test_depth_16uc1_by_hand() -> None:
    check_depth_by_hand(depth_features(DEPTH_MM, "16UC1"))


def test_depth_32fc1_by_hand_with_nan_and_zero_invalid() -> None:
    metres = DEPTH_MM.astype(np.float32) / 1000.0
    metres[0, 0] = np.nan
    metres[3, 3] = 0.0
    check_depth_by_hand(depth_features(metres, "32FC1"))
    metres[1, 1] = -np.inf
    assert depth_features(metres, "32FC1")["valid_fraction"] == pytest.approx(13 / 16)


def test_edge_noise_skips_pixels_next_to_invalid_ones() -> None:
    depth = DEPTH_MM.copy()
    depth[0, 1] = 0  # (1,1) loses its upper neighbour
    # Remaining crosses: (1,2) 1, (2,1) 1, (2,2) -4.
    assert depth_features(depth, "16UC1")["edge_noise_m"] == pytest.approx(2.0, rel=1e-6)


def test_depth_near_threshold_is_configurable() -> None:
    features = depth_features(DEPTH_MM, "16UC1", near_m=1.5)
    assert features["near_fraction"] == pytest.approx(13 / 16)  # 200 mm and twelve 1000 mm
    assert depth_features(DEPTH_MM, "16UC1", near_m=1.0)["near_fraction"] == pytest.approx(1 / 16)
    with pytest.raises(ValueError, match="near_m"):
        depth_features(DEPTH_MM, "16UC1", near_m=0.0)


def test_depth_with_no_valid_pixel_reports_nan_ranges() -> None:
    features = depth_features(np.zeros((5, 5), np.uint16), "16UC1")
    assert features["valid_fraction"] == 0.0
    assert features["near_fraction"] == 0.0
    for name in ("depth_median_m", "depth_p5_m", "depth_p95_m", "edge_noise_m"):
        assert math.isnan(features[name])
    nan_features = depth_features(np.full((5, 5), np.nan, np.float32), "32FC1")
    assert nan_features["valid_fraction"] == 0.0


def test_depth_16uc1_percentiles_match_numpy() -> None:
    rng = np.random.default_rng(5)
    depth = rng.integers(0, 8000, (480, 848), dtype=np.uint16)
    depth[rng.random(depth.shape) < 0.06] = 0
    features = depth_features(depth, "16UC1")
    valid = depth[depth > 0].astype(np.float64) / 1000.0
    assert features["valid_fraction"] == pytest.approx(valid.size / depth.size)
    for name, q in (("depth_p5_m", 5), ("depth_median_m", 50), ("depth_p95_m", 95)):
        assert features[name] == pytest.approx(np.percentile(valid, q))
    assert features["near_fraction"] == pytest.approx(np.count_nonzero(valid < 0.3) / depth.size)


@pytest.mark.parametrize(
    ("depth", "encoding", "message"),
    [
        (np.zeros((4, 4), np.float32), "16UC1", "uint16"),
        (np.zeros((4, 4), np.uint16), "32FC1", "float32"),
        (np.zeros((4, 4), np.uint16), "mono16", "unsupported depth encoding"),
        (np.zeros((0, 0), np.uint16), "16UC1", "empty"),
    ],
)
def test_bad_depth_raises_feature_error(depth: np.ndarray, encoding: str, message: str) -> None:
    with pytest.raises(FeatureError, match=message):
        depth_features(depth, encoding)


def compressed_depth_message(stored: np.ndarray, quant_a: float, quant_b: float) -> bytes:
    ok, png = cv2.imencode(".png", stored)
    assert ok
    return struct.pack("<iff", 0, quant_a, quant_b) + png.tobytes()


def test_decode_compressed_depth() -> None:
    data = compressed_depth_message(DEPTH_MM, 0.0, 0.0)
    decoded, encoding = decode_compressed_depth(data, "16UC1; compressedDepth png")
    assert encoding == "16UC1"
    np.testing.assert_array_equal(decoded, DEPTH_MM)
    # 32FC1 stores quantised inverse depth: depth = a / (v - b); with a = 1000, b = 0: 2 m -> 500.
    stored = np.array([[500, 2000, 0], [1000, 250, 500], [500, 500, 500]], dtype=np.uint16)
    metres, float_encoding = decode_compressed_depth(
        compressed_depth_message(stored, 1000.0, 0.0), "32FC1; compressedDepth"
    )
    assert float_encoding == "32FC1"
    assert metres[0, 0] == pytest.approx(2.0)
    assert metres[0, 1] == pytest.approx(0.5)
    assert metres[1, 1] == pytest.approx(4.0)
    assert math.isnan(metres[0, 2])
    assert depth_features(metres, float_encoding)["valid_fraction"] == pytest.approx(8 / 9)
    with pytest.raises(FeatureError, match="not compressedDepth"):
        decode_compressed_depth(data, "png")
    with pytest.raises(FeatureError, match="no image"):
        decode_compressed_depth(data[:12], "16UC1; compressedDepth")
    with pytest.raises(FeatureError, match="RVL"):
        decode_compressed_depth(data, "16UC1; compressedDepth rvl")


# ---------------------------------------------------------------------------------------------
# IMU

ACCEL = np.array([[0.0, 0.0, 9.0], [0.0, 0.0, 11.0], [3.0, 4.0, 0.0]])
GYRO = np.array([[0.1, 0.0, -0.2], [0.3, 0.0, -0.2]])


def test_imu_features_by_hand() -> None:
    features = imu_features(ACCEL, GYRO)
    assert features["accel_norm_mean"] == pytest.approx((9.0 + 11.0 + 5.0) / 3.0)
    assert features["accel_std_x"] == pytest.approx(math.sqrt(2.0))  # 0, 0, 3: mean 1
    assert features["accel_std_y"] == pytest.approx(math.sqrt(32.0) / 3.0)  # 0, 0, 4
    assert features["accel_std_z"] == pytest.approx(math.sqrt(618.0 / 27.0))  # 9, 11, 0
    assert features["gyro_mean_x"] == pytest.approx(0.2)
    assert features["gyro_std_x"] == pytest.approx(0.1)
    assert features["gyro_mean_z"] == pytest.approx(-0.2)
    assert features["gyro_std_z"] == pytest.approx(0.0)
    assert features["nan_count"] == 0.0
    assert features["saturation_count"] == 0.0
    assert set(features) == spec_names("imu")


def test_imu_nan_rows_are_counted_not_used() -> None:
    accel = np.vstack([ACCEL, [[np.nan, 1.0, np.inf]]])
    features = imu_features(accel, GYRO)
    assert features["nan_count"] == 2.0
    assert features["accel_norm_mean"] == pytest.approx(25.0 / 3.0)
    all_nan = imu_features(np.full((2, 3), np.nan), GYRO)
    assert math.isnan(all_nan["accel_norm_mean"]) and math.isnan(all_nan["accel_std_x"])
    assert all_nan["gyro_mean_x"] == pytest.approx(0.2)
    assert all_nan["nan_count"] == 6.0


def test_imu_saturation_uses_configured_limits() -> None:
    limits = ImuLimits(accel_m_s2=10.0, gyro_rad_s=0.25)
    features = imu_features(ACCEL, GYRO, limits)
    assert features["saturation_count"] == 2.0  # accel 11.0 and gyro 0.3
    assert imu_features(ACCEL, GYRO)["saturation_count"] == 0.0
    with pytest.raises(ValueError, match="accel_m_s2"):
        ImuLimits(accel_m_s2=0.0)
    with pytest.raises(ValueError, match="gyro_rad_s"):
        ImuLimits(gyro_rad_s=math.nan)


def test_imu_accepts_separate_rates_and_rejects_bad_shapes() -> None:
    gyro_only = imu_features(np.empty((0, 3)), GYRO)
    assert math.isnan(gyro_only["accel_norm_mean"])
    assert gyro_only["gyro_mean_x"] == pytest.approx(0.2)
    with pytest.raises(FeatureError, match="no samples"):
        imu_features(np.empty((0, 3)), np.empty((0, 3)))
    with pytest.raises(FeatureError, match="N x 3"):
        imu_features(np.zeros((4, 2)), GYRO)


def test_imu_window_emits_every_hop_over_the_last_window() -> None:
    rng = np.random.default_rng(2)
    period_ns = 5_000_000  # 200 Hz
    times = np.arange(0, 2_600_000_000, period_ns)
    accel = rng.normal(0.0, 0.1, (times.size, 3)) + np.array([0.0, 0.0, 9.81])
    gyro = rng.normal(0.0, 0.01, (times.size, 3))
    window = ImuWindow(window_s=1.0, hop_s=0.5)
    emitted: list[tuple[int, dict[str, float]]] = []
    for time_ns, a, g in zip(times.tolist(), accel, gyro, strict=True):
        features = window.add(time_ns, a, g)
        if features is not None:
            emitted.append((time_ns, features))
    assert [t for t, _ in emitted] == [1_000_000_000, 1_500_000_000, 2_000_000_000, 2_500_000_000]
    for t, features in emitted:
        inside = (times > t - 1_000_000_000) & (times <= t)
        assert inside.sum() == 200
        assert features == pytest.approx(imu_features(accel[inside], gyro[inside]))


def test_imu_window_restarts_when_time_goes_backwards() -> None:
    window = ImuWindow(window_s=0.1)
    for t in range(0, 100_000_001, 10_000_000):
        window.add(t, [0.0, 0.0, 9.8], [0.0, 0.0, 0.0])
    assert window.add(50_000_000, [0.0, 0.0, 9.8], [0, 0, 0]) is None  # restarted
    results = [window.add(50_000_000 + k * 10_000_000, [0, 0, 9.8], [0, 0, 0]) for k in range(1, 11)]
    assert all(r is None for r in results[:-1]) and results[-1] is not None


def test_time_window_validates_settings_and_rows() -> None:
    with pytest.raises(ValueError, match="window_s"):
        TimeWindow(0.0, None, {"a": 1})
    with pytest.raises(ValueError, match="hop_s"):
        TimeWindow(1.0, -1.0, {"a": 1})
    window = ImuWindow(window_s=0.02, hop_s=0.01)
    with pytest.raises(FeatureError, match="expected 3"):
        window.add(0, [0.0, 9.8], [0.0, 0.0, 0.0])
    with pytest.raises(FeatureError, match="not a numeric"):
        window.add(0, ["x", "y", "z"], None)
    # The rejected samples were not kept: the window still works and is not poisoned.
    results = [window.add(k * 10_000_000, [0.0, 0.0, 9.8], [0.0, 0.0, 0.0]) for k in range(4)]
    emitted = [r for r in results if r is not None]
    assert emitted and emitted[-1]["accel_norm_mean"] == pytest.approx(9.8)


# ---------------------------------------------------------------------------------------------
# Joints


def test_joint_features_by_hand() -> None:
    names = ["shoulder", "elbow"]
    positions = [[0.0, 1.0], [2.0, 3.0]]
    velocities = [[1.0, -5.0], [-2.0, 3.0]]
    features = joint_features(names, positions, velocities, ranges={"shoulder": (0.0, 4.0)})
    assert features["position.shoulder"] == pytest.approx(0.25)  # mean 1 in 0..4
    assert features["position.elbow"] == pytest.approx(2.0)  # no range: raw mean
    assert features["velocity_max_abs.shoulder"] == pytest.approx(2.0)
    assert features["velocity_max_abs.elbow"] == pytest.approx(5.0)
    assert "effort_max_abs.shoulder" not in features
    assert features["nan_count"] == 0.0
    outside = joint_features(names, [[6.0, 0.0]], ranges={"shoulder": (0.0, 4.0)})
    assert outside["position.shoulder"] == pytest.approx(1.5)


def test_joint_features_count_nan_and_match_the_registry() -> None:
    names = ["a", "b"]
    features = joint_features(
        names, [[1.0, np.nan], [3.0, 2.0]], efforts=[[np.nan, -4.0], [1.0, 2.0]]
    )
    assert features["nan_count"] == 2.0
    assert features["position.b"] == pytest.approx(2.0)
    assert features["effort_max_abs.a"] == pytest.approx(1.0)
    assert features["effort_max_abs.b"] == pytest.approx(4.0)
    for key in features:
        spec = feature_spec("joints", key)
        assert spec is not None, key
    assert {joint_feature_name(f, "a") for f in PER_JOINT_FEATURES} <= set(
        joint_features(names, [[0.0, 0.0]], [[0.0, 0.0]], [[0.0, 0.0]])
    )


def test_joint_ranges_and_shapes_are_validated() -> None:
    with pytest.raises(ValueError, match="unknown joints"):
        joint_features(["a"], [[0.0]], ranges={"z": (0.0, 1.0)})
    with pytest.raises(ValueError, match="lo < hi"):
        joint_features(["a"], [[0.0]], ranges={"a": (1.0, 1.0)})
    with pytest.raises(FeatureError, match="N x 2"):
        joint_features(["a", "b"], [[0.0, 1.0, 2.0]])
    with pytest.raises(FeatureError, match="unique"):
        joint_features(["a", "a"], [[0.0, 1.0]])


def test_joint_window_skips_empty_velocity_arrays() -> None:
    window = JointWindow(["a", "b"], window_s=0.03, hop_s=0.01)
    outputs = []
    for k in range(6):
        positions = [0.1 * k, -0.1 * k]
        outputs.append(window.add(k * 10_000_000, positions, velocities=[], efforts=[k, -k]))
    ready = [o for o in outputs if o is not None]
    assert ready, "window never emitted"
    last = ready[-1]
    # The window (20 ms, 50 ms] holds samples k = 3, 4, 5.
    assert last["position.a"] == pytest.approx(0.4)
    assert last["effort_max_abs.b"] == pytest.approx(5.0)
    assert not any(key.startswith("velocity") for key in last)
    with pytest.raises(FeatureError, match="expected 2"):
        window.add(60_000_000, [0.0])


# ---------------------------------------------------------------------------------------------
# Force-torque


def test_wrench_features_by_hand() -> None:
    force_z = [10.0, 10.0, 10.0, 10.0, 20.0, 30.0, 25.0, 40.0]
    force = np.column_stack([np.zeros(8), np.zeros(8), force_z])
    torque = np.column_stack([np.full(8, 0.3), np.full(8, 0.4), np.zeros(8)])  # |t| = 0.5
    features = wrench_features(force, torque)
    assert features["force_norm_mean"] == pytest.approx(155.0 / 8.0)
    assert features["force_norm_std"] == pytest.approx(np.std(force_z))
    # Changes 0 (borrowed), 0, 0, 0, 10, 10, 5, 15: the quietest two samples read 10 N.
    assert features["force_offset"] == pytest.approx(10.0)
    assert features["torque_norm_mean"] == pytest.approx(0.5)
    assert features["torque_norm_std"] == pytest.approx(0.0, abs=1e-12)
    assert features["torque_offset"] == pytest.approx(0.5)
    assert features["nan_count"] == 0.0
    assert set(features) == spec_names("wrench")


def test_resting_offset_with_few_samples_is_the_median() -> None:
    assert resting_offset(np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 5.0], [0.0, 0.0, 3.0]])) == 3.0


def test_wrench_nan_rows_are_counted() -> None:
    force = np.array([[0.0, 0.0, 1.0], [np.nan, 0.0, 1.0], [0.0, 0.0, 3.0]])
    features = wrench_features(force, np.zeros((3, 3)))
    assert features["nan_count"] == 1.0
    assert features["force_norm_mean"] == pytest.approx(2.0)


def test_wrench_window_emits() -> None:
    window = WrenchWindow(window_s=0.01, hop_s=0.005)
    results = [window.add(k * 1_000_000, [0.0, 0.0, float(k)], [0.0, 0.0, 0.0]) for k in range(20)]
    emitted = [r for r in results if r is not None]
    assert len(emitted) >= 2
    # Last emission at 15 ms covers (5 ms, 15 ms]: forces 6..15.
    assert emitted[-1]["force_norm_mean"] == pytest.approx(np.mean(np.arange(6, 16)))


# ---------------------------------------------------------------------------------------------
# Registry


def test_every_computed_feature_is_registered_with_a_unit() -> None:
    assert set(image_features(SPOT, "mono8")) == spec_names("camera")
    assert set(depth_features(DEPTH_MM, "16UC1")) == spec_names("depth")
    for specs in FEATURE_SPECS.values():
        for spec in specs:
            assert spec.unit and spec.description and spec.resolution > 0
    assert feature_spec("camera", "no_such_feature") is None
    assert feature_spec("lidar", "mean_luminance") is None


def test_time_window_keeps_exactly_the_last_window_across_buffer_growth_and_reuse() -> None:
    """Thousands of pushes (the storage grows and recycles); the window always holds the rows
    stamped within the last window_s, oldest first, and one channel may skip samples."""
    window = TimeWindow(0.05, 0.01, {"a": 2, "b": 1})
    pushed_a: list[tuple[int, list[float]]] = []
    pushed_b: list[tuple[int, list[float]]] = []
    rng = np.random.default_rng(5)
    t = 0
    for k in range(3000):
        # Repeated stamps too, and a dense stretch that makes the window hold hundreds of rows.
        t += 100_000 if 1000 <= k < 1400 else int(rng.integers(0, 3_000_000))
        row_a = [float(k), -float(k)]
        row_b = [float(k) / 2] if k % 3 else None
        window.push(t, {"a": np.array(row_a), "b": row_b})
        pushed_a.append((t, row_a))
        if row_b is not None:
            pushed_b.append((t, row_b))
        if k % 97 == 0 or 1390 < k < 1410 or k > 2990:
            for channel, pushed, width in (("a", pushed_a, 2), ("b", pushed_b, 1)):
                expected = [row for s, row in pushed if s > t - 50_000_000]
                got = window.array(channel)
                assert got.shape == (len(expected), width)
                assert got.tolist() == expected
                assert window.count(channel) == len(expected)
    assert window.array("unknown").shape == (0, 0) and window.count("unknown") == 0


def test_time_window_copies_rows_and_accepts_any_numeric_row_form() -> None:
    window = TimeWindow(1.0, None, {"v": 3})
    row = np.array([1.0, 2.0, 3.0])
    window.push(0, {"v": row})
    row[:] = 99.0  # the caller reusing its buffer must not rewrite the window
    window.push(1, {"v": [[4, 5, 6]]})  # nested int lists are converted like np.asarray would
    window.push(2, {"v": np.array([7, 8, 9], dtype=">f8")})
    window.push(3, {"v": np.arange(6.0)[::2]})  # a strided view
    got = window.array("v")
    assert got.dtype == np.float64
    assert got.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9], [0, 2, 4]]
    got[:] = 0.0  # neither may the caller's copy write into the window
    assert window.array("v")[0].tolist() == [1, 2, 3]
    with pytest.raises(FeatureError, match="expected 3"):
        window.push(4, {"v": np.zeros(4)})
    with pytest.raises(FeatureError, match="unknown channel"):
        window.push(4, {"w": np.zeros(3)})
    assert window.count("v") == 4


def test_a_stall_restarts_the_window_so_features_never_cover_a_gap() -> None:
    # 100 Hz for 2 s, a 0.8 s stall (more than half the 1 s window), then 2 s more.
    times = np.concatenate([np.arange(0, 200), np.arange(280, 480)]) * 10_000_000
    values = np.ones((times.size, 1))
    one_by_one = TimeWindow(1.0, 0.2, {"x": 1})
    due = [int(t) for t, v in zip(times, values, strict=True) if one_by_one.push(int(t), {"x": v})]
    batched = TimeWindow(1.0, 0.2, {"x": 1})
    due_many = [int(times[k]) for k in batched.push_many(times, {"x": (values, None)})]
    assert due == due_many
    after = [t for t in due if t >= 2_800_000_000]
    assert after[0] >= 3_800_000_000  # the window fills again before it emits
    # A short gap (a lost message or two) keeps the window and the emission grid.
    short = TimeWindow(1.0, 0.2, {"x": 1})
    kept = [t for t in range(0, 300) if t not in range(150, 160)]
    emitted = [t for t in kept if short.push(t * 10_000_000, {"x": np.ones(1)})]
    assert emitted[:5] == [100, 120, 140, 160, 180]
