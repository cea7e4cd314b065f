from pathlib import Path
from typing import Any

import pytest
import yaml

from gap_monitor.core.config import (
    ConfigError,
    config_from_parameters,
    flatten,
    load_config,
    parameters_from_file,
    unflatten,
)
from gap_monitor.core.io.modalities import COMPRESSED_IMAGE as COMPRESSED_IMAGE_TYPE

REPO = Path(__file__).resolve().parents[4]


def write_params(tmp_path: Path, params: dict[str, Any], node: str = "gap_monitor") -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({node: {"ros__parameters": params}}))
    return path


def test_shipped_config_loads_every_modality():
    config = load_config(REPO / "config" / "monitor.yaml")
    assert {s.modality for s in config.streams} == {"camera", "depth", "imu", "joints", "wrench"}
    imu = config.stream("imu")
    assert imu.topic == "/imu/data"
    assert imu.rate_hz == 400.0
    assert imu.msgtype == "sensor_msgs/msg/Imu"
    # The floor applies: 0.5 s, longer than 5 periods of 400 Hz.
    assert imu.stale_timeout_s == pytest.approx(0.5)


def test_modalities_may_be_absent_and_repeated(tmp_path):
    params = {
        "cameras": {
            "left": {"topic": "/stereo/left/image_raw", "rate_hz": 20},
            "right": {"topic": "/stereo/right/image_raw/compressed", "rate_hz": 20},
        }
    }
    config = load_config(write_params(tmp_path, params))
    assert [s.name for s in config.streams] == ["left", "right"]
    assert config.stream("right").msgtype == COMPRESSED_IMAGE_TYPE
    assert config.stream("left").rate_hz == 20.0


def test_stale_timeout_spans_several_periods_of_slow_streams():
    config = config_from_parameters({"imus": {"slow": {"topic": "/slow", "rate_hz": 2.0}}})
    assert config.stream("slow").stale_timeout_s == pytest.approx(2.5)


def test_every_problem_is_reported_with_key_value_and_allowed(tmp_path):
    params = {
        "cameras": {"front": {"topic": "no spaces allowed", "rate_hz": -3, "reliability": "sometimes"}},
        "imus": {"imu": {"topic": "/imu", "rate_hz": "fast"}},
        "wrenches": {"ft": {"topic": "/ft", "rate_hz": 100, "type": "sensor_msgs/msg/Imu"}},
        "health": {"rate_tolerance": 1.5},
        "joint_states": {"arm": {"rate_hz": 100}},
        "diagnostics_period": 1.0,
    }
    with pytest.raises(ConfigError) as info:
        load_config(write_params(tmp_path, params))
    problems = info.value.problems
    text = str(info.value)
    expected = [
        ("cameras.front.topic", "'no spaces allowed'", "ROS topic name"),
        ("cameras.front.rate_hz", "-3", "(0, 100000]"),
        ("cameras.front.reliability", "'sometimes'", "auto, reliable, best_effort"),
        ("imus.imu.rate_hz", "'fast'", "finite number"),
        ("wrenches.ft.type", "'sensor_msgs/msg/Imu'", "geometry_msgs/msg/WrenchStamped"),
        ("health.rate_tolerance", "1.5", "(0, 1]"),
        ("joint_states.arm.topic", "None", "ROS topic name"),
        ("diagnostics_period", "1.0", "unknown key"),
    ]
    for key, value, allowed in expected:
        matching = [p for p in problems if p.startswith(f"{key}: {value}: ")]
        assert matching, f"no problem reported for {key}; got {problems}"
        assert allowed in matching[0]
    assert len(problems) == len(expected)
    assert str(write_params(tmp_path, params)) in text


def test_duplicate_topics_and_names_are_errors():
    params = {
        "imus": {"a": {"topic": "/imu", "rate_hz": 100}},
        "wrenches": {"a": {"topic": "/imu", "rate_hz": 100}},
    }
    with pytest.raises(ConfigError) as info:
        config_from_parameters(params)
    assert any("already monitored" in p for p in info.value.problems)
    assert any("used once" in p for p in info.value.problems)


def test_ros_own_parameters_are_accepted():
    config = config_from_parameters({"use_sim_time": True, "imus": {"i": {"topic": "/i", "rate_hz": 1}}})
    assert len(config.streams) == 1


