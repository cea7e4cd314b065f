"""The `triggers:` section of the parameters: every problem listed, settings built from the rest."""

from __future__ import annotations

from typing import Any

import pytest

from gap_monitor.core.capture.triggers import (
    DivergenceSettings,
    FailureTopicSettings,
    TriggersConfig,
    build_triggers,
)
from gap_monitor.core.config import ConfigError, triggers_from_parameters

STATUS_TOPIC = "/navigate_to_pose/_action/status"
SHADOW, EXECUTED = "/policy/shadow_cmd", "/joint_commands"


def divergence(**kw: Any) -> DivergenceSettings:
    args: dict[str, Any] = {
        "name": "shadow", "topic_a": SHADOW, "topic_b": EXECUTED,
        "msgtype": "sensor_msgs/msg/JointState", "threshold": 0.2, "duration_s": 0.5,
    }
    args.update(kw)
    return DivergenceSettings(**args)


EXAMPLE = {
    "failure_topic": {"topic": "/robot/failure", "type": "std_msgs/msg/String"},
    "action_status_topics": ["/navigate_to_pose/_action/status", "/follow_path"],
    "diagnostics_error_patterns": ["*motor*", "*driver*"],
    "divergence": {"shadow": {"a": SHADOW, "b": EXECUTED, "type": "sensor_msgs/msg/JointState",
                              "threshold": 0.2, "duration_s": 0.5}},
}


def test_parameters_example() -> None:
    cfg = triggers_from_parameters(EXAMPLE, diagnostic_prefix="arm_monitor")
    assert cfg.failure == FailureTopicSettings("/robot/failure", "std_msgs/msg/String")
    assert [a.topic for a in cfg.action_status] == [STATUS_TOPIC, "/follow_path/_action/status"]
    assert cfg.diagnostics is not None
    assert cfg.diagnostics.name_patterns == ("*motor*", "*driver*")
    assert cfg.diagnostics.own_prefix == "arm_monitor:"
    [d] = cfg.divergence
    assert d == divergence()
    assert (d.max_age_s, d.metric, d.joint_field) == (0.2, "max_abs", "position")
    topics = build_triggers(cfg).topics()
    assert topics["/follow_path/_action/status"] == "action_msgs/msg/GoalStatusArray"
    assert topics["/diagnostics"] == "diagnostic_msgs/msg/DiagnosticArray"
    assert len(topics) == 6


def test_absent_keys_mean_no_triggers() -> None:
    cfg = triggers_from_parameters({})
    assert cfg == TriggersConfig() and not cfg.enabled
    assert build_triggers(cfg).topics() == {}
    assert triggers_from_parameters({"failure_topic": "/f"}).failure == FailureTopicSettings("/f")


def test_parameter_errors_are_all_listed() -> None:
    params = {
        "failure_topic": {"topic": "no spaces allowed", "type": "std_msgs/msg/Int32"},
        "action_status_topics": ["/ok", 5, "/ok/_action/status"],
        "diagnostics_error_patterns": ["*motor*", ""],
        "divergence": {
            "bad": {"a": "/x", "b": "/x", "type": "sensor_msgs/msg/Imu", "threshold": -1,
                    "metric": "cosine", "duration_s": "long", "colour": "red"},
            "missing": {"a": "/p", "b": "/q"},
            "not_a_mapping": 3,
        },
        "typo_key": True,
    }
    with pytest.raises(ConfigError) as info:
        triggers_from_parameters(params, source="monitor.yaml")
    problems = info.value.problems
    expected = [
        "triggers.failure_topic.topic: 'no spaces allowed'",
        "triggers.failure_topic.type: 'std_msgs/msg/Int32': one of std_msgs/msg/String, std_msgs/msg/Bool",
        "triggers.action_status_topics[1]: 5",
        "triggers.action_status_topics[2]: '/ok/_action/status': a topic listed once",
        "triggers.diagnostics_error_patterns[1]: ''",
        "triggers.divergence.bad.b: '/x': a topic other than a",
        "triggers.divergence.bad.type: 'sensor_msgs/msg/Imu'",
        "triggers.divergence.bad.threshold: -1",
        "triggers.divergence.bad.metric: 'cosine': one of max_abs, l2",
        "triggers.divergence.bad.duration_s: 'long'",
        "triggers.divergence.bad.colour: 'red': unknown key",
        "triggers.divergence.missing.type: None",
        "triggers.divergence.missing.threshold: None",
        "triggers.divergence.not_a_mapping: 3",
        "triggers.typo_key: True: unknown key",
    ]
    for text in expected:
        assert any(p.startswith(text) for p in problems), (text, problems)
    assert len(problems) == len(expected)
    assert "monitor.yaml" in str(info.value)


def test_one_topic_with_two_types_is_a_config_problem() -> None:
    params = {
        "failure_topic": {"topic": "/cmd", "type": "std_msgs/msg/Bool"},
        "divergence": {"d": {"a": "/shadow", "b": "/cmd", "type": "geometry_msgs/msg/Twist", "threshold": 1}},
    }
    with pytest.raises(ConfigError, match="/cmd"):
        triggers_from_parameters(params)
