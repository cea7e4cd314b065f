"""Decode raw CDR bytes of the sensor messages gap_monitor analyses, without rclpy.

The bytes are what a `raw=True` subscription delivers and what MCAP/rosbag2 store: a 4-byte
encapsulation header (representation id 0x0000 big-endian or 0x0001 little-endian CDR, then two
option bytes) followed by the plain (XCDR1) body. Alignment is relative to the body start, and
float64 aligns to 8. Arrays are numpy views into the input buffer (read-only when it is `bytes`),
so decoding a 1 MB image copies nothing.

Every malformed or truncated input raises `CdrError` (a ValueError) naming the message type, the
field and the byte offset; no IndexError or struct.error escapes. A string that is not UTF-8 is
malformed too, except with `decode(..., lenient_text=True)` (for text from other nodes that is
reported, not analysed): then each undecodable byte becomes a lone surrogate (errors=
"surrogateescape"), which `gap_monitor.core.text` shows as `\\xNN`; framing is checked as strictly.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias, TypeVar

import numpy as np
from numpy.typing import NDArray

from gap_monitor.core.units import NS_PER_S
from gap_monitor.errors import MessageError

__all__ = [
    "DECODERS",
    "SUPPORTED_TYPES",
    "BoolMsg",
    "CdrError",
    "CdrMessage",
    "CompressedImageMsg",
    "DiagnosticArrayMsg",
    "DiagnosticStatusMsg",
    "Float64MultiArrayMsg",
    "GoalStatusArrayMsg",
    "GoalStatusMsg",
    "Header",
    "ImageMsg",
    "ImuMsg",
    "JointStateMsg",
    "MultiArrayDimensionMsg",
    "StringMsg",
    "TwistMsg",
    "TwistStampedMsg",
    "WrenchStampedMsg",
    "decode",
    "decode_bool",
    "decode_compressed_image",
    "decode_diagnostic_array",
    "decode_float64_multi_array",
    "decode_goal_status_array",
    "decode_image",
    "decode_imu",
    "decode_joint_state",
    "decode_string",
    "decode_twist",
    "decode_twist_stamped",
    "decode_wrench_stamped",
    "header_fields",
    "header_frame_id",
    "header_stamp_ns",
    "is_little_endian",
]

Buffer: TypeAlias = bytes | bytearray | memoryview

_BODY = 4  # the encapsulation header precedes the body; alignment counts from here
# Trailing bytes tolerated after the last field: DDS pads payloads to a multiple of 4 (we allow
# up to 7 in case a writer pads to 8); more than that means the bytes are another message type.
_MAX_TRAILING = 7

_LE = {
    "u32": struct.Struct("<I"),
    "i32": struct.Struct("<i"),
    "stamp": struct.Struct("<iI"),
}
_BE = {
    "u32": struct.Struct(">I"),
    "i32": struct.Struct(">i"),
    "stamp": struct.Struct(">iI"),
}
# A header's stamp and frame_id length, which always start at the body's first byte.
_HEAD_LE = struct.Struct("<iII").unpack_from
_HEAD_BE = struct.Struct(">iII").unpack_from
_HEAD_END = _BODY + 12


class CdrError(MessageError):
    """The bytes are not a valid CDR serialization of the requested message type."""


def _unsupported_encapsulation(data: Buffer) -> CdrError:
    return CdrError(
        f"unsupported CDR encapsulation 0x{data[0]:02x}{data[1]:02x} "
        "(expected 0x0000 CDR_BE or 0x0001 CDR_LE)"
    )


def is_little_endian(data: Buffer) -> bool:
    """Byte order from the encapsulation header; CdrError for anything but plain CDR."""
    if len(data) < _BODY:
        raise CdrError(f"CDR data has {len(data)} bytes, shorter than the 4-byte encapsulation header")
    if data[0] != 0 or data[1] > 1:
        raise _unsupported_encapsulation(data)
    return data[1] == 1


def header_stamp_ns(data: Buffer) -> int | None:
    """Header stamp (sec * 1e9 + nanosec) of a message whose first field is a std_msgs/Header.

    Only the first 12 bytes are read, so this is cheap enough for every received message. Returns
    None when the bytes are too short to hold a stamp (an empty or header-less message); raises
    CdrError for an unknown encapsulation. The bytes of a type without a header give a meaningless
    number: callers must know the type has one.
    """
    if len(data) < _BODY + 8:
        if len(data) >= 2 and (data[0] != 0 or data[1] > 1):
            raise _unsupported_encapsulation(data)
        return None
    packer = _LE["stamp"] if is_little_endian(data) else _BE["stamp"]
    sec, nanosec = packer.unpack_from(data, _BODY)
    return int(sec) * NS_PER_S + int(nanosec)


def header_fields(data: Buffer) -> tuple[int, str, int] | None:
    """(stamp_ns, frame_id, offset just past the header) of a message whose first field is a
    std_msgs/Header, or None when the bytes do not hold a well-formed header.

    The cheap path for every received message: it raises nothing, so a caller that gets None
    asks `header_stamp_ns` / `header_frame_id` what is wrong.
    """
    if len(data) < _HEAD_END or data[0] != 0:
        return None
    kind = data[1]
    if kind == 1:
        sec, nanosec, length = _HEAD_LE(data, _BODY)
    elif kind == 0:
        sec, nanosec, length = _HEAD_BE(data, _BODY)
    else:
        return None
    if length == 0:  # some writers send an empty string without its terminator
        return sec * NS_PER_S + nanosec, "", _HEAD_END
    end = _HEAD_END + length
    if end > len(data) or data[end - 1] != 0:
        return None
    try:
        frame_id = str(data[_HEAD_END : end - 1], "utf-8")
    except UnicodeDecodeError:
        return None
    return sec * NS_PER_S + nanosec, frame_id, end


def header_frame_id(data: Buffer) -> str:
    """The std_msgs/Header frame_id of a message whose first field is a header."""
    fields = header_fields(data)
    if fields is not None:
        return fields[1]
    reader = _Reader(data, "std_msgs/msg/Header")
    try:
        return reader.header().frame_id
    except CdrError:
        raise
    except (struct.error, IndexError, ValueError, OverflowError) as exc:
        raise CdrError(f"std_msgs/msg/Header: malformed CDR: {exc}") from exc


@dataclass(frozen=True)
class Header:
    """std_msgs/msg/Header with the stamp as integer nanoseconds."""

    stamp_ns: int
    frame_id: str


@dataclass(frozen=True, eq=False)
class ImageMsg:
    """sensor_msgs/msg/Image; `data` is a view of the raw pixel bytes (rows of `step` bytes)."""

    header: Header
    height: int
    width: int
    encoding: str
    is_bigendian: bool
    step: int
    data: NDArray[np.uint8]

    def pixels(self) -> NDArray[np.generic]:
        """Pixels as an (height, width) or (height, width, channels) view honouring `step`.

        Raises CdrError for an encoding without a fixed pixel layout (e.g. compressed or
        planar YUV) or when `step`/`data` cannot hold the declared size.
        """
        layout = _pixel_layout(self.encoding)
        if layout is None:
            raise CdrError(f"sensor_msgs/msg/Image: no pixel layout for encoding {self.encoding!r}")
        kind, itemsize, channels = layout
        dtype = np.dtype(f"{'>' if self.is_bigendian else '<'}{kind}{itemsize}")
        row_bytes = self.width * channels * itemsize
        if self.step < row_bytes:
            raise CdrError(
                f"sensor_msgs/msg/Image: step {self.step} is smaller than width {self.width} x "
                f"{channels} channel(s) x {itemsize} byte(s) = {row_bytes} ({self.encoding})"
            )
        if self.height and self.data.size < (self.height - 1) * self.step + row_bytes:
            raise CdrError(
                f"sensor_msgs/msg/Image: {self.data.size} data bytes cannot hold {self.height} rows "
                f"of step {self.step} ({self.encoding} {self.width}x{self.height})"
            )
        shape: tuple[int, ...] = (self.height, self.width)
        strides: tuple[int, ...] = (self.step, channels * itemsize)
        if channels > 1:
            shape += (channels,)
            strides += (itemsize,)
        return np.ndarray(shape, dtype=dtype, buffer=self.data, strides=strides)


@dataclass(frozen=True, eq=False)
class CompressedImageMsg:
    """sensor_msgs/msg/CompressedImage; `data` is a view of the encoded (jpeg/png) bytes."""

    header: Header
    format: str
    data: NDArray[np.uint8]


@dataclass(frozen=True, eq=False)
class ImuMsg:
    """sensor_msgs/msg/Imu; orientation is (x, y, z, w), covariances are 3x3 views."""

    header: Header
    orientation: NDArray[np.float64]
    orientation_covariance: NDArray[np.float64]
    angular_velocity: NDArray[np.float64]
    angular_velocity_covariance: NDArray[np.float64]
    linear_acceleration: NDArray[np.float64]
    linear_acceleration_covariance: NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class JointStateMsg:
    """sensor_msgs/msg/JointState; the arrays may be empty or shorter than `name`."""

    header: Header
    name: tuple[str, ...]
    position: NDArray[np.float64]
    velocity: NDArray[np.float64]
    effort: NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class WrenchStampedMsg:
    """geometry_msgs/msg/WrenchStamped; force and torque are (x, y, z)."""

    header: Header
    force: NDArray[np.float64]
    torque: NDArray[np.float64]


@dataclass(frozen=True)
class StringMsg:
    """std_msgs/msg/String."""

    data: str


@dataclass(frozen=True)
class BoolMsg:
    """std_msgs/msg/Bool."""

    data: bool


@dataclass(frozen=True)
class GoalStatusMsg:
    """action_msgs/msg/GoalStatus; `goal_id` is the 16-byte UUID, `stamp_ns` the goal's accept time."""

    goal_id: bytes
    stamp_ns: int
    status: int

    # action_msgs/msg/GoalStatus constants
    UNKNOWN = 0
    ACCEPTED = 1
    EXECUTING = 2
    CANCELING = 3
    SUCCEEDED = 4
    CANCELED = 5
    ABORTED = 6


