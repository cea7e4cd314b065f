"""A ROS 2 parameter file -> a validated `MonitorConfig`.

The same YAML (`/**: ros__parameters: ...`) drives the node (`--params-file`), the CLI and the
tests. Validation collects every problem before raising, so a user fixes a file in one pass.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from gap_monitor.core.capture.policy import COMPRESSIONS, ON_QUOTA
from gap_monitor.core.config.model import (
    NODE_NAME,
    RELIABILITY_CHOICES,
    ROS_OWN_PARAMETERS,
    CaptureConfig,
    ConditionsConfig,
    HealthConfig,
    MonitorConfig,
    MotionOffsetConfig,
    SkewPairConfig,
    StreamConfig,
    TimingConfig,
)
from gap_monitor.core.config.triggers import parse_triggers
from gap_monitor.core.config.validation import Checker, is_topic_name
from gap_monitor.core.io.modalities import MODALITIES, default_type
from gap_monitor.errors import ConfigError


def _stream(
    chk: Checker, modality: str, name: str, raw: Any, health: HealthConfig, path: str
) -> StreamConfig | None:
    if not isinstance(raw, Mapping):
        chk.problem(path, raw, "a mapping with at least `topic` and `rate_hz`")
        return None
    allowed = {"topic", "rate_hz", "type", "rate_tolerance", "stale_timeout_s", "reliability"}
    allowed.add("queue_depth")
    chk.unknown_keys(raw, path, allowed)
    topic = raw.get("topic")
    if not is_topic_name(topic):
        chk.problem(f"{path}.topic", topic, "a ROS topic name such as /camera/color/image_raw")
    types = MODALITIES[modality].msgtypes
    msgtype = raw.get("type", default_type(modality, topic if isinstance(topic, str) else ""))
    if msgtype not in types:
        chk.problem(f"{path}.type", msgtype, f"one of {', '.join(types)}")
    if "rate_hz" not in raw:
        chk.problem(f"{path}.rate_hz", None, "the expected publish rate in Hz, a number > 0")
    rate = chk.number(raw, "rate_hz", path, 1.0, low=0.0, high=100_000.0)
    tolerance = chk.number(raw, "rate_tolerance", path, health.rate_tolerance, low=0.0, high=1.0)
    # A stall must span several periods before it is called one, whatever the configured floor.
    default_timeout = max(health.stale_timeout_s, 5.0 / rate)
    timeout = chk.number(raw, "stale_timeout_s", path, default_timeout, low=0.0, high=3600.0)
    reliability = chk.choice(raw, "reliability", path, "auto", RELIABILITY_CHOICES)
    # Half a second of messages: a callback held up that long (a snapshot, a profile check) loses none.
    default_depth = max(10, min(1000, math.ceil(rate * 0.5)))
    depth = chk.integer(raw, "queue_depth", path, default_depth, low=1, high=100_000)
    if not isinstance(topic, str):
        return None
    return StreamConfig(
        name=name,
        modality=modality,
        topic=topic,
        msgtype=str(msgtype),
        rate_hz=rate,
        rate_tolerance=tolerance,
        stale_timeout_s=timeout,
        reliability=reliability,
        queue_depth=depth,
    )


def _timing(chk: Checker, raw: Mapping[str, Any]) -> TimingConfig:
    d = TimingConfig()
    chk.unknown_keys(raw, "timing", {"enabled", "window_s", "skew_window_s"})
    timing = TimingConfig(
        enabled=chk.boolean(raw, "enabled", "timing", d.enabled),
        window_s=chk.number(raw, "window_s", "timing", d.window_s, low=0.5, high=3600.0, low_inclusive=True),
        skew_window_s=chk.number(
            raw, "skew_window_s", "timing", d.skew_window_s, low=0.2, high=3600.0, low_inclusive=True
        ),
    )
    chk.build("timing", timing.timing_settings)
    chk.build("timing", timing.skew_settings)
    return timing


def _skew_pairs(chk: Checker, raw: Mapping[str, Any], topics: set[str]) -> tuple[SkewPairConfig, ...]:
    d = SkewPairConfig("", "", "")
    pairs = []
    for name, entry in raw.items():
        path = f"skew_pairs.{name}"
        if not isinstance(entry, Mapping):
            chk.problem(path, entry, "a mapping with a, b (monitored topics) and optional limits")
            continue
        chk.unknown_keys(entry, path, {"a", "b", "offset_warn_ms", "offset_error_ms"})
        ends = []
        for key in ("a", "b"):
            topic = entry.get(key)
            if topic not in topics:
                chk.problem(
                    f"{path}.{key}", topic, f"one of the monitored topics: {', '.join(sorted(topics))}"
                )
            ends.append(str(topic))
        warn = chk.number(entry, "offset_warn_ms", path, d.offset_warn_ms, low=0.0, high=10_000.0)
        error = chk.number(entry, "offset_error_ms", path, d.offset_error_ms, low=0.0, high=10_000.0)
        pair = SkewPairConfig(str(name), ends[0], ends[1], warn, error)
        chk.build(path, pair.skew_limits)  # warn <= error
        if ends[0] == ends[1]:
            chk.problem(f"{path}.b", ends[1], "a topic other than a")
        pairs.append(pair)
    return tuple(pairs)


def _conditions(chk: Checker, raw: Mapping[str, Any]) -> ConditionsConfig:
    d = ConditionsConfig()
    keys = {"enabled", "profile", "image_rate_hz", "window_s", "hop_s", "near_m", "error_factor"}
    chk.unknown_keys(raw, "conditions", keys)
    profile = raw.get("profile", d.profile)
    if not isinstance(profile, str):
        chk.problem("conditions.profile", profile, "a path to a profile YAML, or empty for features only")
        profile = d.profile
    conditions = ConditionsConfig(
        enabled=chk.boolean(raw, "enabled", "conditions", d.enabled),
        profile=profile,
        image_rate_hz=chk.number(raw, "image_rate_hz", "conditions", d.image_rate_hz, low=0.0, high=1000.0),
        window_s=chk.number(
            raw, "window_s", "conditions", d.window_s, low=0.01, high=600.0, low_inclusive=True
        ),
        hop_s=chk.number(raw, "hop_s", "conditions", d.hop_s, low=0.001, high=600.0, low_inclusive=True),
        near_m=chk.number(raw, "near_m", "conditions", d.near_m, low=0.0, high=100.0),
        error_factor=chk.number(
            raw, "error_factor", "conditions", d.error_factor, low=1.0, high=1000.0, low_inclusive=True
        ),
    )
    chk.build("conditions", conditions.feature_settings)  # hop_s <= window_s
    return conditions


def _motion_offset(chk: Checker, raw: Mapping[str, Any], streams: list[StreamConfig]) -> MotionOffsetConfig:
    d = MotionOffsetConfig()
    chk.unknown_keys(raw, "motion_offset", {"camera", "imu", "warn_ms", "error_ms", "period_s", "window_s"})
    if not raw:
        return d
    by_modality = {m: sorted(s.topic for s in streams if s.modality == m) for m in ("camera", "imu")}
    topics = {}
    for key in ("camera", "imu"):
        value = raw.get(key)
        if value not in by_modality[key]:
            allowed = ", ".join(by_modality[key]) or "none configured"
            chk.problem(f"motion_offset.{key}", value, f"a monitored {key} topic ({allowed})")
        topics[key] = str(value or "")
    warn = chk.number(raw, "warn_ms", "motion_offset", d.warn_ms, low=0.0, high=10_000.0)
    error = max(d.error_ms, warn)
    motion = MotionOffsetConfig(
        camera=topics["camera"],
        imu=topics["imu"],
        warn_ms=warn,
        error_ms=chk.number(
            raw, "error_ms", "motion_offset", error, low=warn, high=10_000.0, low_inclusive=True
        ),
        period_s=chk.number(
            raw, "period_s", "motion_offset", d.period_s, low=0.1, high=3600.0, low_inclusive=True
        ),
        window_s=chk.number(
            raw, "window_s", "motion_offset", d.window_s, low=1.0, high=3600.0, low_inclusive=True
        ),
    )
    chk.build("motion_offset", motion.estimator_settings)
    return motion


def _topic_list(chk: Checker, raw: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, (list, tuple)) or not all(is_topic_name(t) for t in value):
        chk.problem(f"{path}.{key}", value, "a list of ROS topic names")
        return ()
    return tuple(str(t) for t in value)


def _capture(chk: Checker, raw: Mapping[str, Any]) -> CaptureConfig:
    d = CaptureConfig()
    fields = {"enabled", "output_dir", "pre_s", "post_s", "compression", "cooldown_s", "max_per_hour"}
    fields |= {"quota_bytes", "quota_count", "min_free_bytes", "on_quota", "buffer_bytes"}
    fields |= {
        "on_stream_stale",
        "on_timing",
        "on_skew",
        "on_novel_condition",
        "extra_topics",
        "latched_topics",
    }
    chk.unknown_keys(raw, "capture", fields)
    out_dir = raw.get("output_dir", d.output_dir)
    if not isinstance(out_dir, str) or not out_dir:
        chk.problem("capture.output_dir", out_dir, "a directory path")
        out_dir = d.output_dir
    big = 2**62
    capture = CaptureConfig(
        enabled=chk.boolean(raw, "enabled", "capture", d.enabled),
        output_dir=out_dir,
        pre_s=chk.number(raw, "pre_s", "capture", d.pre_s, low=0.0, high=3600.0, low_inclusive=True),
        post_s=chk.number(raw, "post_s", "capture", d.post_s, low=0.0, high=3600.0, low_inclusive=True),
        compression=chk.choice(raw, "compression", "capture", d.compression, COMPRESSIONS),
        cooldown_s=chk.number(
            raw, "cooldown_s", "capture", d.cooldown_s, low=0.0, high=86400.0, low_inclusive=True
        ),
        max_per_hour=chk.integer(raw, "max_per_hour", "capture", d.max_per_hour, low=1, high=100_000),
        quota_bytes=chk.integer(raw, "quota_bytes", "capture", d.quota_bytes, low=1, high=big),
        quota_count=chk.integer(raw, "quota_count", "capture", d.quota_count, low=1, high=1_000_000),
        min_free_bytes=chk.integer(raw, "min_free_bytes", "capture", d.min_free_bytes, low=0, high=big),
        on_quota=chk.choice(raw, "on_quota", "capture", d.on_quota, ON_QUOTA),
        buffer_bytes=chk.integer(raw, "buffer_bytes", "capture", d.buffer_bytes, low=1024, high=big),
        on_stream_stale=chk.boolean(raw, "on_stream_stale", "capture", d.on_stream_stale),
        on_timing=chk.boolean(raw, "on_timing", "capture", d.on_timing),
        on_skew=chk.boolean(raw, "on_skew", "capture", d.on_skew),
        on_novel_condition=chk.boolean(raw, "on_novel_condition", "capture", d.on_novel_condition),
        extra_topics=_topic_list(chk, raw, "extra_topics", "capture"),
        latched_topics=_topic_list(chk, raw, "latched_topics", "capture"),
    )
    # The writer's own rules (e.g. pre_s + post_s > 0), at load rather than when the node starts;
    # the directory as written: expanding `~` is the writer's business.
    chk.build("capture", partial(capture.snapshot_settings, Path(capture.output_dir)))
    return capture


def config_from_parameters(
    params: Mapping[str, Any], source: str = "parameters", default_prefix: str = NODE_NAME
) -> MonitorConfig:
    """Validate a nested parameter mapping (the content of `ros__parameters`). `default_prefix`
    names the statuses when `diagnostic_prefix` is not set: the node passes its own fully
    qualified name, so two robots' monitors never publish the same status names."""
    chk = Checker()
    allowed = {m.config_key for m in MODALITIES.values()}
    allowed |= {"health", "diagnostics_period_s", "check_period_s"}
    allowed |= {
        "diagnostic_prefix",
        "timing",
        "skew_pairs",
        "capture",
        "motion_offset",
        "conditions",
        "triggers",
    }
    chk.unknown_keys({k: v for k, v in params.items() if k not in ROS_OWN_PARAMETERS}, "", allowed)

    h = chk.mapping(params, "health", "")
    chk.unknown_keys(h, "health", {"rate_tolerance", "stale_timeout_s", "rate_window_s"})
    dh = HealthConfig()
    health = HealthConfig(
        rate_tolerance=chk.number(h, "rate_tolerance", "health", dh.rate_tolerance, low=0.0, high=1.0),
        stale_timeout_s=chk.number(h, "stale_timeout_s", "health", dh.stale_timeout_s, low=0.0, high=3600.0),
        rate_window_s=chk.number(h, "rate_window_s", "health", dh.rate_window_s, low=0.1, high=3600.0),
    )

    streams: list[StreamConfig] = []
    for modality, key in ((m.name, m.config_key) for m in MODALITIES.values()):
        for name, raw in chk.mapping(params, key, "").items():
            s = _stream(chk, modality, str(name), raw, health, f"{key}.{name}")
            if s is not None:
                streams.append(s)
    seen: dict[str, str] = {}
    for s in streams:
        if s.topic in seen:
            chk.problem(
                f"{MODALITIES[s.modality].config_key}.{s.name}.topic",
                s.topic,
                f"a topic not already monitored (also used by stream {seen[s.topic]!r})",
            )
        seen.setdefault(s.topic, s.name)
    names = [s.name for s in streams]
    for n in sorted({n for n in names if names.count(n) > 1}):
        chk.problem(n, n, "a stream name used once across all modalities")

    timing = _timing(chk, chk.mapping(params, "timing", ""))
    pairs = _skew_pairs(chk, chk.mapping(params, "skew_pairs", ""), {s.topic for s in streams})
    capture = _capture(chk, chk.mapping(params, "capture", ""))
    motion = _motion_offset(chk, chk.mapping(params, "motion_offset", ""), streams)
    conditions = _conditions(chk, chk.mapping(params, "conditions", ""))

    prefix = params.get("diagnostic_prefix", default_prefix)
    if not isinstance(prefix, str) or not prefix:
        chk.problem("diagnostic_prefix", prefix, "a non-empty string")
        prefix = default_prefix
    triggers = parse_triggers(chk, chk.mapping(params, "triggers", ""), diagnostic_prefix=prefix)
    config = MonitorConfig(
        streams=tuple(streams),
        health=health,
        timing=timing,
        skew_pairs=pairs,
        motion_offset=motion,
        conditions=conditions,
        capture=capture,
        diagnostics_period_s=chk.number(
            params, "diagnostics_period_s", "", MonitorConfig.diagnostics_period_s, low=0.0, high=60.0
        ),
        check_period_s=chk.number(
            params, "check_period_s", "", MonitorConfig.check_period_s, low=0.0, high=10.0
        ),
        diagnostic_prefix=prefix,
        triggers=triggers,
    )
    if chk.problems:
        raise ConfigError(chk.problems, source)
    return config


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error in one line: what is wrong and where (PyYAML's own text spans several lines)."""
    mark = getattr(exc, "problem_mark", None)
    what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"not valid YAML{where}: {what}"


def params_document(path: str | Path) -> dict[str, Any]:
    """A ROS params file's top level (node name -> section), or a ConfigError saying in one line
    why the file is not one: unreadable, not text (binary), not YAML, empty, not a mapping."""
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"{p}: cannot read: {exc.strerror or exc}"], str(p)) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [f"{p}: not a text (UTF-8) file: byte {exc.start} is {exc.object[exc.start]:#04x}"], str(p)
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"{p}: {_yaml_problem(exc)}"], str(p)) from exc
    if doc is None:
        raise ConfigError(
            [f"{p}: empty: a mapping of node names (e.g. '/**') holding 'ros__parameters'"], str(p)
        )
    if not isinstance(doc, Mapping):
        raise ConfigError([f"<top level>: {type(doc).__name__}: a mapping of node names"], str(p))
    return dict(doc)


