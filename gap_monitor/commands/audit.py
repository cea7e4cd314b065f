"""`gap-monitor audit`: the command line of the synchronization QA (what it checks:
`gap_monitor.offline.audit`).

Exit code: 0 when no finding reaches `--fail-on` (default error), 1 when one does, 2 for an
unreadable recording, a bad config or a `--pairs` topic that no recording has."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gap_monitor.core.config.model import ConfigError, load_config
from gap_monitor.core.events import Severity
from gap_monitor.offline.audit import AuditInputError, AuditSettings, run_audit
from gap_monitor.render.audit_text import format_report
from gap_monitor.render.progress import ProgressBar

__all__ = ["FAIL_ON", "add_parser", "main", "run_from_args"]

FAIL_ON = {"warn": Severity.WARN, "error": Severity.ERROR}


def _pair_arg(text: str) -> tuple[str, str]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
        raise argparse.ArgumentTypeError(f"{text!r}: expected TOPIC_A,TOPIC_B (two different topics)")
    return parts[0], parts[1]


def add_parser(subparsers: Any) -> None:
    """Register `audit` on an argparse subparsers object; its `func` returns the exit code."""
    p = subparsers.add_parser(
        "audit",
        help="synchronization QA of recordings: stream timing, pairwise skew, camera-IMU offset",
        description=(
            "Audit recordings (rosbag2 folders, .mcap/.db3 files, ROS 1 .bag files): per-topic "
            "rate, jitter, gaps, stamp problems and latency; header-stamp skew of topic pairs; "
            "camera-IMU time offset from motion. Exit code 0: no finding at the --fail-on level; "
            "1: at least one; 2: unreadable input or bad config."
        ),
    )
    p.add_argument("recordings", nargs="+", metavar="REC", help="recordings to audit")
    p.add_argument(
        "--config",
        metavar="PARAMS.yaml",
        help="monitor parameter file: expected rates (streams) and skew_pairs",
    )
    p.add_argument(
        "--fail-on",
        choices=sorted(FAIL_ON),
        default="error",
        help="exit 1 when a finding reaches this level (default: error)",
    )
    p.add_argument("--json", metavar="OUT.json", help="also write the results as JSON here")
    p.add_argument(
        "--pairs",
        nargs="+",
        action="extend",
        type=_pair_arg,
        default=[],
        metavar="A,B",
        help="topic pairs to check for skew, in addition to the config's skew_pairs (default "
        "without either: every pair of image topics); put REC arguments before this option",
    )
    p.add_argument(
        "--no-motion", action="store_true", help="skip the motion-based camera-IMU offset (no image decoding)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=run_from_args)


def run_from_args(args: argparse.Namespace) -> int:
    """Run the audit the parsed arguments describe; print the report; return the exit code."""
    fail_on = FAIL_ON[args.fail_on]
    config = None
    if args.config:
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            print(f"gap-monitor audit: bad config {exc}", file=sys.stderr)
            return 2
    progress = ProgressBar(sys.stderr, enabled=False if args.no_progress else None)
    try:
        result = run_audit(
            args.recordings,
            config=config,
            pairs=args.pairs,
            settings=AuditSettings(estimate_motion=not args.no_motion),
            progress=progress,
        )
    except AuditInputError as exc:
        progress.close()
        print(f"gap-monitor audit: {exc}", file=sys.stderr)
        return 2
    progress.close()
    print(format_report(result, fail_on))
    if args.json:
        try:
            _write_json(Path(args.json), result.to_json_dict(fail_on))
        except OSError as exc:
            print(f"gap-monitor audit: cannot write {args.json}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        print(f"wrote {args.json}")
    return 1 if result.failed(fail_on) else 0


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write atomically: a reader never sees half a report."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
    tmp.replace(path)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m gap_monitor.commands.audit REC...`: the audit without the rest of the CLI."""
    parser = argparse.ArgumentParser(prog="gap-monitor")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["audit", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
