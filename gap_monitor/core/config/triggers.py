"""The `triggers:` section of the parameters: which external triggers run, validated."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from gap_monitor.core.capture.triggers import (
    ACTION_STATUS_SUFFIX,
    DIAGNOSTICS_TOPIC,
    DIVERGENCE_TYPES,
    FAILURE_TYPES,
    JOINT_FIELDS,
    JOINT_STATE_TYPE,
    METRICS,
    STRING_TYPE,
    ActionStatusSettings,
    DiagnosticsErrorSettings,
    DivergenceSettings,
    FailureTopicSettings,
    TriggersConfig,
    build_triggers,
)
from gap_monitor.core.config.validation import Checker, is_topic_name
from gap_monitor.core.io.names import NODE_NAME
from gap_monitor.errors import ConfigError

TRIGGER_KEYS = frozenset(
    {"failure_topic", "action_status_topics", "diagnostics_error_patterns", "diagnostics_topic", "divergence"}
)
_DIVERGENCE_KEYS = {
    "a",
    "b",
    "type",
    "type_b",
    "threshold",
    "metric",
    "duration_s",
    "max_age_s",
    "joint_field",
}


def _string_list(
    chk: Checker, params: Mapping[str, Any], key: str, path: str, allowed: str
) -> list[tuple[int, str]]:
    """The (index, item) pairs of a list of non-empty strings; a single string is a list of one."""
    value = params.get(key, [])
    items = [value] if isinstance(value, str) else value
    where = f"{path}.{key}".lstrip(".")
    if not isinstance(items, (list, tuple)):
        chk.problem(where, value, allowed)
        return []
    good = []
    for i, item in enumerate(items):
        if not isinstance(item, str) or not item:
            chk.problem(f"{where}[{i}]", item, allowed)
        else:
            good.append((i, item))
    return good


def _failure(chk: Checker, params: Mapping[str, Any], path: str) -> FailureTopicSettings | None:
    where = f"{path}.failure_topic".lstrip(".")
    raw = params.get("failure_topic")
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = {"topic": raw}
    if not isinstance(raw, Mapping):
        chk.problem(where, raw, "a topic name, or a mapping with topic and type")
        return None
    before = len(chk.problems)
    chk.unknown_keys(raw, where, {"topic", "type"})
    topic = raw.get("topic")
    if not is_topic_name(topic):
        chk.problem(f"{where}.topic", topic, "a ROS topic name such as /robot/failure")
    msgtype = chk.choice(raw, "type", where, STRING_TYPE, FAILURE_TYPES)
    if len(chk.problems) > before:
        return None
    return chk.build(where, partial(FailureTopicSettings, str(topic), msgtype))


def _actions(chk: Checker, params: Mapping[str, Any], path: str) -> tuple[ActionStatusSettings, ...]:
    key = "action_status_topics"
    where = f"{path}.{key}".lstrip(".")
    out: list[ActionStatusSettings] = []
    for i, name in _string_list(chk, params, key, path, "a list of action status topics"):
        # An action name is accepted for its status topic: a silent wrong topic would never fire.
        topic = name if name.endswith(ACTION_STATUS_SUFFIX) else name.rstrip("/") + ACTION_STATUS_SUFFIX
        if not is_topic_name(topic):
            chk.problem(
                f"{where}[{i}]", name, "an action status topic such as /navigate_to_pose/_action/status"
            )
        elif topic in {a.topic for a in out}:
            chk.problem(f"{where}[{i}]", name, "a topic listed once")
        else:
            out.append(ActionStatusSettings(topic))
    return tuple(out)


def _diagnostics(
    chk: Checker, params: Mapping[str, Any], path: str, own_prefix: str
) -> DiagnosticsErrorSettings | None:
    patterns = [
        p
        for _, p in _string_list(
            chk, params, "diagnostics_error_patterns", path, "a list of fnmatch patterns such as *motor*"
        )
    ]
    topic = params.get("diagnostics_topic", DIAGNOSTICS_TOPIC)
    if not is_topic_name(topic):
        chk.problem(f"{path}.diagnostics_topic".lstrip("."), topic, "a ROS topic name such as /diagnostics")
        return None
    if not patterns:
        return None
    return chk.build(path, partial(DiagnosticsErrorSettings, tuple(patterns), own_prefix, str(topic)))


def _divergences(chk: Checker, params: Mapping[str, Any], path: str) -> tuple[DivergenceSettings, ...]:
    where_all = f"{path}.divergence".lstrip(".")
    out = []
    for name, entry in chk.mapping(params, "divergence", path).items():
        where = f"{where_all}.{name}"
        if not isinstance(entry, Mapping):
            chk.problem(where, entry, "a mapping with a, b, type, threshold and optional duration_s")
            continue
        before = len(chk.problems)
        chk.unknown_keys(entry, where, _DIVERGENCE_KEYS)
        topics = []
        for key in ("a", "b"):
            topic = entry.get(key)
            if not is_topic_name(topic):
                chk.problem(f"{where}.{key}", topic, "a ROS topic name such as /policy/shadow_cmd")
            topics.append(topic)
        if topics[0] == topics[1] and is_topic_name(topics[0]):
            chk.problem(f"{where}.b", topics[1], "a topic other than a")
        if "type" not in entry:
            chk.problem(f"{where}.type", None, f"one of {', '.join(DIVERGENCE_TYPES)}")
        msgtype = chk.choice(entry, "type", where, JOINT_STATE_TYPE, DIVERGENCE_TYPES)
        type_b = chk.choice(entry, "type_b", where, msgtype, DIVERGENCE_TYPES)
        if "threshold" not in entry:
            chk.problem(f"{where}.threshold", None, "the divergence threshold, a number > 0")
        threshold = chk.number(entry, "threshold", where, 1.0, low=0.0)
        metric = chk.choice(entry, "metric", where, "max_abs", METRICS)
        duration = chk.number(entry, "duration_s", where, 0.5, low=0.0, high=3600.0, low_inclusive=True)
        max_age = chk.number(entry, "max_age_s", where, 0.2, low=0.0, high=60.0)
        joint_field = chk.choice(entry, "joint_field", where, "position", JOINT_FIELDS)
        if "joint_field" in entry and JOINT_STATE_TYPE not in (msgtype, type_b):
            chk.problem(f"{where}.joint_field", entry["joint_field"], f"only for {JOINT_STATE_TYPE}")
        if len(chk.problems) > before:
            continue
        settings = chk.build(
            where,
            partial(
                DivergenceSettings,
                str(name),
                str(topics[0]),
                str(topics[1]),
                msgtype,
                threshold,
                duration,
                metric,
                max_age,
                joint_field,
                None if type_b == msgtype else type_b,
            ),
        )
        if settings is not None:
            out.append(settings)
    return tuple(out)


def parse_triggers(
    chk: Checker, params: Mapping[str, Any], *, path: str = "triggers", diagnostic_prefix: str = NODE_NAME
) -> TriggersConfig:
    """The trigger section (a nested mapping; absent keys = off), its problems added to `chk`.

    `path` prefixes every problem (the section's key in the parameter file); statuses named
    `"<diagnostic_prefix>:..."` are the monitor's own and never trigger.
    """
    before = len(chk.problems)
    chk.unknown_keys(params, path, set(TRIGGER_KEYS))
    cfg = TriggersConfig(
        failure=_failure(chk, params, path),
        action_status=_actions(chk, params, path),
        diagnostics=_diagnostics(chk, params, path, f"{diagnostic_prefix}:"),
        divergence=_divergences(chk, params, path),
    )
    if len(chk.problems) == before:
        try:
            build_triggers(cfg)  # one topic cannot carry two message types
        except ValueError as exc:
            chk.problems.append(f"{path}: {exc}".lstrip(": "))
    return cfg if len(chk.problems) == before else TriggersConfig()


def triggers_from_parameters(
    params: Mapping[str, Any],
    *,
    path: str = "triggers",
    diagnostic_prefix: str = NODE_NAME,
    source: str = "parameters",
) -> TriggersConfig:
    """Validate the trigger section on its own; raises ConfigError listing every problem."""
    chk = Checker()
    cfg = parse_triggers(chk, params, path=path, diagnostic_prefix=diagnostic_prefix)
    if chk.problems:
        raise ConfigError(chk.problems, source)
    return cfg
