"""Fixtures the offline, render and command tests share (a pytest plugin of test/conftest.py): the
simulated deployment the report tests measure, with its report and the report's JSON schema;
profiles built from feature values; small recordings for the audit.

They are session-scoped: recording the sim and building its report take about 10 s, once."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import pytest
from mcap.reader import make_reader
from mcap.writer import CompressionType
from mcap.writer import Writer as McapWriter
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from gap_monitor.core.conditions.profile import Profile
from gap_monitor.core.conditions.profile_builder import ProfileBuilder
from gap_monitor.core.io.recordings import open_recording
from gap_monitor.core.monitor import Monitor
from gap_monitor.offline.extraction import build_profile
from gap_monitor.offline.replay import config_for_recording
from gap_monitor.offline.report import SCHEMA_PATH, Report, build_report
from gap_monitor.sim.record import record_sim
from gap_monitor.sim.rig import RigSettings, SimRig
from gap_monitor.sim.scenario import Fault, Scenario

NS = 1_000_000_000
MS = 1_000_000
TS = get_typestore(Stores.ROS2_JAZZY)


# ----------------------------------------------------------------------------------------------
# The simulated rig: clean training, a deployment with darkness and force drift, snapshots


@dataclass(frozen=True)
class SimDeployment:
    """The sim's recordings: training, a deployment with scripted darkness and force drift (in
    seconds into it), the same deployment without faults, the profile of the training and the
    snapshots the monitor took of the faulty deployment."""

    root: Path
    profile: Path
    deploy: Path
    clean: Path
    snapshots: Path
    # Small, slow-ish streams keep the recordings and the report fast; the rig keeps its field of view.
    rig: ClassVar[RigSettings] = RigSettings(
        width=160, height=120, camera_rate_hz=10.0, depth_rate_hz=10.0, imu_rate_hz=100.0,
        joints_rate_hz=100.0, wrench_rate_hz=200.0, focal_px=125.0,
    )  # fmt: skip
    dark: ClassVar[tuple[float, float]] = (8.0, 20.0)  # scripted lighting_gain 0.3
    drift: ClassVar[tuple[float, float]] = (24.0, 40.0)  # scripted force_drift 3 N/s


def _replay_snapshots(recording: Path, profile: Profile, out: Path) -> None:
    """Run the monitor over the recording as `gap-monitor replay` does, with the profile scoring."""
    with open_recording(recording) as rec:
        start, end = rec.start_time_ns, rec.end_time_ns
        config = config_for_recording(rec)
        capture = replace(
            config.capture, enabled=True, min_free_bytes=0, pre_s=2.0, post_s=1.0, cooldown_s=2.0
        )
        monitor = Monitor(replace(config, capture=capture), start, output_dir=out, profile=profile)
        period = int(config.check_period_s * NS)
        next_check = start + period
        for msg in rec.messages():
            while msg.log_time_ns >= next_check:
                monitor.check(next_check)
                next_check += period
            monitor.on_message(msg.topic, msg.log_time_ns, msg.data)
        monitor.close(end + NS)


@pytest.fixture(scope="session")
def deployment_sim(tmp_path_factory: pytest.TempPathFactory) -> SimDeployment:
    root = tmp_path_factory.mktemp("sim")
    sim = SimDeployment(
        root, root / "train.yaml", root / "deploy", root / "clean", root / "snapshots"
    )
    record_sim(root / "train", Scenario(seed=3), 60.0, sim.rig)
    faults = (
        Fault("lighting_gain", "camera", sim.dark[0], sim.dark[1] - sim.dark[0], {"gain": 0.3}),
        Fault("force_drift", "wrench", sim.drift[0], sim.drift[1] - sim.drift[0], {"rate_n_per_s": 3.0}),
    )
    # The deployment continues the rig's motion from where training stopped (start_s).
    record_sim(sim.deploy, Scenario(seed=3, faults=faults), 40.0, sim.rig, start_s=60.0)
    record_sim(sim.clean, Scenario(seed=3), 40.0, sim.rig, start_s=60.0)
    profile = build_profile([root / "train"])
    profile.save(sim.profile)
    _replay_snapshots(sim.deploy, profile, sim.snapshots)
    return sim


@pytest.fixture(scope="session")
def sim_report(deployment_sim: SimDeployment) -> Report:
    return build_report(deployment_sim.profile, [deployment_sim.deploy], snapshots=deployment_sim.snapshots)


# ----------------------------------------------------------------------------------------------
# A small JSON Schema validator: the keywords gap_monitor/offline/report/report_schema.json uses


class SchemaCheck:
    """Validates JSON against a schema with the keywords in SUPPORTED_KEYWORDS, no more."""

    SUPPORTED_KEYWORDS = frozenset({
        "$schema", "$id", "title", "description", "$defs", "$ref", "type", "properties", "required",
        "additionalProperties", "items", "minItems", "enum", "const", "minimum", "maximum", "anyOf",
        "allOf",
    })  # fmt: skip

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema

    def errors(self, instance: Any) -> list[str]:
        """Every way `instance` breaks the schema (empty: it validates)."""
        return self._validate(instance, self.schema, "$")

    def keywords(self) -> set[str]:
        """Every keyword the schema uses (property names and $defs names are not keywords)."""
        found: set[str] = set()
        _keywords(self.schema, found)
        return found

    def _validate(self, instance: Any, schema: dict[str, Any], path: str) -> list[str]:
        errors: list[str] = []
        if "$ref" in schema:
            name = schema["$ref"].removeprefix("#/$defs/")
            errors += self._validate(instance, self.schema["$defs"][name], path)
        for sub in schema.get("allOf", []):
            errors += self._validate(instance, sub, path)
        if "anyOf" in schema and all(self._validate(instance, sub, path) for sub in schema["anyOf"]):
            errors.append(f"{path}: matches none of anyOf")
        if "const" in schema and instance != schema["const"]:
            errors.append(f"{path}: {instance!r} != {schema['const']!r}")
        if "enum" in schema and instance not in schema["enum"]:
            errors.append(f"{path}: {instance!r} not in {schema['enum']}")
        if "type" in schema:
            types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            if not any(_is_type(instance, t) for t in types):
                return [*errors, f"{path}: {type(instance).__name__} is not {types}"]
        if isinstance(instance, dict):
            required = schema.get("required", [])
            errors += [f"{path}: missing {key!r}" for key in required if key not in instance]
            properties = schema.get("properties", {})
            extra = schema.get("additionalProperties", True)
            for key, value in instance.items():
                if key in properties:
                    errors += self._validate(value, properties[key], f"{path}.{key}")
                elif extra is False:
                    errors.append(f"{path}: unexpected key {key!r}")
                elif isinstance(extra, dict):
                    errors += self._validate(value, extra, f"{path}.{key}")
        if isinstance(instance, list):
            if len(instance) < schema.get("minItems", 0):
                errors.append(f"{path}: fewer than {schema['minItems']} items")
            if "items" in schema:
                for i, item in enumerate(instance):
                    errors += self._validate(item, schema["items"], f"{path}[{i}]")
        if _is_type(instance, "number"):
            if "minimum" in schema and instance < schema["minimum"]:
                errors.append(f"{path}: {instance} < minimum {schema['minimum']}")
            if "maximum" in schema and instance > schema["maximum"]:
                errors.append(f"{path}: {instance} > maximum {schema['maximum']}")
        return errors


def _is_type(value: Any, name: str) -> bool:
    return {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "null": value is None,
    }[name]


def _keywords(schema: Any, found: set[str]) -> None:
    if isinstance(schema, dict):
        for key, value in schema.items():
            found.add(key)
            if key in ("properties", "$defs"):
                for sub in value.values():
                    _keywords(sub, found)
            elif key in ("items", "additionalProperties") and isinstance(value, dict):
                _keywords(value, found)
            elif key in ("anyOf", "allOf"):
                for sub in value:
                    _keywords(sub, found)


@pytest.fixture(scope="session")
def report_schema() -> SchemaCheck:
    return SchemaCheck(json.loads(SCHEMA_PATH.read_text()))


# ----------------------------------------------------------------------------------------------
# Small recordings for the audit, written with rosbags


AUDIT_BASE_NS = 1_700_000_000 * NS
Message = tuple[str, str, int, bytes]  # topic, type, log time, CDR


def _header(stamp_ns: int, frame_id: str) -> object:
    time_t = TS.types["builtin_interfaces/msg/Time"]
    return TS.types["std_msgs/msg/Header"](
        stamp=time_t(sec=stamp_ns // NS, nanosec=stamp_ns % NS), frame_id=frame_id
    )


def _image(stamp_ns: int, pixels: np.ndarray, frame_id: str = "cam") -> bytes:
    msg = TS.types["sensor_msgs/msg/Image"](
        header=_header(stamp_ns, frame_id), height=pixels.shape[0], width=pixels.shape[1],
        encoding="mono8", is_bigendian=0, step=pixels.shape[1], data=pixels.reshape(-1),
    )  # fmt: skip
    return bytes(TS.serialize_cdr(msg, "sensor_msgs/msg/Image"))


def _imu(stamp_ns: int, gyro: np.ndarray) -> bytes:
    vec, quat = TS.types["geometry_msgs/msg/Vector3"], TS.types["geometry_msgs/msg/Quaternion"]
    zeros = np.zeros(9)
    msg = TS.types["sensor_msgs/msg/Imu"](
        header=_header(stamp_ns, "imu"), orientation=quat(x=0.0, y=0.0, z=0.0, w=1.0),
        orientation_covariance=zeros, angular_velocity=vec(x=gyro[0], y=gyro[1], z=gyro[2]),
        angular_velocity_covariance=zeros, linear_acceleration=vec(x=0.0, y=0.0, z=9.8),
        linear_acceleration_covariance=zeros,
    )  # fmt: skip
    return bytes(TS.serialize_cdr(msg, "sensor_msgs/msg/Imu"))


def _text(value: str) -> bytes:
    return bytes(TS.serialize_cdr(TS.types["std_msgs/msg/String"](data=value), "std_msgs/msg/String"))


def _write_bag(path: Path, messages: list[Message]) -> Path:
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conns = {}
        for topic, msgtype, log_ns, data in sorted(messages, key=lambda m: m[2]):
            if topic not in conns:
                conns[topic] = writer.add_connection(topic, msgtype, typestore=TS)
            writer.write(conns[topic], log_ns, data)
    return path


@pytest.fixture(scope="session")
def stereo_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """/left and /right at 20 Hz for 3 s, /right stamped 5 ms after /left; a headerless /status."""
    rng = np.random.default_rng(3)
    messages: list[Message] = []
    for i in range(60):
        stamp = AUDIT_BASE_NS + i * 50 * MS
        pixels = rng.integers(0, 255, size=(24, 32), dtype=np.uint8)
        messages.append(("/left", "sensor_msgs/msg/Image", stamp + MS, _image(stamp, pixels, "left")))
        messages.append(("/right", "sensor_msgs/msg/Image", stamp + 6 * MS,
                         _image(stamp + 5 * MS, pixels, "right")))  # fmt: skip
        if i % 10 == 0:
            messages.append(("/status", "std_msgs/msg/String", stamp + 2 * MS, _text(f"ok {i}")))
    return _write_bag(tmp_path_factory.mktemp("stereo") / "bag", messages)


@pytest.fixture(scope="session")
def late_camera_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 s of the sim rig: a 30 Hz camera whose stamps are 10 ms late, a 400 Hz gyro."""
    rig = SimRig(RigSettings(width=160, height=120, focal_px=125.0), Scenario(seed=11))
    messages: list[Message] = []
    for t in np.arange(0.0, 10.0, 1 / 30):
        grey = cv2.cvtColor(rig.camera(float(t)).pixels, cv2.COLOR_RGB2GRAY)
        stamp = AUDIT_BASE_NS + round(t * NS) + 10 * MS
        messages.append(("/cam/image_raw", "sensor_msgs/msg/Image", stamp + 2 * MS, _image(stamp, grey)))
    for t in np.arange(0.0, 10.0, 1 / 400):
        stamp = AUDIT_BASE_NS + round(t * NS)
        messages.append(("/imu", "sensor_msgs/msg/Imu", stamp + MS, _imu(stamp, rig.imu(float(t)).gyro)))
    return _write_bag(tmp_path_factory.mktemp("late_camera") / "bag", messages)


