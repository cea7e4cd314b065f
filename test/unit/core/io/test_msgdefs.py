"""Full message definitions from the ament index, in rosbag2's concatenated ros2msg format."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from gap_monitor.core.io.msgdefs import (
    SEPARATOR,
    MessageDefinitionNotFoundError,
    message_definition,
    normalize_type,
    type_description_hash,
)

JAZZY = get_typestore(Stores.ROS2_JAZZY)
Imu = JAZZY.types["sensor_msgs/msg/Imu"]
Header = JAZZY.types["std_msgs/msg/Header"]
Time = JAZZY.types["builtin_interfaces/msg/Time"]
Quaternion = JAZZY.types["geometry_msgs/msg/Quaternion"]
Vector3 = JAZZY.types["geometry_msgs/msg/Vector3"]


def venv_prefix() -> Path:
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix and (Path(prefix) / "share" / "sensor_msgs" / "msg" / "Imu.msg").is_file():
            return Path(prefix)
    pytest.skip("sensor_msgs not found under AMENT_PREFIX_PATH (run through ./dev run)")


def blocks(full: str) -> tuple[str, dict[str, str]]:
    """Split a concatenated definition into the main text and {dependency name: text}."""
    parts = full.split(f"\n{SEPARATOR}\n")
    deps: dict[str, str] = {}
    for part in parts[1:]:
        header, _, text = part.partition("\n")
        assert header.startswith("MSG: ")
        name = header[len("MSG: ") :]
        assert name not in deps, f"{name} appears twice"
        deps[name] = text
    return parts[0], deps


def write_msg(prefix: Path, pkg: str, name: str, text: str) -> None:
    path = prefix / "share" / pkg / "msg" / f"{name}.msg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_imu_definition_has_main_text_then_each_dependency_once() -> None:
    prefix = venv_prefix()
    full = message_definition("sensor_msgs/msg/Imu", [str(prefix)])
    main, deps = blocks(full)
    assert main == (prefix / "share/sensor_msgs/msg/Imu.msg").read_text()
    assert set(deps) == {
        "std_msgs/Header",
        "builtin_interfaces/Time",
        "geometry_msgs/Quaternion",
        "geometry_msgs/Vector3",
    }
    assert deps["geometry_msgs/Vector3"] == (prefix / "share/geometry_msgs/msg/Vector3.msg").read_text()
    assert all(line != "=" * 79 and line != "=" * 81 for line in full.splitlines())


def test_short_and_long_type_names_give_the_same_definition() -> None:
    prefix = str(venv_prefix())
    assert message_definition("sensor_msgs/Image", [prefix]) == message_definition(
        "sensor_msgs/msg/Image", [prefix]
    )
    assert normalize_type("sensor_msgs/Image") == "sensor_msgs/msg/Image"
    assert normalize_type("sensor_msgs/msg/Image") == "sensor_msgs/msg/Image"


def test_defaults_to_ament_prefix_path(monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = venv_prefix()
    monkeypatch.setenv("AMENT_PREFIX_PATH", f"/nonexistent_prefix{os.pathsep}{prefix}")
    assert message_definition("std_msgs/msg/Header").startswith(
        (prefix / "share/std_msgs/msg/Header.msg").read_text()
    )


@pytest.mark.parametrize(
    "msgtype",
    [
        "sensor_msgs/msg/Imu",
        "sensor_msgs/msg/Image",
        "sensor_msgs/msg/CameraInfo",
        "sensor_msgs/msg/JointState",
        "sensor_msgs/msg/PointCloud2",
        "geometry_msgs/msg/WrenchStamped",
        "diagnostic_msgs/msg/DiagnosticArray",
    ],
)
def test_definitions_parse_to_the_same_types_as_rosbags_jazzy_store(msgtype: str) -> None:
    full = message_definition(msgtype, [str(venv_prefix())])
    parsed = get_types_from_msg(full, msgtype)
    for name, (consts, fields) in parsed.items():
        ref_consts, ref_fields = JAZZY.fielddefs[name]
        assert [f[0] for f in fields] == [f[0] for f in ref_fields], name
        assert {c[0] for c in consts} == {c[0] for c in ref_consts}, name
    # Every nested type is included: the main type's closure is complete.
    assert msgtype in parsed


def test_imu_round_trips_through_a_store_built_from_the_definition() -> None:
    full = message_definition("sensor_msgs/msg/Imu", [str(venv_prefix())])
    store = get_typestore(Stores.EMPTY)
    store.register(get_types_from_msg(full, "sensor_msgs/msg/Imu"))
    msg = Imu(
        header=Header(stamp=Time(sec=5, nanosec=7), frame_id="imu_link"),
        orientation=Quaternion(x=0.0, y=0.0, z=0.0, w=1.0),
        orientation_covariance=np.arange(9, dtype=np.float64),
        angular_velocity=Vector3(x=0.1, y=0.2, z=0.3),
        angular_velocity_covariance=np.zeros(9),
        linear_acceleration=Vector3(x=0.0, y=0.0, z=9.81),
        linear_acceleration_covariance=np.zeros(9),
    )
    raw = JAZZY.serialize_cdr(msg, "sensor_msgs/msg/Imu")
    back = store.deserialize_cdr(raw, "sensor_msgs/msg/Imu")
    assert back.header.frame_id == "imu_link"
    assert back.header.stamp.nanosec == 7
    assert back.linear_acceleration.z == pytest.approx(9.81)
    assert list(back.orientation_covariance) == list(range(9))


def test_custom_package_edge_cases(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    write_msg(
        first,
        "demo_msgs",
        "Outer",
        "# A comment mentioning geometry_msgs/Point is not a field\n"
        "Header header\n"
        "uint8 MODE_A = 1  # a constant\n"
        'string NAME="x#y"\n'
        "Inner[2] pair\n"
        "Inner[<=3] bounded\n"
        "demo_msgs/Inner again\n"
        "demo_msgs/msg/Leaf[] leaves\n"
        "string<=10 short_name\n"
        "int32[<=4] numbers\n"
        "   float64   indented   # with comment\n",
    )
    write_msg(first, "demo_msgs", "Inner", "Leaf leaf\nbuiltin_interfaces/Time stamp\n")
    write_msg(first, "demo_msgs", "Leaf", "wstring w\nbool flag\n")
    write_msg(second, "std_msgs", "Header", "builtin_interfaces/Time stamp\nstring frame_id\n")
    write_msg(second, "builtin_interfaces", "Time", "int32 sec\nuint32 nanosec\n")

    full = message_definition("demo_msgs/Outer", [str(first), str(second)])
    main, deps = blocks(full)
    assert main == (first / "share/demo_msgs/msg/Outer.msg").read_text()
    assert set(deps) == {
        "std_msgs/Header",
        "builtin_interfaces/Time",
        "demo_msgs/Inner",
        "demo_msgs/Leaf",
    }
    # rosbags (an independent parser) accepts the result and resolves every field type.
    parsed = get_types_from_msg(full, "demo_msgs/msg/Outer")
    assert set(parsed) == {
        "demo_msgs/msg/Outer",
        "demo_msgs/msg/Inner",
        "demo_msgs/msg/Leaf",
        "std_msgs/msg/Header",
        "builtin_interfaces/msg/Time",
    }


def test_results_are_cached(tmp_path: Path) -> None:
    write_msg(tmp_path, "cache_msgs", "Only", "int32 x\n")
    first = message_definition("cache_msgs/Only", [str(tmp_path)])
    (tmp_path / "share/cache_msgs/msg/Only.msg").unlink()
    assert message_definition("cache_msgs/msg/Only", [str(tmp_path)]) == first


def test_missing_type_names_the_type_and_the_prefixes(tmp_path: Path) -> None:
    with pytest.raises(MessageDefinitionNotFoundError) as info:
        message_definition("nope_msgs/msg/Missing", [str(tmp_path), "/other/prefix"])
    text = str(info.value)
    assert "nope_msgs/msg/Missing" in text
    assert str(tmp_path) in text
    assert "/other/prefix" in text


def test_missing_dependency_says_who_needs_it(tmp_path: Path) -> None:
    write_msg(tmp_path, "dep_msgs", "Top", "dep_msgs/Gone g\n")
    with pytest.raises(MessageDefinitionNotFoundError, match=r"dep_msgs/msg/Gone.*dep_msgs/msg/Top"):
        message_definition("dep_msgs/Top", [str(tmp_path)])


def test_unset_ament_prefix_path_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AMENT_PREFIX_PATH", raising=False)
    with pytest.raises(MessageDefinitionNotFoundError, match="AMENT_PREFIX_PATH"):
        message_definition("unset_msgs/msg/Thing")


@pytest.mark.parametrize("bad", ["Imu", "sensor_msgs/srv/x/Imu", "sensor msgs/Imu", ""])
def test_malformed_type_names_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="pkg/msg/Name"):
        message_definition(bad, ["/nonexistent"])


def test_type_description_hash_comes_from_the_rosidl_json(tmp_path: Path) -> None:
    prefix = venv_prefix()
    doc = json.loads((prefix / "share/sensor_msgs/msg/Imu.json").read_text())
    expected = next(h["hash_string"] for h in doc["type_hashes"] if h["type_name"] == "sensor_msgs/msg/Imu")
    assert type_description_hash("sensor_msgs/Imu", [str(prefix)]) == expected
    assert expected.startswith("RIHS01_")
    assert type_description_hash("sensor_msgs/Imu", [str(tmp_path)]) == ""
