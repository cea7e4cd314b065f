"""Collects every problem in a settings mapping before raising, so a user fixes a file in one pass.

Each problem reads `key: value: what is allowed`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from gap_monitor.core.io.names import is_topic_name
from gap_monitor.errors import describe_problem

__all__ = ["Checker", "is_topic_name"]

_Settings = TypeVar("_Settings")


class Checker:
    """Reads typed values out of a nested mapping, recording every problem instead of stopping."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, key: str, value: Any, allowed: str) -> None:
        self.problems.append(describe_problem(key, value, allowed))

    def number(
        self,
        section: Mapping[str, Any],
        key: str,
        path: str,
        default: float,
        *,
        low: float,
        high: float = math.inf,
        low_inclusive: bool = False,
    ) -> float:
        value = section.get(key, default)
        ok_type = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok_type or not math.isfinite(float(value)):
            self.problem(f"{path}.{key}".lstrip("."), value, "a finite number")
            return default
        v = float(value)
        above = v >= low if low_inclusive else v > low
        if not above or v > high:
            bracket = "[" if low_inclusive else "("
            hi = "inf)" if math.isinf(high) else f"{high:g}]"
            self.problem(f"{path}.{key}".lstrip("."), value, f"a number in {bracket}{low:g}, {hi}")
            return default
        return v

    def integer(
        self, section: Mapping[str, Any], key: str, path: str, default: int, *, low: int, high: int
    ) -> int:
        value = section.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            self.problem(f"{path}.{key}".lstrip("."), value, f"an integer in [{low}, {high}]")
            return default
        return value

    def boolean(self, section: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
        value = section.get(key, default)
        if not isinstance(value, bool):
            self.problem(f"{path}.{key}".lstrip("."), value, "true or false")
            return default
        return value

    def choice(
        self, section: Mapping[str, Any], key: str, path: str, default: str, choices: tuple[str, ...]
    ) -> str:
        value = section.get(key, default)
        if value not in choices:
            self.problem(f"{path}.{key}".lstrip("."), value, f"one of {', '.join(choices)}")
            return default
        return str(value)

    def mapping(self, section: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
        value = section.get(key, {})
        if not isinstance(value, Mapping):
            self.problem(f"{path}.{key}".lstrip("."), value, "a mapping of named entries")
            return {}
        return value

    def unknown_keys(self, section: Mapping[str, Any], path: str, allowed: set[str]) -> None:
        for key in section:
            if key not in allowed:
                where = f"{path}.{key}".lstrip(".")
                self.problem(where, section[key], f"unknown key; allowed: {', '.join(sorted(allowed))}")

    def build(self, path: str, make: Callable[[], _Settings]) -> _Settings | None:
        """An analyser's settings from `make`, or None with the settings' own ValueError listed.

        Settings check their own rules and say `field: value: what is allowed`; under the section's
        `path` that reads as any other problem, so a rule lives in one place and a file that loads
        also starts.
        """
        try:
            return make()
        except ValueError as exc:
            self.problems.append(f"{path}.{exc}".lstrip("."))
            return None
