"""How many refused triggers reach the log: the event stream carries every one, the log a sample.

A trigger firing during a cooldown (or with capture stopped) is refused each time it fires, which
can be many times a second; each refusal is a `snapshot` event on `~/events` (outcome 'cooldown',
'rate', 'stopped' or 'closed', with the reason), but the log gets at most one line per outcome
per period, and that line says how many of the same outcome were left out since the last one.
Every other event is logged as it is. Each line goes through `text.printable`, so an event is one
log line whatever text from other nodes its reason carries.
"""

from __future__ import annotations

from gap_monitor.core.events import Event
from gap_monitor.core.text import printable
from gap_monitor.core.units import NS_PER_S

__all__ = ["REFUSAL_LOG_PERIOD_NS", "REFUSED_OUTCOMES", "RefusalLog"]

REFUSED_OUTCOMES = frozenset({"cooldown", "rate", "stopped", "closed"})
REFUSAL_LOG_PERIOD_NS = 10 * NS_PER_S


class RefusalLog:
    """Decides the log line of each event (None: left out of the log). Not thread-safe."""

    def __init__(self, period_ns: int = REFUSAL_LOG_PERIOD_NS) -> None:
        self._period_ns = period_ns
        self._logged_ns: dict[str, int] = {}  # outcome -> when it was last logged
        self._left_out: dict[str, int] = {}  # outcome -> refusals not logged since

    def line(self, event: Event) -> str | None:
        line = self._line(event)
        return None if line is None else printable(line)

    def _line(self, event: Event) -> str | None:
        outcome = event.details.get("outcome")
        if event.kind != "snapshot" or "trigger" not in event.details or outcome not in REFUSED_OUTCOMES:
            return event.reason
        last = self._logged_ns.get(outcome)
        # A clock that went back (sim time restarted) starts the period afresh.
        if last is not None and last <= event.time_ns < last + self._period_ns:
            self._left_out[outcome] = self._left_out.get(outcome, 0) + 1
            return None
        self._logged_ns[outcome] = event.time_ns
        left_out = self._left_out.pop(outcome, 0)
        if left_out:
            return f"{event.reason} ({left_out} more '{outcome}' refusals not logged before this one)"
        return event.reason
