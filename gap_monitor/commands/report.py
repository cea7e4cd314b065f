"""`gap-monitor report`: deployment recordings measured against a training profile, as one
self-contained HTML page and its JSON (what it measures: `gap_monitor.offline.report`)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from gap_monitor.commands.arguments import (
    add_config,
    add_progress,
    add_recordings,
    load_config,
    positive_number,
)
from gap_monitor.commands.base import Command

DESCRIPTION = (
    "Compare deployment recordings with a training-condition profile: per-feature "
    "distributions, a timeline of novelty scores, stream health and skew, the snapshot "
    "catalogue, collection targets for the data team and the sync audit. Writes a "
    "self-contained HTML page and <name>.json beside it. Exit code 0: written; 2: unusable input "
    "(a damaged recording, or no message on any of the profile's streams in the recordings)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_recordings(parser, help="deployment recordings", metavar="DEPLOYMENT")
    parser.add_argument("--profile", required=True, metavar="PROFILE.yaml", help="training-condition profile")
    parser.add_argument("--snapshots", metavar="DIR", help="folder of snapshots (each with trigger.json)")
    add_config(parser, "monitor parameter file: stream rates, skew pairs and the feature settings")
    parser.add_argument(
        "-o", "--output", default="report.html", help="HTML file to write (default report.html)"
    )
    parser.add_argument(
        "--image-rate",
        type=positive_number,
        default=None,
        metavar="HZ",
        help="images per second to decode (default: the config's, else the profile's)",
    )
    parser.add_argument(
        "--no-motion", action="store_true", help="audit without the camera-IMU motion offset"
    )
    add_progress(parser)


def run(args: argparse.Namespace) -> int:
    from gap_monitor.core.conditions.settings import ConditionSettings
    from gap_monitor.offline.report import ReportSettings, build_report
    from gap_monitor.render.progress import ProgressBar
    from gap_monitor.render.report_html import write_report

    config = load_config(args.config)
    conditions = None
    if args.image_rate is not None:
        base = config.conditions.feature_settings() if config is not None else ConditionSettings()
        conditions = replace(base, image_rate_hz=args.image_rate)
    settings = ReportSettings(conditions=conditions, audit_motion=not args.no_motion)
    bar = ProgressBar(sys.stderr, enabled=False if args.no_progress else None)
    try:
        report = build_report(
            args.profile,
            args.recordings,
            snapshots=args.snapshots,
            config=config,
            settings=settings,
            progress=bar,
        )
    finally:
        bar.close()
    html_path, json_path = write_report(report, args.output)
    print(f"wrote {html_path} and {json_path} ({report.build_seconds:.1f} s)")
    if report.targets:
        print("collection targets:")
        for t in report.targets[:10]:
            print(f"  {t.rank}. {t.text()}")
    else:
        print("no condition outside the training data beyond the calibrated rate")
    return 0


COMMAND = Command(
    "report",
    "HTML report of deployment recordings against a training profile",
    add_arguments,
    run,
    description=DESCRIPTION,
)

if __name__ == "__main__":
    sys.exit(COMMAND.main())
