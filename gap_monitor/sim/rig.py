"""Simulated sensor rig with scripted faults: the default when no robot is there.

Pure numpy/OpenCV (no rclpy): `ros/sim_node.py` publishes what this renders, and tests and
benchmarks use it directly. Everything is a function of the seed and the scheduled message times,
so a run is reproducible. The camera yaws sinusoidally; the rendered scene shifts by
`focal_px * yaw` and the IMU's gyro z is the yaw rate, so image motion and gyro agree.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from gap_monitor.core.io.modalities import MODALITIES
from gap_monitor.sim.scenario import Scenario

GRAVITY = 9.80665
JOINT_NAMES = tuple(f"joint_{i + 1}" for i in range(7))


# Smallest image side the renderers and the features downstream accept.
MIN_IMAGE_PX = 16
MAX_IMAGE_PX = 8192


@dataclass(frozen=True)
class RigSettings:
    width: int = 640
    height: int = 480
    camera_rate_hz: float = 30.0
    depth_rate_hz: float = 30.0
    imu_rate_hz: float = 400.0
    joints_rate_hz: float = 500.0
    wrench_rate_hz: float = 1000.0
    focal_px: float = 500.0
    # Depth image size; None: the colour camera's. A smaller depth camera keeps the colour
    # camera's horizontal field of view (its focal length scales with its width).
    depth_width: int | None = None
    depth_height: int | None = None

    def __post_init__(self) -> None:
        sizes = {
            "width": self.width,
            "height": self.height,
            "depth_width": self.depth_width,
            "depth_height": self.depth_height,
        }
        for name, value in sizes.items():
            if value is None and name.startswith("depth_"):
                continue
            if (
                not isinstance(value, int)
                or isinstance(value, bool)
                or not MIN_IMAGE_PX <= value <= MAX_IMAGE_PX
            ):
                raise ValueError(
                    f"{name}: {value!r}: must be an integer in [{MIN_IMAGE_PX}, {MAX_IMAGE_PX}] (pixels)"
                )
        if (self.depth_width is None) != (self.depth_height is None):
            raise ValueError(
                f"depth_width, depth_height: {self.depth_width!r}, {self.depth_height!r}: "
                "give both or neither (neither: the camera's size)"
            )
        positive = {
            "camera_rate_hz": self.camera_rate_hz,
            "depth_rate_hz": self.depth_rate_hz,
            "imu_rate_hz": self.imu_rate_hz,
            "joints_rate_hz": self.joints_rate_hz,
            "wrench_rate_hz": self.wrench_rate_hz,
            "focal_px": self.focal_px,
        }
        for name, number in positive.items():
            if (
                isinstance(number, bool)
                or not isinstance(number, (int, float))
                or not math.isfinite(number)
                or number <= 0
            ):
                raise ValueError(f"{name}: {number!r}: must be a finite number > 0")

    @property
    def depth_size(self) -> tuple[int, int]:
        """(width, height) of the depth image."""
        if self.depth_width is None or self.depth_height is None:
            return self.width, self.height
        return self.depth_width, self.depth_height

    @property
    def depth_focal_px(self) -> float:
        depth_width = self.depth_size[0]
        return self.focal_px if depth_width == self.width else self.focal_px * depth_width / self.width

    def rate(self, stream: str) -> float:
        rates = {
            "camera": self.camera_rate_hz,
            "depth": self.depth_rate_hz,
            "imu": self.imu_rate_hz,
            "joints": self.joints_rate_hz,
            "wrench": self.wrench_rate_hz,
        }
        return rates[stream]


DEFAULT_TOPICS = {
    "camera": "/camera/color/image_raw",
    "depth": "/camera/depth/image_rect_raw",
    "imu": "/imu/data",
    "joints": "/joint_states",
    "wrench": "/wrist_ft/wrench",
}
# Each simulated stream is named after its modality and published as its default message type.
MSG_TYPES = {stream: MODALITIES[stream].msgtypes[0] for stream in DEFAULT_TOPICS}
FRAME_IDS = {
    "camera": "camera_color_optical_frame",
    "depth": "camera_depth_optical_frame",
    "imu": "imu_link",
    "joints": "",
    "wrench": "ft_sensor_link",
}


@dataclass(frozen=True)
class Tick:
    """One message due: which stream, its sequence number, and its nominal sample time."""

    stream: str
    seq: int
    t_s: float


@dataclass(frozen=True)
class ImageSample:
    encoding: str
    pixels: NDArray[Any]


@dataclass(frozen=True)
class ImuSample:
    accel: NDArray[Any]
    gyro: NDArray[Any]


@dataclass(frozen=True)
class JointSample:
    names: tuple[str, ...]
    position: NDArray[Any]
    velocity: NDArray[Any]
    effort: NDArray[Any]


@dataclass(frozen=True)
class WrenchSample:
    force: NDArray[Any]
    torque: NDArray[Any]


Sample = ImageSample | ImuSample | JointSample | WrenchSample


# Camera yaw: a slow sweep (two incommensurate sinusoids, so it never repeats exactly) plus a small
# faster shake, as a robot's camera has; the shake is what makes camera-IMU timing observable.
YAW_TERMS = ((0.12, 0.31, 0.0), (0.05, 0.93, 1.0), (0.012, 2.7, 0.4), (0.004, 6.1, 2.0))  # (rad, Hz, phase)


def yaw(t_s: float) -> float:
    """Camera yaw (rad) at time t."""
    return sum(a * math.sin(2 * math.pi * f * t_s + p) for a, f, p in YAW_TERMS)


def yaw_rate(t_s: float) -> float:
    """d yaw / dt (rad/s): what the gyro's z axis measures."""
    return sum(a * 2 * math.pi * f * math.cos(2 * math.pi * f * t_s + p) for a, f, p in YAW_TERMS)


