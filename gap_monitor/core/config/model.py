"""The monitor configuration: one frozen dataclass per section of the parameter file.

Each section holds the values of its analyser (timing, skew, motion offset, conditions, capture)
and builds that analyser's settings with one method, so no other module copies config values
field by field. The fields are the file's keys: `asdict(MonitorConfig)` is the config as written
(snapshots record it). `parsing` builds a `MonitorConfig` from a parameter file, checking each rule
once: the file's own (keys, ranges, cross references) there, the analysers' in their settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gap_monitor.core.capture.policy import SnapshotSettings
from gap_monitor.core.capture.triggers import TriggersConfig
from gap_monitor.core.conditions.settings import ConditionSettings
from gap_monitor.core.io.names import NODE_NAME
from gap_monitor.core.timing.motion_offset import MotionOffsetSettings
from gap_monitor.core.timing.skew import SkewLimits, SkewSettings
from gap_monitor.core.timing.stamps import TimingSettings

__all__ = [
    "LIVE_UNMATCHED_WARN_PCT",
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

# Parameters every rclpy node may carry; they are the node's business, not ours.
ROS_OWN_PARAMETERS = frozenset({"use_sim_time", "qos_overrides", "start_type_description_service"})
RELIABILITY_CHOICES = ("auto", "reliable", "best_effort")
# Unmatched messages in a short live window mostly mean a lost message, not a clock problem.
LIVE_UNMATCHED_WARN_PCT = 20.0


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
    window_s: float = TimingSettings.window_s
    skew_window_s: float = 2.0  # short: live, a skew shows within seconds

    def timing_settings(self) -> TimingSettings:
        """How the header stamps of each stream are measured."""
        return TimingSettings(window_s=self.window_s)

    def skew_settings(self) -> SkewSettings:
        """How the stamps of every skew pair are matched."""
        return SkewSettings(window_s=self.skew_window_s)


@dataclass(frozen=True)
class SkewPairConfig:
    """Two topics whose header stamps should agree (e.g. colour and depth of one camera)."""

    name: str
    a: str
    b: str
    offset_warn_ms: float = 2.0
    offset_error_ms: float = 10.0

    def skew_limits(self) -> SkewLimits:
        """How the pair is judged live."""
        return SkewLimits(
            offset_warn_ms=self.offset_warn_ms,
            offset_error_ms=self.offset_error_ms,
            unmatched_warn_pct=LIVE_UNMATCHED_WARN_PCT,
        )


@dataclass(frozen=True)
class ConditionsConfig:
    """Condition features and their scoring against a training-condition profile."""

    enabled: bool = True
    profile: str = ""  # path of a profile YAML; empty: features only, no scoring
    # The feature parameters, with the feed's own defaults.
    image_rate_hz: float = ConditionSettings.image_rate_hz
    window_s: float = ConditionSettings.window_s
    hop_s: float = ConditionSettings.hop_s
    near_m: float = ConditionSettings.near_m
    error_factor: float = 3.0  # ERROR when the score reaches this times the alarm threshold

    def feature_settings(self) -> ConditionSettings:
        """What the feed of every stream takes (live, `profile build --config`, report, replay)."""
        return ConditionSettings(
            image_rate_hz=self.image_rate_hz, window_s=self.window_s, hop_s=self.hop_s, near_m=self.near_m
        )


@dataclass(frozen=True)
class MotionOffsetConfig:
    """Live camera-IMU offset from motion (gyro vs image motion); off while `camera` is empty."""

    camera: str = ""
    imu: str = ""
    warn_ms: float = 5.0
    error_ms: float = 20.0
    period_s: float = 5.0
    window_s: float = MotionOffsetSettings.window_s

    @property
    def enabled(self) -> bool:
        return bool(self.camera)

    def estimator_settings(self) -> MotionOffsetSettings:
        """The streaming estimator's settings: a history of three windows, at least 30 s."""
        return MotionOffsetSettings(window_s=self.window_s, history_s=max(3 * self.window_s, 30.0))


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

    def snapshot_settings(self, output_dir: Path | None = None) -> SnapshotSettings:
        """The snapshot writer's settings; `output_dir` (e.g. from the command line) overrides ours."""
        return SnapshotSettings(
            output_dir=output_dir or Path(self.output_dir).expanduser(),
            pre_s=self.pre_s,
            post_s=self.post_s,
            compression=self.compression,
            cooldown_s=self.cooldown_s,
            max_per_hour=self.max_per_hour,
            quota_bytes=self.quota_bytes,
            quota_count=self.quota_count,
            min_free_bytes=self.min_free_bytes,
            on_quota=self.on_quota,
        )


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
