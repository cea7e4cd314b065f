"""The one table of sensor modalities: their config keys, the message types each accepts, and how
a recorded or live topic is told to be a camera, a depth camera, an IMU, joints or a wrench.

Every layer asks this module (config validation, the feed loop, profile build, report, replay,
the simulated rig), so they cannot disagree about what a stream is.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "COMPRESSED_IMAGE",
    "DEPTH_ENCODINGS",
    "IMAGE",
    "IMAGE_TYPES",
    "IMU",
    "JOINT_STATE",
    "MODALITIES",
    "SENSOR_TYPES",
    "WINDOWED",
    "WRENCH_STAMPED",
    "Modality",
    "default_type",
    "is_compressed_depth_format",
    "modality_of",
]

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
IMU = "sensor_msgs/msg/Imu"
JOINT_STATE = "sensor_msgs/msg/JointState"
WRENCH_STAMPED = "geometry_msgs/msg/WrenchStamped"
IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)
# Image encodings that carry depth (millimetres as 16-bit, metres as float).
DEPTH_ENCODINGS = ("16UC1", "32FC1")


@dataclass(frozen=True)
class Modality:
    """A kind of sensor stream. `windowed`: its features come from sliding windows of every
    sample (decoded in batches); otherwise from single frames decimated to the image rate."""

    name: str
    config_key: str  # the monitor config section listing such streams
    msgtypes: tuple[str, ...]  # the first is the default when a stream names no type
    windowed: bool


MODALITIES: dict[str, Modality] = {
    m.name: m
    for m in (
        Modality("camera", "cameras", IMAGE_TYPES, windowed=False),
        # Depth as CompressedImage is compressed_depth_image_transport's "compressedDepth" (png).
        Modality("depth", "depth_cameras", IMAGE_TYPES, windowed=False),
        Modality("imu", "imus", (IMU,), windowed=True),
        Modality("joints", "joint_states", (JOINT_STATE,), windowed=True),
        Modality("wrench", "wrenches", (WRENCH_STAMPED,), windowed=True),
    )
}
WINDOWED = frozenset(m.name for m in MODALITIES.values() if m.windowed)
SENSOR_TYPES = frozenset(t for m in MODALITIES.values() for t in m.msgtypes)
_SINGLE_MODALITY = {IMU: "imu", JOINT_STATE: "joints", WRENCH_STAMPED: "wrench"}


def is_compressed_depth_format(fmt: str) -> bool:
    """A CompressedImage `format` of compressed_depth_image_transport ("16UC1; compressedDepth")."""
    return "compresseddepth" in fmt.lower()


def modality_of(
    msgtype: str, image_encoding: str | None = None, compressed_format: str | None = None
) -> str | None:
    """The modality of a stream of `msgtype`, None when it has no features.

    Images are told apart by content, never by topic name: an Image is depth when its encoding
    is a depth encoding, a CompressedImage when its format is compressedDepth. Without the first
    message's encoding/format an Image or CompressedImage is taken for a camera."""
    if msgtype == IMAGE:
        return "depth" if image_encoding in DEPTH_ENCODINGS else "camera"
    if msgtype == COMPRESSED_IMAGE:
        return "depth" if compressed_format and is_compressed_depth_format(compressed_format) else "camera"
    return _SINGLE_MODALITY.get(msgtype)


def default_type(modality: str, topic: str) -> str:
    """The message type a configured stream has when its config names none: image_transport's
    `/compressed` and `/compressedDepth` topics are CompressedImage, the rest the modality's first."""
    if modality in ("camera", "depth") and topic.rsplit("/", 1)[-1] in ("compressed", "compressedDepth"):
        return COMPRESSED_IMAGE
    return MODALITIES[modality].msgtypes[0]
