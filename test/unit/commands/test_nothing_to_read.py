"""A recording with no message on anything the command measures is not silently "fine": `report`
and `replay` refuse it (exit 2, one line listing the topics found), `audit` reports an ERROR
finding "nothing to audit" (exit 1 under --fail-on error, so a QA gate fails; other recordings
are still audited)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from gap_monitor.commands.audit import COMMAND as AUDIT
from gap_monitor.commands.profile import COMMAND as PROFILE
from gap_monitor.commands.replay import COMMAND as REPLAY
from gap_monitor.commands.report import COMMAND as REPORT

Capture = pytest.CaptureFixture[str]


def one_line_error(capsys: Capture, name: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith(f"gap-monitor {name}: ") and err.count("\n") == 1, err
    return err


def test_audit_of_nothing_timeable_is_an_error_finding(
    status_only_bag: Path, stereo_bag: Path, tmp_path: Path, capsys: Capture
) -> None:
    out_json = tmp_path / "audit.json"
    assert AUDIT.main([str(status_only_bag), "--no-progress", "--json", str(out_json)]) == 1
    out = capsys.readouterr().out
    assert "ERROR" in out and "nothing to audit" in out and "/status (20)" in out
    findings = json.loads(out_json.read_text())["findings"]
    assert [f["level"] for f in findings if f["check"] == "nothing_to_audit"] == ["ERROR"]
    # A recording with timed topics has no such finding.
    assert AUDIT.main([str(stereo_bag), "--no-progress", "--no-motion", "--json", str(out_json)]) == 0
    assert all(f["check"] != "nothing_to_audit" for f in json.loads(out_json.read_text())["findings"])


def test_report_refuses_recordings_without_the_profiles_streams(
    damaged_mcap: Callable[[str], Path], status_only_bag: Path, stereo_bag: Path, tmp_path: Path,
    capsys: Capture,
) -> None:  # fmt: skip
    imu = damaged_mcap("none")
    profile = tmp_path / "imu.yaml"
    assert PROFILE.main(["build", str(imu), "-o", str(profile), "--no-progress"]) == 0
    for bag in (status_only_bag, stereo_bag):
        capsys.readouterr()
        argv = [str(bag), "--profile", str(profile), "-o", str(tmp_path / "r.html"), "--no-progress"]
        assert REPORT.main(argv) == 2
        err = one_line_error(capsys, "report")
        assert f"{bag}: no messages on any of the profile's streams (/imu" in err
        assert "topics found: " in err and "/status (std_msgs/msg/String, " in err
    assert not (tmp_path / "r.html").exists()
    # One recording with the streams among others is a report.
    argv = [str(status_only_bag), str(imu), "--profile", str(profile), "-o", str(tmp_path / "r.html"),
            "--no-progress"]  # fmt: skip
    assert REPORT.main(argv) == 0


def test_replay_refuses_a_recording_with_nothing_to_monitor(
    status_only_bag: Path, stereo_bag: Path, tmp_path: Path, capsys: Capture
) -> None:
    assert REPLAY.main([str(status_only_bag), "-o", str(tmp_path / "s")]) == 2
    err = one_line_error(capsys, "replay")
    assert "no messages on any topic the monitor can watch" in err
    assert "topics found: /status (std_msgs/msg/String, 20)" in err
    config = tmp_path / "imu.yaml"
    config.write_text("gap_monitor:\n  ros__parameters:\n    imus:\n      imu: {topic: /imu, rate_hz: 200}\n")
    assert REPLAY.main([str(stereo_bag), "--config", str(config), "-o", str(tmp_path / "s")]) == 2
    err = one_line_error(capsys, "replay")
    assert f"{stereo_bag}: no messages on any of the config's streams (/imu)" in err
    # The stereo cameras are monitored when guessed: a replay.
    assert REPLAY.main([str(stereo_bag), "-o", str(tmp_path / "s")]) == 0