def test_params_file_lookup_by_node_name_and_wildcard(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"/**": {"ros__parameters": {"diagnostics_period_s": 2.0}}}))
    assert parameters_from_file(path) == {"diagnostics_period_s": 2.0}
    path.write_text(yaml.safe_dump({"/robot1/gap_monitor": {"ros__parameters": {"check_period_s": 0.1}}}))
    assert parameters_from_file(path) == {"check_period_s": 0.1}
    path.write_text(yaml.safe_dump({"other_node": {"ros__parameters": {}}}))
    with pytest.raises(ConfigError, match="other_node"):
        parameters_from_file(path)


def test_unreadable_and_invalid_yaml_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("gap_monitor: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_flatten_unflatten_round_trip_matches_rclpy_dotted_names():
    nested = {"imus": {"imu": {"topic": "/imu", "rate_hz": 400.0}}, "health": {"rate_window_s": 2.0}}
    flat = flatten(nested)
    assert flat == {"imus.imu.topic": "/imu", "imus.imu.rate_hz": 400.0, "health.rate_window_s": 2.0}
    assert unflatten(flat) == nested


SECTION_PROBLEMS = [
    ({"timing": {"enabled": 1, "window_s": 0.1, "skew_window_s": "x"}},
     ["timing.enabled: 1: true or false", "timing.window_s: 0.1: a number in [0.5, 3600]",
      "timing.skew_window_s: 'x': a finite number"]),
    ({"imus": {"i": {"topic": "/imu", "rate_hz": 200}}, "cameras": {"c": {"topic": "/cam", "rate_hz": 30}},
      "skew_pairs": {"p": {"a": "/imu", "b": "/imu", "offset_warn_ms": 5, "offset_error_ms": 1}, "q": 3,
                     "r": {"a": "/nope", "b": "/cam"}}},
     ["skew_pairs.p.offset_error_ms: 1.0: a number >= offset_warn_ms (5)",
      "skew_pairs.p.b: '/imu': a topic other than a",
      "skew_pairs.q: 3: a mapping with a, b (monitored topics) and optional limits",
      "skew_pairs.r.a: '/nope': one of the monitored topics: /cam, /imu"]),
    ({"conditions": {"profile": 3, "image_rate_hz": 0, "window_s": 0.1, "hop_s": 0.5, "near_m": -1,
                     "error_factor": 0.5}},
     ["conditions.profile: 3: a path to a profile YAML, or empty for features only",
      "conditions.image_rate_hz: 0: a number in (0, 1000]", "conditions.near_m: -1: a number in (0, 100]",
      "conditions.error_factor: 0.5: a number in [1, 1000]",
      "conditions.hop_s: 0.5: at most window_s (0.1)"]),
    ({"imus": {"i": {"topic": "/imu", "rate_hz": 200}}, "cameras": {"c": {"topic": "/cam", "rate_hz": 30}},
      "motion_offset": {"camera": "/imu", "imu": None, "warn_ms": 30, "error_ms": 10, "period_s": 0}},
     ["motion_offset.camera: '/imu': a monitored camera topic (/cam)",
      "motion_offset.imu: None: a monitored imu topic (/imu)",
      "motion_offset.error_ms: 10: a number in [30, 10000]",
      "motion_offset.period_s: 0: a number in [0.1, 3600]"]),
    ({"capture": {"output_dir": "", "compression": "gz", "on_quota": "x", "extra_topics": ["bad topic"]}},
     ["capture.output_dir: '': a directory path", "capture.compression: 'gz': one of none, lz4, zstd",
      "capture.on_quota: 'x': one of delete_oldest, stop",
      "capture.extra_topics: ['bad topic']: a list of ROS topic names"]),
]


@pytest.mark.parametrize(("params", "expected"), SECTION_PROBLEMS)
def test_each_section_lists_each_problem_once(params, expected):
    with pytest.raises(ConfigError) as info:
        config_from_parameters(params)
    assert info.value.problems == expected


def test_hop_longer_than_the_window_is_the_feeds_rule_reported_once():
    with pytest.raises(ConfigError) as info:
        config_from_parameters({"conditions": {"hop_s": 2}})
    assert info.value.problems == ["conditions.hop_s: 2.0: at most window_s (1)"]


def test_the_snapshot_writers_own_rules_are_reported_at_load():
    # Before, such a file loaded and the monitor then refused to start.
    with pytest.raises(ConfigError) as info:
        config_from_parameters({"capture": {"pre_s": 0.0, "post_s": 0.0}})
    [problem] = info.value.problems
    assert problem.startswith("capture.") and "pre_s + post_s > 0" in problem
