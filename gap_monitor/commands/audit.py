"""`gap-monitor audit`: synchronization QA of recordings (what it checks: `gap_monitor.offline.audit`).

Exit code: 0 when no finding reaches `--fail-on` (default error), 1 when one does (a recording with
nothing to time is an ERROR finding), 2 for an unreadable or damaged recording, a bad config or a
`--pairs` topic that no recording has."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gap_monitor.commands.arguments import add_config, add_progress, add_recordings, load_config
from gap_monitor.commands.base import Command

FAIL_ON = ("warn", "error")
DESCRIPTION = (
    "Audit recordings (rosbag2 folders, .mcap/.db3 files, ROS 1 .bag files): per-topic "
    "rate, jitter, gaps, stamp problems and latency; header-stamp skew of topic pairs; "
    "camera-IMU time offset from motion. Exit code 0: no finding at the --fail-on level; "
    "1: at least one (a recording with no message on any topic with a header is an ERROR: "
    "nothing to audit); 2: unreadable or damaged input or bad config."
)


def pair_argument(text: str) -> tuple[str, str]:
    """argparse type of `--pairs`: `TOPIC_A,TOPIC_B`."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
        raise argparse.ArgumentTypeError(f"{text!r}: expected TOPIC_A,TOPIC_B (two different topics)")
    return parts[0], parts[1]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_recordings(parser, help="recordings to audit")
    add_config(parser, "monitor parameter file: expected rates (streams) and skew_pairs")
    parser.add_argument(
        "--fail-on",
        choices=FAIL_ON,
        default="error",
        help="exit 1 when a finding reaches this level (default: error)",
    )
    parser.add_argument("--json", metavar="OUT.json", help="also write the results as JSON here")
    parser.add_argument(
        "--pairs",
        nargs="+",
        action="extend",
        type=pair_argument,
        default=[],
        metavar="A,B",
        help="topic pairs to check for skew, in addition to the config's skew_pairs (default "
        "without either: every pair of image topics); put REC arguments before this option",
    )
    parser.add_argument(
        "--no-motion", action="store_true", help="skip the motion-based camera-IMU offset (no image decoding)"
    )
    add_progress(parser)


def run(args: argparse.Namespace) -> int:
    from gap_monitor.core.events import Severity
    from gap_monitor.offline.audit import AuditSettings, run_audit
    from gap_monitor.render.audit_text import format_report
    from gap_monitor.render.files import write_text_atomic
    from gap_monitor.render.progress import ProgressBar

    fail_on = Severity.WARN if args.fail_on == "warn" else Severity.ERROR
    config = load_config(args.config)
    progress = ProgressBar(sys.stderr, enabled=False if args.no_progress else None)
    try:
        result = run_audit(
            args.recordings,
            config=config,
            pairs=args.pairs,
            settings=AuditSettings(estimate_motion=not args.no_motion),
            progress=progress,
        )
    finally:
        progress.close()
    print(format_report(result, fail_on))
    if args.json:
        document = json.dumps(result.to_json_dict(fail_on), indent=2, allow_nan=False) + "\n"
        write_text_atomic(Path(args.json), document)
        print(f"wrote {args.json}")
    return 1 if result.failed(fail_on) else 0


COMMAND = Command(
    "audit",
    "synchronization QA of recordings: stream timing, pairwise skew, camera-IMU offset",
    add_arguments,
    run,
    description=DESCRIPTION,
)

if __name__ == "__main__":
    sys.exit(COMMAND.main())
