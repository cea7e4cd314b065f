"""cdr.py against bytes serialized by rosbags (an independent CDR implementation)."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_typestore

from gap_monitor.core.io import cdr
from gap_monitor.core.io.cdr import CdrError

TS = get_typestore(Stores.ROS2_JAZZY)
T = TS.types
ENDIANS = [pytest.param(True, id="le"), pytest.param(False, id="be")]


def ser(msg: Any, msgtype: str, little_endian: bool = True) -> bytes:
    return bytes(TS.serialize_cdr(msg, msgtype, little_endian=little_endian))


def header(sec: int = 1_700_000_000, nanosec: int = 123_456_789, frame_id: str = "cam") -> Any:
    return T["std_msgs/msg/Header"](
        stamp=T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id=frame_id
    )


def image(h: int, w: int, encoding: str, step: int, data: np.ndarray, **kw: Any) -> Any:
    return T["sensor_msgs/msg/Image"](
        header=header(**kw), height=h, width=w, encoding=encoding,
        is_bigendian=0, step=step, data=data.astype(np.uint8),
    )


def vec3(v: Any) -> Any:
    return T["geometry_msgs/msg/Vector3"](x=float(v[0]), y=float(v[1]), z=float(v[2]))


def imu(rng: np.random.Generator, **kw: Any) -> Any:
    q = rng.normal(size=4)
    return T["sensor_msgs/msg/Imu"](
        header=header(**kw),
        orientation=T["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2], w=q[3]),
        orientation_covariance=rng.normal(size=9),
        angular_velocity=vec3(rng.normal(size=3)),
        angular_velocity_covariance=rng.normal(size=9),
        linear_acceleration=vec3(rng.normal(size=3)),
        linear_acceleration_covariance=rng.normal(size=9),
    )


def joint_state(names: list[str], pos: int, vel: int, eff: int, **kw: Any) -> Any:
    rng = np.random.default_rng(len(names) * 100 + pos * 10 + vel)
    return T["sensor_msgs/msg/JointState"](
        header=header(**kw), name=names, position=rng.normal(size=pos),
        velocity=rng.normal(size=vel), effort=rng.normal(size=eff),
    )


def wrench(force: Any, torque: Any, **kw: Any) -> Any:
    return T["geometry_msgs/msg/WrenchStamped"](
        header=header(**kw),
        wrench=T["geometry_msgs/msg/Wrench"](force=vec3(force), torque=vec3(torque)),
    )


def assert_header(decoded: cdr.Header, ref: Any) -> None:
    assert decoded.stamp_ns == ref.stamp.sec * 1_000_000_000 + ref.stamp.nanosec
    assert decoded.frame_id == ref.frame_id


FRAME_IDS = ["", "a", "ab", "abc", "abcd", "abcde", "imu_link_7", "kamera_ü"]


@pytest.mark.parametrize("le", ENDIANS)
@pytest.mark.parametrize("frame_id", FRAME_IDS)
@pytest.mark.parametrize(
    ("h", "w", "encoding", "bpp"),
    [(0, 0, "mono8", 1), (3, 5, "mono8", 1), (2, 3, "rgb8", 3), (4, 3, "16UC1", 2),
     (1, 1, "bgra8", 4), (2, 2, "32FC1", 4)],
)
def test_image_matches_rosbags(le: bool, frame_id: str, h: int, w: int, encoding: str, bpp: int) -> None:
    rng = np.random.default_rng(h * 31 + w)
    step = w * bpp + (3 if h else 0)  # padded rows exercise `step`
    data = rng.integers(0, 256, size=h * step)
    ref = image(h, w, encoding, step, data, frame_id=frame_id)
    raw = ser(ref, "sensor_msgs/msg/Image", le)
    msg = cdr.decode_image(raw)
    assert_header(msg.header, ref.header)
    assert (msg.height, msg.width, msg.encoding, msg.step) == (h, w, encoding, step)
    assert msg.is_bigendian is False
    np.testing.assert_array_equal(msg.data, ref.data)
    if h:
        assert np.shares_memory(msg.data, np.frombuffer(raw, np.uint8)), "data should be a view"
    pixels = msg.pixels()
    dtype = {"mono8": "u1", "rgb8": "u1", "bgra8": "u1", "16UC1": "<u2", "32FC1": "<f4"}[encoding]
    channels = bpp // np.dtype(dtype).itemsize
    rows = ref.data.reshape(h, step)[:, : w * bpp].copy()
    expected = rows.view(dtype).reshape((h, w, channels) if channels > 1 else (h, w))
    np.testing.assert_array_equal(pixels, expected)


def test_image_pixels_big_endian_and_bad_layouts() -> None:
    values = np.array([[1, 2, 300], [65535, 0, 4096]], dtype=">u2")
    ref = T["sensor_msgs/msg/Image"](
        header=header(), height=2, width=3, encoding="mono16", is_bigendian=1, step=6,
        data=np.frombuffer(values.tobytes(), np.uint8),
    )
    msg = cdr.decode_image(ser(ref, "sensor_msgs/msg/Image"))
    assert msg.is_bigendian is True
    np.testing.assert_array_equal(msg.pixels(), values)

    short_step = image(2, 4, "rgb8", 11, np.zeros(22))
    with pytest.raises(CdrError, match="step 11"):
        cdr.decode_image(ser(short_step, "sensor_msgs/msg/Image")).pixels()
    short_data = image(3, 4, "mono8", 4, np.zeros(11))
    with pytest.raises(CdrError, match="cannot hold 3 rows"):
        cdr.decode_image(ser(short_data, "sensor_msgs/msg/Image")).pixels()
    unknown = image(1, 1, "jpeg", 1, np.zeros(1))
    with pytest.raises(CdrError, match="no pixel layout"):
        cdr.decode_image(ser(unknown, "sensor_msgs/msg/Image")).pixels()


@pytest.mark.parametrize("le", ENDIANS)
@pytest.mark.parametrize("fmt", ["", "png", "jpeg", "rgb8; jpeg compressed bgr8"])
@pytest.mark.parametrize("size", [0, 1, 7, 64])
def test_compressed_image_matches_rosbags(le: bool, fmt: str, size: int) -> None:
    data = np.random.default_rng(size).integers(0, 256, size=size).astype(np.uint8)
    ref = T["sensor_msgs/msg/CompressedImage"](header=header(frame_id=fmt[:3]), format=fmt, data=data)
    raw = ser(ref, "sensor_msgs/msg/CompressedImage", le)
    msg = cdr.decode_compressed_image(raw)
    assert_header(msg.header, ref.header)
    assert msg.format == fmt
    np.testing.assert_array_equal(msg.data, data)


@pytest.mark.parametrize("le", ENDIANS)
@pytest.mark.parametrize("frame_id", FRAME_IDS)
def test_imu_matches_rosbags(le: bool, frame_id: str) -> None:
    ref = imu(np.random.default_rng(len(frame_id)), frame_id=frame_id)
    raw = ser(ref, "sensor_msgs/msg/Imu", le)
    msg = cdr.decode_imu(raw)
    assert_header(msg.header, ref.header)
    o = ref.orientation
    np.testing.assert_array_equal(msg.orientation, [o.x, o.y, o.z, o.w])
    np.testing.assert_array_equal(msg.orientation_covariance, ref.orientation_covariance.reshape(3, 3))
    av, la = ref.angular_velocity, ref.linear_acceleration
    np.testing.assert_array_equal(msg.angular_velocity, [av.x, av.y, av.z])
    np.testing.assert_array_equal(
        msg.angular_velocity_covariance, ref.angular_velocity_covariance.reshape(3, 3)
    )
    np.testing.assert_array_equal(msg.linear_acceleration, [la.x, la.y, la.z])
    np.testing.assert_array_equal(
        msg.linear_acceleration_covariance, ref.linear_acceleration_covariance.reshape(3, 3)
    )


@pytest.mark.parametrize("le", ENDIANS)
@pytest.mark.parametrize(
    ("names", "pos", "vel", "eff"),
    [
        ([], 0, 0, 0),
        (["a"], 1, 0, 1),  # empty velocity between non-empty arrays: no alignment for empties
        (["j1", "joint_2", "abc"], 3, 3, 3),
        (["x" * n for n in range(1, 8)], 7, 0, 7),  # the KUKA shape: velocity present, effort
        (["odd"], 0, 2, 0),
        (["ü", ""], 2, 1, 0),
    ],
)
@pytest.mark.parametrize("frame_id", ["", "ab", "base"])
def test_joint_state_matches_rosbags(le: bool, names: list[str], pos: int, vel: int, eff: int,
                                     frame_id: str) -> None:
    ref = joint_state(names, pos, vel, eff, frame_id=frame_id)
    msg = cdr.decode_joint_state(ser(ref, "sensor_msgs/msg/JointState", le))
    assert_header(msg.header, ref.header)
    assert msg.name == tuple(names)
    np.testing.assert_array_equal(msg.position, ref.position)
    np.testing.assert_array_equal(msg.velocity, ref.velocity)
    np.testing.assert_array_equal(msg.effort, ref.effort)


@pytest.mark.parametrize("le", ENDIANS)
@pytest.mark.parametrize("frame_id", FRAME_IDS)
def test_wrench_stamped_matches_rosbags(le: bool, frame_id: str) -> None:
    ref = wrench([1.5, -2.0, 1e-300], [np.inf, -0.0, 7.25], frame_id=frame_id)
    msg = cdr.decode_wrench_stamped(ser(ref, "geometry_msgs/msg/WrenchStamped", le))
    assert_header(msg.header, ref.header)
    np.testing.assert_array_equal(msg.force, [1.5, -2.0, 1e-300])
    np.testing.assert_array_equal(msg.torque, [np.inf, -0.0, 7.25])


@pytest.mark.parametrize("le", ENDIANS)
@pytest.mark.parametrize("text", ["", "a", "ab", "odd", "even", "grüße ✓", "x" * 1001])
def test_string_and_bool_match_rosbags(le: bool, text: str) -> None:
    raw = ser(T["std_msgs/msg/String"](data=text), "std_msgs/msg/String", le)
    assert cdr.decode_string(raw).data == text
    for value in (True, False):
        raw = ser(T["std_msgs/msg/Bool"](data=value), "std_msgs/msg/Bool", le)
        assert cdr.decode_bool(raw).data is value


@pytest.mark.parametrize("le", ENDIANS)
@pytest.mark.parametrize(
    ("sec", "nanosec"),
    [(0, 0), (0, 1), (1, 999_999_999), (1_700_000_000, 5), (2**31 - 1, 999_999_999), (-1, 5),
     (-(2**31), 0)],
)
def test_header_peek(le: bool, sec: int, nanosec: int) -> None:
    ref = wrench([0, 0, 0], [0, 0, 0], sec=sec, nanosec=nanosec, frame_id="ft_sensor")
    raw = ser(ref, "geometry_msgs/msg/WrenchStamped", le)
    assert cdr.header_stamp_ns(raw) == sec * 1_000_000_000 + nanosec
    assert cdr.header_frame_id(raw) == "ft_sensor"
    assert cdr.is_little_endian(raw) is le


def goal_status_array(goals: list[tuple[bytes, int]], sec: int = 1_700_000_000) -> Any:
    return T["action_msgs/msg/GoalStatusArray"](status_list=[
        T["action_msgs/msg/GoalStatus"](
            goal_info=T["action_msgs/msg/GoalInfo"](
                goal_id=T["unique_identifier_msgs/msg/UUID"](uuid=np.frombuffer(uid, np.uint8).copy()),
                stamp=T["builtin_interfaces/msg/Time"](sec=sec + i, nanosec=7 * i),
            ),
            status=status,
        )
        for i, (uid, status) in enumerate(goals)
    ])


def diagnostic_array(statuses: list[tuple[int, str, str, str, list[tuple[str, str]]]], **kw: Any) -> Any:
    return T["diagnostic_msgs/msg/DiagnosticArray"](header=header(**kw), status=[
        T["diagnostic_msgs/msg/DiagnosticStatus"](
            level=level, name=name, message=message, hardware_id=hw,
            values=[T["diagnostic_msgs/msg/KeyValue"](key=k, value=v) for k, v in values],
        )
        for level, name, message, hw, values in statuses
    ])


def float64_multi_array(dims: list[tuple[str, int, int]], offset: int, data: list[float]) -> Any:
    return T["std_msgs/msg/Float64MultiArray"](
        layout=T["std_msgs/msg/MultiArrayLayout"](
            dim=[T["std_msgs/msg/MultiArrayDimension"](label=lb, size=n, stride=st) for lb, n, st in dims],
            data_offset=offset,
        ),
        data=np.array(data, dtype=np.float64),
    )


def twist(linear: Any, angular: Any) -> Any:
    return T["geometry_msgs/msg/Twist"](linear=vec3(linear), angular=vec3(angular))


@pytest.mark.parametrize("le", ENDIANS)
@pytest.mark.parametrize(
    "goals",
    [
        [],
        [(bytes(range(16)), 2)],
        [(bytes(range(16)), 4), (bytes(range(100, 116)), 6), (b"\xff" * 16, -1)],  # int8 stays signed
        [(bytes([i]) * 16, i % 7) for i in range(9)],  # status then uuid then aligned stamp, repeated
    ],
)
def test_goal_status_array_matches_rosbags(le: bool, goals: list[tuple[bytes, int]]) -> None:
    ref = goal_status_array(goals)
    msg = cdr.decode_goal_status_array(ser(ref, "action_msgs/msg/GoalStatusArray", le))
    assert len(msg.status_list) == len(goals)
    for got, want in zip(msg.status_list, ref.status_list, strict=True):
        assert got.goal_id == bytes(want.goal_info.goal_id.uuid)
        assert got.stamp_ns == want.goal_info.stamp.sec * 1_000_000_000 + want.goal_info.stamp.nanosec
        assert got.status == want.status
    assert cdr.GoalStatusMsg.ABORTED == T["action_msgs/msg/GoalStatus"].STATUS_ABORTED


@pytest.mark.parametrize("le", ENDIANS)
@pytest.mark.parametrize(
    "statuses",
    [
        [],
        [(0, "", "", "", [])],
        [(2, "gap_monitor: /cam", "stale", "cam", [("rate_hz", "0.00")]),
         (1, "left motor", "warm ✓", "", [("a", "b"), ("a", "c"), ("", "")]),
         (3, "x" * 5, "y" * 6, "z" * 7, [])],
    ],
)
@pytest.mark.parametrize("frame_id", ["", "abc"])
def test_diagnostic_array_matches_rosbags(le: bool, statuses: list[Any], frame_id: str) -> None:
    ref = diagnostic_array(statuses, frame_id=frame_id)
    raw = ser(ref, "diagnostic_msgs/msg/DiagnosticArray", le)
    msg = cdr.decode_diagnostic_array(raw)
    assert_header(msg.header, ref.header)
    assert cdr.header_stamp_ns(raw) == msg.header.stamp_ns
    got = [(s.level, s.name, s.message, s.hardware_id, list(s.values)) for s in msg.status]
    want = [(s.level, s.name, s.message, s.hardware_id, [(kv.key, kv.value) for kv in s.values])
            for s in ref.status]
    assert got == want


@pytest.mark.parametrize("le", ENDIANS)
@pytest.mark.parametrize(
    ("dims", "offset", "data"),
    [
        ([], 0, []),
        ([], 3, [1.0]),
        ([("j", 7, 7)], 0, [0.1 * i for i in range(7)]),
        ([("abc", 2, 6), ("de", 3, 3)], 1, [np.inf, -0.0, 1e-300, 2.0, 3.0, 4.0, 5.0]),
    ],
)
def test_float64_multi_array_matches_rosbags(le: bool, dims: list[tuple[str, int, int]], offset: int,
                                             data: list[float]) -> None:
    raw = ser(float64_multi_array(dims, offset, data), "std_msgs/msg/Float64MultiArray", le)
    msg = cdr.decode_float64_multi_array(raw)
    assert [(d.label, d.size, d.stride) for d in msg.dim] == dims
    assert msg.data_offset == offset
    np.testing.assert_array_equal(msg.data, np.array(data, dtype=np.float64))


@pytest.mark.parametrize("le", ENDIANS)
def test_twist_and_twist_stamped_match_rosbags(le: bool) -> None:
    lin, ang = [1.5, -2.0, 1e-300], [np.inf, -0.0, 7.25]
    msg = cdr.decode_twist(ser(twist(lin, ang), "geometry_msgs/msg/Twist", le))
    np.testing.assert_array_equal(msg.linear, lin)
    np.testing.assert_array_equal(msg.angular, ang)
    for frame_id in FRAME_IDS:
        ref = T["geometry_msgs/msg/TwistStamped"](header=header(frame_id=frame_id), twist=twist(ang, lin))
        stamped = cdr.decode_twist_stamped(ser(ref, "geometry_msgs/msg/TwistStamped", le))
        assert_header(stamped.header, ref.header)
        np.testing.assert_array_equal(stamped.linear, ang)
        np.testing.assert_array_equal(stamped.angular, lin)


def test_new_types_reject_huge_counts_and_foreign_bytes() -> None:
    huge = b"\x00\x01\x00\x00" + (2**30).to_bytes(4, "little")
    with pytest.raises(CdrError, match="status_list claims 1073741824"):
        cdr.decode_goal_status_array(huge)
    with pytest.raises(CdrError, match=r"layout\.dim claims 1073741824"):
        cdr.decode_float64_multi_array(huge)
    # A Twist is exactly 48 body bytes: a WrenchStamped is something else.
    wrench_raw = ser(wrench([1, 2, 3], [4, 5, 6]), "geometry_msgs/msg/WrenchStamped")
    with pytest.raises(CdrError, match="unexpected byte"):
        cdr.decode_twist(wrench_raw)


def sample_messages() -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(7)
    msgs: list[tuple[str, Any]] = [
        ("sensor_msgs/msg/Image", image(2, 3, "rgb8", 9, rng.integers(0, 256, 18), frame_id="c")),
        ("sensor_msgs/msg/CompressedImage", T["sensor_msgs/msg/CompressedImage"](
            header=header(frame_id="cam"), format="png", data=np.arange(5, dtype=np.uint8))),
        ("sensor_msgs/msg/Imu", imu(rng, frame_id="imu")),
        ("sensor_msgs/msg/JointState", joint_state(["a", "bcd"], 2, 0, 2, frame_id="")),
        ("geometry_msgs/msg/WrenchStamped", wrench([1, 2, 3], [4, 5, 6], frame_id="ft")),
        ("std_msgs/msg/String", T["std_msgs/msg/String"](data="hello")),
        ("std_msgs/msg/Bool", T["std_msgs/msg/Bool"](data=True)),
        ("action_msgs/msg/GoalStatusArray", goal_status_array([(b"\x01" * 16, 4), (b"\xfe" * 16, 6)])),
        ("diagnostic_msgs/msg/DiagnosticArray", diagnostic_array(
            [(2, "motor", "overheat", "hw1", [("temp", "91"), ("k", "")])], frame_id="d")),
        ("std_msgs/msg/Float64MultiArray", float64_multi_array([("rows", 2, 4), ("c", 2, 2)], 0,
                                                               [1.0, -2.5, 3.0, 4.0])),
        ("geometry_msgs/msg/Twist", twist([0.5, 0, 0], [0, 0, -0.25])),
        ("geometry_msgs/msg/TwistStamped", T["geometry_msgs/msg/TwistStamped"](
            header=header(frame_id="base"), twist=twist([1, 2, 3], [4, 5, 6]))),
    ]
    return [(t, ser(m, t, le)) for t, m in msgs for le in (True, False)]


SAMPLES = sample_messages()


@pytest.mark.parametrize(("msgtype", "raw"), SAMPLES, ids=[f"{t}-{i % 2}" for i, (t, _) in
                                                            enumerate(SAMPLES)])
def test_truncation_at_every_offset_raises_cdr_error(msgtype: str, raw: bytes) -> None:
    full = cdr.decode(msgtype, raw)
    assert type(full).__name__.startswith(msgtype.rsplit("/", 1)[1])
    for cut in range(len(raw)):
        with pytest.raises(CdrError):
            cdr.decode(msgtype, raw[:cut])


def test_header_peek_on_short_and_foreign_data() -> None:
    raw = ser(wrench([0, 0, 0], [0, 0, 0]), "geometry_msgs/msg/WrenchStamped")
    assert cdr.header_stamp_ns(raw[:11]) is None
    assert cdr.header_stamp_ns(b"") is None
    assert cdr.header_stamp_ns(raw[:12]) == 1_700_000_000_123_456_789
    with pytest.raises(CdrError, match="encapsulation 0x0003"):
        cdr.header_stamp_ns(b"\x00\x03\x00\x00" + raw[4:])
    with pytest.raises(CdrError, match="encapsulation 0x0100"):
        cdr.header_stamp_ns(b"\x01\x00")
    with pytest.raises(CdrError):
        cdr.header_frame_id(raw[:14])


def test_dds_padding_is_accepted_but_extra_bytes_are_not() -> None:
    raw = ser(T["std_msgs/msg/Bool"](data=False), "std_msgs/msg/Bool")
    assert cdr.decode_bool(raw + b"\x00\x00\x00").data is False  # a DDS writer pads to 4
    with pytest.raises(CdrError, match="unexpected byte"):
        cdr.decode_bool(raw + bytes(12))


@pytest.mark.parametrize(
    ("msgtype", "raw", "match"),
    [
        ("std_msgs/msg/Bool", b"\x00\x01\x00\x00\x02", "must be 0 or 1"),
        ("std_msgs/msg/String", b"\x00\x01\x00\x00\x03\x00\x00\x00abc", "not NUL-terminated"),
        ("std_msgs/msg/String", b"\x00\x01\x00\x00\x03\x00\x00\x00\xff\xfe\x00", "not UTF-8"),
        ("std_msgs/msg/String", b"\x00\x01\x00\x00\xff\xff\xff\xff", "claims 4294967295"),
        ("std_msgs/msg/String", b"\x00\x02\x00\x00\x01\x00\x00\x00\x00", "encapsulation"),
        ("std_msgs/msg/String", b"\x00\x01", "shorter than the 4-byte"),
        ("sensor_msgs/msg/PointCloud2", b"\x00\x01\x00\x00", "no CDR decoder"),
    ],
)
def test_malformed_inputs_name_the_problem(msgtype: str, raw: bytes, match: str) -> None:
    with pytest.raises(CdrError, match=match):
        cdr.decode(msgtype, raw)


def test_huge_sequence_length_fails_without_allocating() -> None:
    ref = joint_state(["a"], 1, 1, 1)
    raw = bytearray(ser(ref, "sensor_msgs/msg/JointState"))
    # name sequence length sits right after the header (stamp 8 + frame_id 4+len+1, aligned).
    offset = 4 + 8 + 4 + len(ref.header.frame_id) + 1
    offset = 4 + ((offset - 4 + 3) & -4)
    raw[offset : offset + 4] = (2**31).to_bytes(4, "little")
    with pytest.raises(CdrError, match="name claims 2147483648"):
        cdr.decode_joint_state(bytes(raw))


def test_random_garbage_never_leaks_other_exceptions() -> None:
    rnd = random.Random(1234)
    decoders: list[Callable[[bytes], object]] = list(cdr.DECODERS.values())
    samples = [raw for _, raw in SAMPLES]
    for _ in range(3000):
        if rnd.random() < 0.5:
            body = bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(0, 80)))
            raw = bytes([0, rnd.randrange(2), 0, 0]) + body
        else:  # bit flips in valid messages stress lengths and alignment paths
            mutated = bytearray(rnd.choice(samples))
            for _ in range(rnd.randrange(1, 4)):
                mutated[rnd.randrange(len(mutated))] ^= 1 << rnd.randrange(8)
            raw = bytes(mutated)
        for decode in decoders:
            with contextlib.suppress(CdrError):
                decode(raw)
        try:
            cdr.header_stamp_ns(raw)
            cdr.header_frame_id(raw)
        except CdrError:
            pass


def test_decode_dispatches_every_supported_type() -> None:
    assert {t for t, _ in SAMPLES} == set(cdr.SUPPORTED_TYPES)
    for msgtype, raw in SAMPLES:
        assert cdr.decode(msgtype, raw) is not None


def test_real_recordings_decode_like_rosbags(real_data_dir: Path) -> None:
    """Bytes written by other tools, incl. big images: same values as rosbags' deserializer."""
    checked: dict[str, int] = {}
    for name in ("openloris_sample_ros2", "kuka_lwr_joint_states_ros2"):
        with Reader(real_data_dir / name) as reader:
            for conn, _, raw in reader.messages():
                if conn.msgtype not in cdr.SUPPORTED_TYPES or checked.get(conn.topic, 0) >= 3:
                    continue
                checked[conn.topic] = checked.get(conn.topic, 0) + 1
                ref = TS.deserialize_cdr(raw, conn.msgtype)
                msg = cdr.decode(conn.msgtype, raw)
                assert_header(msg.header, ref.header)  # type: ignore[union-attr]
                assert cdr.header_stamp_ns(raw) == msg.header.stamp_ns  # type: ignore[union-attr]
                if isinstance(msg, cdr.ImageMsg):
                    np.testing.assert_array_equal(msg.data, ref.data)
                    pixels = msg.pixels()
                    if msg.encoding == "16UC1":
                        assert pixels.shape == (ref.height, ref.width)
                        flat = np.frombuffer(ref.data.tobytes(), "<u2")
                        np.testing.assert_array_equal(pixels.ravel(), flat)
                    else:
                        assert pixels.shape == (ref.height, ref.width, 3)
                elif isinstance(msg, cdr.CompressedImageMsg):
                    np.testing.assert_array_equal(msg.data, ref.data)
                elif isinstance(msg, cdr.ImuMsg):
                    a = ref.linear_acceleration
                    np.testing.assert_array_equal(msg.linear_acceleration, [a.x, a.y, a.z])
                elif isinstance(msg, cdr.JointStateMsg):
                    assert msg.name == tuple(ref.name)
                    np.testing.assert_array_equal(msg.position, ref.position)
                    np.testing.assert_array_equal(msg.effort, ref.effort)
    assert checked.get("/d400/depth/image_raw") and checked.get("/joint_states")
    assert checked.get("/t265/fisheye1/image_raw/compressed") and checked.get("/d400/gyro/sample")


