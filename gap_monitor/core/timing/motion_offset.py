"""Camera-IMU time offset from motion: when do the images move compared with when the gyro turns?

Header stamps can agree while the physical moments differ (exposure vs. stamping, driver queues,
unsynchronised clocks). This module recovers the real offset from the data itself.

Camera side: the global frame-to-frame translation of a downscaled grey image (phase correlation
with a Hanning window, then a gradient-based sub-pixel refinement, since phase correlation alone
pulls sub-pixel shifts towards whole pixels and that bias leaks into the lag). Per frame interval
this gives an image velocity in full-resolution pixels per second.

Gyro side: the angular velocity integrated over the same interval, moved by a candidate lag. For
small rotations the image shift is linear in the rotation vector whatever the (unknown)
camera-IMU rotation, so at each lag we fit image velocity = A @ gyro rate + b by least squares
(A is 2x3, b absorbs the gyro bias) and score the lag by the fraction of image motion explained
(R^2, adjusted for the fitted parameters). This is the cross-correlation of the gyro with the
image motion generalised to unknown axes; it keeps the sign of the motion, which makes the peak
sharper than correlating speed magnitudes. Lags are scanned on a fine grid (0.5 ms by default)
and the peak refined by parabolic interpolation.

The record is cut into windows of `window_s`; only windows whose angular velocity varies enough
are used, gross misfits (a bad frame match, a passing object) are dropped, and the windows' curves
are averaged with inverse-variance weights. The uncertainty of the peak is the larger of a
moving-block bootstrap over frame intervals (noise) and the disagreement between the first and
second half of the record (systematic trouble the bootstrap cannot see). The answer is explicitly
low-confidence, with a human-readable reason, when the motion is weak, the fit is poor, the peak
sits at the search edge or the uncertainty is too wide: better no answer than a confident wrong one.

Sign convention: `offset_s > 0` means the camera stamps are late relative to the IMU (an image
event appears `offset_s` after the gyro event that caused it); correct the camera stamps with
`t_cam_corrected = t_cam - offset_s`. Shifting the IMU stamps later by `d` lowers the offset by `d`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from gap_monitor.core.units import NS_PER_S
from gap_monitor.core.values import flag, in_ms, number
from gap_monitor.errors import MessageError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class MotionOffsetSettings:
    """How the offset is searched and when an answer counts as confident."""

    window_s: float = 10.0
    """Length of each correlation window; windows with too little motion are skipped."""
    history_s: float = 60.0
    """Gyro and image-motion history the streaming estimator keeps (>= window_s)."""
    max_lag_s: float = 0.05
    """The offset is searched in [-max_lag_s, +max_lag_s]."""
    lag_step_s: float = 0.0005
    """Grid step of the lag scan before parabolic refinement."""
    min_motion_rad_s: float = 0.005
    """Minimum RMS variation of the angular velocity (about its window mean, averaged over frame
    intervals) in a usable window: a coarse floor a few times the interval-averaged noise of MEMS
    gyros. Whether the motion suffices is then judged by the fit and the uncertainty."""
    min_correlation: float = 0.7
    """Minimum correlation (sqrt of adjusted R^2) between the gyro and the image motion at the peak."""
    max_uncertainty_s: float = 0.002
    """Maximum uncertainty of the peak (see OffsetEstimate.uncertainty_s) for a confident answer."""
    min_intervals: int = 30
    """Minimum number of usable frame intervals in a window (and in total)."""
    work_width: int = 160
    """Frames are downscaled to this width (never upscaled) before measuring their motion."""
    subpixel_refine: bool = True
    """Refine the phase-correlation shift with two gradient (Lucas-Kanade) steps."""
    min_response: float = 0.1
    """Frame pairs whose phase-correlation peak is weaker than this are not used."""
    max_frame_interval_s: float = 0.2
    """Frame pairs further apart than this (dropped frames) are not used."""
    max_gyro_gap_s: float = 0.025
    """Frame intervals whose lag-extended span contains a longer gyro gap are not used."""
    bootstrap_samples: int = 100
    bootstrap_block_s: float = 0.5
    """Block length of the moving-block bootstrap (keeps short-term correlation together)."""
    seed: int = 0
    """Seed of the bootstrap, so the same data give the same answer."""

    def __post_init__(self) -> None:
        positive = {
            "window_s": self.window_s,
            "history_s": self.history_s,
            "max_lag_s": self.max_lag_s,
            "lag_step_s": self.lag_step_s,
            "max_uncertainty_s": self.max_uncertainty_s,
            "max_frame_interval_s": self.max_frame_interval_s,
            "max_gyro_gap_s": self.max_gyro_gap_s,
            "bootstrap_block_s": self.bootstrap_block_s,
        }
        for name, value in positive.items():
            _require_number(name, value, "a finite number > 0", lambda v: v > 0)
        _require_number("min_motion_rad_s", self.min_motion_rad_s, "a finite number >= 0", lambda v: v >= 0)
        _require_number("min_correlation", self.min_correlation, "a number in (0, 1)", lambda v: 0 < v < 1)
        _require_number("min_response", self.min_response, "a number in [0, 1)", lambda v: 0 <= v < 1)
        if self.history_s < self.window_s:
            raise ValueError(f"history_s: {self.history_s!r}: must be >= window_s ({self.window_s!r})")
        if self.lag_step_s > self.max_lag_s / 2:
            raise ValueError(
                f"lag_step_s: {self.lag_step_s!r}: must be <= max_lag_s / 2 ({self.max_lag_s / 2!r})"
            )
        _require_int("min_intervals", self.min_intervals, 10, 1_000_000)
        _require_int("work_width", self.work_width, 32, 4096)
        _require_int("bootstrap_samples", self.bootstrap_samples, 20, 10_000)
        _require_int("seed", self.seed, 0, 2**63 - 1)
        if not isinstance(self.subpixel_refine, bool):
            raise ValueError(f"subpixel_refine: {self.subpixel_refine!r}: must be true or false")


def _require_number(name: str, value: object, allowed: str, ok: Callable[[float], bool]) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not ok(float(value))
    ):
        raise ValueError(f"{name}: {value!r}: must be {allowed}")


def _require_int(name: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name}: {value!r}: must be an integer in [{low}, {high}]")


@dataclass(frozen=True)
class FrameMotion:
    """Global image translation between two consecutive frames, in full-resolution pixels.

    `dx_px`, `dy_px`: the content of the later frame sits at (x + dx, y + dy) of the earlier one.
    """

    t0_ns: int
    t1_ns: int
    dx_px: float
    dy_px: float
    response: float
    """Phase-correlation peak strength (0..1); low means the two frames barely match."""


@dataclass(frozen=True)
class OffsetEstimate:
    """Estimated camera-IMU offset. `offset_s > 0`: camera stamps late; subtract it from them.

    `offset_s` is None only when there was nothing to estimate from (too few frame intervals
    overlapping the gyro). A number with `confident=False` is a best guess, not to be applied;
    `reason` says why. `confidence` is 0..1 and is >= 0.5 exactly when `confident`.
    """

    offset_s: float | None
    confidence: float
    confident: bool
    reason: str
    n_frames: int
    """Frame intervals that took part in the estimate."""
    motion_rms: float
    """RMS angular-velocity variation (rad/s, about the window mean) over the windows used."""
    uncertainty_s: float | None = None
    """Larger of the bootstrap spread of the peak (half its 16-84 % range) and half the distance
    between the peaks of the record's first and second halves."""
    correlation: float | None = None
    """sqrt(adjusted R^2) of image velocity against the lag-shifted gyro rate at the peak."""
    image_motion_rms_px_s: float = 0.0
    """RMS image-velocity variation (full-resolution px/s) over the windows used."""
    n_windows: int = 0
    window_offsets_s: tuple[float, ...] = ()
    """Peak of each window used, oldest first (diagnostic)."""
    n_outliers: int = 0
    """Frame intervals left out as gross misfits of the gyro-to-image fit."""

    def values(self) -> dict[str, str]:
        """The named values in display form (`core/values.py`)."""
        return {
            "offset_ms": number(in_ms(self.offset_s), "+.2f"),
            "uncertainty_ms": number(in_ms(self.uncertainty_s)),
            "confident": flag(self.confident),
            "confidence": number(self.confidence),
            "frames": str(self.n_frames),
            "motion_rms_rad_s": number(self.motion_rms, ".4f"),
        }


