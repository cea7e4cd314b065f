"""Arguments the verbs share, declared once: recordings, the monitor config, a profile, the progress
bar, number types, and the loaders that turn them into objects (an InputError when bad)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING

from gap_monitor.errors import ProfileError

if TYPE_CHECKING:  # loaded only when a verb runs: `gap-monitor --help` stays fast
    from gap_monitor.core.conditions.profile import Profile
    from gap_monitor.core.config.model import MonitorConfig

RECORDINGS_HELP = "rosbag2 folders, .mcap/.db3 files or ROS 1 .bag files"


def add_recordings(
    parser: argparse.ArgumentParser, help: str = RECORDINGS_HELP, metavar: str = "REC"
) -> None:
    parser.add_argument("recordings", nargs="+", metavar=metavar, help=help)


def add_config(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--config", metavar="PARAMS.yaml", default=None, help=help)


def add_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def positive_number(text: str) -> float:
    """argparse type: a finite number > 0 (a rate, a duration)."""
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text}: a number > 0")
    return value


def non_negative_number(text: str) -> float:
    """argparse type: a finite number >= 0."""
    value = float(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"{text}: a number >= 0")
    return value


def load_config(path: str | None) -> MonitorConfig | None:
    """The monitor config of `--config`, None without one; ConfigError when it is bad."""
    if path is None:
        return None
    from gap_monitor.core.config import load_config as load

    return load(path)


def load_profile(path: str) -> Profile:
    """A profile file; ProfileError naming the path when it is missing or unusable."""
    from gap_monitor.core.conditions.profile import Profile

    if not Path(path).is_file():
        raise ProfileError(f"profile {path}: no such file")
    return Profile.load(path)