@pytest.mark.parametrize("le", ENDIANS)
@pytest.mark.parametrize("frame_id", FRAME_IDS)
def test_header_fields_give_stamp_frame_id_and_the_offset_after_the_header(
    le: bool, frame_id: str
) -> None:
    raw = ser(wrench([1, 2, 3], [4, 5, 6], frame_id=frame_id), "geometry_msgs/msg/WrenchStamped", le)
    fields = cdr.header_fields(raw)
    assert fields is not None
    stamp_ns, got_frame_id, offset = fields
    assert stamp_ns == 1_700_000_000_123_456_789
    assert got_frame_id == frame_id
    # The body goes on with the force at the next 8-aligned offset (counted from byte 4).
    force_at = 4 + ((offset - 4 + 7) & -8)
    np.testing.assert_array_equal(
        np.frombuffer(raw, "<f8" if le else ">f8", 3, force_at), [1.0, 2.0, 3.0]
    )


def test_header_fields_agree_with_the_checked_header_readers_on_damaged_bytes() -> None:
    """None exactly where header_frame_id raises; otherwise the same stamp and frame_id."""
    rnd = random.Random(99)
    stamped = [raw for t, raw in SAMPLES if t not in ("std_msgs/msg/String", "std_msgs/msg/Bool",
               "action_msgs/msg/GoalStatusArray", "std_msgs/msg/Float64MultiArray",
               "geometry_msgs/msg/Twist")]
    cases: list[bytes] = [raw[:cut] for raw in stamped for cut in range(min(len(raw), 40))]
    for _ in range(2000):
        mutated = bytearray(rnd.choice(stamped))
        for _ in range(rnd.randrange(1, 3)):
            mutated[rnd.randrange(min(len(mutated), 24))] ^= 1 << rnd.randrange(8)
        cases.append(bytes(mutated))
    outcomes = set()
    for raw in cases:
        fields = cdr.header_fields(raw)
        try:
            frame_id = cdr.header_frame_id(raw)
        except CdrError:
            assert fields is None
            outcomes.add("error")
            continue
        assert fields is not None
        assert (fields[0], fields[1]) == (cdr.header_stamp_ns(raw), frame_id)
        outcomes.add("ok")
    assert outcomes == {"ok", "error"}


