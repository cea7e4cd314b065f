"""The monitor configuration: one frozen dataclass per section of the parameter file.

`parsing` builds a `MonitorConfig` from a ROS 2 parameter file and `validation` checks it; the
sections sit on top of the analysers (timing, conditions, capture), whose settings they are made of.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gap_monitor.core.capture.snapshot import SnapshotSettings
from gap_monitor.core.capture.triggers import TriggersConfig
from gap_monitor.core.io.names import COMPRESSED_IMAGE_TYPE, IMAGE_TYPE, NODE_NAME

__all__ = [
    "COMPRESSED_IMAGE_TYPE",
    "IMAGE_TYPE",
    "MODALITY_KEYS",
    "MODALITY_TYPES",
    "NODE_NAME",
    "RELIABILITY_CHOICES",
    "ROS_OWN_PARAMETERS",
    "CaptureConfig",
    "ConditionsConfig",
    "HealthConfig",
    "MonitorConfig",
    "MotionOffsetConfig",
    "SkewPairConfig",
    "StreamConfig",
    "TimingConfig",
]

# Sensor modalities, the config key listing their streams, and the message types each accepts.
MODALITY_KEYS: dict[str, str] = {
    "camera": "cameras",
    "depth": "depth_cameras",
    "imu": "imus",
    "joints": "joint_states",
    "wrench": "wrenches",
}
MODALITY_TYPES: dict[str, tuple[str, ...]] = {
    "camera": (IMAGE_TYPE, COMPRESSED_IMAGE_TYPE),
    "depth": (IMAGE_TYPE,),
    "imu": ("sensor_msgs/msg/Imu",),
    "joints": ("sensor_msgs/msg/JointState",),
    "wrench": ("geometry_msgs/msg/WrenchStamped",),
}
# Parameters every rclpy node may carry; they are the node's business, not ours.
ROS_OWN_PARAMETERS = frozenset({"use_sim_time", "qos_overrides", "start_type_description_service"})
RELIABILITY_CHOICES = ("auto", "reliable", "best_effort")


@dataclass(frozen=True)
class StreamConfig:
    """One monitored sensor topic."""

    name: str
    modality: str
    topic: str
    msgtype: str
    rate_hz: float
    rate_tolerance: float
    stale_timeout_s: float
    reliability: str = "auto"
    queue_depth: int = 50


@dataclass(frozen=True)
class HealthConfig:
    """Defaults for per-topic receive health; a stream may override tolerance and timeout."""

    rate_tolerance: float = 0.2
    stale_timeout_s: float = 0.5
    rate_window_s: float = 2.0


@dataclass(frozen=True)
class TimingConfig:
    """Header-stamp timing per stream and the window of the live skew statistics."""

    enabled: bool = True
    window_s: float = 10.0
    skew_window_s: float = 2.0


@dataclass(frozen=True)
class SkewPairConfig:
    """Two topics whose header stamps should agree (e.g. colour and depth of one camera)."""

    name: str
    a: str
    b: str
    offset_warn_ms: float = 2.0
    offset_error_ms: float = 10.0


@dataclass(frozen=True)
class ConditionsConfig:
    """Condition features and their scoring against a training-condition profile."""

    enabled: bool = True
    profile: str = ""  # path of a profile YAML; empty: features only, no scoring
    image_rate_hz: float = 5.0
    window_s: float = 1.0
    hop_s: float = 0.2
    near_m: float = 0.3
    error_factor: float = 3.0  # ERROR when the score reaches this times the alarm threshold


@dataclass(frozen=True)
class MotionOffsetConfig:
    """Live camera-IMU offset from motion (gyro vs image motion); off while `camera` is empty."""

    camera: str = ""
    imu: str = ""
    warn_ms: float = 5.0
    error_ms: float = 20.0
    period_s: float = 5.0
    window_s: float = 10.0

    @property
    def enabled(self) -> bool:
        return bool(self.camera)


@dataclass(frozen=True)
class CaptureConfig:
    """Ring buffer and snapshots: what is kept in memory and when it is written to disk."""

    enabled: bool = True
    output_dir: str = "~/.ros/gap_monitor/snapshots"
    # The writer's own defaults, so the two never drift apart.
    pre_s: float = SnapshotSettings.pre_s
    post_s: float = SnapshotSettings.post_s
    compression: str = SnapshotSettings.compression
    cooldown_s: float = SnapshotSettings.cooldown_s
    max_per_hour: int = SnapshotSettings.max_per_hour
    quota_bytes: int = SnapshotSettings.quota_bytes
    quota_count: int = SnapshotSettings.quota_count
    min_free_bytes: int = SnapshotSettings.min_free_bytes
    on_quota: str = SnapshotSettings.on_quota
    buffer_bytes: int = 1024**3
    on_stream_stale: bool = True
    on_timing: bool = False
    on_skew: bool = True
    on_novel_condition: bool = True
    extra_topics: tuple[str, ...] = ()  # kept for snapshots only (e.g. /tf, commands); type from the graph
    latched_topics: tuple[str, ...] = ()  # last message kept forever (e.g. /tf_static, camera_info)


@dataclass(frozen=True)
class MonitorConfig:
    """Everything the monitor node needs, validated."""

    streams: tuple[StreamConfig, ...] = ()
    health: HealthConfig = field(default_factory=HealthConfig)
    timing: TimingConfig = field(default_factory=TimingConfig)
    skew_pairs: tuple[SkewPairConfig, ...] = ()
    motion_offset: MotionOffsetConfig = field(default_factory=MotionOffsetConfig)
    conditions: ConditionsConfig = field(default_factory=ConditionsConfig)
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    triggers: TriggersConfig = field(default_factory=TriggersConfig)
    diagnostics_period_s: float = 1.0
    check_period_s: float = 0.2
    diagnostic_prefix: str = NODE_NAME

    def stream(self, name: str) -> StreamConfig:
        for s in self.streams:
            if s.name == name:
                return s
        raise KeyError(name)


# TEMPORARY: offline/report.py and offline/audit.py (being split elsewhere) still import these two
# from here; once they import them from `gap_monitor.core.config`, delete this.
def __getattr__(name: str) -> Any:
    if name in ("ConfigError", "load_config"):
        from gap_monitor.core import config

        return getattr(config, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
