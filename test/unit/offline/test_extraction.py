"""`profiling`: training-condition profiles from real recordings, and the `profile` command.

The EuRoC tests build a profile (through `build_profile`, from a rosbag2 copy of the first 60 % of
/cam0/image_raw and /imu0) and score the held-out rest the way the live monitor does: raw CDR bytes
through `StreamConditions`, feature dicts through a `ConditionMonitor`. Degraded copies of the
held-out messages are made by re-serialising them with rosbags (an independent CDR implementation).

EuRoC's images cover only 4.7 s (95 frames at 20 Hz): at the monitor's default 5 Hz image rate that
leaves about 14 training frames, too few to calibrate an alarm, so these tests decode every frame
(ConditionSettings(image_rate_hz=20)) for both building and scoring.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from gap_monitor.commands.profile import COMMAND as PROFILE
from gap_monitor.core.conditions.profile import Profile
from gap_monitor.core.conditions.scoring import ConditionMonitor, StreamScore, format_value
from gap_monitor.core.conditions.settings import ConditionSettings
from gap_monitor.core.conditions.stream import StreamConditions
from gap_monitor.core.io.recordings import open_recording
from gap_monitor.offline.extraction import build_profile, extract_features
from gap_monitor.render.progress import ProgressBar

NS = 1_000_000_000
EUROC = "euroc_mh01_micro_ros2"
OPENLORIS = "openloris_sample_ros2"
KUKA_ROS2 = "kuka_lwr_joint_states_ros2"
KUKA_ROS1 = "kuka_lwr_joint_states.bag"
CAM = "/cam0/image_raw"
IMU = "/imu0"
IMAGE_TYPE = "sensor_msgs/msg/Image"
IMU_TYPE = "sensor_msgs/msg/Imu"
TRAIN_FRACTION = 0.6
FULL_RATE = ConditionSettings(image_rate_hz=20.0)


def typestore():
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_JAZZY)


def write_rosbag2(path: Path, messages: Sequence[tuple[str, str, int, bytes]]) -> Path:
    """(topic, msgtype, log time, CDR bytes) -> a rosbag2 MCAP folder."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    store = typestore()
    with Writer(path, version=8, storage_plugin=StoragePlugin.MCAP) as writer:
        connections = {}
        for topic, msgtype, log_ns, data in messages:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=store)
            writer.write(connections[topic], log_ns, data)
    return path


@dataclass(frozen=True)
class EurocSplit:
    profile: Profile
    held_out: dict[str, list[tuple[int, bytes]]]  # topic -> (stamp, CDR bytes), the last 40 %


