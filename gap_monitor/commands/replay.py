"""`gap-monitor replay REC...`: run the monitor's checks and triggers over recordings, writing the
snapshots the node would have written."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gap_monitor.commands.arguments import add_recordings, load_config, load_profile
from gap_monitor.commands.base import Command
from gap_monitor.core.units import NS_PER_S


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_recordings(parser, metavar="recordings")
    parser.add_argument(
        "--config", help="monitor parameter file (default: streams guessed from each recording)"
    )
    parser.add_argument(
        "--profile", help="training-condition profile: novel conditions trigger snapshots too"
    )
    parser.add_argument(
        "-o", "--output", default="replay_snapshots", help="snapshot folder (default: replay_snapshots)"
    )


def run(args: argparse.Namespace) -> int:
    from gap_monitor.offline.replay import replay

    config = load_config(args.config)
    profile = load_profile(args.profile) if args.profile else None
    out = Path(args.output)
    for path in args.recordings:
        result = replay(Path(path), out, config, profile)
        t0 = result.events[0].time_ns if result.events else 0
        print(f"{path}: {result.messages} messages")
        for e in result.events:
            if e.kind != "snapshot_written":
                print(f"  {(e.time_ns - t0) / NS_PER_S:7.2f}s {e.severity.name:5s} {e.reason}")
        print(f"  snapshots in {out}: {len(result.snapshots)}")
        for p in result.snapshots:
            print(f"    {p}")
    return 0


DESCRIPTION = (
    "Run the monitor's checks and triggers over recordings on their own clock, writing the snapshots "
    "the node would have written. Exit code 0: replayed; 2: unusable input (a damaged recording, or "
    "one with no message on the config's streams, or without --config on any sensor topic)."
)

COMMAND = Command(
    "replay",
    "run the monitor's checks and triggers over recordings, writing snapshots",
    add_arguments,
    run,
    description=DESCRIPTION,
)

if __name__ == "__main__":
    sys.exit(COMMAND.main())
