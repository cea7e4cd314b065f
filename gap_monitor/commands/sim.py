"""`gap-monitor sim ...`: publish the simulated sensor rig (the same as the `sim` executable)."""

from __future__ import annotations

import argparse
import sys

from gap_monitor.commands.base import Command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sim_args", nargs=argparse.REMAINDER, help="arguments for sim (see `sim --help`)")


def run(args: argparse.Namespace) -> int:
    from gap_monitor.ros import sim_node

    return sim_node.main(["sim", *args.sim_args])


COMMAND = Command(
    "sim", "publish the simulated sensor rig (same as the `sim` executable)", add_arguments, run
)

if __name__ == "__main__":
    sys.exit(COMMAND.main())
