"""What a `gap-monitor` verb is, how the verbs are found, and the one error -> exit code table."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points

from gap_monitor.errors import InputError

# Modules of gap_monitor.commands, in the order `gap-monitor --help` lists them.
BUILTIN_VERBS = ("demo", "sim", "sim_record", "profile", "report", "audit", "replay", "check_config")
ENTRY_POINT_GROUP = "gap_monitor.commands"

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class Command:
    """One verb: its name as typed, a one-line help, its arguments, and what it runs."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str = ""

    def main(self, argv: Sequence[str] | None = None) -> int:
        """`python -m gap_monitor.commands.<verb> ...`: this verb alone."""
        parser = argparse.ArgumentParser(
            prog=f"gap-monitor {self.name}", description=self.description or self.help
        )
        self.add_arguments(parser)
        return run_command(self, parser.parse_args(argv))


def commands() -> list[Command]:
    """The built-in verbs, then those other packages register under `gap_monitor.commands`."""
    found = [importlib.import_module(f"gap_monitor.commands.{verb}").COMMAND for verb in BUILTIN_VERBS]
    names = {c.name for c in found}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        command = ep.load()
        if not isinstance(command, Command):
            raise TypeError(f"entry point {ep.name} ({ep.value}) is not a gap_monitor Command")
        if command.name not in names:  # a plugin never shadows a built-in verb
            found.append(command)
            names.add(command.name)
    return found


def run_command(command: Command, args: argparse.Namespace) -> int:
    """Run a verb and map what escapes to an exit code: bad input (an InputError, or a path that
    cannot be read or written) is one line and exit 2; Ctrl-C is 130; anything else is a bug and
    surfaces as a traceback (exit 1), never as bad input."""
    try:
        return int(command.run(args))
    except InputError as exc:
        print(f"gap-monitor {command.name}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"gap-monitor {command.name}: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"gap-monitor {command.name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
