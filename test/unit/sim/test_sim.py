import re
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from gap_monitor.core.config import ConfigError
from gap_monitor.sim.rig import RigSettings, Scheduler, SimRig, yaw, yaw_rate
from gap_monitor.sim.scenario import Fault, Scenario, load_scenario, scenario_from_mapping

REPO = Path(__file__).resolve().parents[3]
SMALL = RigSettings(width=160, height=120)


def rig_with(*faults: Fault, settings: RigSettings = SMALL) -> SimRig:
    return SimRig(settings, Scenario(name="t", seed=5, faults=faults))


def test_scheduler_rates_and_time_order():
    sched = Scheduler(RigSettings(), Scenario())
    ticks = list(sched.due(2.0 - 1e-9))
    counts = Counter(t.stream for t in ticks)
    assert counts == {"camera": 60, "depth": 60, "imu": 800, "joints": 1000, "wrench": 2000}
    times = [t.t_s for t in ticks]
    assert times == sorted(times)
    cam = [t for t in ticks if t.stream == "camera"]
    assert [t.seq for t in cam] == list(range(60))
    assert cam[1].t_s == pytest.approx(1 / 30)


def test_stall_skips_and_burst_multiplies_rate():
    scenario = Scenario(
        faults=(
            Fault("stall", "imu", 1.0, 0.5),
            Fault("burst", "joints", 1.0, 1.0, {"factor": 3.0}),
        )
    )
    sched = Scheduler(RigSettings(), scenario)
    ticks = list(sched.due(3.0 - 1e-9))
    imu_times = [t.t_s for t in ticks if t.stream == "imu"]
    assert not any(1.0 <= t < 1.5 for t in imu_times)
    assert len(imu_times) == 1200 - 200
    assert sched.skipped["imu"] == 200
    in_burst = [t for t in ticks if t.stream == "joints" and 1.0 <= t.t_s < 2.0]
    assert len(in_burst) == pytest.approx(1500, abs=2)


def test_drop_until_skips_overdue_messages():
    sched = Scheduler(RigSettings(), Scenario())
    dropped = sched.drop_until(1.0)
    assert dropped > 1900
    assert sched.next_time() > 1.0


def test_same_seed_same_content_different_seed_different():
    a = SimRig(SMALL, Scenario(seed=1)).camera(0.5)
    b = SimRig(SMALL, Scenario(seed=1)).camera(0.5)
    c = SimRig(SMALL, Scenario(seed=2)).camera(0.5)
    assert np.array_equal(a.pixels, b.pixels)
    assert not np.array_equal(a.pixels, c.pixels)


def test_camera_faults_darken_and_blur():
    t = 1.0
    clean = rig_with().camera(t).pixels
    dark = rig_with(Fault("lighting_gain", "camera", 0.5, 1.0, {"gain": 0.3})).camera(t).pixels
    blurred = rig_with(Fault("blur", "camera", 0.5, 1.0, {"sigma_px": 4.0})).camera(t).pixels
    assert clean.shape == (120, 160, 3) and clean.dtype == np.uint8
    assert dark.mean() == pytest.approx(0.3 * clean.mean(), rel=0.05)

    def sharpness(img):
        return cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()

    assert sharpness(blurred) < 0.4 * sharpness(clean)  # sensor noise stays sharp
    # Faults are windowed: outside them the image is the clean one again.
    after = rig_with(Fault("lighting_gain", "camera", 0.0, 0.5, {"gain": 0.3})).camera(t).pixels
    assert after.mean() == pytest.approx(clean.mean(), rel=0.02)


def test_depth_is_millimetres_with_holes_and_dropout():
    t = 1.0
    depth = SimRig(SMALL).depth(t)
    assert depth.encoding == "16UC1" and depth.pixels.dtype == np.uint16
    valid = depth.pixels[depth.pixels > 0]
    assert 500 < np.median(valid) < 3000
    assert 0.01 < np.mean(depth.pixels == 0) < 0.06
    dropped = rig_with(Fault("depth_dropout", "depth", 0.0, 2.0, {"fraction": 0.5})).depth(t).pixels
    assert 0.45 < np.mean(dropped == 0) < 0.6


