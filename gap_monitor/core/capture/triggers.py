"""External capture triggers: messages on other topics that say "this moment is worth keeping".

Four sources, each a small class whose `observe` returns zero or more `Event`s:
a failure topic (String text or Bool edge), action goals that end ABORTED, /diagnostics statuses
that reach ERROR, and shadow-mode divergence (a shadow policy's command vs the executed command).
Each fires on an edge, never on every message, so a persistent condition is one capture, not a
storm. `TriggerSet` decodes raw CDR bytes per topic and dispatches; the node only subscribes to
`TriggerSet.topics()` and forwards bytes. Event times are the receipt clock, the clock the ring
buffer and snapshot windows use.

Text from other nodes (a failure message, diagnostic status names and messages) is decoded
leniently, so bytes that are not UTF-8 still fire, and never reaches a reason or a detail as it
came: reasons show it through `text.printable` (one line, no control characters), details through
`text.escaped` (the exact bytes, recoverable with `text.unescape`), with `raw_text_escaped: true`
when that escaped form differs from the text.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fnmatch import translate
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gap_monitor.core.events import Event, Severity
from gap_monitor.core.io import cdr
from gap_monitor.core.io.names import NODE_NAME, is_topic_name
from gap_monitor.core.text import escaped, printable
from gap_monitor.core.units import NS_PER_S

STRING_TYPE = "std_msgs/msg/String"
BOOL_TYPE = "std_msgs/msg/Bool"
GOAL_STATUS_ARRAY_TYPE = "action_msgs/msg/GoalStatusArray"
DIAGNOSTIC_ARRAY_TYPE = "diagnostic_msgs/msg/DiagnosticArray"
JOINT_STATE_TYPE = "sensor_msgs/msg/JointState"
TWIST_TYPE = "geometry_msgs/msg/Twist"
TWIST_STAMPED_TYPE = "geometry_msgs/msg/TwistStamped"
FLOAT64_MULTI_ARRAY_TYPE = "std_msgs/msg/Float64MultiArray"

FAILURE_TYPES = (STRING_TYPE, BOOL_TYPE)
DIVERGENCE_TYPES = (JOINT_STATE_TYPE, TWIST_TYPE, TWIST_STAMPED_TYPE, FLOAT64_MULTI_ARRAY_TYPE)
JOINT_FIELDS = ("position", "velocity", "effort")
METRICS = ("max_abs", "l2")
ACTION_STATUS_SUFFIX = "/_action/status"
DIAGNOSTICS_TOPIC = "/diagnostics"

KIND_FAILURE = "failure_topic"
KIND_ACTION_ABORTED = "action_aborted"
KIND_DIAGNOSTICS_ERROR = "diagnostics_error"
KIND_DIVERGENCE = "divergence"
KIND_DIVERGENCE_MISMATCH = "divergence_mismatch"
# Kinds that should start a snapshot; a mismatch is a setup problem to announce, not a moment to keep.
CAPTURE_KINDS = frozenset({KIND_FAILURE, KIND_ACTION_ABORTED, KIND_DIAGNOSTICS_ERROR, KIND_DIVERGENCE})

_MAX_REASON_CHARS = 500
_MAX_TEXT_CHARS = 4096  # of a failure text kept in the event details (and so in trigger.json)
# Types whose strings are other nodes' text to report: decoded leniently (see the module docstring).
_LENIENT_TYPES = frozenset({STRING_TYPE, DIAGNOSTIC_ARRAY_TYPE})
_ERROR = int(Severity.ERROR)


def _invalid(name: str, value: Any, allowed: str) -> ValueError:
    # Same `field: value: allowed` shape as Checker problems, so the parser can prefix a path.
    return ValueError(f"{name}: {value!r}: {allowed}")


def _check_topic(name: str, value: Any) -> None:
    if not is_topic_name(value):
        raise _invalid(name, value, "a ROS topic name such as /robot/failure")


# --- settings ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailureTopicSettings:
    """A topic on which the robot stack reports failures (String text or Bool flag)."""

    topic: str
    msgtype: str = STRING_TYPE

    def __post_init__(self) -> None:
        _check_topic("topic", self.topic)
        if self.msgtype not in FAILURE_TYPES:
            raise _invalid("msgtype", self.msgtype, f"one of {', '.join(FAILURE_TYPES)}")


@dataclass(frozen=True)
class ActionStatusSettings:
    """An action's status topic (`<action>/_action/status`).

    `ignore_initial_aborted`: goals already ABORTED in the first status array received are
    remembered without firing; the status topic is transient-local, so that first array is
    usually history from before the monitor subscribed.
    """

    topic: str
    max_goals: int = 1024
    ignore_initial_aborted: bool = True

    def __post_init__(self) -> None:
        _check_topic("topic", self.topic)
        if not isinstance(self.max_goals, int) or isinstance(self.max_goals, bool) or self.max_goals < 1:
            raise _invalid("max_goals", self.max_goals, "an integer >= 1")


@dataclass(frozen=True)
class DiagnosticsErrorSettings:
    """Statuses on /diagnostics whose name matches one of `name_patterns` (fnmatch, case-insensitive).

    Statuses whose name starts with `own_prefix` are ours (the monitor publishes on /diagnostics
    too) and are ignored; an empty prefix ignores nothing.
    """

    name_patterns: tuple[str, ...]
    own_prefix: str = f"{NODE_NAME}:"
    topic: str = DIAGNOSTICS_TOPIC
    max_names: int = 4096

    def __post_init__(self) -> None:
        patterns = self.name_patterns
        if isinstance(patterns, str) or not isinstance(patterns, Sequence) or not patterns:
            raise _invalid("name_patterns", patterns, "a non-empty list of fnmatch patterns")
        for p in patterns:
            if not isinstance(p, str) or not p:
                raise _invalid("name_patterns", p, "a non-empty fnmatch pattern such as *motor*")
        object.__setattr__(self, "name_patterns", tuple(patterns))
        if not isinstance(self.own_prefix, str):
            raise _invalid("own_prefix", self.own_prefix, "a string (empty: ignore nothing)")
        _check_topic("topic", self.topic)
        if not isinstance(self.max_names, int) or isinstance(self.max_names, bool) or self.max_names < 1:
            raise _invalid("max_names", self.max_names, "an integer >= 1")


@dataclass(frozen=True)
class DivergenceSettings:
    """Shadow mode: `topic_a` (e.g. the shadow policy's command) against `topic_b` (the executed one).

    Values compared: JointState `joint_field` (position by default), Twist/TwistStamped linear and
    angular as 6 values, Float64MultiArray data (after `layout.data_offset`). `metric` is the largest
    absolute difference (`max_abs`) or the Euclidean norm of the difference (`l2`). Fires when the
    metric stays above `threshold` for at least `duration_s`; re-arms after it stays at or below for
    `duration_s`. Each message is paired with the latest message of the other topic, if that is at
    most `max_age_s` apart. `msgtype_b` defaults to `msgtype`.
    """

    name: str
    topic_a: str
    topic_b: str
    msgtype: str
    threshold: float
    duration_s: float = 0.5
    metric: str = "max_abs"
    max_age_s: float = 0.2
    joint_field: str = "position"
    msgtype_b: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise _invalid("name", self.name, "a non-empty name")
        _check_topic("topic_a", self.topic_a)
        _check_topic("topic_b", self.topic_b)
        if self.topic_a == self.topic_b:
            raise _invalid("topic_b", self.topic_b, "a topic other than topic_a")
        for name in ("msgtype", "msgtype_b"):
            value = getattr(self, name)
            if not (value is None and name == "msgtype_b") and value not in DIVERGENCE_TYPES:
                raise _invalid(name, value, f"one of {', '.join(DIVERGENCE_TYPES)}")
        for name, low, high in (("threshold", 0.0, float("inf")), ("max_age_s", 0.0, 60.0)):
            value = getattr(self, name)
            if not _is_number(value) or not low < value <= high:
                raise _invalid(name, value, f"a number in ({low:g}, {high:g}]")
        if not _is_number(self.duration_s) or not 0.0 <= self.duration_s <= 3600.0:
            raise _invalid("duration_s", self.duration_s, "a number in [0, 3600]")
        if self.metric not in METRICS:
            raise _invalid("metric", self.metric, f"one of {', '.join(METRICS)}")
        if self.joint_field not in JOINT_FIELDS:
            raise _invalid("joint_field", self.joint_field, f"one of {', '.join(JOINT_FIELDS)}")

    @property
    def type_b(self) -> str:
        return self.msgtype_b or self.msgtype


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


@dataclass(frozen=True)
class TriggersConfig:
    """Every external trigger; an absent one is off."""

    failure: FailureTopicSettings | None = None
    action_status: tuple[ActionStatusSettings, ...] = ()
    diagnostics: DiagnosticsErrorSettings | None = None
    divergence: tuple[DivergenceSettings, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.failure or self.action_status or self.diagnostics or self.divergence)


# --- triggers ----------------------------------------------------------------------------------


class FailureTopicTrigger:
    """A String message is a failure whose reason is its text; a Bool fires on False->True.

    Before the first Bool the flag counts as False, so a failure already raised when the monitor
    starts is still captured once.
    """

    def __init__(self, settings: FailureTopicSettings) -> None:
        self.settings = settings
        self._flag = False

    def observe(self, msg: cdr.StringMsg | cdr.BoolMsg, receipt_ns: int) -> list[Event]:
        topic = self.settings.topic
        if isinstance(msg, cdr.BoolMsg):
            rising = msg.data and not self._flag
            self._flag = msg.data
            if not rising:
                return []
            return [
                Event(
                    KIND_FAILURE,
                    topic,
                    Severity.ERROR,
                    f"failure reported ({topic} became true)",
                    receipt_ns,
                    {"topic": topic},
                )
            ]
        text = msg.data.strip()
        kept = msg.data[:_MAX_TEXT_CHARS]
        shown = escaped(kept)
        return [
            Event(
                KIND_FAILURE,
                topic,
                Severity.ERROR,
                printable(text, _MAX_REASON_CHARS) if text else "failure reported",
                receipt_ns,
                {
                    "topic": topic,
                    "text": shown,
                    "raw_text_escaped": shown != kept,
                    "text_length": len(msg.data),  # characters, an undecodable byte counting as one
                    "text_truncated": len(msg.data) > len(kept),
                },
            )
        ]


class ActionStatusTrigger:
    """Fires once per goal id when the goal's status is ABORTED; remembers `max_goals` goal ids."""

    def __init__(self, settings: ActionStatusSettings) -> None:
        self.settings = settings
        self._aborted: OrderedDict[bytes, None] = OrderedDict()
        self._seen_any = False

    @property
    def action(self) -> str:
        topic = self.settings.topic
        return topic[: -len(ACTION_STATUS_SUFFIX)] if topic.endswith(ACTION_STATUS_SUFFIX) else topic

    def observe(self, msg: cdr.GoalStatusArrayMsg, receipt_ns: int) -> list[Event]:
        initial = not self._seen_any
        self._seen_any = True
        events = []
        for status in msg.status_list:
            if status.status != cdr.GoalStatusMsg.ABORTED:
                continue
            gid = status.goal_id
            if gid in self._aborted:
                self._aborted.move_to_end(gid)  # still listed: keep it from being forgotten
                continue
            self._aborted[gid] = None
            while len(self._aborted) > self.settings.max_goals:
                self._aborted.popitem(last=False)
            if initial and self.settings.ignore_initial_aborted:
                continue
            topic = self.settings.topic
            events.append(
                Event(
                    KIND_ACTION_ABORTED,
                    topic,
                    Severity.ERROR,
                    f"goal {gid.hex()} of action {self.action} aborted ({topic})",
                    receipt_ns,
                    {"goal_id": gid.hex(), "action": self.action, "goal_stamp_ns": status.stamp_ns},
                )
            )
        return events


class DiagnosticsErrorTrigger:
    """Fires when a matching status reaches ERROR (from OK, WARN or unseen); re-arms below ERROR.

    STALE neither fires nor re-arms: a stale device has not recovered.
    """

    def __init__(self, settings: DiagnosticsErrorSettings) -> None:
        self.settings = settings
        self._pattern = re.compile(
            "|".join(f"(?:{translate(p)})" for p in settings.name_patterns), re.IGNORECASE
        )
        self._in_error: OrderedDict[str, None] = OrderedDict()

    def matches(self, name: str) -> bool:
        prefix = self.settings.own_prefix
        if prefix and name.startswith(prefix):
            return False
        return self._pattern.match(name) is not None

    def observe(self, msg: cdr.DiagnosticArrayMsg, receipt_ns: int) -> list[Event]:
        events = []
        for status in msg.status:
            if not self.matches(status.name):
                continue
            if status.level < _ERROR:
                self._in_error.pop(status.name, None)
                continue
            if status.level != _ERROR or status.name in self._in_error:
                continue
            self._in_error[status.name] = None
            while len(self._in_error) > self.settings.max_names:
                self._in_error.popitem(last=False)
            text = f": {printable(status.message)}" if status.message else ""
            raw = (status.name, status.message, status.hardware_id, *(t for kv in status.values for t in kv))
            shown = [escaped(t) for t in raw]
            name, message, hardware_id, *pairs = shown
            events.append(
                Event(
                    KIND_DIAGNOSTICS_ERROR,
                    self.settings.topic,
                    Severity.ERROR,
                    printable(f"diagnostic '{printable(status.name)}' is ERROR{text}", _MAX_REASON_CHARS),
                    receipt_ns,
                    {
                        "name": name,
                        "message": message,
                        "hardware_id": hardware_id,
                        "values": dict(zip(pairs[::2], pairs[1::2], strict=True)),
                        "raw_text_escaped": shown != list(raw),
                        "stamp_ns": msg.header.stamp_ns,
                    },
                )
            )
        return events


@dataclass(frozen=True, eq=False)
class _Sample:
    time_ns: int
    values: NDArray[np.float64]
    names: tuple[str, ...]


class DivergenceTrigger:
    """Shadow-mode divergence between two command topics (see `DivergenceSettings`).

    Counters: `compared` pairs, `stale` messages whose partner was too old (or absent),
    `mismatched` pairs of different shape or joint names (announced once), `nonfinite` pairs
    with NaN/inf differences (skipped). `last_value` is the latest metric.
    """

    def __init__(self, settings: DivergenceSettings) -> None:
        self.settings = settings
        self._duration_ns = round(settings.duration_s * NS_PER_S)
        self._max_age_ns = round(settings.max_age_s * NS_PER_S)
        self._latest: dict[str, _Sample] = {}
        self._armed = True
        self._above_since: int | None = None
        self._below_since: int | None = None
        self._last_ns: int | None = None
        self._mismatch_announced = False
        self.compared = 0
        self.stale = 0
        self.mismatched = 0
        self.nonfinite = 0
        self.last_value: float | None = None

    @property
    def source(self) -> str:
        return f"divergence {self.settings.name}"

    def topics(self) -> dict[str, str]:
        return {self.settings.topic_a: self.settings.msgtype, self.settings.topic_b: self.settings.type_b}

    def reset(self) -> None:
        """Forget pairing and timers (e.g. after a clock jump); the armed state is kept."""
        self._latest.clear()
        self._above_since = self._below_since = self._last_ns = None

    def observe(self, topic: str, msg: cdr.CdrMessage, receipt_ns: int) -> list[Event]:
        """One decoded message of `topic_a` or `topic_b`.

        Header stamps are used where the type has one, unless zero (an unset header), else the
        receipt time.
        """
        names: tuple[str, ...] = ()
        stamp = 0
        if isinstance(msg, cdr.JointStateMsg):
            values = getattr(msg, self.settings.joint_field)
            names = msg.name
            stamp = msg.header.stamp_ns
        elif isinstance(msg, (cdr.TwistMsg, cdr.TwistStampedMsg)):
            values = np.concatenate([msg.linear, msg.angular])
            if isinstance(msg, cdr.TwistStampedMsg):
                stamp = msg.header.stamp_ns
        elif isinstance(msg, cdr.Float64MultiArrayMsg):
            values = msg.data[msg.data_offset :]
        else:
            raise TypeError(f"{self.source}: cannot compare a {type(msg).__name__}")
        return self.observe_values(topic, values, stamp or receipt_ns, receipt_ns, names)

    def observe_values(
        self,
        topic: str,
        values: NDArray[np.float64],
        time_ns: int,
        receipt_ns: int,
        names: Sequence[str] = (),
    ) -> list[Event]:
        """The comparison itself: `values` of `topic` at `time_ns` (stamp or receipt time)."""
        s = self.settings
        if topic not in (s.topic_a, s.topic_b):
            return []
        sample = _Sample(time_ns, np.asarray(values, dtype=np.float64), tuple(names))
        self._latest[topic] = sample
        other = self._latest.get(s.topic_b if topic == s.topic_a else s.topic_a)
        if other is None or abs(sample.time_ns - other.time_ns) > self._max_age_ns:
            self.stale += 1
            # No fresh pair means no evidence that the difference stayed above (or below).
            self._above_since = self._below_since = None
            return []
        a, b = (sample, other) if topic == s.topic_a else (other, sample)
        b_values, problem = self._aligned(a, b)
        if problem:
            self.mismatched += 1
            self._above_since = self._below_since = None
            if self._mismatch_announced:
                return []
            self._mismatch_announced = True
            return [
                Event(
                    KIND_DIVERGENCE_MISMATCH,
                    self.source,
                    Severity.WARN,
                    printable(f"{self.source}: {s.topic_a} and {s.topic_b} not compared: {problem}"),
                    receipt_ns,
                    {"topic_a": s.topic_a, "topic_b": s.topic_b, "problem": problem},
                )
            ]
        diff = a.values - b_values
        if not np.all(np.isfinite(diff)):
            self.nonfinite += 1
            return []
        self.compared += 1
        absdiff = np.abs(diff)
        value = float(np.max(absdiff, initial=0.0) if s.metric == "max_abs" else np.linalg.norm(diff))
        self.last_value = value
        return self._step(max(a.time_ns, b.time_ns), value, absdiff, a.names, receipt_ns)

    def _aligned(self, a: _Sample, b: _Sample) -> tuple[NDArray[np.float64], str]:
        """b's values in a's order (joints matched by name when both carry names), or a problem."""
        if a.values.shape != b.values.shape:
            return b.values, f"{a.values.size} value(s) vs {b.values.size}"
        n = a.values.size
        if n == 0:  # e.g. JointState commands that carry velocity only, compared on position
            return b.values, f"no values to compare ({self.settings.joint_field} empty?)"
        if len(a.names) == n and len(b.names) == n and a.names != b.names:
            if sorted(a.names) != sorted(b.names) or len(set(a.names)) != n:
                return b.values, f"joint names differ: {list(a.names)} vs {list(b.names)}"
            index = {name: i for i, name in enumerate(b.names)}
            return b.values[[index[name] for name in a.names]], ""
        return b.values, ""

    def _step(
        self, now_ns: int, value: float, absdiff: NDArray[np.float64], names: tuple[str, ...], receipt_ns: int
    ) -> list[Event]:
        s = self.settings
        if self._last_ns is not None and now_ns < self._last_ns:
            if self._last_ns - now_ns > self._max_age_ns:  # the clock went back: start timing anew
                self._above_since = self._below_since = None
            else:  # slightly out of order across the two topics
                now_ns = self._last_ns
        self._last_ns = now_ns
        if value <= s.threshold:
            self._above_since = None
            if not self._armed:
                if self._below_since is None:
                    self._below_since = now_ns
                if now_ns - self._below_since >= self._duration_ns:
                    self._armed, self._below_since = True, None
            return []
        self._below_since = None
        if self._above_since is None:
            self._above_since = now_ns
        held_ns = now_ns - self._above_since
        if not self._armed or held_ns < self._duration_ns:
            return []
        self._armed = False
        worst = int(np.argmax(absdiff))
        where = printable(names[worst]) if worst < len(names) else f"[{worst}]"  # another node's name
        details: dict[str, Any] = {
            "topic_a": s.topic_a,
            "topic_b": s.topic_b,
            "metric": s.metric,
            "value": value,
            "threshold": s.threshold,
            "above_for_s": held_ns / NS_PER_S,
            "worst_index": worst,
            "worst_difference": float(absdiff[worst]),
        }
        if worst < len(names):
            details["worst_name"] = names[worst]
        return [
            Event(
                KIND_DIVERGENCE,
                self.source,
                Severity.WARN,
                f"{self.source}: {s.topic_a} vs {s.topic_b} differ by {value:.4g} ({s.metric}) > "
                f"{s.threshold:g} for {held_ns / NS_PER_S:.2f} s (largest at {where})",
                receipt_ns,
                details,
            )
        ]


# --- dispatch ----------------------------------------------------------------------------------

_Handler = Callable[[str, cdr.CdrMessage, int], list[Event]]


class TriggerSet:
    """All configured triggers behind one raw-bytes entry point. Not thread-safe."""

    def __init__(
        self,
        failure: FailureTopicTrigger | None = None,
        actions: Sequence[ActionStatusTrigger] = (),
        diagnostics: DiagnosticsErrorTrigger | None = None,
        divergences: Sequence[DivergenceTrigger] = (),
    ) -> None:
        self.failure = failure
        self.actions = tuple(actions)
        self.diagnostics = diagnostics
        self.divergences = tuple(divergences)
        self._types: dict[str, str] = {}
        self._handlers: dict[str, list[_Handler]] = {}
        if failure is not None:
            self._add(failure.settings.topic, failure.settings.msgtype, self._on_failure)
        for action in self.actions:
            self._add(action.settings.topic, GOAL_STATUS_ARRAY_TYPE, self._on_action(action))
        if diagnostics is not None:
            self._add(diagnostics.settings.topic, DIAGNOSTIC_ARRAY_TYPE, self._on_diagnostics)
        for div in self.divergences:
            for topic, msgtype in div.topics().items():
                self._add(topic, msgtype, div.observe)
        self.malformed: dict[str, int] = dict.fromkeys(self._types, 0)
        self.last_error: dict[str, str] = {}

    def _add(self, topic: str, msgtype: str, handler: _Handler) -> None:
        known = self._types.setdefault(topic, msgtype)
        if known != msgtype:
            raise ValueError(f"topic: {topic!r}: used as {known} by another trigger, not also {msgtype}")
        self._handlers.setdefault(topic, []).append(handler)

    def _on_failure(self, topic: str, msg: cdr.CdrMessage, receipt_ns: int) -> list[Event]:
        assert self.failure is not None and isinstance(msg, (cdr.StringMsg, cdr.BoolMsg))
        return self.failure.observe(msg, receipt_ns)

    @staticmethod
    def _on_action(trigger: ActionStatusTrigger) -> _Handler:
        def handle(topic: str, msg: cdr.CdrMessage, receipt_ns: int) -> list[Event]:
            assert isinstance(msg, cdr.GoalStatusArrayMsg)
            return trigger.observe(msg, receipt_ns)

        return handle

    def _on_diagnostics(self, topic: str, msg: cdr.CdrMessage, receipt_ns: int) -> list[Event]:
        assert self.diagnostics is not None and isinstance(msg, cdr.DiagnosticArrayMsg)
        return self.diagnostics.observe(msg, receipt_ns)

    def topics(self) -> dict[str, str]:
        """topic -> message type: what the node must subscribe to."""
        return dict(self._types)

    def on_message(self, topic: str, receipt_ns: int, data: bytes) -> list[Event]:
        """Raw CDR bytes of a trigger topic; malformed bytes are counted, never raised."""
        msgtype = self._types.get(topic)
        if msgtype is None:
            return []
        try:
            msg = cdr.decode(msgtype, data, lenient_text=msgtype in _LENIENT_TYPES)
        except cdr.CdrError as exc:
            self.malformed[topic] += 1
            self.last_error[topic] = str(exc)
            return []
        events: list[Event] = []
        for handler in self._handlers[topic]:
            events += handler(topic, msg, receipt_ns)
        return events

    def reset_timing(self) -> None:
        """After a clock jump: divergence pairing and timers start anew."""
        for div in self.divergences:
            div.reset()


def build_triggers(cfg: TriggersConfig) -> TriggerSet:
    return TriggerSet(
        failure=FailureTopicTrigger(cfg.failure) if cfg.failure else None,
        actions=[ActionStatusTrigger(a) for a in cfg.action_status],
        diagnostics=DiagnosticsErrorTrigger(cfg.diagnostics) if cfg.diagnostics else None,
        divergences=[DivergenceTrigger(d) for d in cfg.divergence],
    )
