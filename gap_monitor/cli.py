"""`gap-monitor`: the command line (demo, sim, config checks; more subcommands as features land)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from gap_monitor.core.config import ConfigError, load_config


def _cmd_check_config(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.params_file, args.node_name)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"{args.params_file}: OK, {len(config.streams)} stream(s)")
    for s in config.streams:
        print(f"  {s.modality:7s} {s.name:12s} {s.topic} ({s.msgtype}, {s.rate_hz:g} Hz)")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from gap_monitor.launching import default_params_file
    from gap_monitor.ros.demo import run_demo

    log_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="gap_monitor_demo_"))
    try:
        return run_demo(args.params_file or default_params_file(), args.scenario, args.duration, log_dir)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2


def _cmd_sim(args: argparse.Namespace) -> int:
    from gap_monitor.ros import sim_node

    return sim_node.main(["sim", *args.sim_args])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gap-monitor", description="gap_monitor: training-condition gap monitor")
    sub = p.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo", help="simulated rig with scripted faults + monitor, live status and summary"
    )
    demo.add_argument("--duration", type=float, default=30.0, help="seconds (default 30)")
    demo.add_argument("--scenario", default="demo", help="scenario name in config/scenarios or a path")
    demo.add_argument(
        "--params-file", default=None, help="monitor parameter file (default: config/monitor.yaml)"
    )
    demo.add_argument("--log-dir", default=None, help="where the nodes' logs go (default: a temp dir)")
    demo.set_defaults(func=_cmd_demo)

    sim = sub.add_parser("sim", help="publish the simulated sensor rig (same as the `sim` executable)")
    sim.add_argument("sim_args", nargs=argparse.REMAINDER, help="arguments for sim (see `sim --help`)")
    sim.set_defaults(func=_cmd_sim)

    from gap_monitor.offline import audit, replay, report
    from gap_monitor.offline import extraction as profiling
    from gap_monitor.sim import record as sim_record

    profiling.add_parser(sub)
    report.add_parser(sub)
    sim_record.add_parser(sub)
    replay.add_parser(sub)
    audit.add_parser(sub)

    check = sub.add_parser("check-config", help="validate a monitor parameter file and list its streams")
    check.add_argument("params_file")
    check.add_argument("--node-name", default="gap_monitor")
    check.set_defaults(func=_cmd_check_config)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
