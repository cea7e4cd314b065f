"""`gap-monitor check-config PARAMS.yaml`: validate a monitor parameter file and list its streams."""

from __future__ import annotations

import argparse
import sys

from gap_monitor.commands.base import Command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("params_file")
    parser.add_argument("--node-name", default="gap_monitor")


def run(args: argparse.Namespace) -> int:
    from gap_monitor.core.config import load_config

    config = load_config(args.params_file, args.node_name)
    print(f"{args.params_file}: OK, {len(config.streams)} stream(s)")
    for s in config.streams:
        print(f"  {s.modality:7s} {s.name:12s} {s.topic} ({s.msgtype}, {s.rate_hz:g} Hz)")
    return 0


COMMAND = Command(
    "check-config", "validate a monitor parameter file and list its streams", add_arguments, run
)

if __name__ == "__main__":
    sys.exit(COMMAND.main())
