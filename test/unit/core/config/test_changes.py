"""Run-time parameter changes: refused with the reason unless they change nothing of ours."""

from gap_monitor.core.config import change_refusal, config_from_parameters, flatten
from gap_monitor.core.io.names import status_prefix

IN_USE = flatten({"imus": {"imu": {"topic": "/imu/data", "rate_hz": 400.0}}, "capture": {"pre_s": 10.0}})


def test_a_valid_change_is_refused_with_how_to_apply_it():
    why = change_refusal(IN_USE, {"capture.pre_s": 3.0}, "/gap_monitor parameters")
    assert why is not None
    assert why.startswith("capture.pre_s: not applied at run time")
    assert "params file and restart" in why


def test_a_bad_value_is_refused_with_the_validation_message():
    why = change_refusal(IN_USE, {"imus.imu.rate_hz": -5.0}, "/gap_monitor parameters")
    assert why == "imus.imu.rate_hz: -5.0: a number in (0, 100000]"


def test_ros_own_parameters_and_unchanged_values_are_accepted():
    assert change_refusal(IN_USE, {"use_sim_time": True}, "p") is None
    assert change_refusal(IN_USE, {"qos_overrides./imu/data.subscription.depth": 5}, "p") is None
    assert change_refusal(IN_USE, dict(IN_USE), "p") is None  # `ros2 param load` of a dump


def test_status_names_default_to_the_node_name_under_its_namespace():
    params = {"imus": {"imu": {"topic": "/imu/data", "rate_hz": 400.0}}}
    assert status_prefix("/gap_monitor") == "gap_monitor"
    robot1 = config_from_parameters(params, default_prefix=status_prefix("/robot1/gap_monitor"))
    assert robot1.diagnostic_prefix == "robot1/gap_monitor"
    explicit = config_from_parameters({**params, "diagnostic_prefix": "arm"}, default_prefix="robot1/x")
    assert explicit.diagnostic_prefix == "arm"  # set in the file: it wins
