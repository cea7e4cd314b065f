"""The rosbag2 side of a bag folder written as one MCAP: `metadata.yaml` and what its MCAP carries.

A rosbag2 folder holds `metadata.yaml` (version 8: `offered_qos_profiles` as a YAML string, read
by Humble, Jazzy and rosbags) and its storage files. With the MCAP storage, schemas are
`ros2msg` (the full definition from the ament index, see `msgdefs`), channels carry
`offered_qos_profiles` and `topic_type_hash` as metadata, and the same bag metadata is repeated
in a `rosbag2` metadata record, which rosbag2's MCAP plugin reads when a single `.mcap` is opened
without its folder. This module builds those pieces; writing the files is the caller's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

import yaml

from gap_monitor.core.io.msgdefs import (
    MessageDefinitionNotFoundError,
    message_definition,
    normalize_type,
    type_description_hash,
)

__all__ = [
    "MCAP_PROFILE",
    "MESSAGE_ENCODING",
    "METADATA_FILE",
    "METADATA_VERSION",
    "SCHEMA_ENCODING",
    "BagTopic",
    "bag_metadata",
    "channel_metadata",
    "mcap_metadata_record",
    "message_definitions",
    "metadata_yaml",
    "type_hash",
    "type_name",
]

METADATA_FILE = "metadata.yaml"
METADATA_VERSION = 8  # string offered_qos_profiles; read by Humble, Jazzy and rosbags
SCHEMA_ENCODING = "ros2msg"
MESSAGE_ENCODING = "cdr"
MCAP_PROFILE = "ros2"


@dataclass(frozen=True)
class BagTopic:
    """One topic of a bag: `msgtype` as `type_name` gives it, `message_count` in the bag."""

    name: str
    msgtype: str
    offered_qos_profiles: str
    message_count: int


def type_name(msgtype: str) -> str:
    """`pkg/msg/Type` for any spelling rosbag2 accepts; other names as they are."""
    try:
        return normalize_type(msgtype)
    except ValueError:
        return msgtype


def message_definitions(msgtypes: Set[str]) -> tuple[dict[str, str], list[str]]:
    """Definitions by type, and the problems for those left empty: the data are still worth
    keeping, and readers report the empty schema of that one type only."""
    found: dict[str, str] = {}
    problems: list[str] = []
    for msgtype in sorted(msgtypes):
        try:
            found[msgtype] = message_definition(msgtype)
        except (MessageDefinitionNotFoundError, ValueError) as err:
            found[msgtype] = ""
            problems.append(str(err))
    return found, problems


def type_hash(msgtype: str) -> str:
    """The type's RIHS01 description hash; "" when none is installed or `msgtype` is no type name."""
    try:
        return type_description_hash(msgtype)
    except ValueError:
        return ""


def channel_metadata(msgtype: str, offered_qos_profiles: str) -> dict[str, str]:
    """The metadata of an MCAP channel, as rosbag2's MCAP plugin writes it."""
    return {"offered_qos_profiles": offered_qos_profiles, "topic_type_hash": type_hash(msgtype)}


def bag_metadata(
    mcap_name: str,
    topics: Sequence[BagTopic],
    message_count: int,
    starting_ns: int,
    duration_ns: int,
    custom_data: Mapping[str, str],
) -> dict[str, Any]:
    """The `rosbag2_bagfile_information` of a bag made of the one MCAP file `mcap_name`."""
    hashes = {t: type_hash(t) for t in {topic.msgtype for topic in topics}}
    return {
        "version": METADATA_VERSION,
        "storage_identifier": "mcap",
        "duration": {"nanoseconds": duration_ns},
        "starting_time": {"nanoseconds_since_epoch": starting_ns},
        "message_count": message_count,
        "topics_with_message_count": [
            {
                "topic_metadata": {
                    "name": topic.name,
                    "type": topic.msgtype,
                    "serialization_format": MESSAGE_ENCODING,
                    "offered_qos_profiles": topic.offered_qos_profiles,
                    "type_description_hash": hashes[topic.msgtype],
                },
                "message_count": topic.message_count,
            }
            for topic in topics
        ],
        "compression_format": "",
        "compression_mode": "",
        "relative_file_paths": [mcap_name],
        "files": [
            {
                "path": mcap_name,
                "starting_time": {"nanoseconds_since_epoch": starting_ns},
                "duration": {"nanoseconds": duration_ns},
                "message_count": message_count,
            }
        ],
        "custom_data": dict(custom_data),
        "ros_distro": os.environ.get("ROS_DISTRO", ""),
    }


def metadata_yaml(bag_info: Mapping[str, Any]) -> bytes:
    """The contents of `metadata.yaml` for `bag_info` (from `bag_metadata`)."""
    return yaml.safe_dump({"rosbag2_bagfile_information": dict(bag_info)}, sort_keys=False).encode()


def mcap_metadata_record(bag_info: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """The MCAP metadata record (name, values) that repeats `bag_info` inside the MCAP file."""
    return "rosbag2", {"serialized_metadata": yaml.safe_dump(dict(bag_info), sort_keys=False)}
