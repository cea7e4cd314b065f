"""The node's start-up checks (shared with check-config) and the params-file check before rclpy."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from gap_monitor.core.conditions.profile_builder import ProfileBuilder
from gap_monitor.core.config import (
    CaptureConfig,
    ConditionsConfig,
    ConfigError,
    check_params_files,
    check_startup,
    config_from_parameters,
    load_config,
    node_key_matches,
    node_name_from_ros_args,
    output_dir_problem,
    parameters_from_file,
    params_files_in_ros_args,
)

REPO = Path(__file__).resolve().parents[4]
SHIPPED = REPO / "config" / "monitor.yaml"
ONE_STREAM = {"imus": {"imu": {"topic": "/imu", "rate_hz": 100.0}}}


def node_args(*files: Path | str, extra: tuple[str, ...] = ()) -> list[str]:
    args = ["monitor", "--ros-args", *extra]
    for f in files:
        args += ["--params-file", str(f)]
    return args


# --- before rclpy.init: the params files ----------------------------------------------------------


def test_ros_arguments_give_params_files_and_the_node_name():
    args = ["monitor", "--params-file", "not_ros.yaml", "--ros-args", "-r", "__ns:=/robot1"]
    args += [
        "--params-file",
        "a.yaml",
        "--",
        "--params-file",
        "b.yaml",
        "--ros-args",
        "--params-file",
        "c.yaml",
    ]
    assert params_files_in_ros_args(args) == ["a.yaml", "c.yaml"]
    assert node_name_from_ros_args(args) == "/robot1/gap_monitor"
    renamed = ["m", "--ros-args", "--remap", "__node:=left", "-r", "__ns:=arm", "-r", "other:__ns:=/x"]
    assert node_name_from_ros_args(renamed) == "/arm/left"
    assert node_name_from_ros_args(["monitor"]) == "/gap_monitor"


@pytest.mark.parametrize(
    ("key", "node", "matches"),
    [
        ("/**", "/robot1/gap_monitor", True),
        ("/**", "/gap_monitor", True),
        ("gap_monitor", "/gap_monitor", True),
        ("/gap_monitor", "/gap_monitor", True),
        ("gap_monitor", "/robot1/gap_monitor", False),  # the issue: a root-namespace key
        ("/**/gap_monitor", "/a/b/gap_monitor", True),
        ("/*/gap_monitor", "/robot1/gap_monitor", True),
        ("/*/gap_monitor", "/gap_monitor", False),
        ("/robot1/gap_monitor", "/robot2/gap_monitor", False),
    ],
)
def test_params_file_keys_match_nodes_as_rcl_does(key, node, matches):
    assert node_key_matches(key, node) is matches


def test_shipped_params_file_reaches_the_node_under_any_namespace():
    assert list(yaml.safe_load(SHIPPED.read_text())) == ["/**"]
    check_params_files(node_args(SHIPPED, extra=("-r", "__ns:=/robot1")))
    assert parameters_from_file(SHIPPED)  # and the CLI finds it too
    assert load_config(SHIPPED).streams


def test_root_namespace_key_under_a_namespace_is_refused_by_name(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"gap_monitor": {"ros__parameters": ONE_STREAM}}))
    check_params_files(node_args(path))
    with pytest.raises(ConfigError, match=r"no section for node /robot1/gap_monitor \(keys: 'gap_monitor'\)"):
        check_params_files(node_args(path, extra=("-r", "__ns:=/robot1")))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a text"),
        (b"\x00\x00\x00\x00", "not valid YAML"),
        (b"gap_monitor: [unclosed", "not valid YAML at line 1"),
        (b"", "empty"),
        (b"# only a comment\n", "empty"),
        (b"- a list\n", "a mapping of node names"),
        (b"/**:\n  cameras: {}\n", "holding 'ros__parameters'"),
        (b"/**:\n  ros__parameters: 5\n", "holding 'ros__parameters'"),
    ],
)
def test_bad_params_files_are_one_config_error_before_rclpy(tmp_path, content, expected):
    path = tmp_path / "p.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=expected) as caught:
        check_params_files(node_args(path))
    assert all("\n" not in p for p in caught.value.problems)  # one line per problem
    # The CLI's reader says the same (a binary file was a UnicodeDecodeError).
    if b"ros__parameters" not in content:
        with pytest.raises(ConfigError, match=expected):
            parameters_from_file(path)


def test_missing_params_file_and_a_directory_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        check_params_files(node_args(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="cannot read"):
        check_params_files(node_args(tmp_path))


def test_no_params_file_passes_the_pre_init_check():
    check_params_files(["monitor"])  # refused later for having no stream (below)


# --- after the config is validated: what the node needs to run ----------------------------------


def test_no_stream_configured_is_refused():
    for params in ({}, {"use_sim_time": False}, {"capture": {"enabled": False}}):
        config = replace(config_from_parameters(params), capture=CaptureConfig(enabled=False))
        with pytest.raises(ConfigError, match="streams: none configured") as caught:
            check_startup(config, source="/robot1/gap_monitor parameters")
        assert "/robot1/gap_monitor parameters" in str(caught.value)


def test_a_stream_and_a_writable_folder_start(tmp_path):
    config = config_from_parameters(ONE_STREAM)
    assert check_startup(config, tmp_path / "new" / "snapshots") is None
    assert not (tmp_path / "new").exists()  # checking creates nothing


def test_missing_profile_is_refused(tmp_path):
    config = config_from_parameters(ONE_STREAM)
    config = replace(config, conditions=ConditionsConfig(profile=str(tmp_path / "none.yaml")))
    with pytest.raises(ConfigError, match=r"conditions\.profile: .*none\.yaml.*cannot read"):
        check_startup(config, tmp_path)


def test_a_profile_that_loads_is_returned(tmp_path):
    builder = ProfileBuilder()
    for i in range(50):
        builder.add("imu", "imu", {"gyro_std_x": 0.01 + 0.001 * (i % 7)}, i)
    path = tmp_path / "profile.yaml"
    builder.build(created_ns=0).save(path)
    config = replace(config_from_parameters(ONE_STREAM), conditions=ConditionsConfig(profile=str(path)))
    profile = check_startup(config, tmp_path)
    assert profile is not None and "imu" in profile.streams


def test_output_dir_that_is_a_file_is_refused(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    config = config_from_parameters({**ONE_STREAM, "capture": {"output_dir": str(a_file)}})
    with pytest.raises(ConfigError, match=r"capture\.output_dir: .*is not a directory"):
        check_startup(config)
    assert output_dir_problem(a_file / "below") is not None
    # Capture off: the folder is not used, so not checked.
    check_startup(replace(config, capture=CaptureConfig(enabled=False, output_dir=str(a_file))))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_dir_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        config = config_from_parameters({**ONE_STREAM, "capture": {"output_dir": str(ro / "snaps")}})
        with pytest.raises(ConfigError, match="is not writable"):
            check_startup(config)
    finally:
        ro.chmod(0o700)


def test_every_problem_is_listed_at_once(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    config = config_from_parameters(
        {"capture": {"output_dir": str(a_file)}, "conditions": {"profile": "/no"}}
    )
    with pytest.raises(ConfigError) as caught:
        check_startup(config)
    assert len(caught.value.problems) == 3


def test_read_only_output_dir_is_refused_whoever_runs(tmp_path, monkeypatch):
    # The same check as above where root would pass chmod: the folder reports no write access.
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == tmp_path else real_access(p, mode))
    config = config_from_parameters({**ONE_STREAM, "capture": {"output_dir": str(tmp_path / "snaps")}})
    with pytest.raises(ConfigError, match=r"capture\.output_dir: .*is not writable"):
        check_startup(config)
