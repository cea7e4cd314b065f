"""rosbag2 folder pieces: type names, definitions, hashes, metadata.yaml and the MCAP record."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml
from mcap.reader import make_reader
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from gap_monitor.core.io import rosbag2
from gap_monitor.core.io.mcap_writer import McapStream

POINT = "demo_msgs/msg/Point2"
POINT_MSG = "float64 x\nfloat64 y\n"
HASH = "RIHS01_" + "ab" * 32
# What rosbag2 (Humble/Jazzy, metadata version 8) stores for a transient-local publisher.
QOS = """- history: 3
  depth: 0
  reliability: 1
  durability: 1
  deadline:
    sec: 9223372036
    nsec: 854775807
  lifespan:
    sec: 9223372036
    nsec: 854775807
  liveliness: 1
  liveliness_lease_duration:
    sec: 9223372036
    nsec: 854775807
  avoid_ros_namespace_conventions: false"""


@pytest.fixture
def prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An ament prefix holding only demo_msgs/msg/Point2 (its .msg and rosidl's .json)."""
    msg_dir = tmp_path / "prefix" / "share" / "demo_msgs" / "msg"
    msg_dir.mkdir(parents=True)
    (msg_dir / "Point2.msg").write_text(POINT_MSG)
    doc = {"type_hashes": [{"type_name": POINT, "hash_string": HASH}]}
    (msg_dir / "Point2.json").write_text(json.dumps(doc))
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path / "prefix"))
    return tmp_path / "prefix"


def test_type_name_normalises_and_keeps_other_names() -> None:
    assert rosbag2.type_name("sensor_msgs/Image") == "sensor_msgs/msg/Image"
    assert rosbag2.type_name("sensor_msgs/msg/Image") == "sensor_msgs/msg/Image"
    assert rosbag2.type_name("not a type") == "not a type"


def test_definitions_and_hashes_come_from_the_prefix(prefix: Path) -> None:
    found, problems = rosbag2.message_definitions({POINT, "missing_msgs/msg/Gone", "not a type"})
    assert found[POINT] == POINT_MSG
    # Types without a definition are kept with an empty schema, and each says why.
    assert found["missing_msgs/msg/Gone"] == "" and found["not a type"] == ""
    assert len(problems) == 2 and any("missing_msgs" in p for p in problems)
    assert rosbag2.type_hash(POINT) == HASH
    assert rosbag2.type_hash("missing_msgs/msg/Gone") == ""
    assert rosbag2.type_hash("not a type") == ""
    assert rosbag2.channel_metadata(POINT, QOS) == {"offered_qos_profiles": QOS, "topic_type_hash": HASH}


def test_a_folder_made_of_these_pieces_opens_as_a_rosbag2(prefix: Path, tmp_path: Path) -> None:
    store = get_typestore(Stores.EMPTY)
    store.register(get_types_from_msg(POINT_MSG, POINT))
    folder = tmp_path / "bag"
    folder.mkdir()
    times = [1_000_000_000 + k * 10_000_000 for k in range(5)]
    out = io.BytesIO()
    stream = McapStream(out, "none")
    stream.start(profile=rosbag2.MCAP_PROFILE, library="test")
    definitions, problems = rosbag2.message_definitions({POINT})
    assert not problems
    schema = stream.register_schema(POINT, rosbag2.SCHEMA_ENCODING, definitions[POINT].encode())
    channel = stream.register_channel(
        "/point", rosbag2.MESSAGE_ENCODING, schema, rosbag2.channel_metadata(POINT, QOS)
    )
    for k, t in enumerate(times):
        data = store.serialize_cdr(store.types[POINT](x=float(k), y=2.0), POINT)
        stream.add_message(channel, t, bytes(data), t, k + 1)
    topics = [rosbag2.BagTopic("/point", POINT, QOS, len(times))]
    bag_info = rosbag2.bag_metadata(
        "bag_0.mcap", topics, len(times), times[0], times[-1] - times[0], {"k": "v"}
    )
    stream.add_metadata(*rosbag2.mcap_metadata_record(bag_info))
    stream.finish()
    (folder / "bag_0.mcap").write_bytes(out.getvalue())
    (folder / rosbag2.METADATA_FILE).write_bytes(rosbag2.metadata_yaml(bag_info))

    meta = yaml.safe_load((folder / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["version"] == rosbag2.METADATA_VERSION and meta["custom_data"] == {"k": "v"}
    (topic,) = meta["topics_with_message_count"]
    assert topic["topic_metadata"]["type_description_hash"] == HASH
    with Reader(folder) as reader:
        (conn,) = reader.connections
        assert (conn.topic, conn.msgtype, conn.msgcount) == ("/point", POINT, len(times))
        assert reader.start_time == times[0] and reader.message_count == len(times)
        got = [(t, store.deserialize_cdr(raw, POINT).x) for _, t, raw in reader.messages()]
    assert got == [(t, float(k)) for k, t in enumerate(times)]
    # The same metadata inside the MCAP, for a .mcap opened without its folder.
    records = {m.name: m.metadata for m in make_reader(io.BytesIO(out.getvalue())).iter_metadata()}
    assert yaml.safe_load(records["rosbag2"]["serialized_metadata"]) == bag_info
