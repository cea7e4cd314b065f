"""`gap-monitor check-config PARAMS.yaml`: validate a monitor parameter file and list its streams.

It runs the node's own start-up checks (`check_startup`: at least one stream, the profile loads,
the snapshot folder is usable), so a file it calls OK is one the node starts with.
"""

from __future__ import annotations

import argparse
import sys

from gap_monitor.commands.base import Command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("params_file")
    parser.add_argument("--node-name", default="gap_monitor")


def run(args: argparse.Namespace) -> int:
    from gap_monitor.core.config import check_params_file, check_startup, load_config, node_key_matches

    keys = check_params_file(args.params_file)
    config = load_config(args.params_file, args.node_name)
    check_startup(config, source=args.params_file)
    if not any(node_key_matches(key, f"/robot1/{args.node_name}") for key in keys):
        # Under `ros2 launch ... namespace:=robot1` such a file would give the node no parameters.
        print(
            f"note: no key reaches the node under a namespace; key it '/**' to match /NS/{args.node_name} too"
        )
    print(f"{args.params_file}: OK, {len(config.streams)} stream(s)")
    for s in config.streams:
        print(f"  {s.modality:7s} {s.name:12s} {s.topic} ({s.msgtype}, {s.rate_hz:g} Hz)")
    return 0


COMMAND = Command(
    "check-config", "validate a monitor parameter file and list its streams", add_arguments, run
)

if __name__ == "__main__":
    sys.exit(COMMAND.main())
