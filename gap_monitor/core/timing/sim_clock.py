"""Whether sim time advances: with use_sim_time the node's clock is /clock, and without /clock its
timers never fire, so the monitor would be silent with no word why. Judged on the steady clock."""

from __future__ import annotations

from dataclasses import dataclass

from gap_monitor.core.units import NS_PER_S

CLOCK_WATCH_PERIOD_S = 1.0
CLOCK_WARN_AFTER_S = 3.0  # /clock publishers send at 10 Hz or more; 3 s without one is no hiccup
CLOCK_LOG_EVERY_S = 30.0  # the log line repeats this often while waiting (the status every period)


@dataclass(frozen=True)
class ClockNote:
    """What the node says now: `waiting` (publish `status` at WARN), and `log`, a line to log
    (None: nothing, throttled)."""

    waiting: bool
    status: str = ""
    log: str | None = None


class SimClockWatch:
    """Watches the sim time the node reads, once per period of the steady clock."""

    def __init__(
        self, warn_after_s: float = CLOCK_WARN_AFTER_S, log_every_s: float = CLOCK_LOG_EVERY_S
    ) -> None:
        self._warn_after_ns = int(warn_after_s * NS_PER_S)
        self._log_every_ns = int(log_every_s * NS_PER_S)
        self._sim_ns: int | None = None
        self._since_ns = 0  # steady time the sim time last changed
        self._logged_ns: int | None = None  # steady time of the last warning; None: not waiting

    def observe(self, sim_time_active: bool, sim_ns: int, steady_ns: int) -> ClockNote:
        if not sim_time_active:
            self._sim_ns, self._logged_ns = None, None
            return ClockNote(False)
        if sim_ns != self._sim_ns:
            was_waiting = self._logged_ns is not None
            first = self._sim_ns is None or self._sim_ns == 0
            self._sim_ns, self._since_ns, self._logged_ns = sim_ns, steady_ns, None
            if was_waiting and sim_ns != 0:
                what = "/clock received" if first else "/clock advances again"
                return ClockNote(False, log=f"{what}: monitoring on sim time ({sim_ns / NS_PER_S:.3f} s)")
            return ClockNote(False)
        stalled_ns = steady_ns - self._since_ns
        if stalled_ns < self._warn_after_ns:
            return ClockNote(self._logged_ns is not None)
        stalled_s = stalled_ns / NS_PER_S
        if sim_ns == 0:
            status = (
                f"use_sim_time is true and no /clock message in {stalled_s:.0f} s: waiting for /clock "
                "(play the bag with --clock, or start the simulator)"
            )
        else:
            status = (
                f"use_sim_time is true and /clock has not advanced for {stalled_s:.0f} s "
                f"(stopped at {sim_ns / NS_PER_S:.3f} s; bag paused or simulator stopped?)"
            )
        log = None
        if self._logged_ns is None or steady_ns - self._logged_ns >= self._log_every_ns:
            self._logged_ns, log = steady_ns, status
        return ClockNote(True, status, log)
