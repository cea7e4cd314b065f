"""Per-topic receive health: is each sensor stream arriving, and at the rate it should?

Counts receipts (not header stamps: stamp timing is `timing.py`'s job), so it also works for topics
whose stamps are broken. A stall restarts the rate window: once a stream is back it is judged on its
new messages, not on a window still containing the gap.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from gap_monitor.core.events import Severity
from gap_monitor.core.units import NS_PER_S
from gap_monitor.core.values import number

# Receipt times going back by more than this are a clock jump (sim time restart, clock step);
# less is callback reordering.
JUMP_BACK_NS = NS_PER_S // 10


@dataclass(frozen=True)
class HealthReport:
    """A stream's receive health now: level and message, and the numbers behind them."""

    level: Severity
    message: str
    count: int
    rate_hz: float | None
    expected_rate_hz: float
    since_last_s: float | None
    bytes_per_s: float | None
    resets: int

    def values(self) -> dict[str, str]:
        """The named values in display form (`core/values.py`)."""
        return {
            "count": str(self.count),
            "rate_hz": number(self.rate_hz),
            "expected_rate_hz": number(self.expected_rate_hz, "g"),
            "since_last_s": number(self.since_last_s, ".3f"),
            "bytes_per_s": number(self.bytes_per_s, ".0f"),
        }


class StreamHealth:
    """Receive statistics of one stream over a sliding window of receipt times."""

    def __init__(
        self,
        expected_rate_hz: float,
        rate_tolerance: float,
        stale_timeout_s: float,
        rate_window_s: float,
        started_ns: int,
    ) -> None:
        self.expected_rate_hz = expected_rate_hz
        self.rate_tolerance = rate_tolerance
        self._timeout_ns = int(stale_timeout_s * NS_PER_S)
        self._window_ns = int(rate_window_s * NS_PER_S)
        # Bounded even if nobody asks for a report: a burst far above the expected rate is capped.
        maxlen = int(4 * expected_rate_hz * rate_window_s) + 64
        self._recent: deque[tuple[int, int]] = deque(maxlen=maxlen)
        self._recent_bytes = 0
        self._since_ns = started_ns
        self._last_ns: int | None = None
        self.count = 0
        self.total_bytes = 0
        self.resets = 0

    @property
    def last_ns(self) -> int | None:
        """Receipt time of the last message (None before the first)."""
        return self._last_ns

    @property
    def held(self) -> tuple[int, int]:
        """(receipts held for the rate, the most it holds): memory stays bounded."""
        return len(self._recent), self._recent.maxlen or 0

    def observe(self, receipt_ns: int, nbytes: int) -> None:
        last = self._last_ns
        if last is not None and (receipt_ns < last - JUMP_BACK_NS or receipt_ns - last > self._timeout_ns):
            # A backwards clock jump or a stall: start the rate window afresh.
            self.restart(receipt_ns)
        if len(self._recent) == self._recent.maxlen:
            self._recent_bytes -= self._recent[0][1]
        self._recent.append((receipt_ns, nbytes))
        self._recent_bytes += nbytes
        self._last_ns = receipt_ns
        self.count += 1
        self.total_bytes += nbytes

    def restart(self, now_ns: int) -> None:
        """Forget the rate window (kept: totals), e.g. after a stall or a new subscription."""
        self._recent.clear()
        self._recent_bytes = 0
        self._since_ns = now_ns
        self.resets += 1

    def _trim(self, now_ns: int) -> None:
        cutoff = now_ns - self._window_ns
        recent = self._recent
        while recent and recent[0][0] <= cutoff:
            self._recent_bytes -= recent.popleft()[1]

    def report(self, now_ns: int) -> HealthReport:
        if self._last_ns is not None and now_ns < self._last_ns - JUMP_BACK_NS:
            self.restart(now_ns)
            self._last_ns = None
        self._trim(now_ns)
        since_last = None if self._last_ns is None else (now_ns - self._last_ns) / NS_PER_S
        idle_ns = now_ns - (self._last_ns if self._last_ns is not None else self._since_ns)
        # (n - 1) intervals over the span between first and last receipt: unbiased, and the idle
        # tail after the last message is the stall check's business, not the rate's.
        recent = self._recent
        span_ns = recent[-1][0] - recent[0][0] if len(recent) >= 2 else 0
        # A second (or 3 periods of a slow stream) at least: a shorter span measures jitter, not rate.
        min_span_ns = min(self._window_ns // 2, max(NS_PER_S, int(3 * NS_PER_S / self.expected_rate_hz)))
        rate = bps = None
        if now_ns - self._since_ns >= self._window_ns and recent:
            # A full window: count over its length. Receipts come in executor batches, so a
            # first-to-last span would read high by the batching.
            rate = len(recent) * NS_PER_S / self._window_ns
            bps = self._recent_bytes * NS_PER_S / self._window_ns
        elif span_ns > 0 and span_ns >= min_span_ns:
            rate = (len(recent) - 1) * NS_PER_S / span_ns
            bps = (self._recent_bytes - recent[0][1]) * NS_PER_S / span_ns
        low = self.expected_rate_hz * (1.0 - self.rate_tolerance)
        high = self.expected_rate_hz * (1.0 + self.rate_tolerance)
        if idle_ns > self._timeout_ns:
            level = Severity.STALE
            if self._last_ns is None:
                message = f"no message yet ({idle_ns / NS_PER_S:.1f} s)"
            else:
                message = f"stalled: nothing for {idle_ns / NS_PER_S:.1f} s"
        elif rate is None:
            level, message = Severity.OK, "receiving; measuring rate"
        elif not low <= rate <= high:
            level = Severity.WARN
            message = (
                f"rate {rate:.1f} Hz outside {low:.1f}-{high:.1f} Hz (expected {self.expected_rate_hz:g} Hz)"
            )
        else:
            level, message = Severity.OK, f"{rate:.1f} Hz"
        return HealthReport(
            level=level,
            message=message,
            count=self.count,
            rate_hz=rate,
            expected_rate_hz=self.expected_rate_hz,
            since_last_s=since_last,
            bytes_per_s=bps,
            resets=self.resets,
        )
