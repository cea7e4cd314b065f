"""Temporary snapshot folders a crash left behind (`<name>.tmp-XXXXXXXX/`): keep or report.

A writer killed after a snapshot's files were written but before the rename leaves a complete
snapshot under its temporary name. `verify_snapshot` says whether a folder is complete: its
`metadata.yaml` names one MCAP whose footer and summary are there, whose chunk CRCs are valid
and whose message counts (total and per topic) match the metadata and the MCAP's statistics.
The writer renames a complete folder to its final name and deletes an incomplete one; both are
reported (see `CaptureNotice`), never done silently.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from gap_monitor.core.capture.policy import TMP_MARK, CaptureNotice
from gap_monitor.core.capture.snapshot_folder import folder_size, free_path, fsync_dir, write_new_file
from gap_monitor.core.io import rosbag2

__all__ = ["recover_temporary", "verify_snapshot"]


def verify_snapshot(folder: Path) -> str:
    """Why the snapshot folder is not complete ("" when it is)."""
    try:
        with (folder / rosbag2.METADATA_FILE).open("rb") as f:
            info = yaml.safe_load(f)["rosbag2_bagfile_information"]
        (mcap_name,) = info["relative_file_paths"]
        expected_total = int(info["message_count"])
        expected = {
            t["topic_metadata"]["name"]: int(t["message_count"]) for t in info["topics_with_message_count"]
        }
    except FileNotFoundError:
        return f"no {rosbag2.METADATA_FILE} (writing had not finished)"
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as err:
        return f"{rosbag2.METADATA_FILE} unreadable: {type(err).__name__}: {err}"
    from mcap.exceptions import McapError
    from mcap.reader import make_reader

    try:
        with (folder / mcap_name).open("rb") as f:
            reader = make_reader(f, validate_crcs=True)
            summary = reader.get_summary()
            if summary is None or summary.statistics is None:
                return f"{mcap_name}: no summary (the MCAP was not finished)"
            counted: Counter[str] = Counter(
                channel.topic for _, channel, _ in reader.iter_messages(log_time_order=False)
            )
            stated = summary.statistics.message_count
    except (McapError, OSError, ValueError, EOFError) as err:
        return f"{mcap_name}: {type(err).__name__}: {err}"
    total = sum(counted.values())
    if not total == stated == expected_total:
        return f"{mcap_name}: {total} messages read, {stated} in its statistics, {expected_total} in metadata"
    wrong = sorted(t for t in set(counted) | set(expected) if counted.get(t, 0) != expected.get(t, 0))
    if wrong:
        return f"{mcap_name}: message counts differ from {rosbag2.METADATA_FILE} for {', '.join(wrong)}"
    return ""


def recover_temporary(folder: Path) -> CaptureNotice:
    """Rename a complete temporary folder to its final name (writing a missing trigger.json from
    metadata.yaml), or delete an incomplete one; say which, and why."""
    base = folder.name.split(TMP_MARK)[0]
    problem = verify_snapshot(folder)
    if problem:
        size = folder_size(folder)
        shutil.rmtree(folder, ignore_errors=True)
        return CaptureNotice(
            "lost",
            base,
            f"incomplete snapshot {folder.name} ({size} bytes) left by an interrupted writer was "
            f"deleted: {problem}",
            folder,
        )
    note = ""
    if not _readable_json(folder / "trigger.json"):
        (folder / "trigger.json").unlink(missing_ok=True)
        write_new_file(folder / "trigger.json", _trigger_summary(folder, base))
        note = "; trigger.json rebuilt from metadata.yaml"
    final = free_path(folder.parent / base)
    fsync_dir(folder)
    folder.rename(final)
    fsync_dir(folder.parent)
    return CaptureNotice(
        "recovered",
        final.name,
        f"complete snapshot left under the temporary name {folder.name} by an interrupted writer "
        f"was kept as {final.name}{note}",
        final,
    )


def _readable_json(path: Path) -> bool:
    try:
        json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return True


def _trigger_summary(folder: Path, name: str) -> bytes:
    with (folder / rosbag2.METADATA_FILE).open("rb") as f:
        info: dict[str, Any] = yaml.safe_load(f)["rosbag2_bagfile_information"]
    triggers = json.loads(info.get("custom_data", {}).get("gap_monitor.triggers", "[]"))
    summary = {
        "snapshot": name,
        "recovered": True,
        "message_count": info["message_count"],
        "triggers": triggers,
    }
    return json.dumps(summary, indent=2).encode() + b"\n"
