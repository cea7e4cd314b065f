"""`gap-monitor replay` on a recording with a scripted stall writes the snapshot the node would."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from gap_monitor.commands.replay import COMMAND as REPLAY
from gap_monitor.offline.replay import config_for_recording, replay

NS = 1_000_000_000
STORE = get_typestore(Stores.ROS2_JAZZY)
T = STORE.types


def imu(stamp_ns: int) -> bytes:
    msg = T["sensor_msgs/msg/Imu"](
        header=T["std_msgs/msg/Header"](
            stamp=T["builtin_interfaces/msg/Time"](sec=stamp_ns // NS, nanosec=stamp_ns % NS), frame_id="imu"
        ),
        orientation=T["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0),
        orientation_covariance=np.zeros(9),
        angular_velocity=T["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=0.1),
        angular_velocity_covariance=np.zeros(9),
        linear_acceleration=T["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=9.81),
        linear_acceleration_covariance=np.zeros(9),
    )
    return bytes(STORE.serialize_cdr(msg, "sensor_msgs/msg/Imu"))


@pytest.fixture(scope="module")
def stalled_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 s of a 200 Hz IMU that stalls from 12 s to 14 s, plus a 1 Hz capture-only String topic."""
    path = tmp_path_factory.mktemp("rec") / "imu_stall"
    t0 = 1_700_000_000 * NS
    with Writer(path, version=8, storage_plugin=StoragePlugin.MCAP) as writer:
        imu_conn = writer.add_connection("/imu/data", "sensor_msgs/msg/Imu", typestore=STORE)
        note_conn = writer.add_connection("/notes", "std_msgs/msg/String", typestore=STORE)
        for k in range(20 * 200):
            t = t0 + k * NS // 200
            if not 12 * NS <= t - t0 < 14 * NS:
                writer.write(imu_conn, t + 2_000_000, imu(t))
            if k % 200 == 0:
                note = T["std_msgs/msg/String"](data=f"note {k // 200}")
                writer.write(note_conn, t, bytes(STORE.serialize_cdr(note, "std_msgs/msg/String")))
    return path


def test_streams_are_guessed_from_the_recording(stalled_recording):
    from gap_monitor.core.io.recordings import open_recording

    with open_recording(stalled_recording) as rec:
        config = config_for_recording(rec)
    (stream,) = config.streams
    assert (stream.topic, stream.modality) == ("/imu/data", "imu")
    # From the count over the span: the stall lowers it (3599 intervals over ~20 s).
    assert stream.rate_hz == pytest.approx(3599 / 19.995, rel=0.01)


def test_replay_writes_the_stall_snapshot_with_all_topics(stalled_recording, tmp_path):
    result = replay(stalled_recording, tmp_path / "snaps")
    stale = [e for e in result.events if e.kind == "stream_state" and e.severity.name == "STALE"]
    assert len(stale) == 1
    assert "/imu/data" in stale[0].reason
    assert len(result.snapshots) == 1
    snap = result.snapshots[0]
    assert snap.name.endswith("_stream_state")
    with Reader(snap) as reader:
        topics = {c.topic for c in reader.connections}
        times = [t for _, t, _ in reader.messages()]
    assert topics == {"/imu/data", "/notes"}
    trigger_ns = stale[0].time_ns
    assert 0.5 <= (trigger_ns - 1_700_000_012 * NS) / NS <= 0.8  # noticed after the 0.5 s timeout
    # The configured windows: 10 s before the trigger, 5 s after (within one message period).
    assert (trigger_ns - min(times)) / NS == pytest.approx(10.0, abs=0.01)
    assert (max(times) - trigger_ns) / NS == pytest.approx(5.0, abs=0.01)
    assert result.messages == 3600 + 20


def test_cli_prints_events_and_paths_and_rejects_bad_input(stalled_recording, tmp_path, capsys):
    assert REPLAY.main([str(stalled_recording), "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "STALE" in out and str(tmp_path / "out") in out
    assert REPLAY.main([str(tmp_path / "missing"), "-o", str(tmp_path / "o2")]) == 2
    assert "missing" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("/**:\n  ros__parameters:\n    imus: {x: {topic: /x, rate_hz: -1}}\n")
    assert REPLAY.main([str(stalled_recording), "--config", str(bad)]) == 2
    assert "imus.x.rate_hz" in capsys.readouterr().err
