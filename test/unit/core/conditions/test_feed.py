"""FeatureFeed, the one loop from messages to features: the same features however the messages
are batched, image kinds told by content, malformed messages reported, unset stamps timed by
receipt, compressed depth measured as depth."""

from __future__ import annotations

import struct
from typing import Any

import cv2
import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from gap_monitor.core.conditions.feed import FeatureFeed, FeedSample, FeedStream
from gap_monitor.core.conditions.settings import ConditionSettings
from gap_monitor.core.conditions.stream import StreamConditions
from gap_monitor.core.io.modalities import COMPRESSED_IMAGE, IMAGE, IMU

TS = get_typestore(Stores.ROS2_JAZZY)
T = TS.types
NS = 1_000_000_000


def header(stamp_ns: int) -> Any:
    return T["std_msgs/msg/Header"](
        stamp=T["builtin_interfaces/msg/Time"](sec=stamp_ns // NS, nanosec=stamp_ns % NS), frame_id="f"
    )


def vec3(x: float, y: float, z: float) -> Any:
    return T["geometry_msgs/msg/Vector3"](x=x, y=y, z=z)


def imu_bytes(stamp_ns: int, rng: np.random.Generator) -> bytes:
    msg = T[IMU](
        header=header(stamp_ns),
        orientation=T["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0),
        orientation_covariance=np.zeros(9),
        angular_velocity=vec3(*rng.normal(0.0, 0.1, 3)),
        angular_velocity_covariance=np.zeros(9),
        linear_acceleration=vec3(*(rng.normal(0.0, 0.5, 3) + np.array([0.0, 0.0, 9.81]))),
        linear_acceleration_covariance=np.zeros(9),
    )
    return bytes(TS.serialize_cdr(msg, IMU))


def image_bytes(stamp_ns: int, encoding: str, pixels: np.ndarray) -> bytes:
    height, width = pixels.shape[:2]
    msg = T[IMAGE](
        header=header(stamp_ns),
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=0,
        step=pixels.strides[0],
        data=np.frombuffer(pixels.tobytes(), dtype=np.uint8),
    )
    return bytes(TS.serialize_cdr(msg, IMAGE))


def compressed_depth_bytes(stamp_ns: int, depth_mm: np.ndarray) -> bytes:
    """compressed_depth_image_transport's layout: a 12-byte header (format, two quantisation
    floats) then a 16-bit png."""
    ok, png = cv2.imencode(".png", depth_mm)
    assert ok
    data = struct.pack("<iff", 0, 0.0, 0.0) + png.tobytes()
    msg = T[COMPRESSED_IMAGE](
        header=header(stamp_ns), format="16UC1; compressedDepth png", data=np.frombuffer(data, np.uint8)
    )
    return bytes(TS.serialize_cdr(msg, COMPRESSED_IMAGE))


def imu_stream(n: int, seed: int = 1) -> list[tuple[int, bytes]]:
    rng = np.random.default_rng(seed)
    t0 = 100 * NS
    return [(t0 + i * 5_000_000 + 700_000, imu_bytes(t0 + i * 5_000_000, rng)) for i in range(n)]


def run(feed: FeatureFeed, messages: list[tuple[str, int, bytes]]) -> list[FeedSample]:
    out: list[FeedSample] = []
    for topic, received, data in messages:
        out.extend(feed.push(topic, received, data))
    out.extend(feed.flush())
    return out


@pytest.mark.parametrize(("batch_max", "span_ms"), [(1, None), (7, None), (4096, None), (4096, 200)])
def test_windowed_features_do_not_depend_on_batching(batch_max: int, span_ms: int | None) -> None:
    messages = imu_stream(1200)
    settings = ConditionSettings()
    reference = StreamConditions("imu", IMU, settings)
    expected = []
    for received, data in messages:
        stamp = struct.unpack_from("<iI", data, 4)
        features = reference.on_message(stamp[0] * NS + stamp[1], data)
        if features is not None:
            expected.append((stamp[0] * NS + stamp[1], received, features))
    errors: list[tuple[str, str]] = []
    feed = FeatureFeed(
        {"/imu": FeedStream("imu", IMU)},
        settings,
        lambda t, why: errors.append((t, why)),
        batch_max=batch_max,
        batch_span_ns=None if span_ms is None else span_ms * 1_000_000,
    )
    got = run(feed, [("/imu", r, d) for r, d in messages])
    assert len(expected) > 10 and not errors
    # Same features at the same stamps, each with the receipt time of the message completing it.
    assert [(s.time_ns, s.received_ns, s.features) for s in got] == expected
    assert {s.modality for s in got} == {"imu"} and feed.samples["/imu"] == len(expected)


def test_image_kind_is_told_by_the_encoding_and_frames_are_decimated() -> None:
    rng = np.random.default_rng(2)
    grey = rng.integers(0, 255, (48, 64), dtype=np.uint8)
    depth = rng.integers(300, 3000, (48, 64), dtype=np.uint16)
    messages = []
    for i in range(60):  # 2 s at 30 Hz per topic
        stamp = 10 * NS + i * NS // 30
        messages.append(("/a", stamp + 1, image_bytes(stamp, "mono8", grey)))
        messages.append(("/b", stamp + 1, image_bytes(stamp, "16UC1", depth)))
    feed = FeatureFeed(
        {"/a": FeedStream(None, IMAGE), "/b": FeedStream(None, IMAGE)},
        ConditionSettings(image_rate_hz=5.0),
        lambda t, why: pytest.fail(f"{t}: {why}"),
    )
    assert feed.modality("/a") is None
    samples = run(feed, messages)
    assert (feed.modality("/a"), feed.modality("/b")) == ("camera", "depth")
    assert {s.topic: s.modality for s in samples} == {"/a": "camera", "/b": "depth"}
    assert feed.samples == {"/a": 10, "/b": 10}  # 5 Hz over 2 s
    assert "mean_luminance" in samples[0].features and "valid_fraction" in samples[1].features


def test_compressed_depth_is_measured_as_depth() -> None:
    depth = np.full((40, 60), 1500, dtype=np.uint16)
    depth[:10] = 0  # holes
    feed = FeatureFeed(
        {"/d": FeedStream(None, COMPRESSED_IMAGE)}, ConditionSettings(), lambda t, w: pytest.fail(w)
    )
    samples = run(feed, [("/d", NS + 5, compressed_depth_bytes(NS, depth))])
    assert feed.modality("/d") == "depth"
    assert samples and samples[0].features["valid_fraction"] == pytest.approx(0.75)


def test_malformed_messages_are_reported_and_the_stream_goes_on() -> None:
    errors: list[tuple[str, str]] = []
    messages = imu_stream(300)
    feed = FeatureFeed(
        {"/imu": FeedStream("imu", IMU), "/cam": FeedStream(None, IMAGE)},
        ConditionSettings(),
        lambda t, why: errors.append((t, why)),
    )
    garbage = [("/imu", messages[10][0], b"\x00\x01\x00\x00garbage"), ("/cam", NS, b"\x00\x01\x00\x00xx")]
    samples = run(feed, [("/imu", r, d) for r, d in messages] + garbage)
    assert sorted(t for t, _ in errors) == ["/cam", "/imu"] and all(why for _, why in errors)
    assert feed.modality("/cam") is None  # still unknown: no readable frame yet
    assert samples and all(s.topic == "/imu" for s in samples)


def test_unset_stamps_are_timed_by_receipt_and_counted() -> None:
    grey = np.zeros((8, 8), dtype=np.uint8)
    feed = FeatureFeed({"/c": FeedStream("camera", IMAGE)}, ConditionSettings(), lambda t, w: None)
    samples = run(feed, [("/c", 50 * NS + k * NS // 10, image_bytes(0, "mono8", grey)) for k in range(10)])
    assert feed.time_fallbacks["/c"] == 10
    assert [s.time_ns for s in samples] == [s.received_ns for s in samples]
    assert [s.time_ns for s in samples] == [50 * NS, 50 * NS + 2 * NS // 10, 50 * NS + 4 * NS // 10,
                                            50 * NS + 6 * NS // 10, 50 * NS + 8 * NS // 10]