@dataclass(frozen=True)
class GoalStatusArrayMsg:
    """action_msgs/msg/GoalStatusArray (what an action server publishes on `<action>/_action/status`)."""

    status_list: tuple[GoalStatusMsg, ...]


@dataclass(frozen=True)
class DiagnosticStatusMsg:
    """diagnostic_msgs/msg/DiagnosticStatus; `values` keeps the key/value pairs in order (keys may repeat)."""

    level: int
    name: str
    message: str
    hardware_id: str
    values: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class DiagnosticArrayMsg:
    """diagnostic_msgs/msg/DiagnosticArray."""

    header: Header
    status: tuple[DiagnosticStatusMsg, ...]


@dataclass(frozen=True)
class MultiArrayDimensionMsg:
    """std_msgs/msg/MultiArrayDimension."""

    label: str
    size: int
    stride: int


@dataclass(frozen=True, eq=False)
class Float64MultiArrayMsg:
    """std_msgs/msg/Float64MultiArray; `dim` and `data_offset` are the layout, `data` a view."""

    dim: tuple[MultiArrayDimensionMsg, ...]
    data_offset: int
    data: NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class TwistMsg:
    """geometry_msgs/msg/Twist; linear and angular are (x, y, z)."""

    linear: NDArray[np.float64]
    angular: NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class TwistStampedMsg:
    """geometry_msgs/msg/TwistStamped (cmd_vel in stamped form)."""

    header: Header
    linear: NDArray[np.float64]
    angular: NDArray[np.float64]


