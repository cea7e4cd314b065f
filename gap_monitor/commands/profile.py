"""`gap-monitor profile {build,show,merge,compare}`: training-condition profiles."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from gap_monitor.commands.arguments import (
    add_progress,
    add_recordings,
    load_profile,
    positive_number,
)
from gap_monitor.commands.base import Command
from gap_monitor.core.conditions.settings import ConditionSettings  # light: dataclasses only

HELP = "training-condition profiles: build from recordings, show, merge"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="profile_command", required=True, metavar="{build,show,merge,compare}")
    build = sub.add_parser(
        "build",
        help="build a profile from training recordings (the live feature path, calibrated alarms)",
    )
    add_recordings(build, metavar="recordings")
    build.add_argument("-o", "--output", required=True, help="profile YAML to write")
    build.add_argument(
        "--topics", nargs="+", default=None, help="only these topics (default: every sensor topic)"
    )
    build.add_argument(
        "--image-rate", type=positive_number, default=ConditionSettings.image_rate_hz,
        help="images per second the monitor decodes, as in its config (default %(default)g)",
    )  # fmt: skip
    build.add_argument(
        "--target-fa-per-hour", type=positive_number, default=1.0,
        help="false alarms per hour per stream the alarm is calibrated for (default %(default)g)",
    )  # fmt: skip
    add_progress(build)
    build.set_defaults(profile_run=_build)

    show = sub.add_parser("show", help="print a profile's streams, alarms and feature ranges")
    show.add_argument("profile")
    show.set_defaults(profile_run=_show)

    merge = sub.add_parser("merge", help="merge profiles (e.g. built from different recordings)")
    merge.add_argument("profiles", nargs="+", help="two or more profile YAML files")
    merge.add_argument("-o", "--output", required=True, help="merged profile YAML to write")
    merge.set_defaults(profile_run=_merge)

    compare = sub.add_parser(
        "compare",
        help="how much of profile B lies outside profile A's training range, per feature",
        description=(
            "Coverage of profile B by profile A without recordings: per feature, the share of B "
            "outside A's p1-p99 (from B's histogram) and the overlap of the distributions, ranked."
        ),
    )
    compare.add_argument("a", metavar="A.yaml", help="the reference profile (e.g. training)")
    compare.add_argument("b", metavar="B.yaml", help="the profile to check against it (e.g. deployment)")
    compare.add_argument(
        "-o", "--output", default=None, help="also write an HTML page (and <name>.json beside it)"
    )
    compare.set_defaults(profile_run=_compare)


def run(args: argparse.Namespace) -> int:
    return int(args.profile_run(args))


def _build(args: argparse.Namespace) -> int:
    from gap_monitor.core.conditions.scoring import format_value
    from gap_monitor.offline.extraction import extract_features, profile_from_features
    from gap_monitor.render.progress import ProgressBar

    started = time.monotonic()
    bar = ProgressBar(sys.stderr, enabled=False if args.no_progress else None)
    try:
        extraction = extract_features(
            args.recordings,
            topics=args.topics,
            settings=ConditionSettings(image_rate_hz=args.image_rate),
            progress=bar,
        )
    finally:
        bar.close()
    profile = profile_from_features(extraction, target_false_alarms_per_hour=args.target_fa_per_hour)
    output = Path(args.output)
    profile.save(output)
    elapsed = time.monotonic() - started
    print(
        f"{output}: {len(profile.streams)} stream(s) from {len(extraction.sources)} recording(s), "
        f"{extraction.messages:,} messages in {elapsed:.1f} s"
    )
    for name, stream in profile.streams.items():
        alarm = stream.alarm
        threshold = f"alarm > {format_value(alarm.threshold)}" if alarm else "no alarm"
        summary = extraction.topics[name]
        print(f"  {name}  {stream.modality}  {stream.sample_count} samples  {threshold}  ({summary.msgtype})")
    for topic, msgtype in sorted(extraction.skipped.items()):
        print(f"  skipped {topic} ({msgtype}: no condition features)")
    for line in extraction.problems():
        print(f"  warning: {line}", file=sys.stderr)
    return 0


def _show(args: argparse.Namespace) -> int:
    from gap_monitor.render.profile_text import format_profile

    print(format_profile(load_profile(args.profile), args.profile))
    return 0


def _merge(args: argparse.Namespace) -> int:
    from gap_monitor.core.conditions.profile_merge import merge_profiles
    from gap_monitor.errors import InputError

    if len(args.profiles) < 2:
        raise InputError("profiles", args.profiles, "at least two profiles to merge")
    merged = merge_profiles([load_profile(p) for p in args.profiles])
    output = Path(args.output)
    merged.save(output)
    print(f"{output}: {len(merged.streams)} stream(s) merged from {len(args.profiles)} profiles")
    print(
        "  note: merging drops the calibrated alarms (the merged profile scores differently); "
        "build one profile from all the recordings to get alarms"
    )
    return 0


def _compare(args: argparse.Namespace) -> int:
    from gap_monitor.offline.report import compare_profiles
    from gap_monitor.render.report_html import write_comparison

    result = compare_profiles(load_profile(args.a), load_profile(args.b), args.a, args.b)
    print(result.format_text())
    if args.output:
        html_path, json_path = write_comparison(result, args.output)
        print(f"wrote {html_path} and {json_path}")
    return 0


COMMAND = Command("profile", HELP, add_arguments, run, description=HELP)

if __name__ == "__main__":
    sys.exit(COMMAND.main())
