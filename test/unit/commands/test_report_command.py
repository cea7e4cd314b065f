"""`gap-monitor report` and `profile compare` from the command line: files written, bad input refused."""

from __future__ import annotations

import pytest

from gap_monitor.commands.profile import COMMAND as PROFILE
from gap_monitor.commands.report import COMMAND as REPORT
from gap_monitor.offline.report import ReportInputError, build_report


@pytest.mark.slow
def test_cli_writes_the_report_and_refuses_bad_input(deployment_sim, tmp_path, capsys):
    sim = deployment_sim
    out = tmp_path / "r.html"
    code = REPORT.main(
        ["--profile", str(sim.profile), str(sim.deploy), "-o", str(out), "--no-progress",
         "--no-motion"]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert out.is_file() and (tmp_path / "r.json").is_file()
    assert "collection targets:" in printed and "1. " in printed
    assert REPORT.main(["--profile", str(tmp_path / "none.yaml"), str(sim.deploy)]) == 2
    assert "no such file" in capsys.readouterr().err
    assert REPORT.main(["--profile", str(sim.profile), str(tmp_path / "missing")]) == 2
    assert PROFILE.main(["compare", str(sim.profile), str(sim.profile)]) == 0
    assert "overlap 1.00" in capsys.readouterr().out
    with pytest.raises(ReportInputError, match="--snapshots"):
        build_report(sim.profile, [sim.deploy], snapshots=tmp_path / "nowhere")