CdrMessage: TypeAlias = (
    ImageMsg
    | CompressedImageMsg
    | ImuMsg
    | JointStateMsg
    | WrenchStampedMsg
    | StringMsg
    | BoolMsg
    | GoalStatusArrayMsg
    | DiagnosticArrayMsg
    | Float64MultiArrayMsg
    | TwistMsg
    | TwistStampedMsg
)


class _Reader:
    """Cursor over one CDR buffer; every read checks bounds and names what it was reading."""

    __slots__ = ("buf", "end", "le", "msgtype", "pos", "structs", "text_errors")

    def __init__(self, data: Buffer, msgtype: str, text_errors: str = "strict") -> None:
        self.msgtype = msgtype
        self.text_errors = text_errors  # codecs error handler for string contents
        try:
            self.le = is_little_endian(data)
        except CdrError as exc:
            raise CdrError(f"{msgtype}: {exc}") from None
        self.buf = data
        self.end = len(data)
        self.pos = _BODY
        self.structs = _LE if self.le else _BE

    def fail(self, what: str, need: int) -> CdrError:
        return CdrError(
            f"{self.msgtype}: truncated CDR data: {what} needs {need} byte(s) at offset "
            f"{self.pos}, but the data has {self.end} bytes"
        )

    def align(self, n: int) -> None:
        self.pos = _BODY + ((self.pos - _BODY + n - 1) & -n)

    def need(self, n: int, what: str) -> None:
        if self.pos + n > self.end:
            raise self.fail(what, n)

    def u8(self, what: str) -> int:
        self.need(1, what)
        value = self.buf[self.pos]
        self.pos += 1
        return int(value)

    def boolean(self, what: str) -> bool:
        value = self.u8(what)
        if value > 1:
            raise CdrError(f"{self.msgtype}: {what} is {value}, a CDR boolean must be 0 or 1")
        return value == 1

    def i8(self, what: str) -> int:
        value = self.u8(what)
        return value - 256 if value > 127 else value

    def raw_bytes(self, n: int, what: str) -> bytes:
        self.need(n, what)
        value = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return value

    def u32(self, what: str) -> int:
        self.align(4)
        self.need(4, what)
        (value,) = self.structs["u32"].unpack_from(self.buf, self.pos)
        self.pos += 4
        return int(value)

    def count(self, what: str, item_size: int) -> int:
        """A sequence length, checked against the bytes left so huge garbage fails fast."""
        # u32() inlined: its label would be formatted for every sequence read.
        self.pos = pos = _BODY + ((self.pos - _BODY + 3) & -4)
        if pos + 4 > self.end:
            raise self.fail(f"length of {what}", 4)
        (n,) = self.structs["u32"].unpack_from(self.buf, pos)
        self.pos = pos + 4
        if n * item_size > self.end - self.pos:
            raise CdrError(
                f"{self.msgtype}: {what} claims {n} element(s) of {item_size} byte(s) at offset "
                f"{self.pos}, but only {self.end - self.pos} byte(s) remain"
            )
        return n

    def string(self, what: str) -> str:
        length = self.count(what, 1)  # includes the NUL terminator
        if length == 0:  # some writers send an empty string without its terminator
            return ""
        start = self.pos
        self.pos += length
        if self.buf[start + length - 1] != 0:
            raise CdrError(f"{self.msgtype}: {what} at offset {start} is not NUL-terminated")
        try:
            return bytes(self.buf[start : start + length - 1]).decode("utf-8", self.text_errors)
        except UnicodeDecodeError as exc:
            raise CdrError(f"{self.msgtype}: {what} at offset {start} is not UTF-8: {exc}") from None

    def string_seq(self, what: str) -> tuple[str, ...]:
        fast = self._plain_strings()
        if fast is not None:
            return fast
        n = self.count(what, 4)  # every element holds at least its 4-byte length
        return tuple(self.string(f"{what}[{i}]") for i in range(n))

    def _plain_strings(self) -> tuple[str, ...] | None:
        """A string sequence read without per-element bookkeeping; None (cursor unmoved) at the
        first anomaly, for `string_seq` to re-read and report it."""
        buf, end = self.buf, self.end
        unpack = self.structs["u32"].unpack_from
        pos = _BODY + ((self.pos - _BODY + 3) & -4)
        if pos + 4 > end:
            return None
        (n,) = unpack(buf, pos)
        pos += 4
        if n * 4 > end - pos:
            return None
        out = []
        for _ in range(n):
            pos = _BODY + ((pos - _BODY + 3) & -4)
            if pos + 4 > end:
                return None
            (length,) = unpack(buf, pos)
            pos += 4
            if length == 0:
                out.append("")
                continue
            if length > end - pos or buf[pos + length - 1] != 0:
                return None
            try:
                out.append(str(buf[pos : pos + length - 1], "utf-8"))
            except UnicodeDecodeError:
                return None
            pos += length
        self.pos = pos
        return tuple(out)

    def f64_array(self, n: int, what: str) -> NDArray[np.float64]:
        if n:
            self.align(8)
        self.need(8 * n, what)
        array = np.frombuffer(self.buf, dtype="<f8" if self.le else ">f8", count=n, offset=self.pos)
        self.pos += 8 * n
        return array

    def f64_seq(self, what: str) -> NDArray[np.float64]:
        n = self.count(what, 8)
        return self.f64_array(n, what)

    def u8_seq(self, what: str) -> NDArray[np.uint8]:
        n = self.count(what, 1)
        array = np.frombuffer(self.buf, dtype=np.uint8, count=n, offset=self.pos)
        self.pos += n
        return array

    def stamp(self, what: str) -> int:
        """A builtin_interfaces/Time inside a message body (aligned to 4), as nanoseconds."""
        self.align(4)
        self.need(8, what)
        sec, nanosec = self.structs["stamp"].unpack_from(self.buf, self.pos)
        self.pos += 8
        return int(sec) * NS_PER_S + int(nanosec)

    def header(self) -> Header:
        fields = header_fields(self.buf) if self.pos == _BODY else None
        if fields is not None:
            self.pos = fields[2]
            return Header(fields[0], fields[1])
        self.need(8, "header.stamp")
        sec, nanosec = self.structs["stamp"].unpack_from(self.buf, self.pos)
        self.pos += 8
        return Header(int(sec) * NS_PER_S + int(nanosec), self.string("header.frame_id"))

    def finish(self) -> None:
        extra = self.end - self.pos
        if extra > _MAX_TRAILING:
            raise CdrError(
                f"{self.msgtype}: {extra} unexpected byte(s) after the last field at offset "
                f"{self.pos} (is this really a {self.msgtype}?)"
            )


