"""The live monitor's checks and triggers over a recording, without ROS (`gap-monitor replay`).

Feeds the same core `Monitor` the node uses with each message at its log time, calls its periodic
check on the recording's clock, and writes the snapshots the node would have written, so a team
can tune thresholds and triggers on logged data.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gap_monitor.core.conditions.profile import Profile
from gap_monitor.core.config import MonitorConfig, config_from_parameters
from gap_monitor.core.events import Event
from gap_monitor.core.io import cdr
from gap_monitor.core.io.modalities import COMPRESSED_IMAGE, IMAGE, IMAGE_TYPES, MODALITIES, modality_of
from gap_monitor.core.io.recordings import Recording, open_recording
from gap_monitor.core.monitor import Monitor
from gap_monitor.core.units import NS_PER_S
from gap_monitor.errors import InputError


@dataclass
class ReplayResult:
    events: list[Event] = field(default_factory=list)
    snapshots: list[Path] = field(default_factory=list)
    messages: int = 0


def config_for_recording(rec: Recording) -> MonitorConfig:
    """Streams found in a recording: the modality from the message type and, for images, from
    the first message (depth or camera by its encoding); the rate from the count."""
    topics = rec.topics()
    start, end = rec.start_time_ns, rec.end_time_ns
    duration_s = (end - start) / NS_PER_S if start is not None and end is not None else 0.0
    images = [t for t, info in topics.items() if info.msgtype in IMAGE_TYPES and info.count]
    first: dict[str, cdr.Buffer] = {}
    for msg in rec.messages(images) if images else ():
        first.setdefault(msg.topic, bytes(msg.data))
        if len(first) == len(images):
            break
    params: dict[str, dict[str, Any]] = {}
    for topic, info in sorted(topics.items()):
        modality = _modality(info.msgtype, first.get(topic))
        if modality is None or info.count < 2 or duration_s <= 0:
            continue
        name = topic.strip("/").replace("/", "_") or "root"
        rate = (info.count - 1) / duration_s
        stream = {"topic": topic, "rate_hz": round(rate, 3)}
        params.setdefault(MODALITIES[modality].config_key, {})[name] = stream
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
        cfg = config or config_for_recording(rec)
        _require_monitored_messages(rec, cfg, guessed=config is None)
        cfg = replace(cfg, capture=replace(cfg.capture, enabled=True, min_free_bytes=0))
        monitor = Monitor(cfg, start, output_dir=output_dir, profile=profile)
        monitored = {s.topic for s in cfg.streams}
        for topic, info in topics.items():
            if topic not in monitored:
                monitor.add_capture_topic(topic, info.msgtype)
        period_ns = int(cfg.check_period_s * NS_PER_S)
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
        monitor.close(end + int(cfg.capture.post_s * NS_PER_S))
    result.snapshots = sorted(
        p for p in output_dir.iterdir() if p.is_dir() and not p.name.startswith(".") and ".tmp" not in p.name
    )
    return result


def _require_monitored_messages(rec: Recording, config: MonitorConfig, guessed: bool) -> None:
    """InputError when no monitored stream has a message: a replay that reads nothing would
    report no events and exit 0, as if the recording were healthy."""
    topics = rec.topics()
    if any(topics[s.topic].count for s in config.streams if s.topic in topics):
        return
    found = ", ".join(f"{t} ({info.msgtype}, {info.count})" for t, info in topics.items()) or "(none)"
    if guessed:
        what = "any topic the monitor can watch (sensor message types, at least two messages)"
    else:
        what = f"any of the config's streams ({', '.join(s.topic for s in config.streams) or 'none'})"
    raise InputError(f"{rec.path}: no messages on {what}; topics found: {found}")


def _modality(msgtype: str, first: cdr.Buffer | None) -> str | None:
    """The modality of a recorded topic; an image topic's from its first readable message."""
    try:
        if msgtype == IMAGE and first is not None:
            return modality_of(msgtype, image_encoding=cdr.decode_image(first).encoding)
        if msgtype == COMPRESSED_IMAGE and first is not None:
            return modality_of(msgtype, compressed_format=cdr.decode_compressed_image(first).format)
    except cdr.CdrError:
        return None  # an unreadable first frame: not monitored, as an unknown type is not
    return modality_of(msgtype)
