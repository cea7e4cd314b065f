"""The verbs as plugins: every built-in verb is found, runs alone as `python -m`, and errors map to
exit codes in one place (bad input 2 with one line, Ctrl-C 130, a bug is a traceback)."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from gap_monitor.cli import build_parser
from gap_monitor.commands import BUILTIN_VERBS, Command, commands, run_command
from gap_monitor.errors import ConfigError, InputError


def failing(exc: BaseException) -> Command:
    def run(args: argparse.Namespace) -> int:
        raise exc

    return Command("probe", "raises what it is given", lambda parser: None, run)


def test_every_builtin_verb_is_a_command_of_the_cli():
    found = commands()
    names = [c.name for c in found]
    assert len(names) == len(set(names)) == len(BUILTIN_VERBS)
    assert {"profile", "report", "audit", "replay", "sim-record", "check-config", "demo", "sim"} == set(names)
    help_text = build_parser().format_help()
    assert all(name in help_text for name in names)


@pytest.mark.parametrize("verb", BUILTIN_VERBS)
def test_each_verb_runs_alone_as_a_module(verb):
    done = subprocess.run(
        [sys.executable, "-m", f"gap_monitor.commands.{verb}", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: gap-monitor {verb.replace('_', '-')}")


def test_bad_input_is_one_line_and_exit_2(capsys):
    assert run_command(failing(InputError("rate_hz", -5, "a number > 0")), argparse.Namespace()) == 2
    assert capsys.readouterr().err == "gap-monitor probe: rate_hz: -5: a number > 0\n"
    assert run_command(failing(ConfigError(["a: 1: b"], "x.yaml")), argparse.Namespace()) == 2
    assert "x.yaml: 1 problem(s)" in capsys.readouterr().err


def test_a_path_that_cannot_be_used_is_bad_input_too(capsys):
    error = FileNotFoundError(2, "No such file or directory", "/nowhere/p.yaml")
    assert run_command(failing(error), argparse.Namespace()) == 2
    assert capsys.readouterr().err == "gap-monitor probe: /nowhere/p.yaml: No such file or directory\n"


def test_interrupt_exits_130(capsys):
    assert run_command(failing(KeyboardInterrupt()), argparse.Namespace()) == 130


def test_a_bug_is_not_disguised_as_bad_input():
    with pytest.raises(ZeroDivisionError):
        run_command(failing(ZeroDivisionError("a bug")), argparse.Namespace())
    with pytest.raises(ValueError):  # a ValueError is a bug here, not bad input
        run_command(failing(ValueError("a bug")), argparse.Namespace())
