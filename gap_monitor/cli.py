"""`gap-monitor`: the command line, built from the verbs in `gap_monitor.commands`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from gap_monitor.commands import Command, commands, run_command
from gap_monitor.launching import DISCOVERY_RANGE, LOCALHOST_ONLY, keep_discovery_local


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gap-monitor", description="gap_monitor: training-condition gap monitor"
    )
    sub = parser.add_subparsers(dest="verb", required=True)
    for command in commands():
        verb = sub.add_parser(
            command.name, help=command.help, description=command.description or command.help
        )
        command.add_arguments(verb)
        verb.set_defaults(command=command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Every process the CLI starts keeps DDS discovery on this machine unless told otherwise.
    if LOCALHOST_ONLY not in os.environ and DISCOVERY_RANGE not in os.environ:
        keep_discovery_local(os.environ)
    command: Command = args.command
    return run_command(command, args)


if __name__ == "__main__":
    sys.exit(main())
