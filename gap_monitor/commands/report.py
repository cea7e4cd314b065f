"""`gap-monitor report` and `gap-monitor profile compare`: the command lines of the deployment
report and of the profile comparison (what they measure: `gap_monitor.offline.report`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from gap_monitor.core.conditions.feed import ConditionSettings
from gap_monitor.core.conditions.profile import Profile, ProfileError
from gap_monitor.core.config.model import ConfigError, load_config
from gap_monitor.offline.report import (
    ReportInputError,
    ReportSettings,
    build_report,
    compare_profiles,
)
from gap_monitor.offline.report.words import RANGE_NAME
from gap_monitor.render.progress import ProgressBar
from gap_monitor.render.report_html import write_comparison, write_report

__all__ = ["add_compare_parser", "add_parser", "main", "run_compare_from_args", "run_from_args"]


def add_parser(subparsers: Any) -> None:
    """Register `report` on the `gap-monitor` command's subparsers; `func` returns the exit code."""
    p = subparsers.add_parser(
        "report",
        help="HTML report of deployment recordings against a training profile",
        description=(
            "Compare deployment recordings with a training-condition profile: per-feature "
            "distributions, a timeline of novelty scores, stream health and skew, the snapshot "
            "catalogue, collection targets for the data team and the sync audit. Writes a "
            "self-contained HTML page and <name>.json beside it. Exit code 0: written; 2: unusable input."
        ),
    )
    p.add_argument("recordings", nargs="+", metavar="DEPLOYMENT", help="deployment recordings")
    p.add_argument("--profile", required=True, metavar="PROFILE.yaml", help="training-condition profile")
    p.add_argument("--snapshots", metavar="DIR", help="folder of snapshots (each with trigger.json)")
    p.add_argument(
        "--config",
        metavar="PARAMS.yaml",
        help="monitor parameter file: stream rates, skew pairs and the feature settings",
    )
    p.add_argument("-o", "--output", default="report.html", help="HTML file to write (default report.html)")
    p.add_argument(
        "--image-rate",
        type=float,
        default=None,
        metavar="HZ",
        help="images per second to decode (default: the config's, else the profile's)",
    )
    p.add_argument("--no-motion", action="store_true", help="audit without the camera-IMU motion offset")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=run_from_args)


def run_from_args(args: argparse.Namespace) -> int:
    """Build and write the report the parsed arguments describe; print the targets; return the exit code."""
    config = None
    try:
        if args.config:
            config = load_config(args.config)
        conditions = None
        if args.image_rate is not None:
            base = ConditionSettings()
            if config is not None:
                cc = config.conditions
                base = ConditionSettings(cc.image_rate_hz, cc.window_s, cc.hop_s, cc.near_m)
            conditions = replace(base, image_rate_hz=args.image_rate)
        settings = ReportSettings(conditions=conditions, audit_motion=not args.no_motion)
    except (ConfigError, ValueError) as exc:
        print(f"gap-monitor report: {exc}", file=sys.stderr)
        return 2
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
    except ReportInputError as exc:
        bar.close()
        print(f"gap-monitor report: {exc}", file=sys.stderr)
        return 2
    bar.close()
    try:
        html_path, json_path = write_report(report, args.output)
    except OSError as exc:
        print(f"gap-monitor report: cannot write {args.output}: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {html_path} and {json_path} ({report.build_seconds:.1f} s)")
    if report.targets:
        print("collection targets:")
        for t in report.targets[:10]:
            print(f"  {t.rank}. {t.text()}")
    else:
        print("no condition outside the training data beyond the calibrated rate")
    return 0


def add_compare_parser(profile_subparsers: Any) -> None:
    """Register `compare` on the `profile` command's subparsers (`gap-monitor profile compare`)."""
    p = profile_subparsers.add_parser(
        "compare",
        help="how much of profile B lies outside profile A's training range, per feature",
        description=(
            f"Coverage of profile B by profile A without recordings: per feature, the share of B "
            f"outside A's {RANGE_NAME} (from B's histogram) and the overlap of the distributions, ranked."
        ),
    )
    p.add_argument("a", metavar="A.yaml", help="the reference profile (e.g. training)")
    p.add_argument("b", metavar="B.yaml", help="the profile to check against it (e.g. deployment)")
    p.add_argument("-o", "--output", default=None, help="also write an HTML page (and <name>.json beside it)")
    p.set_defaults(func=run_compare_from_args)


def run_compare_from_args(args: argparse.Namespace) -> int:
    """Compare the two profiles; print the ranking (and write the page with -o); return the exit code."""
    try:
        profiles = []
        for path in (args.a, args.b):
            if not Path(path).is_file():
                raise ProfileError(f"profile {path}: no such file")
            profiles.append(Profile.load(path))
    except ProfileError as exc:
        print(f"profile compare: {exc}", file=sys.stderr)
        return 2
    result = compare_profiles(profiles[0], profiles[1], args.a, args.b)
    print(result.format_text())
    if args.output:
        try:
            html_path, json_path = write_comparison(result, args.output)
        except OSError as exc:
            print(f"profile compare: cannot write {args.output}: {exc}", file=sys.stderr)
            return 2
        print(f"wrote {html_path} and {json_path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m gap_monitor.commands.report ...` (`report`) or `... compare A B` (profile compare)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="gap-monitor")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    add_compare_parser(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
