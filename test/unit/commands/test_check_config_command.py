"""`gap-monitor check-config`: the node's own start-up checks, one line per problem, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gap_monitor.commands.check_config import COMMAND

REPO = Path(__file__).resolve().parents[3]
Capture = pytest.CaptureFixture[str]


def check(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    code = COMMAND.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, params: dict[str, object], key: str = "/**") -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({key: {"ros__parameters": params}}))
    return path


def stream_params(tmp_path: Path, **capture: object) -> dict[str, object]:
    return {
        "imus": {"imu": {"topic": "/imu", "rate_hz": 100.0}},
        "capture": {"output_dir": str(tmp_path / "snaps"), **capture},
    }


def test_shipped_config_is_ok_without_a_note(capsys: Capture, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # output_dir ~/.ros/...: a writable home
    code, out, err = check(capsys, str(REPO / "config" / "monitor.yaml"))
    assert (code, err) == (0, "")
    assert "OK, 5 stream(s)" in out and "note:" not in out


def test_root_namespace_key_gets_a_note(capsys: Capture, tmp_path: Path) -> None:
    code, out, _ = check(capsys, str(write(tmp_path, stream_params(tmp_path), key="gap_monitor")))
    assert code == 0 and "OK, 1 stream(s)" in out
    assert "note: no key reaches the node under a namespace; key it '/**'" in out


def test_no_stream_exits_2(capsys: Capture, tmp_path: Path) -> None:
    path = write(tmp_path, {"capture": {"enabled": False}})
    code, out, err = check(capsys, str(path))
    assert (code, out) == (2, "")
    assert err.startswith(f"gap-monitor check-config: {path}: 1 problem(s):")
    assert "streams: none configured" in err


def test_missing_profile_and_unusable_output_dir_exit_2(capsys: Capture, tmp_path: Path) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    params = stream_params(tmp_path)
    params["conditions"] = {"profile": "/no/such/profile.yaml"}
    params["capture"] = {"output_dir": str(a_file)}
    code, out, err = check(capsys, str(write(tmp_path, params)))
    assert (code, out) == (2, "")
    assert "2 problem(s)" in err and "Traceback" not in err
    assert "conditions.profile: '/no/such/profile.yaml'" in err
    assert f"capture.output_dir: '{a_file}': a writable directory ('{a_file}' is not a directory)" in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "not a text (UTF-8) file"),
        (b"", "empty"),
        (b"{{{{", "not valid YAML at line 1"),
        (b"gap_monitor:\n  cameras: {}\n/**:\n  ros__parameters: {}\n", "holding 'ros__parameters'"),
    ],
)
def test_bad_files_exit_2(capsys: Capture, tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    code, out, err = check(capsys, str(path))
    assert (code, out) == (2, "")
    assert expected in err and "Traceback" not in err


def test_missing_file_exits_2(capsys: Capture, tmp_path: Path) -> None:
    code, _, err = check(capsys, str(tmp_path / "missing.yaml"))
    assert code == 2 and "cannot read" in err