@pytest.fixture(scope="module")
def euroc(real_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> EurocSplit:
    """Profile of the first 60 % of each topic's stamp span; the rest held out."""
    from gap_monitor.core.io import cdr

    messages: dict[str, list[tuple[int, int, bytes]]] = {CAM: [], IMU: []}
    with open_recording(real_data_dir / EUROC) as rec:
        for msg in rec.messages(list(messages)):
            stamp = cdr.header_stamp_ns(msg.data)
            assert stamp is not None
            messages[msg.topic].append((stamp, msg.log_time_ns, msg.data))
    train: list[tuple[str, str, int, bytes]] = []
    held_out: dict[str, list[tuple[int, bytes]]] = {}
    for topic, items in messages.items():
        first, last = items[0][0], items[-1][0]
        cut = first + TRAIN_FRACTION * (last - first)
        msgtype = IMAGE_TYPE if topic == CAM else IMU_TYPE
        train += [(topic, msgtype, log_ns, data) for stamp, log_ns, data in items if stamp < cut]
        held_out[topic] = [(stamp, data) for stamp, _, data in items if stamp >= cut]
    train.sort(key=lambda m: m[2])
    folder = write_rosbag2(tmp_path_factory.mktemp("euroc") / "train", train)
    return EurocSplit(build_profile([folder], settings=FULL_RATE), held_out)


@dataclass(frozen=True)
class Scored:
    scores: list[StreamScore]
    fired_at: int | None  # index of the feature sample at which the alarm first fired


def score_live(profile: Profile, topic: str, items: Sequence[tuple[int, bytes]]) -> Scored:
    """The live path: CDR bytes -> StreamConditions -> ConditionMonitor (a fresh alarm)."""
    modality, msgtype = ("camera", IMAGE_TYPE) if topic == CAM else ("imu", IMU_TYPE)
    conditions = StreamConditions(modality, msgtype, FULL_RATE)
    monitor = ConditionMonitor(profile)
    scores: list[StreamScore] = []
    fired_at = None
    for stamp, data in items:
        features = conditions.on_message(stamp, data)
        if features is None:
            continue
        update = monitor.update(topic, features, stamp)
        assert update.alarm is not None, f"{topic}: no calibrated alarm in the profile"
        if update.alarm.fired and fired_at is None:
            fired_at = len(scores)
        scores.append(update.score)
    return Scored(scores, fired_at)


def modified_images(
    items: Sequence[tuple[int, bytes]], change: Callable[[np.ndarray], np.ndarray]
) -> list[tuple[int, bytes]]:
    store = typestore()
    out = []
    for stamp, data in items:
        msg = store.deserialize_cdr(data, IMAGE_TYPE)
        assert msg.encoding == "mono8"
        pixels = msg.data.reshape(msg.height, msg.step)[:, : msg.width]
        msg.data = np.ascontiguousarray(change(pixels), dtype=np.uint8).reshape(-1)
        msg.step = msg.width
        out.append((stamp, bytes(store.serialize_cdr(msg, IMAGE_TYPE))))
    return out


def test_euroc_profile_has_both_streams_with_alarms(euroc):
    assert set(euroc.profile.streams) == {CAM, IMU}
    camera, imu = euroc.profile.stream(CAM), euroc.profile.stream(IMU)
    assert (camera.modality, imu.modality) == ("camera", "imu")
    assert camera.alarm is not None and imu.alarm is not None
    assert camera.alarm.frame_rate_hz == 20.0  # every frame, as decoded
    assert imu.alarm.frame_rate_hz == pytest.approx(1 / FULL_RATE.hop_s)
    assert len(euroc.profile.sources) == 1


def test_euroc_held_out_rest_raises_no_alarm(euroc):
    for topic in (CAM, IMU):
        result = score_live(euroc.profile, topic, euroc.held_out[topic])
        assert len(result.scores) >= 30
        top = max(s.score for s in result.scores)
        assert result.fired_at is None, f"{topic}: false alarm; max score {top:.1f}"


@pytest.mark.parametrize(
    ("name", "change", "word"),
    [
        ("darkened", lambda px: np.round(px * 0.3), "luminance"),
        ("blurred", lambda px: cv2.GaussianBlur(px, (0, 0), 3.0), "sharpness"),
    ],
)
def test_euroc_degraded_images_alarm_within_10_frames(euroc, name, change, word):
    result = score_live(euroc.profile, CAM, modified_images(euroc.held_out[CAM], change))
    assert result.fired_at is not None and result.fired_at < 10, f"{name}: fired at {result.fired_at}"
    fired = result.scores[result.fired_at]
    assert word in fired.describe(), fired.describe()
    assert any(word in f.name for f in fired.top), [f.name for f in fired.top]


def test_euroc_blur_names_sharpness_first(euroc):
    blurred = modified_images(euroc.held_out[CAM], lambda px: cv2.GaussianBlur(px, (0, 0), 3.0))
    result = score_live(euroc.profile, CAM, blurred)
    assert result.fired_at is not None
    assert result.scores[result.fired_at].top[0].name == "sharpness"


def xyz(vector) -> list[float]:
    return [vector.x, vector.y, vector.z]


def doubled_imu_noise(items: Sequence[tuple[int, bytes]], seed: int = 0) -> list[tuple[int, bytes]]:
    """Adds zero-mean Gaussian noise with sqrt(3) times each axis's own noise, doubling its std.

    The base noise is estimated from the data: second differences cancel motion that is smooth at
    200 Hz, and Var(x[t+1] - 2 x[t] + x[t-1]) = 6 sigma^2 for white noise."""
    store = typestore()
    msgs = [store.deserialize_cdr(data, IMU_TYPE) for _, data in items]
    accel = np.array([xyz(m.linear_acceleration) for m in msgs])
    gyro = np.array([xyz(m.angular_velocity) for m in msgs])
    rng = np.random.default_rng(seed)
    noisy = []
    for values in (accel, gyro):
        sigma = np.diff(values, n=2, axis=0).std(axis=0) / np.sqrt(6.0)
        noisy.append(values + rng.normal(0.0, 1.0, values.shape) * np.sqrt(3.0) * sigma)
    out = []
    for (stamp, _), msg, a, g in zip(items, msgs, *noisy, strict=True):
        for vector, values in ((msg.linear_acceleration, a), (msg.angular_velocity, g)):
            vector.x, vector.y, vector.z = (float(v) for v in values)
        out.append((stamp, bytes(store.serialize_cdr(msg, IMU_TYPE))))
    return out


def test_euroc_doubled_imu_noise_scores_far_above_the_clean_rest(euroc):
    clean = score_live(euroc.profile, IMU, euroc.held_out[IMU])
    noisy = score_live(euroc.profile, IMU, doubled_imu_noise(euroc.held_out[IMU]))
    clean_max = max(s.score for s in clean.scores)
    first = [s.score for s in noisy.scores[:10]]
    assert min(first) > 2 * clean_max, (first, clean_max)
    assert "_std_" in noisy.scores[5].describe()


def test_euroc_doubled_imu_noise_alarms_within_10_windows(euroc):
    # EuRoC's 4 s motors-off start is the only block of its kind: calibration sets it aside
    # (scoring.UNREPRESENTED_FACTOR) instead of letting it lift the threshold above real novelty.
    noisy = score_live(euroc.profile, IMU, doubled_imu_noise(euroc.held_out[IMU]))
    assert noisy.fired_at is not None and noisy.fired_at < 10
    alarm = euroc.profile.streams[IMU].alarm
    assert alarm is not None and "unlike the rest" in alarm.method


# ----------------------------------------------------------------------------------------------
# The command line on every real recording


EXPECTED_STREAMS = {
    EUROC: {CAM: "camera", "/cam1/image_raw/compressed": "camera", IMU: "imu"},
    # 0.14 s long: its IMU topics never fill a 1 s window, so only the images give features.
    OPENLORIS: {
        "/d400/color/image_raw": "camera",
        "/d400/depth/image_raw": "depth",
        "/d400/aligned_depth_to_color/image_raw": "depth",
        "/t265/fisheye1/image_raw/compressed": "camera",
        "/t265/fisheye2/image_raw/compressed": "camera",
    },
    KUKA_ROS2: {"/joint_states": "joints"},
    KUKA_ROS1: {"/joint_states": "joints"},
}


@pytest.fixture(scope="module")
def built(real_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`profile build` on each real recording (OpenLORIS at its full 30 Hz: it has 4 frames)."""
    out = tmp_path_factory.mktemp("profiles")
    paths = {}
    for name in EXPECTED_STREAMS:
        target = out / f"{name}.yaml"
        extra = ["--image-rate", "30"] if name == OPENLORIS else []
        rc = PROFILE.main(["build", str(real_data_dir / name), "-o", str(target), "--no-progress", *extra])
        assert rc == 0, name
        paths[name] = target
    return paths


@pytest.mark.parametrize("name", list(EXPECTED_STREAMS))
def test_profile_build_lists_the_expected_topics(built, name):
    profile = Profile.load(built[name])
    assert {t: s.modality for t, s in profile.streams.items()} == EXPECTED_STREAMS[name]
    assert all(s.sample_count > 0 for s in profile.streams.values())
    assert [Path(s.path).name for s in profile.sources] == [name]


def test_ros1_bag_and_its_ros2_conversion_give_the_same_profile(built):
    ros1, ros2 = Profile.load(built[KUKA_ROS1]), Profile.load(built[KUKA_ROS2])
    assert ros1.to_dict()["streams"] == ros2.to_dict()["streams"]


def test_profile_build_reports_skipped_and_featureless_topics(real_data_dir, tmp_path, capsys):
    rc = PROFILE.main(
        ["build", str(real_data_dir / OPENLORIS), "-o", str(tmp_path / "p.yaml"), "--no-progress"]
    )
    assert rc == 0
    captured = capsys.readouterr()
    assert "skipped /odom" in captured.out
    assert "/d400/gyro/sample: no features" in captured.err


def test_profile_show_prints_streams_alarms_and_feature_ranges(built, capsys):
    assert PROFILE.main(["show", str(built[EUROC])]) == 0
    text = capsys.readouterr().out
    profile = Profile.load(built[EUROC])
    for topic in EXPECTED_STREAMS[EUROC]:
        assert f"{topic}  [{EXPECTED_STREAMS[EUROC][topic]}]" in text
    imu_alarm = profile.stream(IMU).alarm
    assert imu_alarm is not None
    imu_section = text[text.index(f"{IMU}  [imu]") :]
    assert "alarm when 3 of 5 scores >" in imu_section
    row = next(line for line in imu_section.splitlines() if line.strip().startswith("accel_std_x"))
    stats = profile.stream(IMU).features["accel_std_x"]
    assert row.split()[1:] == [*(format_value(stats.quantile(q)) for q in ("p1", "p50", "p99")), "m/s^2"]


def test_profile_merge_combines_streams(built, tmp_path, capsys):
    out = tmp_path / "merged.yaml"
    assert PROFILE.main(["merge", str(built[EUROC]), str(built[KUKA_ROS2]), "-o", str(out)]) == 0
    merged = Profile.load(out)
    assert set(merged.streams) == set(EXPECTED_STREAMS[EUROC]) | {"/joint_states"}
    assert merged.stream(IMU).sample_count == Profile.load(built[EUROC]).stream(IMU).sample_count
    assert "drops the calibrated alarms" in capsys.readouterr().out


def test_corrupt_or_wrong_version_profile_exits_2(built, tmp_path, capsys):
    data = yaml.safe_load(built[KUKA_ROS2].read_text())
    data["schema_version"] = 99
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump(data))
    assert PROFILE.main(["show", str(wrong)]) == 2
    assert "schema_version 99 is not supported" in capsys.readouterr().err
    del data["streams"]["/joint_states"]["sample_count"]
    data["schema_version"] = 1
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(data))
    assert PROFILE.main(["merge", str(built[EUROC]), str(broken), "-o", str(tmp_path / "m.yaml")]) == 2
    err = capsys.readouterr().err
    assert str(broken) in err and "sample_count" in err
    garbage = tmp_path / "garbage.yaml"
    garbage.write_text("streams: [unclosed\n")
    assert PROFILE.main(["show", str(garbage)]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    assert not (tmp_path / "m.yaml").exists()


def test_profile_build_bad_input_exits_2_naming_the_path(real_data_dir, tmp_path, capsys):
    out = str(tmp_path / "p.yaml")
    assert PROFILE.main(["build", str(tmp_path / "missing_bag"), "-o", out, "--no-progress"]) == 2
    assert "missing_bag" in capsys.readouterr().err
    assert PROFILE.main(["build", str(real_data_dir / "README.md"), "-o", out, "--no-progress"]) == 2
    assert "README.md is not a recording" in capsys.readouterr().err
    kuka = str(real_data_dir / KUKA_ROS2)
    assert PROFILE.main(["build", kuka, "-o", out, "--topics", "/no_such_topic", "--no-progress"]) == 2
    assert "/no_such_topic" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # argparse refuses it, as it does any bad option
        PROFILE.main(["build", kuka, "-o", out, "--image-rate", "0", "--no-progress"])
    assert exit_info.value.code == 2
    assert "--image-rate: 0: a number > 0" in capsys.readouterr().err
    assert not Path(out).exists()


def test_malformed_messages_are_counted_not_fatal(real_data_dir, tmp_path, capsys):
    with open_recording(real_data_dir / KUKA_ROS2) as rec:
        good = [(m.topic, m.msgtype, m.log_time_ns, m.data) for m in itertools.islice(rec.messages(), 600)]
    topic, msgtype, log_ns, data = good[300]
    bad = [
        (topic, msgtype, log_ns + 1, data[:40]),  # truncated
        (topic, msgtype, log_ns + 2, b"\x00\x01\x00\x00" + b"\xff" * 64),  # garbage lengths
        (topic, msgtype, log_ns + 3, b"\x00\x07\x00\x00" + data[4:]),  # unknown encapsulation
    ]
    folder = write_rosbag2(tmp_path / "with_bad", sorted(good + bad, key=lambda m: m[2]))
    extraction = extract_features([folder])
    summary = extraction.topics["/joint_states"]
    assert (summary.messages, summary.malformed) == (603, 3)
    assert summary.samples > 0 and summary.last_error
    assert PROFILE.main(["build", str(folder), "-o", str(tmp_path / "p.yaml"), "--no-progress"]) == 0
    assert "3 of 603 message(s) malformed" in capsys.readouterr().err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal_and_rate_limited():
    # profile build shows the shared bar as ProgressBar(stderr, enabled=None if progress else False).
    terminal = _Terminal()
    bar = ProgressBar(terminal, enabled=None, interval_s=3600.0)
    for done in range(1, 1001):
        bar("rec", done, 1000)
    bar.close()
    text = terminal.getvalue()
    assert text.count("\r") == 2  # the first draw and the final one; the rest is rate-limited
    assert "100 %" in text and text.endswith("\n")
    piped = io.StringIO()
    quiet = ProgressBar(piped, enabled=None)
    quiet("rec", 10, 10)
    quiet.close()
    assert piped.getvalue() == ""
    switched_off = _Terminal()
    off = ProgressBar(switched_off, enabled=False)
    off("rec", 10, 10)
    off.close()
    assert switched_off.getvalue() == ""