def _parse_image(r: _Reader) -> ImageMsg:
    header = r.header()
    height = r.u32("height")
    width = r.u32("width")
    encoding = r.string("encoding")
    is_bigendian = r.u8("is_bigendian") != 0
    step = r.u32("step")
    return ImageMsg(header, height, width, encoding, is_bigendian, step, r.u8_seq("data"))


def _parse_compressed_image(r: _Reader) -> CompressedImageMsg:
    header = r.header()
    fmt = r.string("format")
    return CompressedImageMsg(header, fmt, r.u8_seq("data"))


def _parse_imu(r: _Reader) -> ImuMsg:
    header = r.header()
    # Quaternion, 9 covariances, Vector3, 9, Vector3, 9: 37 float64 with no gaps between them.
    return _imu_msg(header, r.f64_array(37, "orientation..linear_acceleration_covariance"))


def _imu_msg(header: Header, v: NDArray[np.float64]) -> ImuMsg:
    return ImuMsg(
        header,
        orientation=v[0:4],
        orientation_covariance=v[4:13].reshape(3, 3),
        angular_velocity=v[13:16],
        angular_velocity_covariance=v[16:25].reshape(3, 3),
        linear_acceleration=v[25:28],
        linear_acceleration_covariance=v[28:37].reshape(3, 3),
    )


