"""`gap-monitor audit` on the real recordings and on small recordings written here with rosbags."""

from __future__ import annotations

import argparse
import io
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from gap_monitor.commands.audit import add_parser
from gap_monitor.core.events import Severity
from gap_monitor.core.timing.skew import SkewLimits
from gap_monitor.offline.audit import (
    AuditInputError,
    AuditResult,
    AuditSettings,
    run_audit,
)
from gap_monitor.render.progress import ProgressBar
from gap_monitor.sim.rig import RigSettings, SimRig
from gap_monitor.sim.scenario import Scenario

TS = get_typestore(Stores.ROS2_JAZZY)
Capture = pytest.CaptureFixture[str]
NS = 1_000_000_000
MS = 1_000_000
BASE_NS = 1_700_000_000 * NS
EUROC = "euroc_mh01_micro_ros2"
OPENLORIS = "openloris_sample_ros2"
COLOR = "/d400/color/image_raw"
DEPTH = "/d400/depth/image_raw"
FISHEYE = "/t265/fisheye1/image_raw/compressed"


def cli(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    """Run `audit ARGV...` through the argparse wiring the CLI uses; (exit code, stdout, stderr)."""
    parser = argparse.ArgumentParser(prog="gap-monitor")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["audit", *argv, "--no-progress"])
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def by_subject(result: AuditResult, check: str) -> dict[str, Severity]:
    return {f.subject: f.level for f in result.findings if f.check == check}


# ---------------------------------------------------------------------------------------------
# Synthetic recordings


