"""`build_report` on the simulated rig with scripted faults and on the real EuRoC recording split in
halves (plain and darkened): alarms, distributions, absent streams, the settings it reads back.

The sim tests share the session's simulated deployment (test/offline_fixtures.py); the EuRoC split
is a module fixture. Both are marked slow."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from gap_monitor.core.conditions.persistence import Persistence
from gap_monitor.core.conditions.settings import ConditionSettings
from gap_monitor.offline.extraction import build_profile
from gap_monitor.offline.report import Report, build_report, report_json
from gap_monitor.sim.record import record_sim
from gap_monitor.sim.rig import DEFAULT_TOPICS
from gap_monitor.sim.scenario import Scenario

NS = 1_000_000_000
STORE = get_typestore(Stores.ROS2_JAZZY)
LUMINANCE = {"mean_luminance", "luminance_p5", "luminance_p95"}


# ----------------------------------------------------------------------------------------------
# The simulated rig: clean training, a deployment with darkness and force drift, snapshots


def _seconds(report: Report, ns: int, recording: int = 0) -> float:
    return (ns - report.recordings[recording].start_time_ns) / NS


@pytest.mark.slow
def test_sim_alarms_match_the_scripted_faults_and_nothing_else(deployment_sim, sim_report):
    dark, drift = deployment_sim.dark, deployment_sim.drift
    fired = {s.name: [_seconds(sim_report, e.start_ns) for e in s.episodes] for s in sim_report.streams}
    assert len(fired[DEFAULT_TOPICS["camera"]]) == 1
    assert dark[0] <= fired[DEFAULT_TOPICS["camera"]][0] < dark[0] + 2.0
    assert len(fired[DEFAULT_TOPICS["wrench"]]) == 1
    assert drift[0] <= fired[DEFAULT_TOPICS["wrench"]][0] < drift[1]
    for topic in ("depth", "imu", "joints"):
        assert fired[DEFAULT_TOPICS[topic]] == [], topic
    # Both alarms coincide with a collection target of their stream.
    assert all(sim_report.explains(e) for s in sim_report.streams for e in s.episodes)


@pytest.mark.slow
def test_sim_clean_deployment_has_no_collection_target(deployment_sim):
    report = build_report(deployment_sim.profile, [deployment_sim.clean])
    assert report.targets == ()
    assert all(s.status == "scored" and s.samples > 0 for s in report.streams)
    # The scripted deployment's darkness is absent here: the camera stays inside its range.
    camera = report.stream(DEFAULT_TOPICS["camera"]).feature("mean_luminance")
    assert camera.below_share is not None and camera.below_share < 0.05


@pytest.mark.slow
def test_sim_distributions_show_the_shift_and_training_share_outside_p1_p99(sim_report):
    camera = sim_report.stream(DEFAULT_TOPICS["camera"])
    lum = camera.feature("mean_luminance")
    assert lum.below_share == pytest.approx(0.3, abs=0.05)
    # Deployment values come from the recording through the live path: one per image at 5 Hz.
    assert lum.deployment_count == camera.samples == pytest.approx(40 * 5, abs=2)
    depth = sim_report.stream(DEFAULT_TOPICS["depth"])
    assert all(f.outside_share is not None and f.outside_share < 0.25 for f in depth.features)


# ----------------------------------------------------------------------------------------------
# The real EuRoC recording: profile from its first half, report on its second half


def _split_euroc(source: Path, out: Path, gain: float) -> dict[str, Path]:
    """Per topic, the first half of the messages -> first, the rest -> second and (every image
    re-serialised with its pixels times `gain`) dark; IMU bytes copied untouched."""
    with Reader(source) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        writers = {name: Writer(out / name, version=8, storage_plugin=StoragePlugin.MCAP) for name in
                   ("first", "second", "dark")}  # fmt: skip
        for writer in writers.values():
            writer.open()
        conns = {
            name: {c.topic: w.add_connection(c.topic, c.msgtype, typestore=STORE) for c in reader.connections}
            for name, w in writers.items()
        }
        seen = dict.fromkeys(counts, 0)
        for conn, log_time, raw in reader.messages():
            half = "first" if seen[conn.topic] < counts[conn.topic] // 2 else "second"
            seen[conn.topic] += 1
            writers[half].write(conns[half][conn.topic], log_time, raw)
            if half == "first":
                continue
            data = raw
            if conn.msgtype == "sensor_msgs/msg/Image":
                msg = STORE.deserialize_cdr(raw, conn.msgtype)
                msg.data = (msg.data.astype(np.float32) * gain).astype(np.uint8)
                data = STORE.serialize_cdr(msg, conn.msgtype)
            elif conn.msgtype == "sensor_msgs/msg/CompressedImage":
                msg = STORE.deserialize_cdr(raw, conn.msgtype)
                image = cv2.imdecode(msg.data, cv2.IMREAD_UNCHANGED)
                assert image is not None
                ok, png = cv2.imencode(".png", (image.astype(np.float32) * gain).astype(np.uint8))
                assert ok
                msg.data = png.reshape(-1)
                data = STORE.serialize_cdr(msg, conn.msgtype)
            writers["dark"].write(conns["dark"][conn.topic], log_time, data)
        for writer in writers.values():
            writer.close()
    return {name: out / name for name in ("first", "second", "dark")}


@pytest.fixture(scope="module")
def euroc(real_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    source = real_data_dir / "euroc_mh01_micro_ros2"
    if not source.is_dir():
        pytest.skip(f"{source} not found")
    out = tmp_path_factory.mktemp("euroc")
    paths = _split_euroc(source, out, gain=0.3)
    # Images cover only 4.7 s: at 20 Hz each half still gives 47 frames per camera.
    profile = build_profile([paths["first"]], settings=ConditionSettings(image_rate_hz=20.0))
    profile.save(out / "first.yaml")
    return {**paths, "profile": out / "first.yaml"}


CAMERAS = ("/cam0/image_raw", "/cam1/image_raw/compressed")


@pytest.mark.slow
def test_real_second_half_has_no_condition_beyond_the_calibrated_rate(euroc, report_schema):
    report = build_report(euroc["profile"], [euroc["second"]])
    # The rate the profile was calibrated at is read back from it (no --config given).
    assert report.conditions.image_rate_hz == pytest.approx(20.0)
    assert {s.name: s.samples for s in report.streams}["/imu0"] > 300
    assert all(s.samples >= 45 for s in report.streams if s.name in CAMERAS)
    # 2.35 s of training images cannot pin p1-p99 down: some features leave that range...
    outside = max(f.outside_share or 0.0 for s in report.streams for f in s.features)
    assert outside > 0.02
    # ...but none beyond what the calibrated alarm allows in-distribution data: no target.
    assert report.targets == (), [t.text() for t in report.targets]
    assert report_schema.errors(report_json(report)) == []


@pytest.mark.slow
def test_real_darkened_second_half_ranks_a_luminance_feature_first(euroc):
    report = build_report(euroc["profile"], [euroc["dark"]])
    assert report.targets, "darkened images must be a collection target"
    first = report.targets[0]
    assert first.stream in CAMERAS
    assert first.lead.feature in LUMINANCE and first.lead.side == "below"
    assert first.lead.deployment_share == pytest.approx(1.0)
    assert first.lead.training_share == pytest.approx(0.0, abs=0.01)
    assert {t.stream for t in report.targets} <= set(CAMERAS)  # the IMU was left alone


# ----------------------------------------------------------------------------------------------
# Pieces


def test_persistence_needs_k_of_n_consecutive_samples():
    mask = np.array([1, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0], dtype=bool)
    assert Persistence(3, 5).persistent(mask).tolist() == [True, True, False, True] + [False] * 10
    assert not Persistence(3, 5).persistent(mask[8:]).any()
    assert Persistence(3, 5).persistent(np.array([1, 1, 1], dtype=bool)).all()  # shorter than n: one run


@pytest.mark.slow
def test_a_profile_stream_missing_from_the_deployment_is_reported_absent(deployment_sim, tmp_path):
    only_camera = tmp_path / "cam"
    camera_only = {"camera": DEFAULT_TOPICS["camera"]}
    record_sim(only_camera, Scenario(seed=3), 5.0, deployment_sim.rig, camera_only, start_s=60.0)
    report = build_report(deployment_sim.profile, [only_camera])
    status = {s.name: s.status for s in report.streams}
    assert status[DEFAULT_TOPICS["camera"]] == "scored"
    assert status[DEFAULT_TOPICS["wrench"]] == "absent"
    assert report.targets == ()
    assert math.isfinite(report.stream(DEFAULT_TOPICS["camera"]).observed_s)
    shutil.rmtree(only_camera)


def test_joints_never_seen_in_training_are_named_in_the_report_bounded(deployment_sim, tmp_path):
    """A deployment arm with 200 extra joints: the note names them as a novel condition, a
    bounded list, not their 400 feature keys."""
    from gap_monitor.core.conditions.scoring import MAX_LISTED_NAMES
    from gap_monitor.sim.rig import JOINT_NAMES

    ts = get_typestore(Stores.ROS2_JAZZY)
    t = ts.types
    names = [*JOINT_NAMES, *(f"gripper_{i}" for i in range(200))]
    topic = DEFAULT_TOPICS["joints"]
    bag = tmp_path / "extra_joints"
    with Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection(topic, "sensor_msgs/msg/JointState", typestore=ts)
        for k in range(20 * 100):
            stamp = 60 * NS + k * NS // 100
            header = t["std_msgs/msg/Header"](
                stamp=t["builtin_interfaces/msg/Time"](sec=stamp // NS, nanosec=stamp % NS), frame_id=""
            )
            position = np.full(len(names), 0.1)
            msg = t["sensor_msgs/msg/JointState"](
                header=header, name=names, position=position, velocity=np.zeros(0), effort=np.zeros(0)
            )
            writer.write(conn, stamp, bytes(ts.serialize_cdr(msg, "sensor_msgs/msg/JointState")))
    stream = build_report(deployment_sim.profile, [bag]).stream(topic)
    assert stream.status == "scored"
    assert "joints never seen in training: gripper_0, gripper_1" in stream.note
    assert f"(+{200 - MAX_LISTED_NAMES:,} more)" in stream.note
    assert "features the profile lacks" not in stream.note
    assert len(stream.note) < 500
