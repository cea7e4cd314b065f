"""The errors gap_monitor raises on purpose: one root, and one class for input a user can fix.

`InputError` is bad input (a config value, a recording, a dataset, a profile, a message, a path):
the commands print its one-line message and exit 2, the node refuses to start with it, and the
live path counts it as a malformed message. Anything else that escapes is a bug and is left to
surface as a traceback (exit 1), never reported as bad input. Each area has its own subclass so a
caller can catch exactly what it can handle (`except RecordingError`), not a catch-all
`ValueError` that would also swallow a programming error.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "NO_VALUE",
    "ConfigError",
    "GapMonitorError",
    "InputError",
    "MessageError",
    "ProfileError",
    "RecordingError",
    "describe_problem",
]


class _NoValue:
    """Marks an InputError about a thing as a whole (a file, a path), not about one value."""

    def __repr__(self) -> str:
        return "NO_VALUE"


NO_VALUE = _NoValue()


def describe_problem(key: str, value: object, allowed: str) -> str:
    """The one wording of a bad value: `key: value: what is allowed` (`key: allowed` without a value)."""
    if isinstance(value, _NoValue):
        return f"{key}: {allowed}"
    return f"{key}: {value!r}: {allowed}"


class GapMonitorError(Exception):
    """Root of every error gap_monitor raises on purpose."""


class InputError(GapMonitorError):
    """Input the user can fix. Built from what is wrong, the value and what is allowed, it writes
    its own message, e.g. `imus.imu.rate_hz: -5: a number in (0, 100000]`."""

    def __init__(self, key: str, value: object = NO_VALUE, allowed: str = "") -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        super().__init__(describe_problem(key, value, allowed) if allowed else key)


class ConfigError(InputError):
    """A settings file or mapping with one or more problems, all listed at once."""

    def __init__(self, problems: Sequence[str], source: str = "config") -> None:
        self.problems = list(problems)
        self.source = source
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s):\n{lines}")


class RecordingError(InputError):
    """A path that is not a readable recording or dataset, or one that is corrupt."""


class ProfileError(InputError):
    """A profile file or structure that cannot be used: corrupt, incomplete, wrong version."""


class MessageError(InputError):
    """One message that cannot be decoded or measured (malformed bytes, unknown encoding, ...).
    Counted as malformed on its stream; it never stops the monitor or a command."""
