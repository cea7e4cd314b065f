"""The Monitor on a joint stream that publishes joints the profile never saw, and thousands of
them: one event naming them, a non-OK conditions status while they are there, the known joints
still scored, and /diagnostics and ~/scores bounded."""

from __future__ import annotations

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from gap_monitor.core.conditions.calibration import build_calibrated_profile
from gap_monitor.core.conditions.features.joints import MAX_JOINTS
from gap_monitor.core.conditions.profile import FeatureSample, Profile
from gap_monitor.core.conditions.scoring import MAX_SHOWN_FEATURES
from gap_monitor.core.conditions.stream import StreamConditions
from gap_monitor.core.config import config_from_parameters
from gap_monitor.core.events import Event, Severity
from gap_monitor.core.monitor import Monitor

NS = 1_000_000_000
RATE_HZ = 50
TS = get_typestore(Stores.ROS2_JAZZY)
T = TS.types
JOINT_STATE = "sensor_msgs/msg/JointState"
KNOWN = [f"joint_{i}" for i in range(7)]
TOPIC = "/joint_states"
STATUS = f"gap_monitor: conditions {TOPIC}"


def joint_state(stamp_ns: int, names: list[str], rng: np.random.Generator) -> bytes:
    """The arm's slow sinusoids (and small noise) on the known joints, anything on the others."""
    t = stamp_ns / NS
    position = np.array([np.sin(0.5 * t + i) if n in KNOWN else 0.1 * i for i, n in enumerate(names)])
    position += 0.01 * rng.normal(size=len(names))
    velocity = np.array([0.5 * np.cos(0.5 * t + i) if n in KNOWN else 0.0 for i, n in enumerate(names)])
    msg = T[JOINT_STATE](
        header=T["std_msgs/msg/Header"](
            stamp=T["builtin_interfaces/msg/Time"](sec=stamp_ns // NS, nanosec=stamp_ns % NS), frame_id=""
        ),
        name=names, position=position, velocity=velocity, effort=np.zeros(0),
    )  # fmt: skip
    return bytes(TS.serialize_cdr(msg, JOINT_STATE))


@pytest.fixture(scope="module")
def profile() -> Profile:
    """Five minutes of the 7-joint arm, through the extractor the monitor uses."""
    rng = np.random.default_rng(3)
    conditions = StreamConditions("joints", JOINT_STATE)
    stamps = [k * NS // RATE_HZ for k in range(300 * RATE_HZ)]
    batch = conditions.on_batch(stamps, [joint_state(s, KNOWN, rng) for s in stamps])
    assert not batch.malformed
    return build_calibrated_profile(
        [FeatureSample("joints", TOPIC, s.features, s.time_ns) for s in batch.features], frame_rate_hz=5.0
    )


class Arm:
    """Feeds a Monitor at 50 Hz with a check every 0.2 s, as the node does."""

    def __init__(self, profile: Profile) -> None:
        params = {
            "joint_states": {"arm": {"topic": TOPIC, "rate_hz": float(RATE_HZ)}},
            "capture": {"enabled": False},
        }
        self.t = 1_000 * NS
        self.monitor = Monitor(config_from_parameters(params), self.t, profile=profile)
        self.events: list[Event] = []
        self.rng = np.random.default_rng(4)

    def run(self, seconds: float, names: list[str]) -> None:
        for _ in range(int(seconds * RATE_HZ)):
            self.t += NS // RATE_HZ
            self.monitor.on_message(TOPIC, self.t, joint_state(self.t, names, self.rng))
            if (self.t // (NS // RATE_HZ)) % 10 == 0:
                self.events += self.monitor.check(self.t)

    def status(self):  # type: ignore[no-untyped-def]
        return next(s for s in self.monitor.statuses(self.t) if s.name == STATUS)


def test_unknown_joints_raise_one_event_and_a_warn_status_while_present(profile: Profile) -> None:
    arm = Arm(profile)
    arm.run(5.0, KNOWN)
    assert arm.status().level == Severity.OK
    foreign = [f"j_{c}" for c in "abcdefghijkl"]
    arm.run(10.0, KNOWN + foreign)
    status = arm.status()
    assert status.level >= Severity.WARN
    assert "joints never seen in training: j_a, j_b" in status.message and "(+2 more)" in status.message
    assert "within training conditions (score" not in status.message
    assert status.values["unknown_joints"] == "12"
    assert float(status.values["score"]) < 3  # the known joints are still scored, as typical
    arm.run(5.0, KNOWN)
    novel = [e for e in arm.events if e.kind == "novel_condition"]
    assert [e.severity for e in novel] == [Severity.WARN, Severity.OK], [e.reason for e in novel]
    assert novel[0].reason == (
        f"{TOPIC}: joints never seen in training: j_a, j_b, j_c, j_d, j_e, j_f, j_g, j_h, j_i, j_j,"
        " ... (+2 more)"
    )
    assert novel[0].details["unknown_joints_total"] == 12 and len(novel[0].details["unknown_joints"]) == 10
    assert novel[1].reason == f"{TOPIC}: back to joints seen in training"
    assert arm.status().level == Severity.OK


def test_thousands_of_joints_keep_diagnostics_and_scores_bounded(profile: Profile) -> None:
    arm = Arm(profile)
    arm.run(3.0, KNOWN)
    # 10,000 joints: beyond the cap, each message malformed (counted, said), no features flood.
    arm.run(2.0, KNOWN + [f"j_{i}" for i in range(10_000 - len(KNOWN))])
    assert arm.monitor.malformed[TOPIC] == 2 * RATE_HZ
    assert f"more than the {MAX_JOINTS}" in arm.monitor.last_error[TOPIC]
    assert len(arm.monitor.last_error[TOPIC]) < 200
    assert len(arm.status().values) <= MAX_SHOWN_FEATURES + 8
    # At the cap: 3001 features a hop, scored on the known joints, shown bounded.
    arm.run(3.0, KNOWN + [f"j_{i}" for i in range(MAX_JOINTS - len(KNOWN))])
    status = arm.status()
    assert status.level >= Severity.WARN
    assert status.values["features_total"] == str(2 * MAX_JOINTS + 1)  # position, velocity; nan_count
    assert status.values["features_shown"] == str(MAX_SHOWN_FEATURES)
    assert len(status.values) <= MAX_SHOWN_FEATURES + 8
    assert status.values["unknown_joints"] == str(MAX_JOINTS - len(KNOWN))
    assert float(status.values["score"]) < 3
    (scores,) = arm.monitor.scores()
    assert len(scores["features"]) == MAX_SHOWN_FEATURES and scores["features_total"] > 1000
    assert scores["top"] and all(f["name"].split(".")[1] in KNOWN for f in scores["top"])
    assert len([e for e in arm.events if e.kind == "novel_condition"]) == 1
