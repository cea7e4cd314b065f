"""Checker: typed values out of a mapping, every problem as `key: value: what is allowed`."""

from typing import Any

import pytest

from gap_monitor.core.config import Checker, ConfigError, is_topic_name
from gap_monitor.errors import InputError


@pytest.mark.parametrize(
    ("topic", "ok"),
    [("/camera/color/image_raw", True), ("relative/topic", True), ("~/private", True), ("/a_1", True),
     ("", False), ("/ends/", False), ("/a//b", False), ("no spaces", False), ("1st", False),
     ("/dash-ed", False), (None, False), (5, False)],
)
def test_is_topic_name(topic: Any, ok: bool):
    assert is_topic_name(topic) is ok


def test_readers_record_a_problem_and_fall_back_to_the_default():
    chk = Checker()
    section = {"n": 0, "i": 2.5, "b": "yes", "c": "x", "m": [], "inf": float("inf")}
    assert chk.number(section, "n", "s", 1.0, low=0.0, high=5.0) == 1.0
    assert chk.number(section, "inf", "s", 1.0, low=0.0) == 1.0
    assert chk.integer(section, "i", "s", 3, low=1, high=9) == 3
    assert chk.boolean(section, "b", "s", True) is True
    assert chk.choice(section, "c", "s", "a", ("a", "b")) == "a"
    assert chk.mapping(section, "m", "s") == {}
    chk.unknown_keys({"typo": 1}, "", {"known"})
    assert chk.problems == [
        "s.n: 0: a number in (0, 5]",
        "s.inf: inf: a finite number",
        "s.i: 2.5: an integer in [1, 9]",
        "s.b: 'yes': true or false",
        "s.c: 'x': one of a, b",
        "s.m: []: a mapping of named entries",
        "typo: 1: unknown key; allowed: known",
    ]


def test_good_values_pass_without_problems():
    chk = Checker()
    assert chk.number({"n": 0.5}, "n", "s", 1.0, low=0.5, high=5.0, low_inclusive=True) == 0.5
    assert chk.number({}, "n", "s", 1.0, low=0.0) == 1.0
    assert chk.integer({"i": 9}, "i", "s", 3, low=1, high=9) == 9
    assert chk.problems == []


def settings(value: float) -> float:
    if value <= 0:
        raise ValueError(f"size: {value!r}: a number > 0")
    return value


def test_build_lists_the_settings_own_rule_under_the_sections_path():
    chk = Checker()
    assert chk.build("section", lambda: settings(2.0)) == 2.0
    assert chk.build("section", lambda: settings(-1.0)) is None
    assert chk.build("", lambda: settings(0.0)) is None
    assert chk.problems == ["section.size: -1.0: a number > 0", "size: 0.0: a number > 0"]


def test_config_error_lists_every_problem_with_its_source():
    error = ConfigError(["a: 1: x", "b: 2: y"], "monitor.yaml")
    assert error.problems == ["a: 1: x", "b: 2: y"]
    assert str(error) == "monitor.yaml: 2 problem(s):\n  - a: 1: x\n  - b: 2: y"
    assert isinstance(error, InputError)  # bad input: the commands exit 2 with its message
