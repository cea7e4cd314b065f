"""One event type for everything the monitor announces: stream state changes, novel conditions,
skew, snapshots. Events go out on `~/events` as JSON so any tool can read them without our types."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import IntEnum
from typing import Any


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
        return json.dumps(d, sort_keys=True, default=str)

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
