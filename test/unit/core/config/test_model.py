"""Each config section holds its analyser's values and builds that analyser's settings in one call."""

from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import pytest

from gap_monitor.core.capture.policy import SnapshotSettings
from gap_monitor.core.conditions.settings import ConditionSettings
from gap_monitor.core.config import (
    CaptureConfig,
    ConditionsConfig,
    MonitorConfig,
    MotionOffsetConfig,
    SkewPairConfig,
    TimingConfig,
    load_config,
)
from gap_monitor.core.config.model import LIVE_UNMATCHED_WARN_PCT
from gap_monitor.core.timing.motion_offset import MotionOffsetSettings
from gap_monitor.core.timing.skew import SkewLimits, SkewSettings
from gap_monitor.core.timing.stamps import TimingSettings

REPO = Path(__file__).resolve().parents[4]


def test_timing_section_builds_stamp_and_skew_settings():
    timing = TimingConfig(window_s=7.5, skew_window_s=1.5)
    assert timing.timing_settings() == TimingSettings(window_s=7.5)
    assert timing.skew_settings() == SkewSettings(window_s=1.5)


def test_skew_pair_builds_its_live_limits():
    pair = SkewPairConfig("rgbd", "/color", "/depth", offset_warn_ms=1.0, offset_error_ms=4.0)
    assert pair.skew_limits() == SkewLimits(
        offset_warn_ms=1.0, offset_error_ms=4.0, unmatched_warn_pct=LIVE_UNMATCHED_WARN_PCT
    )


def test_conditions_section_builds_the_feature_settings():
    conditions = ConditionsConfig(image_rate_hz=20.0, window_s=2.0, hop_s=0.5, near_m=1.2, error_factor=4.0)
    assert conditions.feature_settings() == ConditionSettings(
        image_rate_hz=20.0, window_s=2.0, hop_s=0.5, near_m=1.2
    )


@pytest.mark.parametrize(("window_s", "history_s"), [(5.0, 30.0), (10.0, 30.0), (12.0, 36.0)])
def test_motion_offset_builds_estimator_settings_with_a_history_of_three_windows(window_s, history_s):
    settings = MotionOffsetConfig(camera="/cam", imu="/imu", window_s=window_s).estimator_settings()
    assert settings == MotionOffsetSettings(window_s=window_s, history_s=history_s)


def test_capture_builds_snapshot_settings_in_its_directory_or_the_one_given(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    values: dict[str, Any] = {"pre_s": 3.0, "post_s": 2.0, "compression": "zstd", "cooldown_s": 1.0,
                              "max_per_hour": 5, "quota_bytes": 10**6, "quota_count": 7, "min_free_bytes": 0,
                              "on_quota": "stop"}
    capture = CaptureConfig(output_dir="~/snaps", **values)
    assert capture.snapshot_settings() == SnapshotSettings(output_dir=tmp_path / "snaps", **values)
    assert capture.snapshot_settings(tmp_path / "given").output_dir == tmp_path / "given"


def test_section_defaults_are_the_analysers_defaults():
    assert ConditionsConfig().feature_settings() == ConditionSettings()
    assert TimingConfig().timing_settings() == TimingSettings()
    assert MotionOffsetConfig().window_s == MotionOffsetSettings().window_s
    assert CaptureConfig().snapshot_settings(Path("/x")) == SnapshotSettings(Path("/x"))
    live_default = SkewLimits(unmatched_warn_pct=LIVE_UNMATCHED_WARN_PCT)
    assert SkewPairConfig("p", "/a", "/b").skew_limits() == live_default


def test_shipped_config_builds_every_analysers_settings():
    config = load_config(REPO / "config" / "monitor.yaml")
    config.timing.timing_settings()
    config.timing.skew_settings()
    config.motion_offset.estimator_settings()
    assert config.conditions.feature_settings().image_rate_hz == config.conditions.image_rate_hz
    assert config.capture.snapshot_settings(Path("/x")).pre_s == config.capture.pre_s
    assert all(p.skew_limits() for p in config.skew_pairs)


def test_the_config_record_keeps_the_file_layout():
    # Snapshots record `asdict(config)`: one entry per key of the file, nothing derived.
    record = asdict(MonitorConfig())
    assert list(record["conditions"]) == [
        "enabled", "profile", "image_rate_hz", "window_s", "hop_s", "near_m", "error_factor"
    ]
    assert list(record["timing"]) == ["enabled", "window_s", "skew_window_s"]
    assert list(record["motion_offset"]) == ["camera", "imu", "warn_ms", "error_ms", "period_s", "window_s"]
    assert [f.name for f in fields(SkewPairConfig)] == ["name", "a", "b", "offset_warn_ms", "offset_error_ms"]
