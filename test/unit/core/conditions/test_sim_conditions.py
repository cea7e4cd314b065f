"""Training-condition alarms on the simulated rig, end to end through recorded rosbag2 files.

A profile is built (`profiling.build_profile`) from a clean sim recording; a second recording of
the same scene, continuing the rig's motion from where the first ended (so it repeats nothing),
has every modality's scripted faults one after another with clean gaps between them. Its raw
messages go through the conditions layer and the ConditionMonitor, as live: each fault must raise
its own stream's alarm during the fault, no other stream may alarm, and the alarm must clear
after the fault ends.

Small images (160x120) and lower IMU / joint / wrench rates than the rig's defaults keep the file
quick; the profile is built and the faults scored at those same rates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from gap_monitor.commands.sim_record import COMMAND as SIM_RECORD
from gap_monitor.core.conditions.profile import Profile
from gap_monitor.core.conditions.scoring import ConditionMonitor
from gap_monitor.core.io import cdr
from gap_monitor.core.io.recordings import open_recording
from gap_monitor.offline.extraction import build_profile, extract_features
from gap_monitor.sim.record import DEFAULT_LATENCY_NS, DEFAULT_T0_NS, record_sim
from gap_monitor.sim.rig import DEFAULT_TOPICS, RigSettings
from gap_monitor.sim.scenario import Scenario, scenario_from_mapping

NS = 1_000_000_000
SEED = 5
CLEAN_S = 120.0
FAULT_S = 4.0
GAP_S = 8.0
FIRST_FAULT_S = 6.0
RIG = RigSettings(
    width=160,
    height=120,
    focal_px=125.0,  # the default 500 px at 640 wide, scaled: same field of view
    camera_rate_hz=10.0,
    depth_rate_hz=10.0,
    imu_rate_hz=200.0,
    joints_rate_hz=100.0,
    wrench_rate_hz=250.0,
)
# (kind, stream, parameters, a word describe() must use when the alarm fires)
FAULTS = [
    ("lighting_gain", "camera", {"gain": 0.3}, "luminance"),
    ("blur", "camera", {"sigma_px": 2.0}, "sharpness"),
    ("depth_dropout", "depth", {"fraction": 0.5}, "valid_fraction"),
    ("imu_noise", "imu", {"scale": 4.0}, "_std_"),
    ("imu_bias", "imu", {"gyro_rad_s": 0.05}, "gyro_"),
    ("joint_out_of_range", "joints", {"joint": 3, "offset_rad": 1.0}, "joint_4"),
    ("force_drift", "wrench", {"rate_n_per_s": 5.0}, "force"),
]
STREAM_OF_TOPIC = {topic: stream for stream, topic in DEFAULT_TOPICS.items()}


def fault_window(index: int) -> tuple[float, float]:
    start = FIRST_FAULT_S + index * (FAULT_S + GAP_S)
    return start, start + FAULT_S


def faults_scenario() -> Scenario:
    faults = []
    for index, (kind, stream, params, _) in enumerate(FAULTS):
        start, _end = fault_window(index)
        faults.append({"kind": kind, "stream": stream, "start_s": start, "duration_s": FAULT_S, **params})
    duration = fault_window(len(FAULTS) - 1)[1] + GAP_S
    doc = {"name": "every_condition_fault", "duration_s": duration, "seed": SEED, "faults": faults}
    return scenario_from_mapping(doc, "test scenario")


@dataclass(frozen=True)
class AlarmEvent:
    stream: str
    t_s: float  # since the faulty recording's start
    kind: str  # "fired" or "cleared"
    description: str


@pytest.fixture(scope="module")
def clean_profile(tmp_path_factory: pytest.TempPathFactory) -> Profile:
    folder = tmp_path_factory.mktemp("sim_clean")
    recording = record_sim(folder / "clean", Scenario(name="clean", seed=SEED), CLEAN_S, RIG)
    return build_profile([recording])


@pytest.fixture(scope="module")
def alarm_events(clean_profile: Profile, tmp_path_factory: pytest.TempPathFactory) -> list[AlarmEvent]:
    folder = tmp_path_factory.mktemp("sim_faults")
    scenario = faults_scenario()
    # The rig's clock continues after the clean recording: new poses, same scene (same seed).
    recording = record_sim(folder / "faults", scenario, scenario.duration_s, RIG, start_s=CLEAN_S)
    extraction = extract_features([recording])
    assert all(s.malformed == 0 for s in extraction.topics.values())
    monitor = ConditionMonitor(clean_profile)
    events = []
    for sample in sorted(extraction.samples, key=lambda s: s.time_ns):
        update = monitor.update(sample.stream, sample.features, sample.time_ns)
        assert update.alarm is not None, f"{sample.stream}: the profile has no calibrated alarm"
        t_s = (sample.time_ns - DEFAULT_T0_NS) / NS - CLEAN_S  # it follows the clean recording
        stream = STREAM_OF_TOPIC[sample.stream]
        if update.alarm.fired:
            events.append(AlarmEvent(stream, t_s, "fired", update.score.describe()))
        elif update.alarm.cleared:
            events.append(AlarmEvent(stream, t_s, "cleared", ""))
    return events


def test_clean_profile_has_every_stream_with_an_alarm(clean_profile):
    assert set(clean_profile.streams) == set(DEFAULT_TOPICS.values())
    for topic, stream in clean_profile.streams.items():
        assert stream.modality == STREAM_OF_TOPIC[topic]
        assert stream.alarm is not None, topic
        # The monitor scores images at the conditions' 5 Hz and windows every 0.2 s hop.
        assert stream.alarm.frame_rate_hz == pytest.approx(5.0)
        assert stream.sample_count >= 0.9 * 5 * CLEAN_S


@pytest.mark.slow
@pytest.mark.parametrize(("index", "fault"), list(enumerate(FAULTS)), ids=[f"{f[0]}-{f[1]}" for f in FAULTS])
def test_fault_raises_its_own_stream_alarm_which_clears_after(alarm_events, index, fault):
    kind, stream, _, word = fault
    start, end = fault_window(index)
    fired = [e for e in alarm_events if e.kind == "fired" and start <= e.t_s < end]
    assert [e.stream for e in fired] == [stream], f"{kind}: alarms during the fault: {fired}"
    assert word in fired[0].description, fired[0].description
    cleared = [e for e in alarm_events if e.stream == stream and e.kind == "cleared" and e.t_s >= start]
    assert cleared, f"{kind}: the {stream} alarm never cleared"
    assert end <= cleared[0].t_s < end + GAP_S, (
        f"{kind}: cleared at {cleared[0].t_s:.1f} s, fault {start}-{end} s"
    )


@pytest.mark.slow
def test_no_alarm_outside_the_faults(alarm_events):
    """Every alarm belongs to a fault on its own stream: none in the clean stretches."""
    windows = [(stream, *fault_window(i)) for i, (_, stream, _, _) in enumerate(FAULTS)]
    for event in (e for e in alarm_events if e.kind == "fired"):
        assert any(s == event.stream and a <= event.t_s < b for s, a, b in windows), event


def test_record_sim_stamps_log_times_and_topic_subset(tmp_path):
    offset = {"kind": "stamp_offset", "stream": "imu", "start_s": 1.0, "duration_s": 0.5, "offset_ms": 10}
    scenario = scenario_from_mapping({"name": "offset", "duration_s": 2, "seed": 1, "faults": [offset]})
    topics = {"imu": "/rig/imu", "camera": "/rig/image"}
    out = record_sim(tmp_path / "rec", scenario, 2.0, RIG, topics)
    with open_recording(out) as rec:
        found = rec.topics()
        assert set(found) == {"/rig/imu", "/rig/image"}
        assert found["/rig/imu"].count == round(2.0 * RIG.imu_rate_hz)
        assert found["/rig/image"].count == round(2.0 * RIG.camera_rate_hz)
        shifted = 0
        for msg in rec.messages(["/rig/imu"]):
            # Log time = t0 + scheduled time + latency; the stamp carries the scripted offset.
            scheduled_ns = msg.log_time_ns - DEFAULT_LATENCY_NS - DEFAULT_T0_NS
            stamp = cdr.header_stamp_ns(msg.data)
            assert stamp is not None
            offset_ns = stamp - DEFAULT_T0_NS - scheduled_ns
            assert offset_ns in (0, 10_000_000), scheduled_ns
            # Scheduled times are float sums: a sample within 1 us of the fault's edges may go either way.
            if 1.000001 * NS <= scheduled_ns < 1.499999 * NS:
                assert offset_ns == 10_000_000, scheduled_ns
            elif not 0.999999 * NS <= scheduled_ns < 1.500001 * NS:
                assert offset_ns == 0, scheduled_ns
            shifted += offset_ns != 0
        assert shifted == pytest.approx(0.5 * RIG.imu_rate_hz, abs=1)
        image = cdr.decode_image(next(rec.messages(["/rig/image"])).data)
        assert (image.width, image.height, image.encoding) == (160, 120, "rgb8")
        assert image.pixels().std() > 10  # a rendered scene, not a blank frame


def test_sim_record_cli(tmp_path, capsys):
    out = tmp_path / "cli_rec"
    rc = SIM_RECORD.main([str(out), "--scenario", "clean", "--duration", "1", "--width", "64",
                          "--height", "48", "--streams", "camera,wrench"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    with open_recording(out) as rec:
        assert set(rec.topics()) == {DEFAULT_TOPICS["camera"], DEFAULT_TOPICS["wrench"]}
    # Bad input: an existing folder, an unknown stream, an unknown scenario name.
    assert SIM_RECORD.main([str(out), "--duration", "1"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert SIM_RECORD.main([str(tmp_path / "b"), "--streams", "camera,lidar"]) == 2
    assert "lidar" in capsys.readouterr().err
    assert SIM_RECORD.main([str(tmp_path / "c"), "--scenario", "no_such_scenario"]) == 2
    assert "no_such_scenario" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_scenario_lookup_finds_the_shipped_scenarios():
    from gap_monitor.sim.scenario import resolve_scenario

    shipped = resolve_scenario("all_faults")
    assert shipped.name == "all_faults"
    assert {f.kind for f in shipped.faults} >= {"lighting_gain", "blur", "force_drift"}
    assert resolve_scenario(None).faults == ()
    assert resolve_scenario(str(Path(__file__).parents[4] / "config/scenarios/demo.yaml")).name == "demo"