def header(stamp_ns: int, frame_id: str) -> object:
    time_t = TS.types["builtin_interfaces/msg/Time"]
    return TS.types["std_msgs/msg/Header"](
        stamp=time_t(sec=stamp_ns // NS, nanosec=stamp_ns % NS), frame_id=frame_id
    )


def image(stamp_ns: int, pixels: np.ndarray, frame_id: str = "cam") -> bytes:
    msg = TS.types["sensor_msgs/msg/Image"](
        header=header(stamp_ns, frame_id), height=pixels.shape[0], width=pixels.shape[1],
        encoding="mono8", is_bigendian=0, step=pixels.shape[1], data=pixels.reshape(-1),
    )
    return bytes(TS.serialize_cdr(msg, "sensor_msgs/msg/Image"))


def imu(stamp_ns: int, gyro: np.ndarray) -> bytes:
    vec, quat = TS.types["geometry_msgs/msg/Vector3"], TS.types["geometry_msgs/msg/Quaternion"]
    zeros = np.zeros(9)
    msg = TS.types["sensor_msgs/msg/Imu"](
        header=header(stamp_ns, "imu"), orientation=quat(x=0.0, y=0.0, z=0.0, w=1.0),
        orientation_covariance=zeros, angular_velocity=vec(x=gyro[0], y=gyro[1], z=gyro[2]),
        angular_velocity_covariance=zeros, linear_acceleration=vec(x=0.0, y=0.0, z=9.8),
        linear_acceleration_covariance=zeros,
    )
    return bytes(TS.serialize_cdr(msg, "sensor_msgs/msg/Imu"))


def text(value: str) -> bytes:
    return bytes(TS.serialize_cdr(TS.types["std_msgs/msg/String"](data=value), "std_msgs/msg/String"))


Message = tuple[str, str, int, bytes]  # topic, type, log time, CDR


def write_bag(path: Path, messages: list[Message]) -> Path:
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conns = {}
        for topic, msgtype, log_ns, data in sorted(messages, key=lambda m: m[2]):
            if topic not in conns:
                conns[topic] = writer.add_connection(topic, msgtype, typestore=TS)
            writer.write(conns[topic], log_ns, data)
    return path


@pytest.fixture(scope="module")
def stereo_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """/left and /right at 20 Hz for 3 s, /right stamped 5 ms after /left; a headerless /status."""
    rng = np.random.default_rng(3)
    messages: list[Message] = []
    for i in range(60):
        stamp = BASE_NS + i * 50 * MS
        pixels = rng.integers(0, 255, size=(24, 32), dtype=np.uint8)
        messages.append(("/left", "sensor_msgs/msg/Image", stamp + MS, image(stamp, pixels, "left")))
        messages.append(("/right", "sensor_msgs/msg/Image", stamp + 6 * MS,
                         image(stamp + 5 * MS, pixels, "right")))
        if i % 10 == 0:
            messages.append(("/status", "std_msgs/msg/String", stamp + 2 * MS, text(f"ok {i}")))
    return write_bag(tmp_path_factory.mktemp("stereo") / "bag", messages)


@pytest.fixture(scope="module")
def late_camera_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 s of the sim rig: a 30 Hz camera whose stamps are 10 ms late, a 400 Hz gyro."""
    rig = SimRig(RigSettings(width=160, height=120, focal_px=125.0), Scenario(seed=11))
    messages: list[Message] = []
    for t in np.arange(0.0, 10.0, 1 / 30):
        grey = cv2.cvtColor(rig.camera(float(t)).pixels, cv2.COLOR_RGB2GRAY)
        stamp = BASE_NS + round(t * NS) + 10 * MS
        messages.append(("/cam/image_raw", "sensor_msgs/msg/Image", stamp + 2 * MS, image(stamp, grey)))
    for t in np.arange(0.0, 10.0, 1 / 400):
        stamp = BASE_NS + round(t * NS)
        messages.append(("/imu", "sensor_msgs/msg/Imu", stamp + MS, imu(stamp, rig.imu(float(t)).gyro)))
    return write_bag(tmp_path_factory.mktemp("late_camera") / "bag", messages)


# ---------------------------------------------------------------------------------------------
# Real recordings


def test_euroc_cameras_in_step_imu_5ms_and_json(real_data_dir: Path, tmp_path: Path, capsys: Capture) -> None:
    out_json = tmp_path / "audit.json"
    code, out, _ = cli(capsys, str(real_data_dir / EUROC), "--fail-on", "error", "--json", str(out_json))
    assert code == 0, out
    report = json.loads(out_json.read_text())
    assert set(report) >= {"schema", "worst_level", "recordings", "topics", "pairs", "motion_offsets",
                           "findings"}
    assert report["worst_level"] in ("OK", "WARN")
    (rec,) = report["recordings"]
    assert rec["topics"]["/imu0"] == {"type": "sensor_msgs/msg/Imu", "count": 29120}
    topics = {t["topic"]: t for t in report["topics"]}
    assert topics["/imu0"]["period_median_ms"] == pytest.approx(5.0, abs=1e-3)
    assert topics["/imu0"]["count"] == 29120 and topics["/imu0"]["gaps"] == 0
    assert topics["/cam0/image_raw"]["period_median_ms"] == pytest.approx(50.0, abs=1e-3)
    # README: log_time == header stamp.
    assert topics["/imu0"]["latency_median_ms"] == 0
    (pair,) = report["pairs"]
    assert {pair["a"], pair["b"]} == {"/cam0/image_raw", "/cam1/image_raw/compressed"}
    assert (pair["offset_median_ms"], pair["offset_p95_ms"], pair["matched"]) == (0, 0, 95)
    assert pair["level"] == "OK"
    # Images cover 4.7 s of the 145 s IMU stream: said in words, as a WARN.
    coverage = [f for f in report["findings"] if f["check"] == "coverage"]
    assert {f["subject"] for f in coverage} == {"/cam0/image_raw", "/cam1/image_raw/compressed"}
    assert all(f["level"] == "WARN" and "of the 145.6 s recording" in f["message"] for f in coverage)
    assert "messages cover only 4.7 s" in out
    # Both cameras against the gyro; the VI-Sensor is hardware-synchronized, so a confident
    # estimate must be near zero.
    motions = {(m["camera"], m["imu"]): m for m in report["motion_offsets"]}
    assert set(motions) == {("/cam0/image_raw", "/imu0"), ("/cam1/image_raw/compressed", "/imu0")}
    for m in motions.values():
        assert m["reason"]
        if m["confident"]:
            assert abs(m["offset_ms"]) < 3.0, m
    # The tables are printed.
    assert "/cam0/image_raw vs /cam1/image_raw/compressed" in out
    assert "jitter p95 ms" in out and "drift ppm" in out and "motion offset" in out


def test_openloris_colour_depth_in_step_fisheye_8_8ms_ahead(real_data_dir: Path) -> None:
    result = run_audit([real_data_dir / OPENLORIS])
    pairs = {frozenset((p.a, p.b)): p for p in result.recordings[0].pairs}
    depth = pairs[frozenset((COLOR, DEPTH))]
    assert depth.summary is not None and abs(depth.summary.offset_median_ms or 1.0) < 0.1
    assert depth.level == Severity.OK
    fisheye = pairs[frozenset((COLOR, FISHEYE))]
    assert fisheye.summary is not None and fisheye.summary.matched == 4
    median = fisheye.summary.offset_median_ms
    assert median is not None
    # README: T265 frames ~8.8 ms before colour; the sign follows a - b.
    assert median * (1 if fisheye.a == COLOR else -1) == pytest.approx(8.8, abs=0.15)
    assert fisheye.level == Severity.WARN
    assert by_subject(result, "skew")[fisheye.name] == Severity.WARN
    assert result.worst_level == Severity.WARN
    # The accelerometer-only Imu topics are no gyro for the motion offset, and says so.
    reasons = {m.imu: m.reason for m in result.recordings[0].motion_offsets}
    assert "no angular velocity" in reasons["/d400/accel/sample"]


@pytest.mark.parametrize(("fail_on", "code"), [("warn", 1), ("error", 0)])
def test_openloris_exit_code_follows_fail_on(
    real_data_dir: Path, capsys: Capture, fail_on: str, code: int
) -> None:
    got, out, _ = cli(capsys, str(real_data_dir / OPENLORIS), "--fail-on", fail_on)
    assert got == code
    assert "+8.9 ms median" in out or "-8.9 ms median" in out


@pytest.mark.parametrize("name", ["kuka_lwr_joint_states.bag", "kuka_lwr_joint_states_ros2"])
def test_kuka_stamps_ahead_of_log_time_are_flagged(real_data_dir: Path, name: str) -> None:
    result = run_audit([real_data_dir / name])
    (topic,) = result.recordings[0].topics
    assert topic.topic == "/joint_states" and topic.summary.total_messages == 4101
    # README: header stamps ~4.4 ms ahead of log time, spaced exactly 10 ms.
    assert topic.summary.latency_median_ms == pytest.approx(-4.4, abs=0.1)
    assert topic.summary.period_median_ms == pytest.approx(10.0, abs=1e-3)
    assert topic.level == Severity.WARN
    (future,) = [f for f in result.findings if f.check == "future"]
    assert future.level == Severity.WARN and future.subject == "/joint_states"
    assert re.search(r"4\.[3-5]\d ms ahead of the log time", future.message), future.message


# ---------------------------------------------------------------------------------------------
# Synthetic recordings


def test_injected_5ms_image_offset_is_flagged_in_words(stereo_bag: Path, capsys: Capture) -> None:
    code, out, _ = cli(capsys, str(stereo_bag), "--fail-on", "warn")
    assert code == 1
    assert "/left vs /right: -5.0 ms median (limit 2 ms)" in out
    result = run_audit([stereo_bag])
    (pair,) = result.recordings[0].pairs
    assert pair.source == "images" and pair.summary is not None
    assert pair.summary.offset_median_ms == pytest.approx(-5.0, abs=1e-6)
    assert pair.summary.matched == 60 and pair.summary.unmatched == 0
    # The headerless topic is listed as skipped, not timed.
    assert [s.topic for s in result.recordings[0].skipped] == ["/status"]
    assert {t.topic for t in result.recordings[0].topics} == {"/left", "/right"}
    assert cli(capsys, str(stereo_bag))[0] == 0  # 5 ms is below the 10 ms error limit


def test_pairs_found_in_the_recording_stop_at_warn(stereo_bag: Path) -> None:
    strict = AuditSettings(skew_limits=SkewLimits(min_matches=3, offset_error_ms=4.0))
    found = run_audit([stereo_bag], settings=strict).recordings[0].pairs[0]
    assert found.source == "images" and found.level == Severity.WARN  # nobody said "in step"
    asked = run_audit([stereo_bag], pairs=[("/left", "/right")], settings=strict).recordings[0].pairs[0]
    assert asked.source == "argument" and asked.level == Severity.ERROR


def test_pairs_argument_and_unknown_pair_topic(stereo_bag: Path, capsys: Capture) -> None:
    result = run_audit([stereo_bag], pairs=[("/right", "/left")])
    (pair,) = result.recordings[0].pairs
    assert (pair.a, pair.b, pair.source) == ("/right", "/left", "argument")
    assert pair.summary is not None and pair.summary.offset_median_ms == pytest.approx(5.0, abs=1e-6)
    code, _, err = cli(capsys, str(stereo_bag), "--pairs", "/left,/nope")
    assert code == 2 and "/nope" in err and "none of the recordings" in err
    with pytest.raises(SystemExit):  # argparse rejects a malformed pair (exit 2)
        cli(capsys, str(stereo_bag), "--pairs", "/left")


def test_config_rates_pairs_and_missing_streams(stereo_bag: Path, tmp_path: Path, capsys: Capture) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(
        "gap_monitor:\n"
        "  ros__parameters:\n"
        "    cameras:\n"
        "      left: {topic: /left, rate_hz: 30.0}\n"
        "      right: {topic: /right, rate_hz: 20.0}\n"
        "    imus:\n"
        "      imu: {topic: /imu/data, rate_hz: 200.0}\n"
        "    skew_pairs:\n"
        "      stereo: {a: /left, b: /right, offset_warn_ms: 1.0, offset_error_ms: 4.0}\n"
    )
    out_json = tmp_path / "out.json"
    code, _, _ = cli(capsys, str(stereo_bag), "--config", str(params), "--json", str(out_json))
    assert code == 1  # the configured pair's 5 ms exceeds its 4 ms error limit
    report = json.loads(out_json.read_text())
    assert report["worst_level"] == "ERROR" and report["failed"] is True
    findings = {(f["subject"], f["check"]): f for f in report["findings"]}
    assert findings[("/left vs /right", "skew")]["level"] == "ERROR"
    assert findings[("/imu/data", "missing")]["level"] == "ERROR"
    assert "not in the recording" in findings[("/imu/data", "missing")]["message"]
    # 20 Hz recorded against 30 Hz configured: -33 %, beyond the stream's 20 % tolerance.
    assert findings[("/left", "rate")]["level"] == "WARN"
    assert "vs expected 30 Hz" in findings[("/left", "rate")]["message"]
    assert findings[("/right", "rate")]["level"] == "OK"
    (pair,) = report["pairs"]
    assert pair["source"] == "config"


def test_bad_config_exits_2_naming_the_file(stereo_bag: Path, tmp_path: Path, capsys: Capture) -> None:
    params = tmp_path / "bad.yaml"
    params.write_text("gap_monitor:\n  ros__parameters:\n    imus:\n      imu: {topic: /imu, rate_hz: -5}\n")
    code, out, err = cli(capsys, str(stereo_bag), "--config", str(params))
    assert code == 2 and out == ""
    assert str(params) in err and "imus.imu.rate_hz" in err


def test_late_camera_is_found_from_motion(late_camera_bag: Path) -> None:
    result = run_audit([late_camera_bag])
    (motion,) = result.recordings[0].motion_offsets
    assert (motion.camera, motion.imu) == ("/cam/image_raw", "/imu")
    assert motion.estimate is not None and motion.estimate.confident, motion.reason
    assert motion.estimate.offset_s is not None
    assert motion.estimate.offset_s * 1e3 == pytest.approx(10.0, abs=2.0)
    assert motion.level == Severity.WARN
    (finding,) = [f for f in result.findings if f.check == "motion_offset"]
    assert finding.level == Severity.WARN and "ms late relative to the gyro" in finding.message
    # Without motion estimation nothing is decoded and no offset is reported.
    still = run_audit([late_camera_bag], settings=AuditSettings(estimate_motion=False))
    assert still.recordings[0].motion_offsets == ()


def test_missing_path_exits_2_with_the_path(tmp_path: Path, stereo_bag: Path, capsys: Capture) -> None:
    missing = tmp_path / "no_such_recording"
    code, out, err = cli(capsys, str(stereo_bag), str(missing))
    assert code == 2 and out == ""
    assert str(missing) in err and "not found" in err
    not_a_bag = tmp_path / "notes.txt"
    not_a_bag.write_text("hello")
    code, _, err = cli(capsys, str(not_a_bag))
    assert code == 2 and str(not_a_bag) in err
    with pytest.raises(AuditInputError, match="no_such_recording"):
        run_audit([missing])


def test_progress_reaches_the_total_and_bar_draws_only_when_enabled(stereo_bag: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    run_audit([stereo_bag], progress=lambda label, done, total: calls.append((label, done, total)))
    assert calls[-1] == ("bag", 120, 120)  # the two image topics; /status has no header
    drawn = io.StringIO()
    bar = ProgressBar(drawn, enabled=True, interval_s=0.0)
    bar("bag", 30, 120)
    bar("bag", 120, 120)
    assert "30/120" in drawn.getvalue() and drawn.getvalue().endswith("120/120 msgs\n")
    quiet = io.StringIO()  # not a terminal: no bar unless asked for
    ProgressBar(quiet)("bag", 30, 120)
    assert quiet.getvalue() == ""
