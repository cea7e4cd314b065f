"""StreamConditions (conditions/stream.py): on_batch (numpy decoding, TimeWindow.push_many) against
on_message, message by message, on streams with the irregularities recordings have: jitter, gaps,
clock steps back, zero stamps, changing frame_ids and joint lists, big-endian and trailing-padded
messages, garbage."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from gap_monitor.core.conditions.features import FeatureError, TimeWindow
from gap_monitor.core.conditions.settings import ConditionSettings
from gap_monitor.core.conditions.stream import ConditionError, StreamConditions, imu_fields
from gap_monitor.core.io import cdr
from gap_monitor.core.io.cdr_batch import decode_batch

TS = get_typestore(Stores.ROS2_JAZZY)
T = TS.types
NS = 1_000_000_000
IMU = "sensor_msgs/msg/Imu"
WRENCH = "geometry_msgs/msg/WrenchStamped"
JOINTS = "sensor_msgs/msg/JointState"


def header(stamp_ns: int, frame_id: str) -> Any:
    return T["std_msgs/msg/Header"](
        stamp=T["builtin_interfaces/msg/Time"](sec=stamp_ns // NS, nanosec=stamp_ns % NS),
        frame_id=frame_id,
    )


def vec3(v: Any) -> Any:
    return T["geometry_msgs/msg/Vector3"](x=float(v[0]), y=float(v[1]), z=float(v[2]))


def imu(rng: np.random.Generator, stamp_ns: int, frame_id: str) -> Any:
    return T[IMU](
        header=header(stamp_ns, frame_id),
        # An onboard filter's orientation and covariances change from message to message too.
        orientation=T["geometry_msgs/msg/Quaternion"](*rng.normal(size=4)),
        orientation_covariance=rng.normal(size=9),
        angular_velocity=vec3(rng.normal(0.0, 0.1, 3)),
        angular_velocity_covariance=rng.normal(size=9),
        linear_acceleration=vec3(rng.normal(0.0, 0.5, 3) + np.array([0.0, 0.0, 9.81])),
        linear_acceleration_covariance=rng.normal(size=9),
    )


def wrench(rng: np.random.Generator, stamp_ns: int, frame_id: str) -> Any:
    return T[WRENCH](
        header=header(stamp_ns, frame_id),
        wrench=T["geometry_msgs/msg/Wrench"](
            force=vec3(rng.normal(0.0, 2.0, 3)), torque=vec3(rng.normal(0.0, 0.1, 3))
        ),
    )


def joints(rng: np.random.Generator, stamp_ns: int, frame_id: str, names: Sequence[str],
           positions: int, velocities: int, efforts: int) -> Any:
    return T[JOINTS](
        header=header(stamp_ns, frame_id), name=list(names),
        position=rng.normal(size=positions), velocity=rng.normal(size=velocities),
        effort=rng.normal(size=efforts),
    )


def stamps(rng: np.random.Generator, n: int, rate_hz: float) -> list[int]:
    """Jittered stamps with a gap, a step back (bag loop) and a few zero stamps."""
    period = NS / rate_hz
    out, t = [], 1_700_000_000 * NS
    for i in range(n):
        t += int(period * rng.uniform(0.8, 1.2))
        if i == n // 3:
            t += 3 * NS  # an outage longer than the window
        if i == n // 2:
            t -= 5 * NS  # the clock steps back
        out.append(t)
    for i in rng.choice(n, size=4, replace=False):
        out[int(i)] = 0
    return out


def serialize(msg: Any, msgtype: str, rng: np.random.Generator) -> bytes:
    little = rng.random() > 0.03
    data = bytes(TS.serialize_cdr(msg, msgtype, little_endian=little))
    roll = rng.random()
    if roll < 0.02:
        return data[: int(rng.integers(0, len(data)))]  # truncated
    if roll < 0.04:
        return data + b"\0" * int(rng.integers(1, 5))  # padded as some DDS writers do
    return data


def frame_id(rng: np.random.Generator, i: int) -> str:
    roll = rng.random()
    if roll < 0.02:
        return f"link_{i}"  # a counter: every message its own layout
    if roll < 0.05:
        return "other_link"
    return "imu_link"


def stream(kind: str, n: int, seed: int) -> tuple[list[int], list[bytes]]:
    rng = np.random.default_rng(seed)
    times = stamps(rng, n, 150.0)
    log_times = [t or 1_700_000_000 * NS + i * 2_500_000 for i, t in enumerate(times)]
    datas = []
    for i, t in enumerate(times):
        if kind == "imu":
            msg, msgtype = imu(rng, t, frame_id(rng, i)), IMU
        elif kind == "wrench":
            msg, msgtype = wrench(rng, t, frame_id(rng, i)), WRENCH
        else:
            names = ["j1", "j2", "j3"] if (i // 500) % 2 == 0 else ["j1", "j2"]
            shape = [(len(names), len(names), len(names))] * 8 + [
                (len(names), 0, 0), (len(names), len(names), 1), (len(names) - 1, 0, 0)
            ]
            p, v, e = shape[int(rng.integers(len(shape)))]
            if rng.random() < 0.005:
                names = ["j1", "j1"]  # duplicate names: no window can hold them
                p = v = e = 2
            msg, msgtype = joints(rng, t, frame_id(rng, i), names, p, v, e), JOINTS
        datas.append(serialize(msg, msgtype, rng))
    if kind != "joints":
        datas[7] = b"\x00\x05" + datas[7][2:]  # an encapsulation no decoder knows
    return log_times, datas


Outcome = tuple[list[Any], list[str], int]


def one_by_one(kind: str, log_times: Sequence[int], datas: Sequence[bytes]) -> Outcome:
    """What `profile build` did before batches: header stamp (log time when zero), on_message."""
    sc = StreamConditions(kind, {"imu": IMU, "wrench": WRENCH, "joints": JOINTS}[kind], ConditionSettings())
    features, malformed, fallbacks = [], [], 0
    for log_time, data in zip(log_times, datas, strict=True):
        try:
            stamp = cdr.header_stamp_ns(data)
            if not stamp:
                fallbacks += 1
                stamp = log_time
            out = sc.on_message(stamp, data)
        except (cdr.CdrError, ConditionError) as exc:
            malformed.append(str(exc))
            continue
        if out is not None:
            features.append((stamp, out))
    return features, malformed, fallbacks


def batched(kind: str, log_times: Sequence[int], datas: Sequence[bytes], sizes: Sequence[int]) -> Outcome:
    sc = StreamConditions(kind, {"imu": IMU, "wrench": WRENCH, "joints": JOINTS}[kind], ConditionSettings())
    features, malformed, fallbacks, start = [], [], 0, 0
    for size in sizes:
        out = sc.on_batch(log_times[start : start + size], datas[start : start + size])
        for sample in out.features:
            # The position names the message that completed the window (timed by its stamp).
            assert cdr.header_stamp_ns(datas[start + sample.position]) in (sample.time_ns, 0)
            features.append((sample.time_ns, sample.features))
        malformed += out.malformed
        fallbacks += out.log_time_fallbacks
        start += size
    assert start == len(datas)
    return features, malformed, fallbacks


def same_features(a: list[tuple[int, dict[str, float]]], b: list[tuple[int, dict[str, float]]]) -> None:
    assert [t for t, _ in a] == [t for t, _ in b]
    for (_, fa), (_, fb) in zip(a, b, strict=True):
        assert fa.keys() == fb.keys()
        for key, value in fa.items():
            assert value == fb[key] or (math.isnan(value) and math.isnan(fb[key])), key


@pytest.mark.parametrize("kind", ["imu", "wrench", "joints"])
@pytest.mark.parametrize("sizes", [[3000], [1, 999, 2000], [700] * 4 + [200]], ids=["one", "uneven", "even"])
def test_on_batch_gives_what_on_message_gives(kind: str, sizes: list[int]) -> None:
    log_times, datas = stream(kind, 3000, seed=len(kind))
    reference = one_by_one(kind, log_times, datas)
    result = batched(kind, log_times, datas, sizes)
    assert len(reference[0]) > 50  # the streams do give features
    assert len(reference[1]) > 10  # and malformed messages
    same_features(result[0], reference[0])
    assert result[1] == reference[1]
    assert result[2] == reference[2] > 0


def test_on_batch_refuses_images() -> None:
    with pytest.raises(ValueError, match="modality: 'camera'"):
        StreamConditions("camera", "sensor_msgs/msg/Image").on_batch([], [])


def test_duplicate_joint_names_are_malformed_not_a_crash() -> None:
    rng = np.random.default_rng(1)
    data = bytes(TS.serialize_cdr(joints(rng, NS, "", ["a", "a"], 2, 2, 2), JOINTS))
    with pytest.raises(ConditionError, match="unique"):
        StreamConditions("joints", JOINTS).on_message(NS, data)


def test_a_joint_list_beyond_the_cap_is_malformed_in_both_paths_and_the_stream_goes_on() -> None:
    """10,000 joints a message would be 30,000 features a hop: refused as malformed, one short line."""
    from gap_monitor.core.conditions.features.joints import MAX_JOINTS

    rng = np.random.default_rng(1)
    many = [f"j{i}" for i in range(10_000)]
    assert len(many) > MAX_JOINTS

    def message(k: int, names: list[str], width: int) -> bytes:
        return bytes(TS.serialize_cdr(joints(rng, k * NS // 100, "", names, width, width, 0), JOINTS))

    flood = [message(k, many, 10_000) for k in range(3)]
    sc = StreamConditions("joints", JOINTS)
    too_many = f"10000 joints in one message: more than the {MAX_JOINTS}"
    with pytest.raises(ConditionError, match=too_many) as caught:
        sc.on_message(NS, flood[0])
    assert len(str(caught.value)) < 200
    batch = StreamConditions("joints", JOINTS).on_batch([k * NS // 100 for k in range(3)], flood)
    assert batch.features == [] and len(batch.malformed) == 3
    assert all("more than the" in why and len(why) < 200 for why in batch.malformed)
    arm = [message(k, ["a", "b"], 2) for k in range(300)]
    assert any(sc.on_message(k * NS // 100, data) is not None for k, data in enumerate(arm))


def decoded_reference(datas: Sequence[bytes], decode: Callable[[bytes], Any]) -> dict[int, Any]:
    out = {}
    for i, data in enumerate(datas):
        try:
            out[i] = decode(data)
        except cdr.CdrError as exc:
            out[i] = str(exc)
    return out


@pytest.mark.parametrize("kind", ["imu", "wrench", "joints"])
def test_decode_batch_matches_the_decoder_message_by_message(kind: str) -> None:
    _, datas = stream(kind, 1500, seed=7)
    decode, fields = {
        "imu": (cdr.decode_imu, imu_fields),
        "wrench": (cdr.decode_wrench_stamped, lambda m: (m.force, m.torque)),
        "joints": (cdr.decode_joint_state, lambda m: (m.position, m.velocity, m.effort)),
    }[kind]
    batch = decode_batch(datas, decode, fields, lambda m: m.header.stamp_ns)
    reference = decoded_reference(datas, decode)
    seen = set(batch.errors)
    for index, why in batch.errors.items():
        assert reference[index] == why
    vectorized = 0
    for block in batch.blocks:
        vectorized += block.rows.size if block.rows.size > 1 else 0
        for k, index in enumerate(block.rows.tolist()):
            ref = reference[index]
            assert not isinstance(ref, str)
            assert block.stamps_ns[k] == ref.header.stamp_ns
            for got, want in zip(block.fields, fields(ref), strict=True):
                np.testing.assert_array_equal(got[k], want.reshape(-1))
            if kind == "joints":
                assert block.template.name == ref.name
            seen.add(index)
    assert seen == set(range(len(datas)))
    assert vectorized > len(datas) // 2  # most messages took the numpy path


def test_push_many_rejects_a_mis_sized_channel_before_storing() -> None:
    window = TimeWindow(1.0, 0.2, {"a": 3})
    with pytest.raises(FeatureError, match="a:"):
        list(window.push_many(np.arange(4, dtype=np.int64), {"a": (np.zeros((4, 2)), None)}))
    assert window.count("a") == 0