@pytest.fixture(scope="session")
def status_only_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Nothing to time, profile or monitor: 20 std_msgs/String on /status, 10 Hz."""
    messages = [("/status", "std_msgs/msg/String", AUDIT_BASE_NS + i * 100 * MS, _text(f"ok {i}"))
                for i in range(20)]  # fmt: skip
    return _write_bag(tmp_path_factory.mktemp("status_only") / "bag", messages)


# ----------------------------------------------------------------------------------------------
# Small MCAP files damaged on purpose (what a failing disk or a cut copy leaves)


def _write_imu_mcap(path: Path, compression: CompressionType) -> Path:
    """2 s of a 200 Hz /imu as a bare .mcap written by the mcap library (chunk CRCs included)."""
    with path.open("wb") as f:
        writer = McapWriter(f, compression=compression, chunk_size=8192)
        writer.start(profile="ros2", library="test")
        schema = writer.register_schema("sensor_msgs/msg/Imu", "ros2msg", b"")
        channel = writer.register_channel("/imu", "cdr", schema)
        for i in range(400):
            stamp = AUDIT_BASE_NS + i * 5 * MS
            writer.add_message(channel, log_time=stamp, data=_imu(stamp, np.zeros(3)), publish_time=stamp)
        writer.finish()
    return path


def damage_first_chunk(path: Path, damage: str) -> None:
    """Damage the first chunk of an MCAP file in place:
    payload: one byte of the first message's payload (the chunk's CRC no longer matches);
    framing: the first message record's length, with the CRC zeroed as rosbags writes it;
    lz4_frame: a flag byte of the lz4 frame header; lz4_data: the second half of the lz4 data
    zeroed (both with the CRC zeroed, so that decompression is what fails)."""
    with path.open("rb") as f:
        chunk = make_reader(f).get_summary().chunk_indexes[0]
    data = bytearray(path.read_bytes())
    crc_at = chunk.chunk_start_offset + 9 + 24
    pos = crc_at + 4
    (name_length,) = struct.unpack_from("<I", data, pos)
    pos += 4 + name_length
    (size,) = struct.unpack_from("<Q", data, pos)
    pos += 8
    if damage in ("payload", "framing"):
        while data[pos] != 0x05:  # schema and channel records come first
            pos += 9 + struct.unpack_from("<Q", data, pos + 1)[0]
        if damage == "payload":
            data[pos + 9 + 22 + 10] ^= 0xFF
        else:
            struct.pack_into("<Q", data, pos + 1, 2**62)
            struct.pack_into("<I", data, crc_at, 0)
    elif damage == "lz4_frame":
        data[pos + 4] ^= 0x02  # the FLG byte's reserved bit
        struct.pack_into("<I", data, crc_at, 0)
    elif damage == "lz4_data":
        data[pos + size // 2 : pos + size] = bytes(size - size // 2)
        struct.pack_into("<I", data, crc_at, 0)
    else:
        raise ValueError(damage)
    path.write_bytes(bytes(data))


@pytest.fixture
def damaged_mcap(tmp_path: Path) -> Callable[[str], Path]:
    """A small /imu recording with its first chunk damaged (see `damage_first_chunk`; "none": intact)."""

    def write(damage: str) -> Path:
        compression = CompressionType.LZ4 if damage.startswith("lz4") else CompressionType.NONE
        path = _write_imu_mcap(tmp_path / f"{damage}.mcap", compression)
        if damage != "none":
            damage_first_chunk(path, damage)
        return path

    return write


# ----------------------------------------------------------------------------------------------
# Profiles built directly from feature values


@pytest.fixture(scope="session")
def camera_profile() -> Callable[[dict[str, np.ndarray]], Profile]:
    """Builds a profile of one camera stream `/cam` from per-feature values (samples 0.2 s apart)."""

    def build(values: dict[str, np.ndarray]) -> Profile:
        builder = ProfileBuilder()
        n = len(next(iter(values.values())))
        for i in range(n):
            features = {name: float(v[i]) for name, v in values.items()}
            builder.add("camera", "/cam", features, i * 200_000_000)
        return builder.build(created_ns=0)

    return build