@pytest.mark.parametrize("le", ENDIANS)
def test_fixed_layout_decoders_match_the_general_reader_with_padding_and_views(le: bool) -> None:
    rng = np.random.default_rng(3)
    for frame_id in FRAME_IDS:
        ref_imu = imu(rng, frame_id=frame_id)
        raw = ser(ref_imu, "sensor_msgs/msg/Imu", le)
        for data in (raw, raw + bytes(4), bytearray(raw), memoryview(raw)):
            msg = cdr.decode_imu(data)
            assert_header(msg.header, ref_imu.header)
            assert msg.angular_velocity.tolist() == [
                ref_imu.angular_velocity.x, ref_imu.angular_velocity.y, ref_imu.angular_velocity.z]
            assert msg.linear_acceleration_covariance.tolist() == (
                ref_imu.linear_acceleration_covariance.reshape(3, 3).tolist())
        with pytest.raises(CdrError, match="unexpected byte"):
            cdr.decode_imu(raw + bytes(8))
        ref_w = wrench([1, -2, 3], [-4, 5, -6], frame_id=frame_id)
        raw = ser(ref_w, "geometry_msgs/msg/WrenchStamped", le)
        w = cdr.decode_wrench_stamped(raw)
        assert_header(w.header, ref_w.header)
        assert (w.force.tolist(), w.torque.tolist()) == ([1, -2, 3], [-4, 5, -6])
        with pytest.raises(CdrError, match="unexpected byte"):
            cdr.decode_wrench_stamped(raw + bytes(8))
        with pytest.raises(CdrError, match="wrench"):
            cdr.decode_wrench_stamped(raw[:-8])


@pytest.mark.parametrize("le", ENDIANS)
def test_joint_names_with_empty_and_unicode_entries(le: bool) -> None:
    names = ["", "a", "ellbogen_ü", "abcd", ""]
    ref = joint_state(names, 5, 0, 5, frame_id="base")
    msg = cdr.decode_joint_state(ser(ref, "sensor_msgs/msg/JointState", le))
    assert msg.name == tuple(names)
    np.testing.assert_array_equal(msg.position, ref.position)
    np.testing.assert_array_equal(msg.effort, ref.effort)
    assert msg.velocity.size == 0
