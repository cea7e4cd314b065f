"""`gap-monitor replay`: run the live monitor's checks and triggers over a recording, without ROS.

Feeds the same core `Monitor` the node uses with each message at its log time, calls its periodic
check on the recording's clock, and writes the snapshots the node would have written, so a team
can tune thresholds and triggers on logged data.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gap_monitor.core.conditions.profile import Profile, ProfileError
from gap_monitor.core.config import (
    MODALITY_KEYS,
    ConfigError,
    MonitorConfig,
    config_from_parameters,
    load_config,
)
from gap_monitor.core.events import Event
from gap_monitor.core.io.names import COMPRESSED_IMAGE_TYPE, IMAGE_TYPE
from gap_monitor.core.io.recordings import RecordingError, TopicInfo, open_recording
from gap_monitor.core.monitor import Monitor

NS = 1_000_000_000
MODALITY_OF_TYPE = {
    "sensor_msgs/msg/Imu": "imu",
    "sensor_msgs/msg/JointState": "joints",
    "geometry_msgs/msg/WrenchStamped": "wrench",
    COMPRESSED_IMAGE_TYPE: "camera",
}


@dataclass
class ReplayResult:
    events: list[Event] = field(default_factory=list)
    snapshots: list[Path] = field(default_factory=list)
    messages: int = 0


def config_for_recording(topics: dict[str, TopicInfo], duration_s: float) -> MonitorConfig:
    """Streams guessed from a recording: modality from the type (depth by name), rate from the count."""
    params: dict[str, dict[str, Any]] = {}
    for topic, info in sorted(topics.items()):
        modality = MODALITY_OF_TYPE.get(info.msgtype)
        if info.msgtype == IMAGE_TYPE:
            modality = "depth" if "depth" in topic.lower() else "camera"
        if modality is None or info.count < 2 or duration_s <= 0:
            continue
        name = topic.strip("/").replace("/", "_") or "root"
        rate = (info.count - 1) / duration_s
        params.setdefault(MODALITY_KEYS[modality], {})[name] = {"topic": topic, "rate_hz": round(rate, 3)}
    return config_from_parameters(params, source="streams found in the recording")


def replay(
    recording: Path,
    output_dir: Path,
    config: MonitorConfig | None = None,
    profile: Profile | None = None,
) -> ReplayResult:
    """Replay one recording through a Monitor with capture on; snapshots land in `output_dir`."""
    result = ReplayResult()
    with open_recording(recording) as rec:
        topics = rec.topics()
        start, last = rec.start_time_ns, rec.end_time_ns
        if start is None or last is None:
            return result
        cfg = config or config_for_recording(topics, (last - start) / NS)
        cfg = replace(cfg, capture=replace(cfg.capture, enabled=True, min_free_bytes=0))
        monitor = Monitor(cfg, start, output_dir=output_dir, profile=profile)
        monitored = {s.topic for s in cfg.streams}
        for topic, info in topics.items():
            if topic not in monitored:
                monitor.add_capture_topic(topic, info.msgtype)
        period_ns = int(cfg.check_period_s * NS)
        next_check = start + period_ns
        end = start
        for msg in rec.messages():
            while msg.log_time_ns >= next_check:
                result.events += monitor.check(next_check)
                next_check += period_ns
            monitor.on_message(msg.topic, msg.log_time_ns, msg.data)
            result.messages += 1
            end = msg.log_time_ns
        # Snapshots still collecting get the rest of their post window, as far as the recording goes.
        monitor.close(end + int(cfg.capture.post_s * NS))
    result.snapshots = sorted(
        p for p in output_dir.iterdir() if p.is_dir() and not p.name.startswith(".") and ".tmp" not in p.name
    )
    return result


def run_from_args(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config) if args.config else None
        profile = Profile.load(args.profile) if args.profile else None
    except (ConfigError, ProfileError) as exc:
        print(exc, file=sys.stderr)
        return 2
    out = Path(args.output)
    for path in args.recordings:
        try:
            result = replay(Path(path), out, config, profile)
        except (RecordingError, ConfigError, OSError) as exc:
            print(f"replay: {path}: {exc}", file=sys.stderr)
            return 2
        t0 = result.events[0].time_ns if result.events else 0
        print(f"{path}: {result.messages} messages")
        for e in result.events:
            if e.kind != "snapshot_written":
                print(f"  {(e.time_ns - t0) / NS:7.2f}s {e.severity.name:5s} {e.reason}")
        print(f"  snapshots in {out}: {len(result.snapshots)}")
        for p in result.snapshots:
            print(f"    {p}")
    return 0


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "replay", help="run the monitor's checks and triggers over recordings, writing snapshots"
    )
    p.add_argument("recordings", nargs="+", help="rosbag2 folders, .mcap files or ROS 1 .bag files")
    p.add_argument("--config", help="monitor parameter file (default: streams guessed from each recording)")
    p.add_argument("--profile", help="training-condition profile: novel conditions trigger snapshots too")
    p.add_argument(
        "-o", "--output", default="replay_snapshots", help="snapshot folder (default: replay_snapshots)"
    )
    p.set_defaults(func=run_from_args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gap-monitor")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))
