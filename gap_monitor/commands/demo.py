"""`gap-monitor demo`: the simulated rig with scripted faults and the monitor, live status and summary."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from gap_monitor.commands.base import Command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=30.0, help="seconds (default 30)")
    parser.add_argument("--scenario", default="demo", help="scenario name in config/scenarios or a path")
    parser.add_argument(
        "--params-file", default=None, help="monitor parameter file (default: config/monitor.yaml)"
    )
    parser.add_argument("--log-dir", default=None, help="where the nodes' logs go (default: a temp dir)")


def run(args: argparse.Namespace) -> int:
    from gap_monitor.launching import default_params_file
    from gap_monitor.ros.demo import run_demo

    log_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="gap_monitor_demo_"))
    return run_demo(args.params_file or default_params_file(), args.scenario, args.duration, log_dir)


COMMAND = Command(
    "demo", "simulated rig with scripted faults + monitor, live status and summary", add_arguments, run
)

if __name__ == "__main__":
    sys.exit(COMMAND.main())