class Scheduler:
    """Orders the streams' messages in time, applying stalls (skipped) and bursts (faster)."""

    def __init__(self, settings: RigSettings, scenario: Scenario) -> None:
        self.settings = settings
        self.scenario = scenario
        self._seq = dict.fromkeys(DEFAULT_TOPICS, 0)
        self._heap: list[tuple[float, int, str]] = [(0.0, i, name) for i, name in enumerate(DEFAULT_TOPICS)]
        heapq.heapify(self._heap)
        self.skipped = dict.fromkeys(DEFAULT_TOPICS, 0)

    def next_time(self) -> float:
        return self._heap[0][0]

    def due(self, now_s: float) -> Iterator[Tick]:
        """Every message due up to `now_s`, oldest first."""
        while self._heap and self._heap[0][0] <= now_s:
            t, order, stream = heapq.heappop(self._heap)
            faults = self.scenario.active(stream, t)
            period = 1.0 / self.settings.rate(stream)
            stalled = False
            for f in faults:
                if f.kind == "burst":
                    period /= f.params["factor"]
                stalled = stalled or f.kind == "stall"
            heapq.heappush(self._heap, (t + period, order, stream))
            if stalled:
                self.skipped[stream] += 1
                continue
            seq = self._seq[stream]
            self._seq[stream] = seq + 1
            yield Tick(stream, seq, t)

    def drop_until(self, now_s: float) -> int:
        """Skip what is overdue (a paused process), as a real driver drops frames rather than bursting."""
        dropped = 0
        for _ in self.due(now_s):
            dropped += 1
        return dropped


