"""motion_offset.py: camera-IMU time offset from gyro rotation vs. image motion.

Synthetic scenes render a camera yawing over a seeded random texture: frame k shows the texture
shifted by fx * theta(t_k) pixels at its true capture moment, while the gyro reads dtheta/dt at
400 Hz. Camera stamps are then moved away from the true moments by a known shift, which the
estimator must recover (offset > 0: camera stamps late). The real EuRoC excerpt checks the same
on data nobody here made.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from mcap.reader import make_reader
from rosbags.typesys import Stores, get_typestore

from gap_monitor.core.timing.motion_offset import (
    FrameMotion,
    FrameMotionTracker,
    MotionOffsetEstimator,
    MotionOffsetSettings,
    OffsetEstimate,
    estimate_motion_offset,
    estimate_offset_from_motions,
)

NS = 1_000_000_000
WIDTH, HEIGHT = 320, 240
FX = WIDTH / (2 * math.tan(math.radians(30)))  # 60 degree horizontal field of view
MARGIN = 200
# (angular-speed amplitude rad/s, frequency Hz)
YAW = ((0.35, 0.4), (0.25, 0.9), (0.15, 1.7))
OTHER_YAW = ((0.3, 0.5), (0.3, 1.1), (0.2, 1.9))


@dataclass
class Scene:
    frame_t: np.ndarray  # true capture moments, s
    frames: list[np.ndarray]
    gyro_t: np.ndarray  # s
    gyro: np.ndarray  # (n, 3) rad/s

    def frame_stamps_ns(self, shift_s: float = 0.0) -> np.ndarray:
        return np.round((self.frame_t + shift_s) * NS).astype(np.int64)

    def gyro_stamps_ns(self) -> np.ndarray:
        return np.round(self.gyro_t * NS).astype(np.int64)


def texture(rng: np.random.Generator) -> np.ndarray:
    shape = (HEIGHT + 40, WIDTH + 2 * MARGIN)
    fine = cv2.GaussianBlur(rng.uniform(0, 255, shape).astype(np.float32), (0, 0), 1.5)
    coarse = cv2.GaussianBlur(rng.uniform(0, 255, shape).astype(np.float32), (0, 0), 6.0)
    tex = 0.6 * fine + 0.4 * coarse
    return np.asarray((tex - tex.min()) / (tex.max() - tex.min()) * 255, dtype=np.float32)


def view(tex: np.ndarray, shift_x: float, shift_y: float = 0.0) -> np.ndarray:
    """The frame whose pixel (x, y) shows texture (x + MARGIN + shift_x, y + 20 + shift_y)."""
    m = np.array([[1, 0, MARGIN + shift_x], [0, 1, 20 + shift_y]], dtype=np.float32)
    return cv2.warpAffine(tex, m, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)


def yaw_scene(
    seed: int,
    duration_s: float = 10.0,
    yaw: tuple[tuple[float, float], ...] = YAW,
    gyro_yaw: tuple[tuple[float, float], ...] | None = None,
    static: bool = False,
    gyro_noise: float = 0.005,
) -> Scene:
    rng = np.random.default_rng(seed)
    tex = texture(rng)
    phases = rng.uniform(0, 2 * np.pi, len(yaw))

    def theta(t: np.ndarray) -> np.ndarray:
        return sum(
            a / (2 * np.pi * f) * np.sin(2 * np.pi * f * t + p) for (a, f), p in zip(yaw, phases, strict=True)
        )

    frame_t = np.arange(0.0, duration_s, 1 / 30)
    frames = []
    for t in frame_t:
        img = view(tex, 0.0 if static else FX * float(theta(np.array(t))))
        frames.append(np.clip(img + rng.normal(0, 2, img.shape), 0, 255).astype(np.uint8))
    gyro_t = np.arange(-0.5, duration_s + 0.5, 1 / 400)
    rate_yaw, rate_phases = (
        (yaw, phases) if gyro_yaw is None else (gyro_yaw, rng.uniform(0, 2 * np.pi, len(gyro_yaw)))
    )
    wz = sum(a * np.cos(2 * np.pi * f * gyro_t + p) for (a, f), p in zip(rate_yaw, rate_phases, strict=True))
    gyro = rng.normal(0, gyro_noise, (len(gyro_t), 3))
    if not static:
        gyro[:, 2] += wz
    return Scene(frame_t, frames, gyro_t, gyro)


@pytest.fixture(scope="module")
def moving() -> Scene:
    return yaw_scene(seed=1)


def offline(scene: Scene, shift_s: float, gyro: np.ndarray | None = None) -> OffsetEstimate:
    return estimate_motion_offset(
        scene.frame_stamps_ns(shift_s),
        scene.frames,
        scene.gyro_stamps_ns(),
        scene.gyro if gyro is None else gyro,
    )


@pytest.mark.parametrize("shift_ms", [-20, -10, -5, 5, 10, 20])
def test_recovers_injected_camera_shift(moving: Scene, shift_ms: int):
    est = offline(moving, shift_ms / 1e3)
    assert est.confident, est.reason
    assert est.offset_s is not None
    # Camera stamps later than the true moments -> positive offset of the same size.
    assert est.offset_s == pytest.approx(shift_ms / 1e3, abs=0.002)
    assert 0.5 <= est.confidence <= 1.0
    assert est.uncertainty_s is not None and est.uncertainty_s < 0.002
    assert est.correlation is not None and est.correlation > 0.9
    assert est.n_frames >= 290


def test_correcting_the_stamps_removes_the_offset(moving: Scene):
    est = offline(moving, 0.015)
    assert est.confident and est.offset_s is not None
    corrected = estimate_motion_offset(
        moving.frame_stamps_ns(0.015) - round(est.offset_s * NS),
        moving.frames,
        moving.gyro_stamps_ns(),
        moving.gyro,
    )
    assert corrected.confident and corrected.offset_s is not None
    assert abs(corrected.offset_s) < 0.001


def test_gyro_in_a_rotated_imu_frame_is_handled(moving: Scene):
    # The IMU axes need not match the camera's: the fit learns the mapping.
    rot = cv2.Rodrigues(np.array([0.7, -1.2, 0.4]))[0]
    est = offline(moving, -0.01, gyro=moving.gyro @ rot.T)
    assert est.confident, est.reason
    assert est.offset_s == pytest.approx(-0.01, abs=0.002)


def test_static_scene_is_low_confidence_for_weak_motion():
    est = offline(yaw_scene(seed=2, static=True), 0.01)
    assert not est.confident
    assert est.confidence < 0.5
    assert "weak motion" in est.reason
    assert est.motion_rms < MotionOffsetSettings().min_motion_rad_s


def test_gyro_uncorrelated_with_the_images_is_not_confident():
    scene = yaw_scene(seed=3, gyro_yaw=OTHER_YAW)
    est = offline(scene, 0.01)
    assert est.motion_rms > 0.1  # plenty of motion on both sides, just not the same motion
    assert est.image_motion_rms_px_s > 20
    assert not est.confident
    assert est.confidence < 0.5
    assert "correlated" in est.reason


def test_offset_beyond_the_search_range_is_not_confident(moving: Scene):
    est = offline(moving, 0.08)
    assert not est.confident
    assert "edge" in est.reason


def test_gross_misfits_are_dropped(moving: Scene):
    tracker = FrameMotionTracker()
    stamps = moving.frame_stamps_ns(0.01)
    motions = [m for s, f in zip(stamps, moving.frames, strict=True) if (m := tracker.update(int(s), f))]
    rng = np.random.default_rng(0)
    bad = rng.choice(len(motions), 6, replace=False)
    for i in bad:  # six frame pairs matched 15 px off, as a passing object could do
        motions[i] = dataclasses.replace(motions[i], dx_px=motions[i].dx_px + 15.0)
    est = estimate_offset_from_motions(motions, moving.gyro_stamps_ns(), moving.gyro)
    assert est.confident, est.reason
    assert est.offset_s == pytest.approx(0.01, abs=0.002)
    assert est.n_outliers >= len(bad)


def test_streaming_estimator_with_bounded_history(moving: Scene):
    settings = MotionOffsetSettings(window_s=4.0, history_s=5.0)
    est = MotionOffsetEstimator(settings)
    gyro_ns = moving.gyro_stamps_ns()
    shift_ns = round(0.012 * NS)
    g = 0
    for t_true, frame in zip(moving.frame_stamps_ns(), moving.frames, strict=True):
        while g < len(gyro_ns) and gyro_ns[g] <= t_true:
            est.add_gyro(int(gyro_ns[g]), *moving.gyro[g])
            g += 1
        est.add_frame(int(t_true) + shift_ns, frame)
    assert est.n_frame_intervals <= 5.0 * 30 + 1
    assert est.n_gyro_samples <= (5.0 + 2 * 0.05 + 1.0) * 400 + 1
    result = est.estimate()
    assert result.confident, result.reason
    assert result.offset_s == pytest.approx(0.012, abs=0.002)


def test_streaming_backward_clock_jump_restarts_the_frame_history(moving: Scene):
    est = MotionOffsetEstimator()
    stamps = moving.frame_stamps_ns()
    for s, f in zip(stamps[:60], moving.frames[:60], strict=True):
        est.add_frame(int(s), f)
    assert est.n_frame_intervals == 59
    assert est.add_frame(int(stamps[59]), moving.frames[59]) is None  # repeated stamp: ignored
    assert est.n_frame_intervals == 59
    for s, f in zip(stamps[:10], moving.frames[60:70], strict=True):  # clock jumped back
        est.add_frame(int(s), f)
    assert est.n_frame_intervals == 9


def test_nothing_to_estimate_says_why(moving: Scene):
    est = MotionOffsetEstimator()
    assert est.estimate().offset_s is None
    few = offline(Scene(moving.frame_t[:10], moving.frames[:10], moving.gyro_t, moving.gyro), 0.0)
    assert few.offset_s is None and not few.confident and few.confidence == 0.0
    assert "min_intervals" in few.reason
    far = estimate_motion_offset(
        moving.frame_stamps_ns(), moving.frames, moving.gyro_stamps_ns() + 1000 * NS, moving.gyro
    )
    assert far.offset_s is None
    assert "gyro" in far.reason


def test_tracker_measures_subpixel_shift_in_full_resolution_pixels():
    tex = texture(np.random.default_rng(5))
    first, second = view(tex, 10.0, 5.0), view(tex, 12.3, 3.3)
    tracker = FrameMotionTracker(work_width=160)
    assert tracker.update(1 * NS, first.astype(np.uint8)) is None
    motion = tracker.update(2 * NS, second.astype(np.uint8))
    assert isinstance(motion, FrameMotion)
    # The view moved +2.3 px right and -1.7 px down, so the content moved the other way.
    assert motion.dx_px == pytest.approx(-2.3, abs=0.15)
    assert motion.dy_px == pytest.approx(1.7, abs=0.15)
    assert (motion.t0_ns, motion.t1_ns) == (1 * NS, 2 * NS)
    colour = np.repeat(view(tex, 14.6, 3.3)[:, :, None], 3, axis=2).astype(np.uint8)
    motion = tracker.update(3 * NS, colour)
    assert motion is not None and motion.dx_px == pytest.approx(-2.3, abs=0.15)
    # A new image size restarts the tracker instead of comparing mismatched frames.
    assert tracker.update(4 * NS, np.zeros((100, 120), np.uint8)) is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("window_s", 0.0),
        ("max_lag_s", float("nan")),
        ("min_correlation", 1.5),
        ("history_s", 5.0),  # shorter than window_s
        ("work_width", 8),
        ("bootstrap_samples", True),
        ("lag_step_s", 0.04),
    ],
)
def test_settings_validation_names_the_field(field: str, value: object):
    with pytest.raises(ValueError, match=field):
        MotionOffsetSettings(**{field: value})  # type: ignore[arg-type]


# --- real data: EuRoC MH_01 excerpt (hardware-synchronised camera and IMU) ---------------------


@dataclass
class EurocData:
    frame_ns: list[int]
    frames: list[np.ndarray]
    gyro_ns: np.ndarray
    gyro: np.ndarray


@pytest.fixture(scope="module")
def euroc(real_data_dir: Path) -> EurocData:
    path = real_data_dir / "euroc_mh01_micro_ros2" / "euroc_mh01_micro_ros2.mcap"
    store = get_typestore(Stores.ROS2_JAZZY)
    frame_ns: list[int] = []
    frames: list[np.ndarray] = []
    gyro_ns: list[int] = []
    gyro: list[tuple[float, float, float]] = []
    with path.open("rb") as f:
        for schema, channel, message in make_reader(f).iter_messages(topics=["/cam0/image_raw", "/imu0"]):
            msg = store.deserialize_cdr(message.data, schema.name)
            stamp = msg.header.stamp.sec * NS + msg.header.stamp.nanosec
            if channel.topic == "/imu0":
                w = msg.angular_velocity
                gyro_ns.append(stamp)
                gyro.append((w.x, w.y, w.z))
            else:
                assert msg.encoding == "mono8"
                rows = np.asarray(msg.data, dtype=np.uint8).reshape(msg.height, msg.step)
                frame_ns.append(stamp)
                frames.append(rows[:, : msg.width].copy())
    assert len(frames) == 95
    return EurocData(frame_ns, frames, np.array(gyro_ns, dtype=np.int64), np.array(gyro))


@pytest.mark.parametrize("imu_shift_ms", [-20, -10, 10, 20])
def test_euroc_shifted_imu_stamps_recovered_or_flagged(euroc: EurocData, imu_shift_ms: int):
    shift_ns = imu_shift_ms * 1_000_000
    est = estimate_motion_offset(euroc.frame_ns, euroc.frames, euroc.gyro_ns + shift_ns, euroc.gyro)
    assert est.offset_s is not None, est.reason
    if est.confident:
        # IMU stamps moved later by d make the camera look early by d: offset -d.
        assert est.offset_s == pytest.approx(-imu_shift_ms / 1e3, abs=0.005), est.reason
        assert est.confidence >= 0.5
    else:
        assert est.confidence < 0.5
        assert est.reason.startswith("low confidence")


# --- the downscale fast path: the same frames as OpenCV's INTER_AREA and numpy's channel mean ---


def _reference_downscale(image: np.ndarray, work_width: int) -> np.ndarray:
    """FrameMotionTracker's downscale as first written: cv2.resize INTER_AREA in the image's own
    dtype, then float32 and the mean over the colour channels."""
    if image.ndim == 3:
        image = image[:, :, :3]
    if image.dtype not in (np.uint8, np.uint16, np.float32):
        image = image.astype(np.float32)
    h, w = image.shape[:2]
    if w > work_width:
        scale = w / work_width
        size = (work_width, max(16, round(h / scale)))
        image = cv2.resize(np.ascontiguousarray(image), size, interpolation=cv2.INTER_AREA)
    small = np.asarray(image, dtype=np.float32)
    if small.ndim == 3:
        small = small.mean(axis=2, dtype=np.float32)
    return small


@pytest.mark.parametrize("factor", [2, 3, 4, 5, 8, 12, 16])
@pytest.mark.parametrize("channels", [None, 1, 3, 4])
def test_downscale_is_identical_to_area_resize_and_channel_mean(factor: int, channels: int | None):
    """Bit for bit, for whole and fractional factors, grey and colour, random and saturated
    content (every rounding tie of the block means shows up in the binary images)."""
    rng = np.random.default_rng(factor * 10 + (channels or 0))
    work = 32
    for height in (16 * factor, 20 * factor + 1):  # whole factor in both axes, then not in y
        shape = (height, work * factor) if channels is None else (height, work * factor, channels)
        for content in ("random", "binary", "white"):
            if content == "random":
                image = rng.integers(0, 256, shape, dtype=np.uint8)
            elif content == "binary":
                image = (rng.integers(0, 2, shape) * 255).astype(np.uint8)
            else:
                image = np.full(shape, 255, np.uint8)
            got = FrameMotionTracker(work).downscale(image)
            want = _reference_downscale(image, work)
            assert got.dtype == want.dtype == np.float32
            assert got.shape == want.shape
            assert np.array_equal(got, want), (shape, content)


@pytest.mark.parametrize("dtype", [np.uint16, np.float32, np.float64, np.int32])
def test_downscale_of_other_pixel_types_is_unchanged(dtype: type):
    rng = np.random.default_rng(3)
    for shape in ((720, 1280, 3), (480, 640), (100, 170, 3), (90, 100, 4)):
        image: np.ndarray = (rng.random(shape) * 4000).astype(dtype)
        got = FrameMotionTracker(160).downscale(image)
        assert np.array_equal(got, _reference_downscale(image, 160)), shape


def test_downscale_of_a_non_contiguous_view_and_of_a_sim_frame():
    rng = np.random.default_rng(4)
    wide = rng.integers(0, 256, (720, 2560, 3), dtype=np.uint8)
    view = wide[:, ::2]  # 1280 columns, not contiguous
    assert np.array_equal(FrameMotionTracker(160).downscale(view), _reference_downscale(view, 160))
    from gap_monitor.sim.rig import RigSettings, SimRig

    frame = SimRig(RigSettings(width=1280, height=720)).camera(0.4).pixels
    assert np.array_equal(FrameMotionTracker(160).downscale(frame), _reference_downscale(frame, 160))


def test_fractional_factor_downscale_stays_close_to_the_area_resize_and_measures_the_same_shift():
    """752 -> 160 px (factor 4.7, EuRoC's cameras): whole 4x4 blocks first, then an area resize of
    the rest. Not bit-identical to one area resize, but the same low-pass picture and motion."""
    rng = np.random.default_rng(5)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (600, 900), dtype=np.uint8), (0, 0), 3.0)
    first, second = texture[40:520, 40:792], texture[40:520, 52:804]  # moved 12 px
    tracker = FrameMotionTracker(160)
    got = tracker.downscale(first)
    want = _reference_downscale(first, 160)
    assert got.shape == want.shape == (102, 160)
    assert float(np.abs(got - want).mean()) < 1.0
    assert float(np.abs(got - want).max()) < 12.0
    tracker.update(1, first)
    motion = tracker.update(2, second)
    assert motion is not None
    assert motion.dx_px == pytest.approx(-12.0, abs=0.3)
    assert motion.dy_px == pytest.approx(0.0, abs=0.3)


def test_a_frame_too_small_to_track_is_bad_input_not_a_crash() -> None:
    # The monitor counts it as a malformed message and the audit as a camera error.
    from gap_monitor.errors import MessageError

    tracker = FrameMotionTracker(160)
    with pytest.raises(MessageError, match="H, W >= 16"):
        tracker.update(0, np.zeros((8, 8), np.uint8))
