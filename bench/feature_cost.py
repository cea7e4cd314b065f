"""Feature cost per frame: camera and depth features against a plain grey conversion of a frame.

Frames are the simulated rig's (`gap_monitor.sim.rig.SimRig`: a textured scene with sharp-edged shapes,
sensor noise and a depth scene with ~3 % holes), rendered at 1280x720 and 640x480; a few distinct
frames are cycled so no measurement reads one frame from a warm cache. Each figure is the median
of N repetitions; the measured call and the baseline alternate within every repetition, so a change
in the machine's load lands on both.

- camera: `features.image.image_features(rgb8)`, and the conditions layer's whole camera path
  (`StreamConditions.on_message`: CDR decode + features), against `cv2.cvtColor(RGB2GRAY)` of the
  same frame.
- depth: `StreamConditions.on_message` for a 16UC1 frame, as the node and `profile build` run it
  (CDR decode, every n-th pixel to ~320 px wide, then `depth_features`), against
  `cv2.cvtColor(RGB2GRAY)` of the rgb8 frame of the same size: there is no grey conversion of a
  depth image, so the baseline is "touch every pixel of a frame this size once".

The conditions layer decimates images by stamp (5 Hz by default); the stamps fed here advance by a
whole period each call, so every call computes features.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from bench import BenchOptions
from bench.report import BenchResult, Row, Table, format_number
from bench.snapshot_write import serializer, sim_rig
from gap_monitor.core.conditions.features import image as image_module
from gap_monitor.core.conditions.features.depth import depth_features
from gap_monitor.core.conditions.features.image import image_features
from gap_monitor.core.conditions.settings import ConditionSettings
from gap_monitor.core.conditions.stream import DEPTH_WORK_WIDTH, StreamConditions
from gap_monitor.core.units import NS_PER_S

TITLE = "feature cost per frame: image / depth features vs cv2.cvtColor(RGB2GRAY) of the frame"
IMAGE_TYPE = "sensor_msgs/msg/Image"
SIZES = ((1280, 720), (640, 480))
REPEATS = 200
WARMUP = 10
DISTINCT_FRAMES = 8


def median_seconds(fn: Callable[[int], object], repeats: int, warmup: int = 0) -> float:
    """Median wall time of `fn(i)` over `repeats` calls (i = 0, 1, ...), after `warmup` unmeasured
    calls; perf_counter resolution."""
    if repeats < 1:
        raise ValueError(f"repeats: {repeats!r}: an integer >= 1")
    for i in range(warmup):
        fn(i)
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def paired_median_seconds(
    measured: Callable[[int], object], baseline: Callable[[int], object], repeats: int, warmup: int = 0
) -> tuple[float, float]:
    """(median of measured, median of baseline), the two timed alternately within each repetition
    so a load change during the run lands on both."""
    if repeats < 1:
        raise ValueError(f"repeats: {repeats!r}: an integer >= 1")
    for i in range(warmup):
        baseline(i)
        measured(i)
    m_times, b_times = [], []
    for i in range(repeats):
        t0 = time.perf_counter()
        baseline(i)
        t1 = time.perf_counter()
        measured(i)
        t2 = time.perf_counter()
        b_times.append(t1 - t0)
        m_times.append(t2 - t1)
    return statistics.median(m_times), statistics.median(b_times)


@dataclass(frozen=True)
class Frames:
    width: int
    height: int
    rgb: tuple[npt.NDArray[np.uint8], ...]
    depth: tuple[npt.NDArray[np.uint16], ...]
    rgb_cdr: tuple[bytes, ...]
    depth_cdr: tuple[bytes, ...]


def render_frames(width: int, height: int, count: int = DISTINCT_FRAMES) -> Frames:
    rig = sim_rig(width, height)
    times = [i / 30.0 for i in range(count)]
    rgb = tuple(np.ascontiguousarray(rig.camera(t).pixels) for t in times)
    depth = tuple(np.ascontiguousarray(rig.depth(t).pixels) for t in times)
    return Frames(
        width,
        height,
        rgb,
        depth,
        tuple(serializer().image(p, "rgb8", 0) for p in rgb),
        tuple(serializer().image(p, "16UC1", 0) for p in depth),
    )


class _Feeder:
    """Calls StreamConditions with stamps a whole decimation period apart: every call is due."""

    def __init__(self, modality: str, messages: Sequence[bytes], settings: ConditionSettings) -> None:
        self.conditions = StreamConditions(modality, IMAGE_TYPE, settings)
        self.messages = messages
        self.period_ns = int(NS_PER_S / settings.image_rate_hz)
        self.stamp_ns = 1_000 * NS_PER_S
        self.missed = 0

    def __call__(self, i: int) -> object:
        self.stamp_ns += self.period_ns
        features = self.conditions.on_message(self.stamp_ns, self.messages[i % len(self.messages)])
        if features is None:
            self.missed += 1
        return features


def _worked(width: int, height: int) -> str:
    step = max(1, width // DEPTH_WORK_WIDTH)
    return f"{-(-width // step)}x{-(-height // step)}"


def _ms(seconds: float) -> float:
    return seconds * 1e3


def run(options: BenchOptions) -> BenchResult:
    settings = ConditionSettings()
    rows: list[Row] = []
    per_second: list[tuple[str, ...]] = []
    stages: list[tuple[str, ...]] = []
    details: dict[str, Any] = {"repeats": REPEATS, "distinct_frames": DISTINCT_FRAMES, "sizes": {}}
    missed = 0
    for width, height in SIZES:
        frames = render_frames(width, height)
        size = f"{width}x{height}"

        def grey(i: int, frames: Frames = frames) -> object:
            return cv2.cvtColor(frames.rgb[i % len(frames.rgb)], cv2.COLOR_RGB2GRAY)

        def features(i: int, frames: Frames = frames) -> object:
            return image_features(frames.rgb[i % len(frames.rgb)], "rgb8")

        camera_feed = _Feeder("camera", frames.rgb_cdr, settings)
        depth_feed = _Feeder("depth", frames.depth_cdr, settings)
        img_m, img_b = paired_median_seconds(features, grey, REPEATS, WARMUP)
        cam_m, cam_b = paired_median_seconds(camera_feed, grey, REPEATS, WARMUP)
        dep_m, dep_b = paired_median_seconds(depth_feed, grey, REPEATS, WARMUP)
        missed += camera_feed.missed + depth_feed.missed

        # Context: depth features on the full frame (what the decimation in conditions saves).
        def full_depth_features(i: int, depth: tuple[npt.NDArray[np.uint16], ...] = frames.depth) -> object:
            return depth_features(depth[i % len(depth)], "16UC1")

        full_depth = median_seconds(full_depth_features, REPEATS // 4, 2)
        rows += [
            Row(f"image_features rgb8 {size}", _ms(img_m), _ms(img_b), "ms/frame"),
            Row(f"camera via StreamConditions (CDR+features) {size}", _ms(cam_m), _ms(cam_b), "ms/frame"),
            Row(f"depth via StreamConditions 16UC1 {size}", _ms(dep_m), _ms(dep_b), "ms/frame"),
        ]
        rate = settings.image_rate_hz
        for label, ms in (
            (f"camera {size}", _ms(cam_m)),
            (f"depth {size}", _ms(dep_m)),
        ):
            per_second.append((label, format_number(ms), format_number(ms * rate), f"{ms * rate / 10:.2f}"))
        stages += _stage_rows(frames, size)
        stages.append((f"depth_features, full {size} (not decimated)", format_number(_ms(full_depth))))
        details["sizes"][size] = {
            "image_features_ms": _ms(img_m),
            "image_baseline_ms": _ms(img_b),
            "camera_conditions_ms": _ms(cam_m),
            "camera_baseline_ms": _ms(cam_b),
            "depth_conditions_ms": _ms(dep_m),
            "depth_baseline_ms": _ms(dep_b),
            "depth_features_full_frame_ms": _ms(full_depth),
            "rgb_message_bytes": len(frames.rgb_cdr[0]),
            "depth_message_bytes": len(frames.depth_cdr[0]),
        }
    notes = [
        f"median of {REPEATS} calls per figure over {DISTINCT_FRAMES} distinct sim frames; "
        "baseline (cv2.cvtColor RGB2GRAY of the rgb8 frame of that size) timed alternately with "
        "the measured call",
        "depth baseline: the grey conversion of the same-size rgb8 frame (a depth image has no grey "
        "conversion); it stands for 'touch every pixel of a frame this size once'",
        f"depth: the conditions layer keeps every n-th pixel, n = width // {DEPTH_WORK_WIDTH} "
        f"({', '.join(f'{w}x{h} -> {_worked(w, h)}' for w, h in SIZES)}), so a 4:3 frame can cost "
        "more than a larger 16:9 one; the 65536-bin histogram is a fixed part of the cost",
        f"the node computes image/depth features at image_rate_hz={settings.image_rate_hz:g} per "
        "stream (decimated by stamp); the per-second table multiplies by that rate",
    ]
    if missed:
        notes.append(f"{missed} StreamConditions calls returned no features (decimation): figures too low")
    return BenchResult(
        name="feature",
        title=TITLE,
        rows=tuple(rows),
        value_label="features",
        baseline_label="cvtColor",
        tables=(
            Table(
                f"CPU at {settings.image_rate_hz:g} Hz per stream (conditions layer)",
                ("stream", "ms/frame", "ms per s", "% of a core"),
                tuple(per_second),
            ),
            Table("where image_features' time goes (median ms per call)", ("stage", "ms"), tuple(stages)),
        ),
        notes=tuple(notes),
        details=details,
    )


def _stage_rows(frames: Frames, size: str) -> list[tuple[str, ...]]:
    """The stages of image_features timed on their own (its private helpers; skipped if renamed)."""
    luma_fn = getattr(image_module, "_luma", None)
    sharp_fn = getattr(image_module, "_sharpness", None)
    noise_fn = getattr(image_module, "_noise_sigma", None)
    if luma_fn is None or sharp_fn is None or noise_fn is None:
        return [(f"stages {size}", "- (image module helpers renamed)")]
    n = len(frames.rgb)
    lumas = [luma_fn(f, "rgb8")[0] for f in frames.rgb]
    reps = REPEATS // 2
    out = [
        (f"luma + colour cast {size}", median_seconds(lambda i: luma_fn(frames.rgb[i % n], "rgb8"), reps, 2)),
        (
            f"histogram + stats {size}",
            median_seconds(lambda i: cv2.calcHist([lumas[i % n]], [0], None, [256], [0, 256]), reps, 2),
        ),
        (
            f"sharpness (resize + Laplacian) {size}",
            median_seconds(lambda i: sharp_fn(lumas[i % n], 1.0), reps, 2),
        ),
        (f"noise (full-res filter2D) {size}", median_seconds(lambda i: noise_fn(lumas[i % n], 1.0), reps, 2)),
    ]
    return [(label, format_number(_ms(s))) for label, s in out]
