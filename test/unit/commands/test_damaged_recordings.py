"""Every offline command refuses a recording with a damaged MCAP chunk the same way: exit 2 and
one line naming the file and the chunk (no profile or report written from damaged data, no
traceback)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gap_monitor.commands.audit import COMMAND as AUDIT
from gap_monitor.commands.profile import COMMAND as PROFILE
from gap_monitor.commands.replay import COMMAND as REPLAY
from gap_monitor.commands.report import COMMAND as REPORT

Capture = pytest.CaptureFixture[str]
DAMAGES = ("payload", "framing", "lz4_frame", "lz4_data")


@pytest.mark.parametrize("damage", DAMAGES)
def test_every_command_refuses_a_damaged_chunk(
    damaged_mcap: Callable[[str], Path], tmp_path: Path, capsys: Capture, damage: str
) -> None:
    profile = tmp_path / "profile.yaml"
    assert PROFILE.main(["build", str(damaged_mcap("none")), "-o", str(profile), "--no-progress"]) == 0
    bad = damaged_mcap(damage)
    runs = {
        "audit": (AUDIT, [str(bad), "--no-progress"]),
        "profile": (PROFILE, ["build", str(bad), "-o", str(tmp_path / "bad.yaml"), "--no-progress"]),
        "report": (REPORT, [str(bad), "--profile", str(profile), "-o", str(tmp_path / "r.html"),
                            "--no-progress"]),
        "replay": (REPLAY, [str(bad), "-o", str(tmp_path / "snapshots")]),
    }  # fmt: skip
    capsys.readouterr()
    for name, (command, argv) in runs.items():
        assert command.main(argv) == 2, name
        err = capsys.readouterr().err
        assert err.startswith(f"gap-monitor {name}: {bad}: chunk at offset ") and err.count("\n") == 1, err
    assert not (tmp_path / "bad.yaml").exists()
    assert not (tmp_path / "r.html").exists()