def _imu_series(rig: SimRig, t0: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    samples = [rig.imu(t0 + i / 400) for i in range(n)]
    return np.array([s.accel for s in samples]), np.array([s.gyro for s in samples])


def test_imu_gravity_noise_and_bias_faults():
    accel, gyro = _imu_series(SimRig(SMALL), 0.0, 400)
    assert np.linalg.norm(accel, axis=1).mean() == pytest.approx(9.80665, abs=0.01)
    base_std = accel[:, 1].std()
    noisy_rig = rig_with(Fault("imu_noise", "imu", 0.0, 5.0, {"scale": 4.0}))
    accel_n, _ = _imu_series(noisy_rig, 0.0, 400)
    assert accel_n[:, 1].std() == pytest.approx(4 * base_std, rel=0.2)
    biased = rig_with(Fault("imu_bias", "imu", 0.0, 5.0, {"gyro_rad_s": 0.05, "accel_m_s2": 0.0}))
    _, gyro_b = _imu_series(biased, 0.0, 400)
    assert (gyro_b[:, 0] - gyro[:, 0]).mean() == pytest.approx(0.05, abs=0.002)


def test_gyro_is_the_yaw_rate_and_the_image_moves_with_it():
    rig = SimRig(RigSettings(width=320, height=240))
    _, gyro = _imu_series(rig, 1.0, 4)
    assert gyro[0, 2] == pytest.approx(yaw_rate(1.0), abs=0.01)
    # Image shift between two frames equals focal * change in yaw (sign: scene moves against yaw).
    t0, t1 = 2.0, 2.0 + 1 / 30
    a = cv2.cvtColor(rig.camera(t0).pixels, cv2.COLOR_RGB2GRAY).astype(np.float32)
    b = cv2.cvtColor(rig.camera(t1).pixels, cv2.COLOR_RGB2GRAY).astype(np.float32)
    window = cv2.createHanningWindow((a.shape[1], a.shape[0]), cv2.CV_32F)
    (dx, dy), _ = cv2.phaseCorrelate(a, b, window)
    expected = rig.settings.focal_px * (yaw(t1) - yaw(t0))
    assert abs(expected) > 0.5
    assert dx == pytest.approx(expected, abs=0.1)
    assert abs(dy) < 0.2
    # Yaw rate is the derivative of yaw.
    h = 1e-5
    assert yaw_rate(3.0) == pytest.approx((yaw(3.0 + h) - yaw(3.0 - h)) / (2 * h), rel=1e-4)


def test_joint_and_force_faults():
    t = 1.0
    clean = rig_with().joints(t)
    fault = Fault("joint_out_of_range", "joints", 0.0, 2.0, {"joint": 3, "offset_rad": 1.0})
    moved = rig_with(fault).joints(t)
    assert moved.position[3] - clean.position[3] == pytest.approx(1.0)
    assert np.allclose(np.delete(moved.position, 3), np.delete(clean.position, 3))
    assert len(clean.names) == 7
    drift = rig_with(Fault("force_drift", "wrench", 1.0, 4.0, {"rate_n_per_s": 2.0}))
    base = SimRig(SMALL).wrench(0.5).force[2]
    later = drift.wrench(4.5).force[2]
    assert base == pytest.approx(-5.0, abs=0.5)
    assert later == pytest.approx(-5.0 - 2.0 * 3.5, abs=0.5)


def test_stamp_offset_fault():
    rig = rig_with(Fault("stamp_offset", "depth", 1.0, 1.0, {"offset_ms": 8.0}))
    assert rig.stamp_offset_ns("depth", 1.5) == 8_000_000
    assert rig.stamp_offset_ns("depth", 2.5) == 0
    assert rig.stamp_offset_ns("camera", 1.5) == 0


def test_shipped_scenarios_load():
    for path in (REPO / "config" / "scenarios").glob("*.yaml"):
        scenario = load_scenario(path)
        assert scenario.name == path.stem
        assert all(f.end_s <= scenario.duration_s for f in scenario.faults)
    kinds = {f.kind for f in load_scenario(REPO / "config" / "scenarios" / "all_faults.yaml").faults}
    assert len(kinds) == 10


def test_scenario_errors_name_key_value_and_allowed():
    doc = {
        "duration_s": -1,
        "faults": [
            {"kind": "earthquake", "stream": "imu", "start_s": 0, "duration_s": 1},
            {"kind": "blur", "stream": "imu", "start_s": 0, "duration_s": 1},
            {"kind": "depth_dropout", "stream": "depth", "start_s": 0, "duration_s": 1, "fraction": 2},
        ],
    }
    with pytest.raises(ConfigError) as info:
        scenario_from_mapping(doc)
    problems = info.value.problems
    assert any(p.startswith("duration_s: -1:") for p in problems)
    assert any(p.startswith("faults[0].kind: 'earthquake': one of lighting_gain") for p in problems)
    assert any(p.startswith("faults[1].stream: 'imu': one of camera") for p in problems)
    assert any(p.startswith("faults[2].fraction: 2: a number in [0, 1]") for p in problems)
    assert len(problems) == 4


def test_depth_camera_may_be_smaller_and_keeps_the_field_of_view():
    """A 640x480 depth camera beside a 1280x720 colour one: its own size, its own focal length
    (same horizontal field of view), and it moves with the yaw in its own pixels."""
    settings = RigSettings(width=1280, height=720, depth_width=320, depth_height=240)
    rig = SimRig(settings)
    depth = rig.depth(1.0)
    assert depth.pixels.shape == (240, 320) and depth.pixels.dtype == np.uint16
    assert rig.camera(1.0).pixels.shape == (720, 1280, 3)
    assert settings.depth_focal_px == pytest.approx(settings.focal_px / 4)
    t0, t1 = 2.0, 2.0 + 1 / 15
    a, b = (rig.depth(t).pixels.astype(np.float32) for t in (t0, t1))
    window = cv2.createHanningWindow((320, 240), cv2.CV_32F)
    (dx, _), _ = cv2.phaseCorrelate(a, b, window)
    expected = settings.depth_focal_px * (yaw(t1) - yaw(t0))
    assert abs(expected) > 0.5
    assert dx == pytest.approx(expected, abs=0.5)


def test_depth_defaults_to_the_camera_size():
    plain = SimRig(RigSettings(width=160, height=120), Scenario(seed=7)).depth(0.7).pixels
    explicit = SimRig(
        RigSettings(width=160, height=120, depth_width=160, depth_height=120), Scenario(seed=7)
    ).depth(0.7).pixels
    assert plain.shape == (120, 160)
    assert np.array_equal(plain, explicit)


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("width", 8, "an integer in [16, 8192]"),
        ("height", 640.0, "an integer in [16, 8192]"),
        ("depth_width", 100_000, "an integer in [16, 8192]"),
        ("depth_height", True, "an integer in [16, 8192]"),
        ("camera_rate_hz", 0.0, "a finite number > 0"),
        ("imu_rate_hz", float("nan"), "a finite number > 0"),
        ("focal_px", -1.0, "a finite number > 0"),
    ],
)
def test_rig_settings_validation_names_the_field(field: str, value: object, allowed: str):
    kwargs: dict[str, object] = {field: value}
    if field == "depth_width":
        kwargs["depth_height"] = 480
    if field == "depth_height":
        kwargs["depth_width"] = 640
    with pytest.raises(ValueError, match=rf"^{field}: .*must be {re.escape(allowed)}"):
        RigSettings(**kwargs)  # type: ignore[arg-type]


def test_depth_size_needs_both_sides():
    with pytest.raises(ValueError, match="depth_width, depth_height: 640, None: give both or neither"):
        RigSettings(depth_width=640)


def test_sim_command_line_refuses_a_bad_depth_size(capsys):
    from gap_monitor.ros import sim_node

    assert sim_node.main(["sim", "--depth-width", "640"]) == 2
    assert "give both or neither" in capsys.readouterr().err
    args = sim_node.build_parser().parse_args(["--depth-width", "640", "--depth-height", "480"])
    assert sim_node.rig_settings(args).depth_size == (640, 480)
    assert sim_node.rig_settings(sim_node.build_parser().parse_args([])).depth_size == (640, 480)
