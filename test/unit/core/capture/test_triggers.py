"""External capture triggers, fed with bytes serialized by rosbags (an independent CDR writer)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from gap_monitor.core.capture.triggers import (
    CAPTURE_KINDS,
    KIND_ACTION_ABORTED,
    KIND_DIAGNOSTICS_ERROR,
    KIND_DIVERGENCE,
    KIND_DIVERGENCE_MISMATCH,
    KIND_FAILURE,
    ActionStatusSettings,
    DiagnosticsErrorSettings,
    DivergenceSettings,
    FailureTopicSettings,
    TriggersConfig,
    build_triggers,
)
from gap_monitor.core.events import Event, Severity

TS = get_typestore(Stores.ROS2_JAZZY)
T = TS.types
NS = 1_000_000_000
T0 = 1_700_000_000 * NS
STATUS_TOPIC = "/navigate_to_pose/_action/status"


def ser(msg: Any, msgtype: str, little_endian: bool = True) -> bytes:
    return bytes(TS.serialize_cdr(msg, msgtype, little_endian=little_endian))


def stamp(ns: int) -> Any:
    return T["builtin_interfaces/msg/Time"](sec=ns // NS, nanosec=ns % NS)


def string(text: str) -> bytes:
    return ser(T["std_msgs/msg/String"](data=text), "std_msgs/msg/String")


def boolean(value: bool) -> bytes:
    return ser(T["std_msgs/msg/Bool"](data=value), "std_msgs/msg/Bool", little_endian=False)


def goal_statuses(goals: list[tuple[bytes, int]]) -> bytes:
    msg = T["action_msgs/msg/GoalStatusArray"](status_list=[
        T["action_msgs/msg/GoalStatus"](
            goal_info=T["action_msgs/msg/GoalInfo"](
                goal_id=T["unique_identifier_msgs/msg/UUID"](uuid=np.frombuffer(gid, np.uint8).copy()),
                stamp=stamp(T0),
            ),
            status=status,
        )
        for gid, status in goals
    ])
    return ser(msg, "action_msgs/msg/GoalStatusArray")


def diagnostics(statuses: list[tuple[str, int]], message: str = "over temperature") -> bytes:
    msg = T["diagnostic_msgs/msg/DiagnosticArray"](
        header=T["std_msgs/msg/Header"](stamp=stamp(T0), frame_id=""),
        status=[
            T["diagnostic_msgs/msg/DiagnosticStatus"](
                level=level, name=name, message=message, hardware_id="hw0",
                values=[T["diagnostic_msgs/msg/KeyValue"](key="temp_c", value="91")],
            )
            for name, level in statuses
        ],
    )
    return ser(msg, "diagnostic_msgs/msg/DiagnosticArray")


def joint_state(stamp_ns: int, position: list[float], names: list[str] | None = None) -> bytes:
    names = names if names is not None else [f"j{i}" for i in range(len(position))]
    msg = T["sensor_msgs/msg/JointState"](
        header=T["std_msgs/msg/Header"](stamp=stamp(stamp_ns), frame_id=""),
        name=names, position=np.array(position, dtype=np.float64),
        velocity=np.zeros(0), effort=np.zeros(0),
    )
    return ser(msg, "sensor_msgs/msg/JointState")


def twist(linear: list[float], angular: list[float]) -> bytes:
    def v(x: list[float]) -> Any:
        return T["geometry_msgs/msg/Vector3"](x=x[0], y=x[1], z=x[2])

    return ser(T["geometry_msgs/msg/Twist"](linear=v(linear), angular=v(angular)), "geometry_msgs/msg/Twist")


def multi_array(data: list[float]) -> bytes:
    msg = T["std_msgs/msg/Float64MultiArray"](
        layout=T["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0),
        data=np.array(data, dtype=np.float64),
    )
    return ser(msg, "std_msgs/msg/Float64MultiArray")


def assert_plain_json(event: Event) -> None:
    """Details survive the ~/events JSON unchanged (no numpy values turned into strings)."""
    assert Event.from_json(event.to_json()) == event
    assert json.loads(event.to_json())["details"] == event.details


# --- failure topic ------------------------------------------------------------------------------


def test_string_failure_reason_is_its_text() -> None:
    ts = build_triggers(TriggersConfig(failure=FailureTopicSettings("/robot/failure")))
    assert ts.topics() == {"/robot/failure": "std_msgs/msg/String"}
    [e] = ts.on_message("/robot/failure", T0 + 5, string("gripper lost the part"))
    assert (e.kind, e.source, e.severity, e.reason, e.time_ns) == (
        KIND_FAILURE, "/robot/failure", Severity.ERROR, "gripper lost the part", T0 + 5
    )
    assert e.kind in CAPTURE_KINDS
    assert_plain_json(e)
    [empty] = ts.on_message("/robot/failure", T0 + 6, string(""))
    assert empty.reason == "failure reported"
    assert len(ts.on_message("/robot/failure", T0 + 7, string("gripper lost the part"))) == 1


def test_bool_failure_fires_on_rising_edges_only() -> None:
    ts = build_triggers(TriggersConfig(failure=FailureTopicSettings("/robot/fault", "std_msgs/msg/Bool")))
    sequence = [False, True, True, True, False, False, True]
    fired = [i for i, v in enumerate(sequence) if ts.on_message("/robot/fault", T0 + i, boolean(v))]
    assert fired == [1, 6]
    # A flag already up when the monitor starts is still one failure.
    fresh = build_triggers(TriggersConfig(failure=FailureTopicSettings("/robot/fault", "std_msgs/msg/Bool")))
    assert len(fresh.on_message("/robot/fault", T0, boolean(True))) == 1
    assert fresh.on_message("/robot/fault", T0 + 1, boolean(True)) == []


# --- action status ------------------------------------------------------------------------------

G1, G2, G3 = bytes(range(16)), bytes(range(16, 32)), b"\xab" * 16


def test_aborted_goal_fires_once_with_its_id_and_action() -> None:
    ts = build_triggers(TriggersConfig(action_status=(ActionStatusSettings(STATUS_TOPIC),)))
    assert ts.topics() == {STATUS_TOPIC: "action_msgs/msg/GoalStatusArray"}
    assert ts.on_message(STATUS_TOPIC, T0, goal_statuses([(G1, 2)])) == []
    assert ts.on_message(STATUS_TOPIC, T0 + 1, goal_statuses([(G1, 4), (G2, 2)])) == []  # SUCCEEDED
    [e] = ts.on_message(STATUS_TOPIC, T0 + 2, goal_statuses([(G1, 4), (G2, 6)]))
    assert e.kind == KIND_ACTION_ABORTED and e.severity == Severity.ERROR and e.time_ns == T0 + 2
    assert G2.hex() in e.reason and "/navigate_to_pose" in e.reason
    assert G1.hex() not in e.reason
    assert_plain_json(e)
    # The same ABORTED status republished (another goal changed) is not a new failure.
    assert ts.on_message(STATUS_TOPIC, T0 + 3, goal_statuses([(G1, 4), (G2, 6)])) == []
    assert ts.on_message(STATUS_TOPIC, T0 + 4, goal_statuses([(G2, 6), (G3, 1)])) == []
    [e3] = ts.on_message(STATUS_TOPIC, T0 + 5, goal_statuses([(G2, 6), (G3, 6)]))
    assert G3.hex() in e3.reason


def test_aborted_goals_in_the_first_latched_array_are_history() -> None:
    latched = goal_statuses([(G1, 6), (G2, 2)])
    default = build_triggers(TriggersConfig(action_status=(ActionStatusSettings(STATUS_TOPIC),)))
    assert default.on_message(STATUS_TOPIC, T0, latched) == []
    [e] = default.on_message(STATUS_TOPIC, T0 + 1, goal_statuses([(G1, 6), (G2, 6)]))
    assert G2.hex() in e.reason
    eager = build_triggers(TriggersConfig(
        action_status=(ActionStatusSettings(STATUS_TOPIC, ignore_initial_aborted=False),)
    ))
    [first] = eager.on_message(STATUS_TOPIC, T0, latched)
    assert G1.hex() in first.reason


def test_goal_memory_is_bounded() -> None:
    settings = ActionStatusSettings(STATUS_TOPIC, max_goals=2)
    ts = build_triggers(TriggersConfig(action_status=(settings,)))
    ts.on_message(STATUS_TOPIC, T0, goal_statuses([]))
    goals = [bytes([i]) * 16 for i in range(4)]
    for i, gid in enumerate(goals[:3]):
        assert len(ts.on_message(STATUS_TOPIC, T0 + i, goal_statuses([(gid, 6)]))) == 1
    # The two most recent goals are still known; the oldest was forgotten and fires again.
    assert ts.on_message(STATUS_TOPIC, T0 + 10, goal_statuses([(goals[1], 6), (goals[2], 6)])) == []
    assert len(ts.on_message(STATUS_TOPIC, T0 + 11, goal_statuses([(goals[0], 6)]))) == 1


# --- diagnostics --------------------------------------------------------------------------------


def diag_set(**kw: Any) -> Any:
    return build_triggers(TriggersConfig(diagnostics=DiagnosticsErrorSettings(("*motor*", "*driver*"), **kw)))


def test_diagnostics_error_fires_on_the_edge_and_rearms_below_error() -> None:
    ts = diag_set()
    assert ts.topics() == {"/diagnostics": "diagnostic_msgs/msg/DiagnosticArray"}
    levels = [0, 1, 2, 2, 2, 1, 2, 3, 2, 0, 2]
    fired = []
    for i, level in enumerate(levels):
        events = ts.on_message("/diagnostics", T0 + i, diagnostics([("left motor", level)]))
        assert len(events) <= 1
        fired += [i for _ in events]
    # ERROR at 2 (edge), again at 6 after WARN, not at 8 (STALE does not re-arm), at 10 after OK.
    assert fired == [2, 6, 10]


def test_diagnostics_event_names_the_status() -> None:
    ts = diag_set()
    [e] = ts.on_message("/diagnostics", T0, diagnostics([("Left MOTOR", 2), ("camera", 2)]))
    assert e.kind == KIND_DIAGNOSTICS_ERROR and e.severity == Severity.ERROR
    assert "Left MOTOR" in e.reason and "over temperature" in e.reason
    assert e.details["values"] == {"temp_c": "91"} and e.details["hardware_id"] == "hw0"
    assert_plain_json(e)
    both = ts.on_message("/diagnostics", T0 + 1, diagnostics([("driver A", 2), ("driver B", 2)]))
    assert sorted(e.details["name"] for e in both) == ["driver A", "driver B"]


def test_diagnostics_ignores_our_own_statuses() -> None:
    ts = diag_set()
    own = diagnostics([("gap_monitor: /joint_states motor check", 2)])
    assert ts.on_message("/diagnostics", T0, own) == []
    other_prefix = diag_set(own_prefix="robot_monitor:")
    assert len(other_prefix.on_message("/diagnostics", T0, own)) == 1


# --- divergence ---------------------------------------------------------------------------------

SHADOW, EXECUTED = "/policy/shadow_cmd", "/joint_commands"


def divergence(**kw: Any) -> DivergenceSettings:
    args: dict[str, Any] = {
        "name": "shadow", "topic_a": SHADOW, "topic_b": EXECUTED,
        "msgtype": "sensor_msgs/msg/JointState", "threshold": 0.2, "duration_s": 0.5,
    }
    args.update(kw)
    return DivergenceSettings(**args)


def run_joints(ts: Any, offsets: list[float], start_ns: int = T0, receipt_ns: int | None = None) -> list[int]:
    """Shadow and executed command every 100 ms (executed 10 ms later); the shadow's joint 1 is
    `offset` away. Returns the indices of the steps that fired a divergence event."""
    fired = []
    for i, off in enumerate(offsets):
        t = start_ns + i * NS // 10
        rx = receipt_ns if receipt_ns is not None else t
        events = ts.on_message(SHADOW, rx, joint_state(t, [0.5, 1.0 + off, -0.3]))
        events += ts.on_message(EXECUTED, rx, joint_state(t + NS // 100, [0.5, 1.0, -0.3]))
        assert all(e.kind == KIND_DIVERGENCE for e in events)
        fired += [i for _ in events]
    return fired


def test_divergence_fires_once_when_it_lasts_longer_than_duration() -> None:
    ts = build_triggers(TriggersConfig(divergence=(divergence(),)))
    assert ts.topics() == {SHADOW: "sensor_msgs/msg/JointState", EXECUTED: "sensor_msgs/msg/JointState"}
    # Above for 0.3 s: a blip, not a divergence.
    assert run_joints(ts, [0.0] * 3 + [0.5] * 4 + [0.0] * 3) == []
    # Above for ~0.9 s: one event, at the step 0.5 s after it started, not one per message.
    assert run_joints(ts, [0.5] * 10, start_ns=T0 + 2 * NS) == [5]


def test_divergence_event_content() -> None:
    ts = build_triggers(TriggersConfig(divergence=(divergence(),)))
    events = []
    for i in range(8):
        t = T0 + i * NS // 10
        events += ts.on_message(SHADOW, t + 3, joint_state(t, [0.5, 1.4, -0.3]))
        events += ts.on_message(EXECUTED, t + 7, joint_state(t, [0.5, 1.0, -0.25]))
    [e] = events
    assert e.kind == KIND_DIVERGENCE and e.kind in CAPTURE_KINDS and e.source == "divergence shadow"
    # Decided by the shadow message stamped 0.5 s after the first pair; the event has its receipt time.
    assert e.time_ns == T0 + 5 * NS // 10 + 3
    assert e.details["worst_name"] == "j1"
    assert e.details["value"] == pytest.approx(0.4)
    assert SHADOW in e.reason and EXECUTED in e.reason
    assert_plain_json(e)


def test_divergence_rearms_only_after_staying_below_for_duration() -> None:
    ts = build_triggers(TriggersConfig(divergence=(divergence(),)))
    offsets = [0.5] * 8 + [0.0] * 3 + [0.5] * 8 + [0.0] * 7 + [0.5] * 8
    # Fires at 5; the 0.2 s dip (8..10) does not re-arm; the 0.6 s one (19..25) does: fires at 26+5.
    assert run_joints(ts, offsets) == [5, 31]


def test_divergence_uses_header_stamps_not_receipt_times() -> None:
    # Every message received at the same instant (a burst): the stamps still span 0.9 s.
    ts = build_triggers(TriggersConfig(divergence=(divergence(),)))
    assert run_joints(ts, [0.5] * 10, receipt_ns=T0 + 50 * NS) == [5]


def test_divergence_with_a_stale_partner_does_not_fire() -> None:
    ts = build_triggers(TriggersConfig(divergence=(divergence(),)))
    ts.on_message(EXECUTED, T0, joint_state(T0, [0.5, 1.0, -0.3]))
    events = []
    for i in range(20):  # the executed command stopped; the shadow keeps diverging
        t = T0 + (i + 3) * NS // 10
        events += ts.on_message(SHADOW, t, joint_state(t, [0.5, 9.0, -0.3]))
    assert events == []
    div = ts.divergences[0]
    assert div.stale == 21 and div.compared == 0  # the executed command's lone first message too


def test_divergence_joint_order_and_shape_mismatch() -> None:
    ts = build_triggers(TriggersConfig(divergence=(divergence(duration_s=0.0),)))
    # Same joints in another order: matched by name, no divergence.
    ts.on_message(SHADOW, T0, joint_state(T0, [1.0, 2.0, 3.0], ["a", "b", "c"]))
    assert ts.on_message(EXECUTED, T0, joint_state(T0, [3.0, 1.0, 2.0], ["c", "a", "b"])) == []
    assert ts.divergences[0].compared == 1
    # Different joint counts: counted every time, announced once, never raised.
    events = []
    for i in range(1, 6):
        t = T0 + i * NS // 10
        events += ts.on_message(SHADOW, t, joint_state(t, [1.0, 2.0, 9.0, 4.0]))
        events += ts.on_message(EXECUTED, t, joint_state(t, [1.0, 2.0, 3.0]))
    [e] = events
    assert e.kind == KIND_DIVERGENCE_MISMATCH and e.severity == Severity.WARN
    assert e.kind not in CAPTURE_KINDS
    assert "4" in e.reason and "3" in e.reason
    assert ts.divergences[0].mismatched == 10  # every message: each pairs with a fresh partner
    # Different joint names of the same count are a mismatch too, not a silent index compare.
    ts.on_message(SHADOW, T0 + NS, joint_state(T0 + NS, [1.0, 2.0], ["a", "b"]))
    assert ts.on_message(EXECUTED, T0 + NS, joint_state(T0 + NS, [1.0, 2.0], ["a", "x"])) == []
    assert ts.divergences[0].mismatched == 11


def test_divergence_of_empty_commands_is_announced_not_silently_zero() -> None:
    ts = build_triggers(TriggersConfig(divergence=(divergence(),)))
    ts.on_message(SHADOW, T0, joint_state(T0, [], []))
    [e] = ts.on_message(EXECUTED, T0, joint_state(T0, [], []))
    assert e.kind == KIND_DIVERGENCE_MISMATCH and "no values" in e.reason
    assert ts.divergences[0].compared == 0


def test_divergence_twist_uses_receipt_time_and_both_metrics() -> None:
    def run(metric: str, linear_x: float, angular_z: float) -> list[Event]:
        settings = divergence(msgtype="geometry_msgs/msg/Twist", metric=metric, topic_a="/shadow/cmd_vel",
                              topic_b="/cmd_vel", duration_s=0.3)
        ts = build_triggers(TriggersConfig(divergence=(settings,)))
        events: list[Event] = []
        for i in range(10):
            t = T0 + i * NS // 10
            events += ts.on_message("/shadow/cmd_vel", t, twist([0.3 + linear_x, 0, 0], [0, 0, angular_z]))
            events += ts.on_message("/cmd_vel", t + NS // 50, twist([0.3, 0, 0], [0, 0, 0]))
        return events

    assert len(run("max_abs", 0.0, 0.3)) == 1  # angular counts as much as linear
    assert run("max_abs", 0.0, 0.1) == []
    # Two differences of 0.15: each below 0.2, their norm (0.212) above.
    assert run("max_abs", 0.15, 0.15) == []
    assert len(run("l2", 0.15, 0.15)) == 1


def test_divergence_float64_multi_array() -> None:
    settings = divergence(msgtype="std_msgs/msg/Float64MultiArray", duration_s=0.15)
    ts = build_triggers(TriggersConfig(divergence=(settings,)))
    assert ts.topics()[SHADOW] == "std_msgs/msg/Float64MultiArray"
    events = []
    for i in range(4):
        t = T0 + i * NS // 10
        events += ts.on_message(SHADOW, t, multi_array([0.0, 0.0, 1.0]))
        events += ts.on_message(EXECUTED, t, multi_array([0.0, 0.0, 0.7]))
    assert [e.kind for e in events] == [KIND_DIVERGENCE]
    assert events[0].details["worst_index"] == 2


# --- TriggerSet ---------------------------------------------------------------------------------


def test_malformed_messages_are_counted_per_topic_and_never_raise() -> None:
    cfg = TriggersConfig(
        failure=FailureTopicSettings("/robot/failure"),
        diagnostics=DiagnosticsErrorSettings(("*",)),
        divergence=(divergence(),),
    )
    ts = build_triggers(cfg)
    good = string("boom")
    garbage = [b"", b"\x00", b"\x00\x01\x00\x00\xff\xff\xff\x7f", good[:-1], b"\x07\x07\x00\x00abcd"]
    for raw in garbage:
        assert ts.on_message("/robot/failure", T0, raw) == []
    assert ts.on_message(SHADOW, T0, joint_state(T0, [1.0])[:20]) == []
    assert ts.on_message("/diagnostics", T0, diagnostics([("x", 2)])[:-3]) == []
    assert ts.malformed == {"/robot/failure": 5, SHADOW: 1, EXECUTED: 0, "/diagnostics": 1}
    assert "std_msgs/msg/String" in ts.last_error["/robot/failure"]
    assert len(ts.on_message("/robot/failure", T0, good)) == 1  # still working
    assert ts.on_message("/not/a/trigger", T0, good) == []


def test_shared_topic_is_decoded_once_and_feeds_every_trigger() -> None:
    cfg = TriggersConfig(divergence=(
        divergence(name="one"), divergence(name="two", topic_a="/policy/other", duration_s=0.0),
    ))
    ts = build_triggers(cfg)
    assert set(ts.topics()) == {SHADOW, "/policy/other", EXECUTED}
    ts.on_message("/policy/other", T0, joint_state(T0, [5.0]))
    ts.on_message(SHADOW, T0, joint_state(T0, [0.0]))
    [e] = ts.on_message(EXECUTED, T0, joint_state(T0, [0.0]))
    assert e.source == "divergence two"
    assert [d.compared for d in ts.divergences] == [1, 1]


# --- settings -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("make", "field_name", "value"),
    [
        (lambda: FailureTopicSettings("/f", "std_msgs/msg/Int8"), "msgtype", "std_msgs/msg/Int8"),
        (lambda: FailureTopicSettings("bad topic"), "topic", "bad topic"),
        (lambda: ActionStatusSettings(STATUS_TOPIC, max_goals=0), "max_goals", "0"),
        (lambda: DiagnosticsErrorSettings(()), "name_patterns", "()"),
        (lambda: DiagnosticsErrorSettings("*motor*"), "name_patterns", "*motor*"),  # type: ignore[arg-type]
        (lambda: divergence(threshold=0.0), "threshold", "0.0"),
        (lambda: divergence(duration_s=-1.0), "duration_s", "-1.0"),
        (lambda: divergence(max_age_s=float("nan")), "max_age_s", "nan"),
        (lambda: divergence(metric="l1"), "metric", "l1"),
        (lambda: divergence(topic_b=SHADOW), "topic_b", SHADOW),
        (lambda: divergence(joint_field="accel"), "joint_field", "accel"),
        (lambda: divergence(msgtype_b="sensor_msgs/msg/Imu"), "msgtype_b", "Imu"),
    ],
)
def test_settings_validation_names_field_value_and_allowed(make: Any, field_name: str, value: str) -> None:
    with pytest.raises(ValueError, match=r"^(\w+): .*: .+") as info:
        make()
    message = str(info.value)
    assert message.startswith(f"{field_name}: ") and value in message