class FrameMotionTracker:
    """Measures frame-to-frame global translation, keeping only the previous downscaled frame."""

    def __init__(self, work_width: int = 160, subpixel_refine: bool = True) -> None:
        _require_int("work_width", work_width, 32, 4096)
        self._work_width = work_width
        self._refine = subpixel_refine
        self._prev: npt.NDArray[np.float32] | None = None
        self._prev_ns = 0
        self._prev_shape: tuple[int, ...] = ()
        self._scale = 1.0
        self._window: npt.NDArray[np.float32] | None = None

    def reset(self) -> None:
        self._prev = None

    def update(self, stamp_ns: int, image: npt.NDArray[np.generic]) -> FrameMotion | None:
        """Add a frame; returns the motion since the previous frame, or None for the first one.

        Accepts HxW grey or HxWxC colour (channels averaged). A stamp not after the previous
        frame's, or a change of image size, restarts the tracker from this frame.
        """
        grey = self.downscale(image)
        prev, prev_ns = self._prev, self._prev_ns
        same_size = image.shape[:2] == self._prev_shape[:2]
        self._prev, self._prev_ns, self._prev_shape = grey, stamp_ns, image.shape
        if prev is None or not same_size or stamp_ns <= prev_ns:
            return None
        if self._window is None or self._window.shape != grey.shape:
            self._window = cv2.createHanningWindow((grey.shape[1], grey.shape[0]), cv2.CV_32F)
        (dx, dy), response = cv2.phaseCorrelate(prev, grey, self._window)
        if self._refine:
            dx, dy = _refine_shift(prev, grey, float(dx), float(dy), self._window)
        return FrameMotion(
            t0_ns=prev_ns,
            t1_ns=stamp_ns,
            dx_px=float(dx) * self._scale,
            dy_px=float(dy) * self._scale,
            response=float(response),
        )

    def downscale(self, image: npt.NDArray[np.generic]) -> npt.NDArray[np.float32]:
        # Shrink first, in the camera's own dtype: converting a full 1280x720 frame to float costs
        # ~20x more than the resize (the live monitor does this for every frame).
        if image.ndim not in (2, 3) or image.shape[0] < 16 or image.shape[1] < 16:
            raise MessageError(f"image: shape {image.shape}: must be HxW or HxWxC with H, W >= 16")
        if image.ndim == 3:
            image = image[:, :, :3]
        if image.dtype not in (np.uint8, np.uint16, np.float32):
            image = image.astype(np.float32)
        h, w = image.shape[:2]
        self._scale = 1.0
        if w > self._work_width:
            self._scale = w / self._work_width
            size = (self._work_width, max(16, round(h / self._scale)))
            image = np.ascontiguousarray(image)
            factor = w // self._work_width
            if image.dtype == np.uint8 and _block_mean_applies(w, h, size, factor):
                image = _block_mean_u8(image, factor)
            elif image.dtype == np.uint8 and _block_mean_applies(w, h, (w // factor, h // factor), factor):
                # A fractional factor (752 -> 160 px: 4.7) takes OpenCV's general INTER_AREA path,
                # ~3x slower than averaging whole blocks first and area-resizing what is left.
                image = cv2.resize(_block_mean_u8(image, factor), size, interpolation=cv2.INTER_AREA)
            else:
                image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        small = np.asarray(image, dtype=np.float32)
        if small.ndim == 3:
            # mean(axis=2) over three channels, spelled out: numpy's reduction over a length-3
            # axis costs ~10x these two adds, and the result is bit-identical ((c0 + c1) + c2) / 3.
            if small.shape[2] == 3:
                total = small[:, :, 0] + small[:, :, 1]
                total += small[:, :, 2]
                total /= np.float32(3)
                return total
            small = small.mean(axis=2, dtype=np.float32)
        return small


# OpenCV's INTER_AREA for a whole-number factor f >= 3 averages f x f blocks with a scalar loop
# (~0.75 ms for a 1280x720 rgb8 frame, every frame); the same sums done as one numpy pass over the
# rows and an OpenCV pass over the columns cost about half. For f = 2 OpenCV has its own fast
# path, which rounds differently: not replaced. Up to f = 16 the column pass fits in uint16.
_BLOCK_MEAN_FACTORS = range(3, 17)


def _block_mean_applies(w: int, h: int, size: tuple[int, int], factor: int) -> bool:
    whole = w % factor == 0 and h % factor == 0
    return factor in _BLOCK_MEAN_FACTORS and whole and size == (w // factor, h // factor)


def _block_mean_u8(image: npt.NDArray[np.generic], factor: int) -> npt.NDArray[np.float32]:
    """cv2.resize(image, (w / f, h / f), interpolation=INTER_AREA) of a contiguous uint8 HxW or
    HxWxC image, as float32: the block sums rounded half to even after the same float scaling
    (1/f^2) OpenCV applies, so the values are identical (the tests compare them)."""
    h, w = image.shape[:2]
    out_h, out_w = h // factor, w // factor
    rows = image.reshape(out_h, factor, -1).sum(axis=1, dtype=np.uint16)  # (out_h, w * C)
    # Scaled by f, INTER_AREA's mean over f columns is exactly the block sum (no rounding).
    rows *= np.uint16(factor)
    sums = cv2.resize(rows.reshape(out_h, w, -1), (out_w, out_h), interpolation=cv2.INTER_AREA)
    # OpenCV's shapes too: a single channel comes back HxW.
    scaled = sums.astype(np.float32) * (np.float32(1) / np.float32(factor * factor))
    return np.rint(scaled)


def _refine_shift(
    prev: npt.NDArray[np.float32],
    cur: npt.NDArray[np.float32],
    dx: float,
    dy: float,
    weight: npt.NDArray[np.float32],
) -> tuple[float, float]:
    """Two Gauss-Newton steps of a global translation fit, started at the phase-correlation shift.

    Keeps the phase-correlation answer when the image has too little texture to refine it or the
    refinement wanders more than a pixel away (then the model does not fit the frame pair).
    """
    h, w = prev.shape
    gx_p = cv2.Sobel(prev, cv2.CV_32F, 1, 0, ksize=1, scale=0.5)
    gy_p = cv2.Sobel(prev, cv2.CV_32F, 0, 1, ksize=1, scale=0.5)
    x, y = dx, dy
    for _ in range(2):
        shift = np.array([[1.0, 0.0, x], [0.0, 1.0, y]], dtype=np.float32)
        warped = cv2.warpAffine(
            cur,
            shift,
            (w, h),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        gx = 0.5 * (gx_p + cv2.Sobel(warped, cv2.CV_32F, 1, 0, ksize=1, scale=0.5))
        gy = 0.5 * (gy_p + cv2.Sobel(warped, cv2.CV_32F, 0, 1, ksize=1, scale=0.5))
        mask = weight.copy()
        bx, by = math.ceil(abs(x)) + 1, math.ceil(abs(y)) + 1
        if 2 * bx >= w or 2 * by >= h:
            return dx, dy
        mask[:, :bx] = 0
        mask[:, w - bx :] = 0
        mask[:by] = 0
        mask[h - by :] = 0
        diff = warped - prev
        mgx, mgy = mask * gx, mask * gy
        a11 = float(np.sum(mgx * gx, dtype=np.float64))
        a12 = float(np.sum(mgx * gy, dtype=np.float64))
        a22 = float(np.sum(mgy * gy, dtype=np.float64))
        b1 = -float(np.sum(mgx * diff, dtype=np.float64))
        b2 = -float(np.sum(mgy * diff, dtype=np.float64))
        det = a11 * a22 - a12 * a12
        if a11 <= 0 or a22 <= 0 or det <= 1e-6 * (a11 + a22) ** 2:
            return dx, dy
        step_x = (a22 * b1 - a12 * b2) / det
        step_y = (a11 * b2 - a12 * b1) / det
        x, y = x + step_x, y + step_y
        if abs(step_x) < 1e-3 and abs(step_y) < 1e-3:
            break
    if math.hypot(x - dx, y - dy) > 1.0:
        return dx, dy
    return x, y


class MotionOffsetEstimator:
    """Streaming camera-IMU offset estimation with bounded memory.

    Keeps `history_s` of gyro samples and of frame-to-frame motions (a few numbers per frame)
    plus the previous downscaled frame. `estimate()` may be called at any time.
    A stamp earlier than the previous one of the same stream (a clock jump) clears that stream's
    history; a repeated stamp is ignored.
    """

    def __init__(self, settings: MotionOffsetSettings | None = None) -> None:
        self.settings = settings or MotionOffsetSettings()
        s = self.settings
        self._tracker = FrameMotionTracker(s.work_width, s.subpixel_refine)
        self._history_ns = int(s.history_s * NS_PER_S)
        self._gyro_keep_ns = int((s.history_s + 2 * s.max_lag_s + 1.0) * NS_PER_S)
        # Also capped by count, so a runaway rate cannot grow memory without bound.
        self._gyro: deque[tuple[int, float, float, float]] = deque(maxlen=int(s.history_s * 4000) + 1000)
        self._motions: deque[FrameMotion] = deque(maxlen=int(s.history_s * 1000) + 100)
        self._last_frame_ns: int | None = None

    def reset(self) -> None:
        self._tracker.reset()
        self._gyro.clear()
        self._motions.clear()
        self._last_frame_ns = None

    @property
    def n_gyro_samples(self) -> int:
        return len(self._gyro)

    @property
    def n_frame_intervals(self) -> int:
        return len(self._motions)

    def add_gyro(self, stamp_ns: int, wx: float, wy: float, wz: float) -> None:
        """One angular-velocity sample (rad/s, any fixed IMU frame)."""
        if self._gyro:
            last = self._gyro[-1][0]
            if stamp_ns == last:
                return
            if stamp_ns < last:
                self._gyro.clear()
        if not (math.isfinite(wx) and math.isfinite(wy) and math.isfinite(wz)):
            return
        self._gyro.append((stamp_ns, float(wx), float(wy), float(wz)))
        cutoff = stamp_ns - self._gyro_keep_ns
        while self._gyro[0][0] < cutoff:
            self._gyro.popleft()

    def add_frame(self, stamp_ns: int, image: npt.NDArray[np.generic]) -> FrameMotion | None:
        """One camera frame (grey or colour); returns its motion since the previous frame."""
        last = self._last_frame_ns
        if last is not None and stamp_ns == last:
            return None
        if last is not None and stamp_ns < last:
            self._motions.clear()
            self._tracker.reset()
        self._last_frame_ns = stamp_ns
        motion = self._tracker.update(stamp_ns, image)
        if motion is not None:
            self._motions.append(motion)
            cutoff = stamp_ns - self._history_ns
            while self._motions[0].t0_ns < cutoff:
                self._motions.popleft()
        return motion

    def estimate(self) -> OffsetEstimate:
        stamps = np.array([g[0] for g in self._gyro], dtype=np.int64)
        rates = np.array([g[1:] for g in self._gyro], dtype=np.float64).reshape(-1, 3)
        return estimate_offset_from_motions(list(self._motions), stamps, rates, self.settings)


def estimate_motion_offset(
    frame_stamps_ns: Sequence[int] | npt.NDArray[np.int64],
    frames: Iterable[npt.NDArray[np.generic]],
    gyro_stamps_ns: Sequence[int] | npt.NDArray[np.int64],
    gyro_rad_s: npt.ArrayLike,
    settings: MotionOffsetSettings | None = None,
) -> OffsetEstimate:
    """Offline: frames (in stamp order, consumed one at a time) and an Nx3 gyro array.

    Uses the whole record (no `history_s` limit), cut into `window_s` windows.
    """
    s = settings or MotionOffsetSettings()
    tracker = FrameMotionTracker(s.work_width, s.subpixel_refine)
    motions: list[FrameMotion] = []
    try:
        for stamp, frame in zip(frame_stamps_ns, frames, strict=True):
            motion = tracker.update(int(stamp), frame)
            if motion is not None:
                motions.append(motion)
    except ValueError as exc:
        if "zip()" not in str(exc):
            raise
        raise ValueError(
            f"frames: not one image per stamp ({len(frame_stamps_ns)} stamps): must match"
        ) from exc
    return estimate_offset_from_motions(motions, gyro_stamps_ns, gyro_rad_s, s)


def estimate_offset_from_motions(
    motions: Sequence[FrameMotion],
    gyro_stamps_ns: Sequence[int] | npt.NDArray[np.int64],
    gyro_rad_s: npt.ArrayLike,
    settings: MotionOffsetSettings | None = None,
) -> OffsetEstimate:
    """The estimate from already measured frame motions and an Nx3 gyro array (rad/s)."""
    s = settings or MotionOffsetSettings()
    g_ns: IntArray = np.asarray(gyro_stamps_ns, dtype=np.int64).reshape(-1)
    rates: FloatArray = np.asarray(gyro_rad_s, dtype=np.float64).reshape(-1, 3)
    if len(g_ns) != len(rates):
        raise ValueError(f"gyro_rad_s: {len(rates)} rows for {len(g_ns)} stamps: must be one row per stamp")
    order = np.argsort(g_ns, kind="stable")
    g_ns, rates = g_ns[order], rates[order]
    keep = np.concatenate([[True], np.diff(g_ns) > 0]) & np.isfinite(rates).all(axis=1)
    g_ns, rates = g_ns[keep], rates[keep]
    return _Analysis(s, motions, g_ns, rates).run()


def _no_estimate(reason: str, n_frames: int = 0) -> OffsetEstimate:
    return OffsetEstimate(
        offset_s=None,
        confidence=0.0,
        confident=False,
        reason=reason,
        n_frames=n_frames,
        motion_rms=0.0,
    )


@dataclass(frozen=True)
class _Window:
    index: IntArray
    motion_rms: float
    image_rms: float
    n_outliers: int = 0


class _Analysis:
    def __init__(
        self,
        settings: MotionOffsetSettings,
        motions: Sequence[FrameMotion],
        gyro_ns: IntArray,
        gyro: FloatArray,
    ) -> None:
        self.s = settings
        self.motions = sorted(motions, key=lambda m: m.t1_ns)
        self.gyro_ns = gyro_ns
        self.gyro = gyro
        n_half = round(settings.max_lag_s / settings.lag_step_s)
        self.lags = np.arange(-n_half, n_half + 1, dtype=np.float64) * settings.lag_step_s

    def run(self) -> OffsetEstimate:
        s = self.s
        if len(self.motions) == 0:
            return _no_estimate("no frame intervals yet (need at least two frames)")
        if len(self.gyro_ns) < 2:
            return _no_estimate("no gyro samples overlap the frames")
        t_ref = int(self.gyro_ns[0])
        tg = (self.gyro_ns - t_ref) / NS_PER_S
        t0 = np.array([m.t0_ns - t_ref for m in self.motions], dtype=np.float64) / NS_PER_S
        t1 = np.array([m.t1_ns - t_ref for m in self.motions], dtype=np.float64) / NS_PER_S
        shifts = np.array([(m.dx_px, m.dy_px) for m in self.motions], dtype=np.float64)
        response = np.array([m.response for m in self.motions], dtype=np.float64)
        dt = t1 - t0
        spaced = (dt > 0) & (dt <= s.max_frame_interval_s)
        matched = (response >= s.min_response) & np.isfinite(shifts).all(axis=1)
        covered = self._gyro_covers(tg, t0 - s.max_lag_s, t1 + s.max_lag_s)
        ok = spaced & matched & covered
        n_ok = int(ok.sum())
        if n_ok < s.min_intervals:
            why = []
            for count, what in (
                (int((~covered).sum()), "lack gyro samples within ±max_lag_s or span a gyro gap"),
                (int((~spaced).sum()), "are longer than max_frame_interval_s (dropped frames)"),
                (
                    int((~matched).sum()),
                    "match too weakly, phase-correlation response below min_response "
                    "(textureless, dark or changing scene)",
                ),
            ):
                if count:
                    why.append(f"{count} {what}")
            return _no_estimate(
                f"only {n_ok} of {len(self.motions)} frame intervals usable, need "
                f"min_intervals={s.min_intervals}" + "".join(f"; {w}" for w in why),
                n_ok,
            )
        t0, t1, dt, shifts = t0[ok], t1[ok], dt[ok], shifts[ok]
        velocity = shifts / dt[:, None]

        # Gyro rotation over each frame interval, for every candidate lag: (lags, intervals, 3).
        cumulative = np.zeros_like(self.gyro)
        cumulative[1:] = np.cumsum(0.5 * (self.gyro[1:] + self.gyro[:-1]) * np.diff(tg)[:, None], axis=0)
        ends = t1[None, :] - self.lags[:, None]
        starts = t0[None, :] - self.lags[:, None]
        rot = np.stack(
            [
                np.interp(ends, tg, cumulative[:, axis]) - np.interp(starts, tg, cumulative[:, axis])
                for axis in range(3)
            ],
            axis=-1,
        )
        gyro_rate = rot / dt[None, :, None]

        windows = self._windows(t0, t1, gyro_rate, velocity)
        moving = [w for w in windows if w.motion_rms >= s.min_motion_rad_s]
        weak = not moving
        used = [self._without_outliers(w, gyro_rate, velocity) for w in (moving or windows)]
        return self._conclude(used, weak, windows, gyro_rate, velocity, dt)

    def _without_outliers(self, window: _Window, gyro_rate: FloatArray, velocity: FloatArray) -> _Window:
        """Drops gross misfits (a passing object, a bad frame match): one interval can otherwise
        pull the peak by milliseconds. Kept as is when misfits are many: then the fit itself is
        poor, which the correlation gate reports."""
        idx = window.index
        x, v = gyro_rate[:, idx], velocity[idx]
        inlier = np.ones(len(idx), dtype=bool)
        ones = np.ones((1, len(idx)))
        for _ in range(2):
            curve = _explained_fraction(x[:, inlier], v[inlier], ones[:, inlier])[0]
            at_peak = x[int(np.argmax(curve))]
            design = np.column_stack([at_peak, np.ones(len(idx))])
            beta = np.linalg.lstsq(design[inlier], v[inlier], rcond=None)[0]
            misfit = np.linalg.norm(v - design @ beta, axis=1)
            # 2-D Gaussian residuals: median = 1.18 sigma, so this cuts at about 6 sigma.
            keep = misfit <= 5.0 * float(np.median(misfit[inlier]))
            if keep.sum() < 0.9 * len(idx) or np.array_equal(keep, inlier):
                break
            inlier = keep
        if inlier.all():
            return window
        return _Window(
            index=idx[inlier],
            motion_rms=window.motion_rms,
            image_rms=window.image_rms,
            n_outliers=int((~inlier).sum()),
        )

    def _gyro_covers(self, tg: FloatArray, lo: FloatArray, hi: FloatArray) -> npt.NDArray[np.bool_]:
        i_lo = np.searchsorted(tg, lo, side="right") - 1
        i_hi = np.searchsorted(tg, hi, side="left")
        inside = (i_lo >= 0) & (i_hi < len(tg))
        big_gap = np.concatenate([[0], np.cumsum(np.diff(tg) > self.s.max_gyro_gap_s)])
        i_lo_c = np.clip(i_lo, 0, len(tg) - 1)
        i_hi_c = np.clip(i_hi, 0, len(tg) - 1)
        return inside & (big_gap[i_hi_c] == big_gap[i_lo_c])

    def _windows(
        self, t0: FloatArray, t1: FloatArray, gyro_rate: FloatArray, velocity: FloatArray
    ) -> list[_Window]:
        """Consecutive windows of window_s, newest aligned to the latest frame; a short oldest
        remainder joins its neighbour so no window has fewer than min_intervals."""
        mid = 0.5 * (t0 + t1)
        latest = float(t1[-1])
        tile = np.floor((latest - mid) / self.s.window_s).astype(np.int64)
        groups = [np.flatnonzero(tile == k) for k in range(int(np.max(tile)) + 1)]
        groups = [g for g in groups if len(g)]
        merged: list[IntArray] = []
        for g in groups:  # newest first
            if merged and len(g) < self.s.min_intervals:
                merged[-1] = np.concatenate([g, merged[-1]])
            else:
                merged.append(g)
        # A too-small newest group (the only one possible now) joins the next older one.
        if len(merged) > 1 and len(merged[0]) < self.s.min_intervals:
            merged[1] = np.concatenate([merged[1], merged[0]])
            merged.pop(0)
        zero = len(self.lags) // 2
        out = []
        for idx in reversed(merged):  # oldest first
            idx = np.sort(idx)
            r0 = gyro_rate[zero, idx]
            v = velocity[idx]
            out.append(
                _Window(
                    index=idx,
                    motion_rms=_rms_about_mean(r0),
                    image_rms=_rms_about_mean(v),
                )
            )
        return [w for w in out if len(w.index) >= self.s.min_intervals]

    def _conclude(
        self,
        used: list[_Window],
        weak: bool,
        windows: list[_Window],
        gyro_rate: FloatArray,
        velocity: FloatArray,
        dt: FloatArray,
    ) -> OffsetEstimate:
        s = self.s
        rng = np.random.default_rng(s.seed)
        n_total = sum(len(w.index) for w in used)
        floor = s.lag_step_s / math.sqrt(12.0)
        # Rows: all intervals, first half, second half of each window, then bootstrap draws.
        per_window = []
        for w in used:
            n = len(w.index)
            block = max(1, round(s.bootstrap_block_s / float(np.median(dt[w.index]))))
            boot_w = _block_bootstrap_weights(n, block, s.bootstrap_samples, rng)
            halves = np.zeros((2, n))
            halves[0, : n // 2] = 1.0
            halves[1, n // 2 :] = 1.0
            weights = np.vstack([np.ones((1, n)), halves, boot_w])
            per_window.append(_explained_fraction(gyro_rate[:, w.index], velocity[w.index], weights))
        window_peaks = [_peak(self.lags, curves[0])[0] for curves in per_window]
        # Inverse-variance weights: a window that cannot place its own peak (one inconsistent
        # jerk, a moving object) must not drag the others.
        inv_var = np.array([max(floor, *self._spread(c)) ** -2 for c in per_window])
        inv_var /= inv_var.sum()
        combined = sum(
            (c * wt for c, wt in zip(per_window, inv_var, strict=True)), np.zeros_like(per_window[0])
        )
        offset, at_edge, peak_index = _peak(self.lags, combined[0])
        # The bootstrap sees noise; systematic trouble (parallax, a drifting offset) shows as
        # disagreement between the halves of the record, so the larger of the two counts.
        boot_spread, half_spread = self._spread(combined)
        half_gap = 2.0 * half_spread
        uncertainty = max(boot_spread, half_spread, floor)
        correlation = math.sqrt(max(0.0, float(combined[0, peak_index])))
        n_used = np.concatenate([w.index for w in used])
        motion_rms = math.sqrt(sum(w.motion_rms**2 * len(w.index) for w in used) / n_total)
        image_rms = math.sqrt(sum(w.image_rms**2 * len(w.index) for w in used) / n_total)

        factors: list[float] = []
        problems: list[str] = []
        factors.append(min(1.0, 0.5 * motion_rms / s.min_motion_rad_s) if s.min_motion_rad_s else 1.0)
        if weak:
            best = max(w.motion_rms for w in windows)
            problems.append(
                f"weak motion: angular-velocity variation {best:.3f} rad/s RMS in the best window, "
                f"below min_motion_rad_s={s.min_motion_rad_s:g}; move or shake the sensor"
            )
        if correlation < s.min_correlation:
            factors.append(0.5 * correlation / s.min_correlation)
            problems.append(
                f"gyro and image motion poorly correlated (r={correlation:.2f} < "
                f"min_correlation={s.min_correlation:g}; image motion {image_rms:.1f} px/s RMS "
                f"for {motion_rms:.3f} rad/s): the camera may not see the rotation (textureless, "
                "blurred, moving scene) or the streams are not from the same rig"
            )
        else:
            factors.append(0.5 + 0.5 * (correlation - s.min_correlation) / (1 - s.min_correlation))
        if at_edge:
            factors.append(0.0)
            problems.append(
                f"correlation peak at the edge of the ±{s.max_lag_s * 1e3:g} ms search range: "
                "the offset may lie outside it"
            )
        factors.append(max(0.0, 1.0 - 0.5 * uncertainty / s.max_uncertainty_s))
        if uncertainty > s.max_uncertainty_s:
            problems.append(
                f"ambiguous peak: uncertainty ±{uncertainty * 1e3:.1f} ms (bootstrap "
                f"±{boot_spread * 1e3:.1f} ms, halves of the record {half_gap * 1e3:.1f} ms apart) "
                f"exceeds max_uncertainty_s={s.max_uncertainty_s * 1e3:g} ms"
            )
        confident = not problems
        confidence = min(factors)
        confidence = max(confidence, 0.5) if confident else min(confidence, 0.49)
        if confident:
            reason = (
                f"offset {offset * 1e3:+.1f} ± {uncertainty * 1e3:.1f} ms from "
                f"{len(n_used)} frame intervals in {len(used)} window(s), r={correlation:.3f}"
            )
        else:
            reason = f"low confidence (best guess {offset * 1e3:+.1f} ms): " + "; ".join(problems)
        return OffsetEstimate(
            offset_s=offset,
            confidence=float(np.clip(confidence, 0.0, 1.0)),
            confident=confident,
            reason=reason,
            n_frames=len(n_used),
            motion_rms=motion_rms,
            uncertainty_s=uncertainty,
            correlation=correlation,
            image_motion_rms_px_s=image_rms,
            n_windows=len(used),
            window_offsets_s=tuple(window_peaks),
            n_outliers=sum(w.n_outliers for w in used),
        )

    def _spread(self, curves: FloatArray) -> tuple[float, float]:
        """(half the 16-84 % range of the bootstrap peaks, half the gap between the halves)."""
        boot = np.array([_peak(self.lags, c)[0] for c in curves[3:]])
        q16, q84 = np.quantile(boot, [0.16, 0.84])
        halves = abs(_peak(self.lags, curves[1])[0] - _peak(self.lags, curves[2])[0])
        return 0.5 * float(q84 - q16), 0.5 * halves


def _rms_about_mean(values: FloatArray) -> float:
    centred = values - values.mean(axis=0)
    return math.sqrt(float(np.mean(np.sum(centred**2, axis=1))))


def _block_bootstrap_weights(n: int, block: int, samples: int, rng: np.random.Generator) -> FloatArray:
    """Per row, how often each interval is drawn when resampling whole blocks of `block`
    consecutive intervals (moving-block bootstrap)."""
    block = min(block, n)
    n_blocks = math.ceil(n / block)
    starts = rng.integers(0, n - block + 1, size=(samples, n_blocks))
    marks = np.zeros((samples, n + 1))
    rows = np.repeat(np.arange(samples), n_blocks)
    np.add.at(marks, (rows, starts.ravel()), 1.0)
    np.add.at(marks, (rows, starts.ravel() + block), -1.0)
    return np.asarray(np.cumsum(marks, axis=1)[:, :n], dtype=np.float64)


def _explained_fraction(gyro_rate: FloatArray, velocity: FloatArray, weights: FloatArray) -> FloatArray:
    """Adjusted R^2 of velocity ~ A @ gyro_rate + b per (weight row, lag): (rows, lags).

    gyro_rate: (lags, n, 3); velocity: (n, 2); weights: (rows, n). Weighted sums come from one
    matrix product per moment, so every bootstrap row and lag is solved at once.
    """
    n_lags, n, _ = gyro_rate.shape
    x = gyro_rate - gyro_rate[n_lags // 2].mean(axis=0)
    v = velocity - velocity.mean(axis=0)
    xt = x.transpose(1, 0, 2)  # (n, lags, 3)
    s0 = weights.sum(axis=1)  # (rows,)
    sx = (weights @ xt.reshape(n, -1)).reshape(-1, n_lags, 3)
    sv = weights @ v  # (rows, 2)
    sxx = (weights @ (xt[..., :, None] * xt[..., None, :]).reshape(n, -1)).reshape(-1, n_lags, 3, 3)
    sxv = (weights @ (xt[..., :, None] * v[:, None, None, :]).reshape(n, -1)).reshape(-1, n_lags, 3, 2)
    svv = weights @ np.sum(v * v, axis=1)
    inv = 1.0 / s0
    mx = sx * inv[:, None, None]
    mv = sv * inv[:, None]
    cxx = sxx * inv[:, None, None, None] - mx[..., :, None] * mx[..., None, :]
    cxv = sxv * inv[:, None, None, None] - mx[..., :, None] * mv[:, None, None, :]
    total = svv * inv - np.sum(mv * mv, axis=1)
    # A small ridge keeps axes without any rotation (exactly zero columns) solvable.
    trace = np.trace(cxx, axis1=-2, axis2=-1)
    ridge = (1e-9 * trace + 1e-18)[..., None, None] * np.eye(3)
    beta = np.linalg.solve(cxx + ridge, cxv)
    explained = np.sum(cxv * beta, axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.where(total[:, None] > 0, explained / total[:, None], 0.0)
    dof = (n - 1) / max(1, n - 4)
    return np.asarray(1.0 - (1.0 - np.clip(r2, 0.0, 1.0)) * dof, dtype=np.float64)


def _peak(lags: FloatArray, curve: FloatArray) -> tuple[float, bool, int]:
    """Lag of the curve's maximum, refined by a parabola through it and its neighbours."""
    j = int(np.argmax(curve))
    if j == 0 or j == len(curve) - 1:
        return float(lags[j]), True, j
    left, mid, right = curve[j - 1], curve[j], curve[j + 1]
    denom = left - 2.0 * mid + right
    delta = 0.5 * (left - right) / denom if denom < 0 else 0.0
    step = float(lags[1] - lags[0])
    return float(lags[j] + delta * step), False, j
