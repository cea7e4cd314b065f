"""numpy <-> ROS message conversion for the ROS layer (the core never sees message objects)."""

from __future__ import annotations

import array
import importlib
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Vector3, WrenchStamped
from numpy.typing import NDArray
from sensor_msgs.msg import Image, Imu, JointState
from std_msgs.msg import Header

from gap_monitor.core.units import NS_PER_S
from gap_monitor.sim.rig import ImageSample, ImuSample, JointSample, Sample, WrenchSample


def stamp(t_ns: int) -> Time:
    return Time(sec=t_ns // NS_PER_S, nanosec=t_ns % NS_PER_S)


def message_class(msgtype: str) -> Any:
    """`sensor_msgs/msg/Image` -> the generated class (imported on demand)."""
    pkg, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{pkg}.msg"), name)


def _vector3(v: NDArray[np.float64]) -> Vector3:
    return Vector3(x=float(v[0]), y=float(v[1]), z=float(v[2]))


def sample_to_message(sample: Sample, stamp_ns: int, frame_id: str) -> Any:
    header = Header(stamp=stamp(stamp_ns), frame_id=frame_id)
    if isinstance(sample, ImageSample):
        px = np.ascontiguousarray(sample.pixels)
        channels = 1 if px.ndim == 2 else px.shape[2]
        msg = Image(header=header, height=px.shape[0], width=px.shape[1], encoding=sample.encoding)
        msg.is_bigendian = 0
        msg.step = px.shape[1] * channels * px.itemsize
        # array('B', bytes) is one memcpy; the generated setter validates any other sequence per byte.
        msg.data = array.array("B", px.tobytes())
        return msg
    if isinstance(sample, ImuSample):
        imu = Imu(header=header)
        imu.orientation_covariance[0] = -1.0  # no orientation estimate, per sensor_msgs/Imu
        imu.linear_acceleration = _vector3(sample.accel)
        imu.angular_velocity = _vector3(sample.gyro)
        return imu
    if isinstance(sample, JointSample):
        return JointState(
            header=header,
            name=list(sample.names),
            position=sample.position.tolist(),
            velocity=sample.velocity.tolist(),
            effort=sample.effort.tolist(),
        )
    if isinstance(sample, WrenchSample):
        w = WrenchStamped(header=header)
        w.wrench.force = _vector3(sample.force)
        w.wrench.torque = _vector3(sample.torque)
        return w
    raise TypeError(f"unknown sample type {type(sample).__name__}")