class SimRig:
    """Renders each stream's content at a given time, with the scenario's faults applied."""

    def __init__(self, settings: RigSettings | None = None, scenario: Scenario | None = None) -> None:
        self.settings = settings or RigSettings()
        self.scenario = scenario or Scenario()
        seed = self.scenario.seed
        self._rngs = {name: np.random.default_rng([seed, i]) for i, name in enumerate(DEFAULT_TOPICS)}
        s = self.settings
        self._margin = math.ceil(0.2 * s.focal_px) + 4
        self._depth_margin = math.ceil(0.2 * s.depth_focal_px) + 4
        self._texture = self._make_texture(np.random.default_rng([seed, 100]))
        self._depth_scene = self._make_depth(np.random.default_rng([seed, 101]))
        self._joint_phase = np.random.default_rng([seed, 102]).uniform(0, 2 * math.pi, 7)
        self._joint_freq = np.linspace(0.11, 0.37, 7)
        self._joint_center = np.array([0.0, 0.4, 0.0, -1.2, 0.0, 0.9, 0.0])
        self._joint_amp = np.array([0.6, 0.3, 0.5, 0.4, 0.7, 0.4, 0.9])

    def _make_texture(self, rng: np.random.Generator) -> NDArray[Any]:
        s = self.settings
        h, w = s.height, s.width + 2 * self._margin
        coarse = rng.uniform(60, 190, (max(2, h // 40), max(2, w // 40), 3)).astype(np.float32)
        tex = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
        # Sharp-edged shapes, so blur and motion are measurable.
        for _ in range(max(4, w * h // 8000)):
            x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
            size = int(rng.integers(4, 40))
            colour = tuple(float(c) for c in rng.uniform(20, 235, 3))
            cv2.rectangle(tex, (x, y), (x + size, y + size), colour, -1)
        return np.clip(tex, 0, 255).astype(np.uint8)

    def _make_depth(self, rng: np.random.Generator) -> NDArray[Any]:
        width, height = self.settings.depth_size
        h, w = height, width + 2 * self._depth_margin
        rows = np.linspace(2.5, 0.9, h, dtype=np.float32)[:, None]  # floor: far at the top
        scene = np.repeat(rows, w, axis=1)
        for _ in range(12):
            x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
            r = int(rng.integers(10, 60))
            cv2.circle(scene, (x, y), r, float(rng.uniform(0.6, 2.0)), -1)
        return scene

    def _view(
        self, scene: NDArray[Any], t_s: float, margin: int, focal_px: float, size: tuple[int, int]
    ) -> NDArray[Any]:
        """The scene as the yawing camera sees it: a sub-pixel horizontal window into it."""
        x0 = margin - focal_px * yaw(t_s)
        m = np.array([[1.0, 0.0, -x0], [0.0, 1.0, 0.0]], dtype=np.float64)
        interp = cv2.INTER_NEAREST if scene.dtype == np.float32 else cv2.INTER_LINEAR
        return cv2.warpAffine(scene, m, size, flags=interp, borderMode=cv2.BORDER_REFLECT)

    def stamp_offset_ns(self, stream: str, t_s: float) -> int:
        faults = self.scenario.active(stream, t_s)
        return round(sum(f.params["offset_ms"] for f in faults if f.kind == "stamp_offset") * 1e6)

    def render(self, tick: Tick) -> Sample:
        renderers: dict[str, Callable[[float], Sample]] = {
            "camera": self.camera,
            "depth": self.depth,
            "imu": self.imu,
            "joints": self.joints,
            "wrench": self.wrench,
        }
        return renderers[tick.stream](tick.t_s)

    def camera(self, t_s: float) -> ImageSample:
        s = self.settings
        img = self._view(self._texture, t_s, self._margin, s.focal_px, (s.width, s.height))
        rng = self._rngs["camera"]
        for f in self.scenario.active("camera", t_s):
            if f.kind == "blur":
                img = cv2.GaussianBlur(img, (0, 0), f.params["sigma_px"])
            elif f.kind == "lighting_gain":
                img = cv2.convertScaleAbs(img, alpha=f.params["gain"])
        # Sensor noise on a random sub-grid keeps the cost low while the noise statistics stay stable.
        noise = rng.integers(-3, 4, size=(img.shape[0] // 4, img.shape[1], 3), dtype=np.int16)
        row0 = int(rng.integers(0, 4))
        rows = img[row0::4][: noise.shape[0]]
        img[row0::4][: noise.shape[0]] = np.clip(rows.astype(np.int16) + noise[: rows.shape[0]], 0, 255)
        return ImageSample("rgb8", img)

    def depth(self, t_s: float) -> ImageSample:
        s = self.settings
        metres = self._view(self._depth_scene, t_s, self._depth_margin, s.depth_focal_px, s.depth_size)
        rng = self._rngs["depth"]
        mm = (metres * 1000.0).astype(np.uint16)
        # Realistic holes: a few percent invalid (zero) pixels, as stereo depth has.
        holes = rng.random(mm.shape, dtype=np.float32) < 0.03
        for f in self.scenario.active("depth", t_s):
            if f.kind == "depth_dropout":
                holes |= rng.random(mm.shape, dtype=np.float32) < f.params["fraction"]
        mm[holes] = 0
        return ImageSample("16UC1", mm)

    def imu(self, t_s: float) -> ImuSample:
        rng = self._rngs["imu"]
        accel_sigma, gyro_sigma = 0.02, 0.002
        gyro_bias = np.zeros(3)
        accel_bias = np.zeros(3)
        for f in self.scenario.active("imu", t_s):
            if f.kind == "imu_noise":
                accel_sigma *= f.params["scale"]
                gyro_sigma *= f.params["scale"]
            elif f.kind == "imu_bias":
                gyro_bias += f.params["gyro_rad_s"]
                accel_bias += f.params["accel_m_s2"]
        w = yaw_rate(t_s)
        vib = 0.05 * math.sin(2 * math.pi * 17.0 * t_s)
        accel = np.array([vib, 0.0, GRAVITY]) + accel_bias + rng.normal(0.0, accel_sigma, 3)
        gyro = np.array([0.0, 0.0, w]) + gyro_bias + rng.normal(0.0, gyro_sigma, 3)
        return ImuSample(accel, gyro)

    def joints(self, t_s: float) -> JointSample:
        rng = self._rngs["joints"]
        arg = 2 * math.pi * self._joint_freq * t_s + self._joint_phase
        pos = self._joint_center + self._joint_amp * np.sin(arg)
        vel = self._joint_amp * 2 * math.pi * self._joint_freq * np.cos(arg)
        for f in self.scenario.active("joints", t_s):
            if f.kind == "joint_out_of_range":
                pos[int(f.params["joint"]) % 7] += f.params["offset_rad"]
        effort = 8.0 * np.cos(pos) + rng.normal(0.0, 0.05, 7)
        return JointSample(JOINT_NAMES, pos, vel, effort)

    def wrench(self, t_s: float) -> WrenchSample:
        rng = self._rngs["wrench"]
        # Tool weight plus a contact every 4 s lasting 1 s (a press of up to 15 N).
        phase = t_s % 4.0
        contact = 15.0 * math.sin(math.pi * (phase - 2.0)) if 2.0 <= phase < 3.0 else 0.0
        force = np.array([0.0, 0.0, -5.0 - contact]) + rng.normal(0.0, 0.1, 3)
        for f in self.scenario.active("wrench", t_s):
            if f.kind == "force_drift":
                force[2] -= f.params["rate_n_per_s"] * (t_s - f.start_s)
        torque = np.array([0.02 * contact, -0.01 * contact, 0.0]) + rng.normal(0.0, 0.005, 3)
        return WrenchSample(force, torque)
