"""The motion-based camera-IMU offset recovers stamp shifts injected into the simulated rig."""

from __future__ import annotations

import numpy as np
import pytest

from gap_monitor.core.timing.motion_offset import MotionOffsetSettings, estimate_motion_offset
from gap_monitor.sim.rig import RigSettings, SimRig
from gap_monitor.sim.scenario import Scenario

NS = 1_000_000_000
SECONDS = 10.0


@pytest.fixture(scope="module")
def recording() -> tuple[np.ndarray, list[np.ndarray], np.ndarray, np.ndarray]:
    """10 s of the sim's camera (320x240 @ 30 Hz) and gyro (400 Hz), stamps at the sample times."""
    rig = SimRig(RigSettings(width=320, height=240, focal_px=250.0), Scenario(seed=11))
    frame_t = np.arange(0.0, SECONDS, 1 / 30)
    gyro_t = np.arange(0.0, SECONDS, 1 / 400)
    frames = [rig.camera(t).pixels for t in frame_t]
    gyro = np.array([rig.imu(t).gyro for t in gyro_t])
    return (frame_t * NS).astype(np.int64), frames, (gyro_t * NS).astype(np.int64), gyro


@pytest.mark.parametrize("shift_ms", [-20, -10, -5, 5, 10, 20])
def test_injected_camera_imu_shift_is_recovered_within_2ms(recording, shift_ms):
    frame_stamps, frames, gyro_stamps, gyro = recording
    # Camera stamps late by shift_ms: the images show each motion shift_ms after the gyro saw it.
    late = frame_stamps + shift_ms * 1_000_000
    estimate = estimate_motion_offset(late, frames, gyro_stamps, gyro, MotionOffsetSettings())
    assert estimate.confident, estimate.reason
    assert estimate.offset_s is not None
    assert estimate.offset_s * 1000 == pytest.approx(shift_ms, abs=2.0)
