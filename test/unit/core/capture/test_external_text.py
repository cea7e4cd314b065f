"""Text from other nodes on trigger topics: bytes that are not UTF-8 still fire, control characters
never forge log lines, and trigger.json keeps the bytes as escaped text."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

from rosbags.typesys import Stores, get_typestore

from gap_monitor.core.capture.log_limit import RefusalLog
from gap_monitor.core.capture.triggers import (
    KIND_FAILURE,
    DiagnosticsErrorSettings,
    FailureTopicSettings,
    TriggersConfig,
    build_triggers,
)
from gap_monitor.core.config import config_from_parameters
from gap_monitor.core.events import Event, Severity
from gap_monitor.core.monitor import Monitor
from gap_monitor.core.text import unescape

TS = get_typestore(Stores.ROS2_JAZZY)
T = TS.types
NS = 1_000_000_000
T0 = 1_000 * NS
FAILURE = "/robot/failure"
# Anything a terminal or a log reader would take as a new line or a control sequence.
RAW_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")

NOT_UTF8 = b"gripper \xff\xfe lost the part"
FORGED = "gripper stalled\n[ERROR] [1700000000.0] [gap_monitor]: FAKE injected line\x1b[2K\rmore"


def string_cdr(raw: bytes) -> bytes:
    """A little-endian std_msgs/String whose data is `raw`, whatever its bytes."""
    body = struct.pack("<I", len(raw) + 1) + raw + b"\x00"
    return b"\x00\x01\x00\x00" + body + b"\x00" * (-len(body) % 4)


def diagnostics_cdr(name: str, message: str, **replace: bytes) -> bytes:
    """A DiagnosticArray with one ERROR status; `replace` swaps equal-length placeholders in the
    serialized bytes, so names and messages can hold bytes that are not UTF-8."""
    msg = T["diagnostic_msgs/msg/DiagnosticArray"](
        header=T["std_msgs/msg/Header"](
            stamp=T["builtin_interfaces/msg/Time"](sec=1, nanosec=0), frame_id=""
        ),
        status=[
            T["diagnostic_msgs/msg/DiagnosticStatus"](
                level=2, name=name, message=message, hardware_id="hw0",
                values=[T["diagnostic_msgs/msg/KeyValue"](key="temp_c", value="91")],
            )
        ],
    )
    data = bytes(TS.serialize_cdr(msg, "diagnostic_msgs/msg/DiagnosticArray"))
    for placeholder, raw in replace.items():
        assert len(placeholder) == len(raw) and data.count(placeholder.encode()) == 1
        data = data.replace(placeholder.encode(), raw)
    return data


def assert_one_clean_line(text: str) -> None:
    assert RAW_CONTROL.search(text) is None, repr(text)
    assert len(text.splitlines()) == 1, repr(text)


def assert_strict_json(text: str) -> dict[str, Any]:
    """Valid JSON that is valid UTF-8 all through: no lone surrogate, not even as a \\u escape."""
    document = json.loads(text.encode("utf-8").decode("utf-8", "strict"))
    json.dumps(document, ensure_ascii=False).encode("utf-8")  # raises on a surrogate inside
    return dict(document)


def test_a_failure_message_that_is_not_utf8_still_fires_with_its_bytes_kept() -> None:
    ts = build_triggers(TriggersConfig(failure=FailureTopicSettings(FAILURE)))
    [e] = ts.on_message(FAILURE, T0, string_cdr(NOT_UTF8))
    assert (e.kind, e.severity, ts.malformed[FAILURE]) == (KIND_FAILURE, Severity.ERROR, 0)
    assert e.reason == "gripper \\xff\\xfe lost the part"
    assert e.details["raw_text_escaped"] is True and unescape(e.details["text"]) == NOT_UTF8
    assert_strict_json(e.to_json())


def test_lenient_text_does_not_let_malformed_framing_pass() -> None:
    ts = build_triggers(TriggersConfig(failure=FailureTopicSettings(FAILURE)))
    good = string_cdr(NOT_UTF8)
    unterminated = good.replace(b"part\x00", b"part!")
    too_long = good[:4] + struct.pack("<I", 10_000) + good[8:]
    for raw in (unterminated, too_long, good[:-8]):
        assert ts.on_message(FAILURE, T0, raw) == []
    assert ts.malformed[FAILURE] == 3


def test_control_characters_in_a_failure_text_never_reach_a_log_line() -> None:
    ts = build_triggers(TriggersConfig(failure=FailureTopicSettings(FAILURE)))
    [e] = ts.on_message(FAILURE, T0, string_cdr(FORGED.encode()))
    assert_one_clean_line(e.reason)
    assert "\\n[ERROR]" in e.reason and "\\x1b[2K\\r" in e.reason
    line = RefusalLog().line(e)
    assert line is not None
    assert_one_clean_line(line)
    assert unescape(e.details["text"]).decode() == FORGED and e.details["raw_text_escaped"] is True
    assert Event.from_json(e.to_json()) == e


def test_a_plain_failure_text_is_kept_as_it_is() -> None:
    ts = build_triggers(TriggersConfig(failure=FailureTopicSettings(FAILURE)))
    [e] = ts.on_message(FAILURE, T0, string_cdr("gripper lost the part (café)".encode()))
    assert e.reason == e.details["text"] == "gripper lost the part (café)"
    assert e.details["raw_text_escaped"] is False and e.details["text_truncated"] is False


def test_a_long_failure_text_is_clipped_in_the_reason_and_bounded_in_the_details() -> None:
    ts = build_triggers(TriggersConfig(failure=FailureTopicSettings(FAILURE)))
    [e] = ts.on_message(FAILURE, T0, string_cdr(b"\n\x1b" * 100_000))
    assert_one_clean_line(e.reason)
    assert len(e.reason) <= 500 and e.reason.endswith("…")
    assert e.details["text_truncated"] is True and e.details["text_length"] == 200_000
    assert len(e.details["text"]) < 20_000


def test_other_nodes_diagnostic_texts_are_escaped_and_not_utf8_still_fires() -> None:
    ts = build_triggers(TriggersConfig(diagnostics=DiagnosticsErrorSettings(("*motor*",))))
    data = diagnostics_cdr("left motor ??", "hot\nFAKE \x1b[31m", **{"??": b"\xff\xfe"})
    [e] = ts.on_message("/diagnostics", T0, data)
    assert ts.malformed["/diagnostics"] == 0
    assert_one_clean_line(e.reason)
    assert e.reason == "diagnostic 'left motor \\xff\\xfe' is ERROR: hot\\nFAKE \\x1b[31m"
    assert unescape(e.details["name"]) == b"left motor \xff\xfe"
    assert unescape(e.details["message"]) == b"hot\nFAKE \x1b[31m"
    assert e.details["raw_text_escaped"] is True and e.details["values"] == {"temp_c": "91"}
    line = RefusalLog().line(e)
    assert line is not None
    assert_one_clean_line(line)
    assert_strict_json(e.to_json())


def test_event_json_is_strict_utf8_even_with_surrogates_in_a_reason_or_detail() -> None:
    lenient = NOT_UTF8.decode("utf-8", "surrogateescape")
    e = Event("x", "test", Severity.WARN, lenient, T0, {"nested": [{"text": lenient}]})
    document = assert_strict_json(e.to_json())
    shown = "gripper \\xff\\xfe lost the part"
    assert document["reason"] == document["details"]["nested"][0]["text"] == shown


def test_a_failure_that_is_not_utf8_takes_a_snapshot_whose_trigger_json_keeps_the_bytes(
    tmp_path: Path,
) -> None:
    params = {
        "imus": {"imu": {"topic": "/imu", "rate_hz": 200.0}},
        "triggers": {"failure_topic": FAILURE},
        "capture": {"pre_s": 1.0, "post_s": 0.0, "cooldown_s": 0.0, "min_free_bytes": 0},
    }
    monitor = Monitor(config_from_parameters(params), T0, output_dir=tmp_path / "snaps")
    raw = NOT_UTF8 + b"\n[ERROR] FAKE injected line\x1b[0m"
    monitor.on_message(FAILURE, T0 + 1, string_cdr(raw))
    events = monitor.check(T0 + 2)
    [failure] = [e for e in events if e.kind == KIND_FAILURE]
    [started] = [e for e in events if e.kind == "snapshot"]
    assert started.details == {"outcome": "started", "trigger": KIND_FAILURE, "path": started.details["path"]}
    for e in events:
        assert_one_clean_line(e.reason)
    monitor.close(T0 + 3)
    [trigger_json] = (tmp_path / "snaps").glob("*/trigger.json")
    assert "injected" not in trigger_json.parent.name
    summary = assert_strict_json(trigger_json.read_bytes().decode("utf-8"))
    [record] = summary["triggers"]
    event = record["event"]
    assert event["kind"] == KIND_FAILURE and event["reason"] == failure.reason
    assert_one_clean_line(event["reason"])
    assert event["details"]["raw_text_escaped"] is True
    assert event["details"]["text"] == failure.details["text"]
    assert unescape(event["details"]["text"]) == raw