def _parse_joint_state(r: _Reader) -> JointStateMsg:
    header = r.header()
    names = r.string_seq("name")
    position = r.f64_seq("position")
    velocity = r.f64_seq("velocity")
    effort = r.f64_seq("effort")
    return JointStateMsg(header, names, position, velocity, effort)


def _parse_wrench_stamped(r: _Reader) -> WrenchStampedMsg:
    header = r.header()
    v = r.f64_array(6, "wrench")
    return WrenchStampedMsg(header, force=v[0:3], torque=v[3:6])


def _parse_string(r: _Reader) -> StringMsg:
    return StringMsg(r.string("data"))


def _parse_bool(r: _Reader) -> BoolMsg:
    return BoolMsg(r.boolean("data"))


def _parse_goal_status_array(r: _Reader) -> GoalStatusArrayMsg:
    # Each element holds at least uuid (16) + stamp (8) + status (1) bytes.
    n = r.count("status_list", 25)
    items = []
    for i in range(n):
        goal_id = r.raw_bytes(16, f"status_list[{i}].goal_info.goal_id")
        stamp = r.stamp(f"status_list[{i}].goal_info.stamp")
        items.append(GoalStatusMsg(goal_id, stamp, r.i8(f"status_list[{i}].status")))
    return GoalStatusArrayMsg(tuple(items))