def parameters_from_file(path: str | Path, node_name: str = NODE_NAME) -> dict[str, Any]:
    """The `ros__parameters` mapping for `node_name` (or the `/**` wildcard) in a ROS params file."""
    p = Path(path)
    doc = params_document(p)
    candidates = [node_name, f"/{node_name}", "/**"]
    # Namespaced node keys such as `/robot/gap_monitor` match on their last component too.
    candidates += [k for k in doc if isinstance(k, str) and k.rsplit("/", 1)[-1] == node_name]
    for key in candidates:
        section = doc.get(key)
        if isinstance(section, Mapping) and isinstance(section.get("ros__parameters"), Mapping):
            return dict(section["ros__parameters"])
    raise ConfigError(
        [f"<top level>: {sorted(map(str, doc))}: a key {node_name!r} (or '/**') holding 'ros__parameters'"],
        str(p),
    )


def load_config(path: str | Path, node_name: str = NODE_NAME) -> MonitorConfig:
    """Load and validate a ROS 2 parameter file."""
    return config_from_parameters(parameters_from_file(path, node_name), source=str(path))


def unflatten(flat: Mapping[str, Any], separator: str = ".") -> dict[str, Any]:
    """`{'a.b': 1}` -> `{'a': {'b': 1}}`: rclpy hands nested YAML parameters over dot-joined."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(separator)
        node: dict[str, Any] = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def flatten(nested: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Inverse of `unflatten`, for handing a config mapping to a node as parameter overrides."""
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
