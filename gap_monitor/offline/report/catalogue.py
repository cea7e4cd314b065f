"""The snapshot catalogue: the snapshot folders the monitor wrote (each with trigger.json), read
into entries (when, why, how long, how big, where) and placed in the deployment recordings."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from gap_monitor.core.conditions.scoring import FeatureScore
from gap_monitor.offline.report.model import RecordingInfo, ReportInputError, SnapshotEntry, SnapshotTrigger

__all__ = ["load_snapshots", "place_snapshot"]


def load_snapshots(directory: str | os.PathLike[str]) -> list[SnapshotEntry]:
    """Every complete snapshot folder (one with trigger.json, no `.tmp-` in its name) under
    `directory`, oldest first. An unreadable trigger.json is listed with the problem, not fatal.

    Raises ReportInputError when `directory` does not exist."""
    root = Path(directory)
    if not root.is_dir():
        raise ReportInputError(f"--snapshots {root}: no such folder")
    entries = []
    for trigger_file in sorted(root.rglob("trigger.json")):
        folder = trigger_file.parent
        if any(".tmp-" in part for part in folder.relative_to(root).parts) or ".tmp-" in folder.name:
            continue
        entries.append(_read_snapshot(folder, trigger_file))
    entries.sort(key=lambda e: (e.time_ns is None, e.time_ns or 0, e.name))
    return entries


def _read_snapshot(folder: Path, trigger_file: Path) -> SnapshotEntry:
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    try:
        data = json.loads(trigger_file.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        triggers = []
        for raw in data.get("triggers") or []:
            event = raw.get("event") or {}
            details = event.get("details") or {}
            top = []
            for item in details.get("top") or []:
                try:
                    top.append(
                        FeatureScore(
                            str(item["name"]),
                            float(item["value"]),
                            float(item["tail_prob"]),
                            float(item["p1"]),
                            float(item["p99"]),
                        ).describe()
                    )
                except (KeyError, TypeError, ValueError):
                    continue
            triggers.append(
                SnapshotTrigger(
                    time_ns=int(raw.get("trigger_ns", event.get("time_ns", 0))),
                    kind=str(event.get("kind", "")),
                    reason=str(event.get("reason", "")),
                    source=str(event.get("source", "")),
                    top=tuple(top),
                )
            )
        return SnapshotEntry(
            name=folder.name,
            path=str(folder),
            start_ns=_int_or_none(data.get("start_ns")),
            end_ns=_int_or_none(data.get("end_ns")),
            size_bytes=size,
            message_count=_int_or_none(data.get("message_count")),
            truncated=bool(data.get("truncated", False)),
            triggers=tuple(triggers),
        )
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        return SnapshotEntry(
            folder.name,
            str(folder),
            None,
            None,
            size,
            None,
            False,
            (),
            None,
            f"trigger.json unreadable: {exc}",
        )


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value)


def place_snapshot(entry: SnapshotEntry, recordings: Sequence[RecordingInfo]) -> SnapshotEntry:
    """The entry with the index of the deployment recording its trigger time falls in, if any."""
    t = entry.time_ns
    if t is None:
        return entry
    for i, r in enumerate(recordings):
        if r.start_time_ns <= t <= r.end_time_ns:
            return replace(entry, recording=i)
    return entry