def _parse_diagnostic_array(r: _Reader) -> DiagnosticArrayMsg:
    header = r.header()
    # Each status holds at least a level byte and four 4-byte lengths (3 strings, values).
    n = r.count("status", 17)
    items = []
    for i in range(n):
        at = f"status[{i}]"
        level = r.u8(f"{at}.level")
        name = r.string(f"{at}.name")
        message = r.string(f"{at}.message")
        hardware_id = r.string(f"{at}.hardware_id")
        m = r.count(f"{at}.values", 8)
        values = tuple(
            (r.string(f"{at}.values[{j}].key"), r.string(f"{at}.values[{j}].value")) for j in range(m)
        )
        items.append(DiagnosticStatusMsg(level, name, message, hardware_id, values))
    return DiagnosticArrayMsg(header, tuple(items))


def _parse_float64_multi_array(r: _Reader) -> Float64MultiArrayMsg:
    n = r.count("layout.dim", 12)  # label length + size + stride
    dims = []
    for i in range(n):
        label = r.string(f"layout.dim[{i}].label")
        dims.append(
            MultiArrayDimensionMsg(label, r.u32(f"layout.dim[{i}].size"), r.u32(f"layout.dim[{i}].stride"))
        )
    data_offset = r.u32("layout.data_offset")
    return Float64MultiArrayMsg(tuple(dims), data_offset, r.f64_seq("data"))


def _parse_twist(r: _Reader) -> TwistMsg:
    v = r.f64_array(6, "linear, angular")
    return TwistMsg(linear=v[0:3], angular=v[3:6])


def _parse_twist_stamped(r: _Reader) -> TwistStampedMsg:
    header = r.header()
    v = r.f64_array(6, "twist")
    return TwistStampedMsg(header, linear=v[0:3], angular=v[3:6])


_F64 = {0: np.dtype(">f8"), 1: np.dtype("<f8")}


def _header_and_f64s(data: Buffer, count: int) -> tuple[Header, NDArray[np.float64]] | None:
    """A header followed by `count` float64 and nothing else (Imu, WrenchStamped), read without
    a cursor; None for anything irregular, which the full decoder then reads and reports."""
    fields = header_fields(data)
    if fields is None:
        return None
    stamp_ns, frame_id, pos = fields
    pos = _BODY + ((pos - _BODY + 7) & -8)
    extra = len(data) - pos - 8 * count
    if extra < 0 or extra > _MAX_TRAILING:
        return None
    values = np.frombuffer(data, dtype=_F64[data[1]], count=count, offset=pos)
    return Header(stamp_ns, frame_id), values


