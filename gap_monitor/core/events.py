"""One event type for everything the monitor announces: stream state changes, novel conditions,
skew, snapshots. Events go out on `~/events` as JSON so any tool can read them without our types.

The JSON is always valid UTF-8: json escapes control characters, and a lone surrogate (an
undecodable byte of leniently decoded text that reached a reason or detail unescaped) is written as
its `gap_monitor.core.text` escape (`\\xNN`), never as a surrogate a strict reader would refuse."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from enum import IntEnum
from typing import Any

from gap_monitor.core.text import escaped

_SURROGATE = re.compile("[\ud800-\udfff]")


class Severity(IntEnum):
    """Same numbers as diagnostic_msgs/DiagnosticStatus levels, so the two never disagree."""

    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3


@dataclass(frozen=True)
class Event:
    kind: str
    source: str
    severity: Severity
    reason: str
    time_ns: int
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        d = asdict(self)
        d["severity"] = self.severity.name
        text = json.dumps(d, sort_keys=True, default=str, ensure_ascii=False)
        # Surrogates only occur inside JSON strings there: escape the escape's backslash for JSON.
        return _SURROGATE.sub(lambda m: escaped(m.group()).replace("\\", "\\\\"), text)

    @classmethod
    def from_json(cls, text: str) -> Event:
        d = json.loads(text)
        return cls(
            kind=str(d["kind"]),
            source=str(d["source"]),
            severity=Severity[d["severity"]],
            reason=str(d["reason"]),
            time_ns=int(d["time_ns"]),
            details=dict(d.get("details") or {}),
        )