_Msg = TypeVar("_Msg", bound=CdrMessage)


def _run(msgtype: str, data: Buffer, parse: Callable[[_Reader], _Msg], text_errors: str = "strict") -> _Msg:
    reader = _Reader(data, msgtype, text_errors)
    try:
        message = parse(reader)
    except CdrError:
        raise
    except (struct.error, IndexError, ValueError, OverflowError, TypeError) as exc:
        # Bounds are checked before every read, so this is a safety net, not a code path.
        raise CdrError(f"{msgtype}: malformed CDR data: {exc}") from exc
    reader.finish()
    return message


def decode_image(data: Buffer) -> ImageMsg:
    """Decode sensor_msgs/msg/Image."""
    return _run("sensor_msgs/msg/Image", data, _parse_image)


def decode_compressed_image(data: Buffer) -> CompressedImageMsg:
    """Decode sensor_msgs/msg/CompressedImage."""
    return _run("sensor_msgs/msg/CompressedImage", data, _parse_compressed_image)


def decode_imu(data: Buffer) -> ImuMsg:
    """Decode sensor_msgs/msg/Imu."""
    fast = _header_and_f64s(data, 37)
    if fast is not None:
        return _imu_msg(*fast)
    return _run("sensor_msgs/msg/Imu", data, _parse_imu)


def decode_joint_state(data: Buffer) -> JointStateMsg:
    """Decode sensor_msgs/msg/JointState."""
    return _run("sensor_msgs/msg/JointState", data, _parse_joint_state)


def decode_wrench_stamped(data: Buffer) -> WrenchStampedMsg:
    """Decode geometry_msgs/msg/WrenchStamped."""
    fast = _header_and_f64s(data, 6)
    if fast is not None:
        header, v = fast
        return WrenchStampedMsg(header, force=v[0:3], torque=v[3:6])
    return _run("geometry_msgs/msg/WrenchStamped", data, _parse_wrench_stamped)


def decode_string(data: Buffer) -> StringMsg:
    """Decode std_msgs/msg/String."""
    return _run("std_msgs/msg/String", data, _parse_string)


def decode_bool(data: Buffer) -> BoolMsg:
    """Decode std_msgs/msg/Bool."""
    return _run("std_msgs/msg/Bool", data, _parse_bool)


def decode_goal_status_array(data: Buffer) -> GoalStatusArrayMsg:
    """Decode action_msgs/msg/GoalStatusArray."""
    return _run("action_msgs/msg/GoalStatusArray", data, _parse_goal_status_array)


def decode_diagnostic_array(data: Buffer) -> DiagnosticArrayMsg:
    """Decode diagnostic_msgs/msg/DiagnosticArray."""
    return _run("diagnostic_msgs/msg/DiagnosticArray", data, _parse_diagnostic_array)


def decode_float64_multi_array(data: Buffer) -> Float64MultiArrayMsg:
    """Decode std_msgs/msg/Float64MultiArray."""
    return _run("std_msgs/msg/Float64MultiArray", data, _parse_float64_multi_array)


def decode_twist(data: Buffer) -> TwistMsg:
    """Decode geometry_msgs/msg/Twist."""
    return _run("geometry_msgs/msg/Twist", data, _parse_twist)


def decode_twist_stamped(data: Buffer) -> TwistStampedMsg:
    """Decode geometry_msgs/msg/TwistStamped."""
    return _run("geometry_msgs/msg/TwistStamped", data, _parse_twist_stamped)


DECODERS: dict[str, Callable[[Buffer], CdrMessage]] = {
    "sensor_msgs/msg/Image": decode_image,
    "sensor_msgs/msg/CompressedImage": decode_compressed_image,
    "sensor_msgs/msg/Imu": decode_imu,
    "sensor_msgs/msg/JointState": decode_joint_state,
    "geometry_msgs/msg/WrenchStamped": decode_wrench_stamped,
    "std_msgs/msg/String": decode_string,
    "std_msgs/msg/Bool": decode_bool,
    "action_msgs/msg/GoalStatusArray": decode_goal_status_array,
    "diagnostic_msgs/msg/DiagnosticArray": decode_diagnostic_array,
    "std_msgs/msg/Float64MultiArray": decode_float64_multi_array,
    "geometry_msgs/msg/Twist": decode_twist,
    "geometry_msgs/msg/TwistStamped": decode_twist_stamped,
}
SUPPORTED_TYPES = frozenset(DECODERS)
# The same types' parsers, for `decode(..., lenient_text=True)` (the slow path, fast paths are strict).
_PARSERS: dict[str, Callable[[_Reader], CdrMessage]] = {
    "sensor_msgs/msg/Image": _parse_image,
    "sensor_msgs/msg/CompressedImage": _parse_compressed_image,
    "sensor_msgs/msg/Imu": _parse_imu,
    "sensor_msgs/msg/JointState": _parse_joint_state,
    "geometry_msgs/msg/WrenchStamped": _parse_wrench_stamped,
    "std_msgs/msg/String": _parse_string,
    "std_msgs/msg/Bool": _parse_bool,
    "action_msgs/msg/GoalStatusArray": _parse_goal_status_array,
    "diagnostic_msgs/msg/DiagnosticArray": _parse_diagnostic_array,
    "std_msgs/msg/Float64MultiArray": _parse_float64_multi_array,
    "geometry_msgs/msg/Twist": _parse_twist,
    "geometry_msgs/msg/TwistStamped": _parse_twist_stamped,
}


def decode(msgtype: str, data: Buffer, *, lenient_text: bool = False) -> CdrMessage:
    """Decode `data` as `msgtype` ("pkg/msg/Name"); CdrError for an unsupported type.

    `lenient_text`: strings that are not UTF-8 decode with errors="surrogateescape" instead of
    raising (see the module docstring); everything else is checked as strictly.
    """
    decoder = DECODERS.get(msgtype)
    if decoder is None:
        raise CdrError(
            f"no CDR decoder for message type {msgtype!r}; supported: {', '.join(sorted(DECODERS))}"
        )
    if lenient_text:
        return _run(msgtype, data, _PARSERS[msgtype], "surrogateescape")
    return decoder(data)


# sensor_msgs/image_encodings names -> (numpy kind, bytes per channel, channels).
_NAMED_LAYOUTS: dict[str, tuple[str, int, int]] = {
    "mono8": ("u", 1, 1),
    "mono16": ("u", 2, 1),
    "rgb8": ("u", 1, 3),
    "bgr8": ("u", 1, 3),
    "rgba8": ("u", 1, 4),
    "bgra8": ("u", 1, 4),
    "rgb16": ("u", 2, 3),
    "bgr16": ("u", 2, 3),
    "rgba16": ("u", 2, 4),
    "bgra16": ("u", 2, 4),
    "yuv422": ("u", 1, 2),
    "uyvy": ("u", 1, 2),
    "yuyv": ("u", 1, 2),
    "yuv422_yuy2": ("u", 1, 2),
}
_CV_LAYOUT = re.compile(r"^(8|16|32|64)([USF])C([1-4])$")
_BAYER = re.compile(r"^bayer_(rggb|bggr|gbrg|grbg)(8|16)$")


def _pixel_layout(encoding: str) -> tuple[str, int, int] | None:
    if encoding in _NAMED_LAYOUTS:
        return _NAMED_LAYOUTS[encoding]
    bayer = _BAYER.match(encoding)
    if bayer:
        return ("u", int(bayer.group(2)) // 8, 1)
    cv = _CV_LAYOUT.match(encoding)
    if cv:
        bits, kind, channels = int(cv.group(1)), cv.group(2), int(cv.group(3))
        if kind == "F" and bits < 32:
            return None
        return ({"U": "u", "S": "i", "F": "f"}[kind], bits // 8, channels)
    return None
