"""Per-topic stream timing from header stamps and receipt times.

`StreamTiming` watches one stream: rate against the expected rate, period median and jitter,
gaps (missing periods), stamp monotonicity, zero and future stamps, receipt latency, and clock
jumps. A clock jump (receipt time going back, or one clock stepping against another) resets the
statistics and is counted instead of showing up as a huge gap or latency. Memory is bounded: only
the last `window_s` seconds (and at most `max_samples` messages) are kept.

`TimingTracker` keys streams by (topic, header.frame_id), so a topic that carries several sensors
is judged per sensor.

Times are integer nanoseconds; reported values are floats in ms / Hz.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from gap_monitor.core.events import Severity
from gap_monitor.core.units import NS_PER_MS, NS_PER_S
from gap_monitor.core.values import number

__all__ = [
    "Finding",
    "Severity",
    "StreamTiming",
    "TimingLimits",
    "TimingSettings",
    "TimingSummary",
    "TimingTracker",
    "assess_summary",
    "worst_finding",
]


# Per-message flags kept in the window.
_NO_STAMP = 1
_ZERO = 2
_FUTURE = 4
_NON_MONOTONIC = 8
_DUPLICATE = 16


@dataclass(frozen=True)
class Finding:
    """One judged check: `message` is a sentence with the numbers, `values` the raw numbers."""

    level: Severity  # OK, WARN or ERROR (the diagnostic_msgs levels)
    subject: str  # the stream ("/imu", "/cam [left]") or the pair ("/a vs /b")
    check: str  # "rate", "jitter", "gaps", "stamps", "future", "latency", "clock", "silence", ...
    message: str
    values: Mapping[str, float] = field(default_factory=dict)


def worst_finding(findings: Sequence[Finding]) -> tuple[Severity, str]:
    """The level and message of a check's findings: the worst ones, or the first two when all OK."""
    if not findings:
        return Severity.OK, "collecting"
    worst = max(f.level for f in findings)
    bad = [f.message for f in findings if f.level == worst and worst > Severity.OK]
    if bad:
        return worst, "; ".join(bad)
    return Severity.OK, "; ".join(f.message for f in findings[:2])


def _check_positive(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} = {value!r}: must be a finite number > 0")


def _check_non_negative(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} = {value!r}: must be a finite number >= 0")


def _check_int_at_least(name: str, value: int, minimum: int) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= minimum):
        raise ValueError(f"{name} = {value!r}: must be an integer >= {minimum}")


def _check_ordered(low_name: str, low: float | None, high_name: str, high: float | None) -> None:
    if low is not None and high is not None and low > high:
        raise ValueError(f"{low_name} = {low!r} must not exceed {high_name} = {high!r}")


@dataclass(frozen=True)
class TimingSettings:
    """How a stream is measured (not how it is judged: that is TimingLimits)."""

    window_s: float = 10.0  # statistics cover this much recent receipt time
    max_samples: int = 20_000  # hard cap on kept messages per stream (a 1 kHz IMU over 10 s: 10k)
    gap_factor: float = 1.5  # a period longer than this x the reference period is a gap
    min_periods: int = 5  # periods needed before the median can serve as reference
    future_tolerance_ms: float = 1.0  # a stamp this far past its receipt time is "in the future"
    clock_jump_back_s: float = 0.1  # receipt time going back more than this is a clock jump
    clock_jump_step_s: float = 5.0  # one clock stepping this much against another is a jump

    def __post_init__(self) -> None:
        _check_positive("window_s", self.window_s)
        _check_int_at_least("max_samples", self.max_samples, 10)
        if not (isinstance(self.gap_factor, (int, float)) and self.gap_factor > 1):
            raise ValueError(f"gap_factor = {self.gap_factor!r}: must be a number > 1")
        _check_int_at_least("min_periods", self.min_periods, 1)
        _check_non_negative("future_tolerance_ms", self.future_tolerance_ms)
        _check_positive("clock_jump_back_s", self.clock_jump_back_s)
        _check_positive("clock_jump_step_s", self.clock_jump_step_s)


@dataclass(frozen=True)
class TimingLimits:
    """Thresholds for `assess`; a limit of None disables that check's WARN/ERROR."""

    rate_warn_pct: float | None = 10.0  # |measured / expected - 1|
    rate_error_pct: float | None = 50.0
    jitter_warn_pct: float | None = 25.0  # p95 |period - median| relative to the period
    jitter_error_pct: float | None = 50.0
    gaps_warn: int | None = 1  # gaps within the window
    missed_error_pct: float | None = 5.0  # missing messages / expected messages in the window
    latency_warn_ms: float | None = None  # receipt - stamp, p95
    latency_error_ms: float | None = None
    future_warn_count: int | None = 1  # stamps ahead of their receipt time (clock offset)
    future_error_ms: float | None = 1000.0  # a stamp this far ahead is a wrong clock
    stamp_warn_count: int | None = 1  # non-monotonic, duplicate or zero stamps in the window
    silence_warn_periods: float | None = 3.0  # time since the last message, in periods
    silence_error_periods: float | None = 10.0
    min_messages: int = 10  # fewer in the window: only an OK "collecting" finding

    def __post_init__(self) -> None:
        for name in (
            "rate_warn_pct", "rate_error_pct", "jitter_warn_pct", "jitter_error_pct",
            "missed_error_pct", "latency_warn_ms", "latency_error_ms", "future_error_ms",
            "silence_warn_periods", "silence_error_periods",
        ):
            value = getattr(self, name)
            if value is not None:
                _check_non_negative(name, value)
        for name in ("gaps_warn", "future_warn_count", "stamp_warn_count"):
            value = getattr(self, name)
            if value is not None:
                _check_int_at_least(name, value, 1)
        _check_int_at_least("min_messages", self.min_messages, 2)
        _check_ordered("rate_warn_pct", self.rate_warn_pct, "rate_error_pct", self.rate_error_pct)
        _check_ordered(
            "jitter_warn_pct", self.jitter_warn_pct, "jitter_error_pct", self.jitter_error_pct
        )
        _check_ordered(
            "latency_warn_ms", self.latency_warn_ms, "latency_error_ms", self.latency_error_ms
        )
        _check_ordered(
            "silence_warn_periods", self.silence_warn_periods,
            "silence_error_periods", self.silence_error_periods,
        )


@dataclass(frozen=True)
class TimingSummary:
    """Statistics of one stream over its window (counts) and since start (totals).

    Periods come from header stamps (receipt times for a stream without stamps); gap periods are
    excluded from the jitter numbers, which describe the timing noise of what did arrive. The
    receipt_* numbers are the same statistics of the receipt intervals (delivery jitter).
    """

    name: str
    messages: int  # in the window
    window_s: float  # receipt time the window actually spans
    expected_rate_hz: float | None
    rate_hz: float | None  # arrivals per second over the window
    period_median_ms: float | None
    jitter_std_ms: float | None
    jitter_p95_ms: float | None  # p95 of |period - median period|
    jitter_max_ms: float | None
    receipt_period_median_ms: float | None
    receipt_jitter_std_ms: float | None
    receipt_jitter_p95_ms: float | None
    receipt_jitter_max_ms: float | None
    gaps: int
    missed_messages: int
    longest_gap_ms: float | None
    non_monotonic: int
    duplicate_stamps: int
    zero_stamps: int
    missing_stamps: int  # messages observed without a stamp (None)
    future_stamps: int
    max_future_ms: float | None  # how far the worst stamp was ahead of its receipt time
    latency_median_ms: float | None  # receipt - stamp; negative when stamps are ahead
    latency_p95_ms: float | None
    silence_ms: float | None  # now - last receipt, when `now_ns` was given
    clock_jumps: int  # since start
    last_clock_jump: str | None
    total_messages: int
    total_gaps: int
    total_missed: int
    total_non_monotonic: int
    total_future_stamps: int
    total_zero_stamps: int

    @property
    def reference_period_ms(self) -> float | None:
        """The expected period if configured, else the measured median."""
        if self.expected_rate_hz:
            return 1000.0 / self.expected_rate_hz
        return self.period_median_ms

    def values(self) -> dict[str, str]:
        """The named values of the window in display form (`core/values.py`)."""
        return {
            "stamp_rate_hz": number(self.rate_hz),
            "period_median_ms": number(self.period_median_ms, ".3f"),
            "jitter_p95_ms": number(self.jitter_p95_ms, ".3f"),
            "gaps": str(self.gaps),
            "latency_median_ms": number(self.latency_median_ms, ".3f"),
            "latency_p95_ms": number(self.latency_p95_ms, ".3f"),
            "clock_jumps": str(self.clock_jumps),
        }


def _ms(ns: float) -> float:
    return float(ns) / NS_PER_MS


def _spread(values: NDArray[np.int64]) -> tuple[float, float, float, float] | None:
    """(median, std, p95 |x - median|, max |x - median|) in ms; None for fewer than 2 values."""
    if len(values) < 2:
        return None
    median = float(np.median(values))
    dev = np.abs(values - median)
    return (_ms(median), _ms(float(np.std(values))), _ms(float(np.percentile(dev, 95))),
            _ms(float(dev.max())))


class _Gap(NamedTuple):
    receipt_ns: int
    start: int  # stamps (receipt times for a stream without stamps) around the hole
    end: int
    missed: int


class StreamTiming:
    """Timing statistics of one stream, fed message by message."""

    def __init__(
        self,
        expected_rate_hz: float | None = None,
        settings: TimingSettings | None = None,
        name: str = "",
    ) -> None:
        if expected_rate_hz is not None:
            _check_positive("expected_rate_hz", expected_rate_hz)
        self.expected_rate_hz = expected_rate_hz
        self.settings = settings or TimingSettings()
        self.name = name
        s = self.settings
        self._window_ns = int(s.window_s * NS_PER_S)
        self._future_tol_ns = int(s.future_tolerance_ms * NS_PER_MS)
        self._back_ns = int(s.clock_jump_back_s * NS_PER_S)
        self._step_ns = int(s.clock_jump_step_s * NS_PER_S)
        self._expected_period_ns = NS_PER_S / expected_rate_hz if expected_rate_hz else None
        # Lifetime counters survive clock jumps.
        self.clock_jumps = 0
        self.last_clock_jump: str | None = None
        self._totals = {"messages": 0, "gaps": 0, "missed": 0, "non_monotonic": 0, "future": 0,
                        "zero": 0}
        self._clear()

    def _clear(self) -> None:
        # (receipt_ns, period ns or -1, receipt interval ns or -1, latency ns, flags); a record
        # without a usable stamp (flags _NO_STAMP or _ZERO) has no latency and stores 0.
        self._records: deque[tuple[int, int, int, int, int]] = deque(maxlen=self.settings.max_samples)
        # The records as an int64 array, from the last summary: the next one converts only the
        # records appended since (a 1 kHz stream's 10 s window holds 10k of them).
        self._appended = 0
        self._columns = np.zeros((0, 5), np.int64)
        self._columns_end = 0  # self._appended when _columns was built
        self._gaps: deque[_Gap] = deque(maxlen=self.settings.max_samples)
        self._recent_periods: deque[int] = deque(maxlen=255)  # for the reference median
        self._median_period_ns: float | None = None
        self._since_median = 0
        self._last_receipt: int | None = None
        self._last_steady: int | None = None
        self._last_stamp: int | None = None  # newest valid (non-zero) stamp
        self._last_stamp_receipt = 0
        self._unusable_since_stamp = 0  # zero/repeated/backward stamps since the newest stamp
        self._last_unstamped_receipt: int | None = None

    @property
    def window_ns(self) -> int:
        """How much receipt time the statistics cover."""
        return self._window_ns

    @property
    def records(self) -> tuple[tuple[int, int, int, int, int], ...]:
        """The held messages as (receipt, period, interval, latency, flags) rows, oldest first:
        times in ns, a period of 0 and an interval of -1 where there is none; flags the bits
        1 no stamp, 2 zero stamp, 4 future, 8 non-monotonic, 16 duplicate."""
        return tuple(self._records)

    def reset(self, reason: str = "reset requested") -> None:
        """Forget the window (e.g. on a clock jump reported by the ROS clock); count it."""
        self.clock_jumps += 1
        self.last_clock_jump = reason
        self._clear()

    @property
    def reference_period_ns(self) -> float | None:
        """The period a gap is judged against: expected if configured, else the running median."""
        return self._expected_period_ns or self._median_period_ns

    def observe(self, stamp_ns: int | None, receipt_ns: int, steady_ns: int | None = None) -> None:
        """Record one message: its header stamp (None if it has none) and its receipt time.

        `steady_ns`, a monotonic clock read at receipt, lets a step of the receipt clock (wall
        clock set, sim time restart) be told apart from a real outage; without it, only a
        backwards receipt time or a disagreement between stamp and receipt steps counts as a jump.
        """
        has_stamp = stamp_ns is not None and stamp_ns != 0
        jump = self._detect_jump(stamp_ns if has_stamp else None, receipt_ns, steady_ns)
        if jump:
            self.reset(jump)
        self._prune(receipt_ns)
        self._totals["messages"] += 1

        flags = 0
        period = -1
        latency: int | None = None
        if stamp_ns is None:
            flags |= _NO_STAMP
            if self._last_unstamped_receipt is not None:
                period = self._judge_period(self._last_unstamped_receipt, receipt_ns, receipt_ns)
            self._last_unstamped_receipt = receipt_ns
        elif stamp_ns == 0:
            flags |= _ZERO
            self._totals["zero"] += 1
            self._unusable_since_stamp += 1
        else:
            latency = receipt_ns - stamp_ns
            if -latency > self._future_tol_ns:
                flags |= _FUTURE
                self._totals["future"] += 1
            if self._last_stamp is None or stamp_ns > self._last_stamp:
                if self._last_stamp is not None:
                    period = self._judge_period(
                        self._last_stamp, stamp_ns, receipt_ns, self._unusable_since_stamp
                    )
                self._last_stamp = stamp_ns
                self._last_stamp_receipt = receipt_ns
                self._unusable_since_stamp = 0
            elif stamp_ns == self._last_stamp:
                flags |= _DUPLICATE
                self._unusable_since_stamp += 1
            else:  # keep the newest stamp: a late message must not also fake a gap
                flags |= _NON_MONOTONIC
                self._totals["non_monotonic"] += 1
                self._late_arrival(stamp_ns)

        interval = -1
        if self._last_receipt is not None and receipt_ns >= self._last_receipt:
            interval = receipt_ns - self._last_receipt
            ref = self.reference_period_ns
            if ref is not None and interval > self.settings.gap_factor * ref:
                interval = -1  # an outage, not delivery jitter
        self._records.append((receipt_ns, period, interval, 0 if latency is None else latency, flags))
        self._appended += 1
        self._last_receipt = receipt_ns
        if steady_ns is not None:
            self._last_steady = steady_ns

    def _detect_jump(self, stamp: int | None, receipt_ns: int, steady_ns: int | None) -> str | None:
        if self._last_receipt is None:
            return None
        d_receipt = receipt_ns - self._last_receipt
        if d_receipt < -self._back_ns:
            return f"receipt time went back {-d_receipt / NS_PER_S:.3f} s"
        if steady_ns is not None and self._last_steady is not None:
            step = d_receipt - (steady_ns - self._last_steady)
            if abs(step) > self._step_ns:
                return f"receipt clock stepped {step / NS_PER_S:+.3f} s against the steady clock"
        if stamp is not None and self._last_stamp is not None:
            step = (stamp - self._last_stamp) - (receipt_ns - self._last_stamp_receipt)
            if abs(step) > self._step_ns:
                return f"header stamps stepped {step / NS_PER_S:+.3f} s against receipt time"
        return None

    def _missed(self, length: int) -> int:
        """Messages missing in an interval of `length` ns; 0 when it is no gap."""
        ref = self.reference_period_ns
        if ref is None or length <= self.settings.gap_factor * ref:
            return 0
        return max(1, round(length / ref) - 1)

    def _judge_period(self, start: int, end: int, receipt_ns: int, arrived_between: int = 0) -> int:
        """The period for the jitter statistics, or -1 when it is none (a gap is recorded).

        `arrived_between` counts messages received inside the interval whose stamps were unusable
        (zero, repeated, going back): they were not lost, so they reduce the missed count.
        """
        period = end - start
        if not arrived_between:
            self._recent_periods.append(period)  # gaps included: a real rate change must win
            self._since_median += 1
        enough = len(self._recent_periods) >= self.settings.min_periods
        if enough and (self._median_period_ns is None or self._since_median >= 16):
            # np.median's value, without building an array for every 16th message.
            ordered = sorted(self._recent_periods)
            mid = len(ordered) // 2
            if len(ordered) % 2:
                self._median_period_ns = float(ordered[mid])
            else:
                self._median_period_ns = (float(ordered[mid - 1]) + float(ordered[mid])) / 2.0
            self._since_median = 0
        missed = self._missed(period)
        if arrived_between:
            missed = max(0, missed - arrived_between)
            if not missed:
                return -1  # spans several messages: not one period
        if not missed:
            return period
        self._gaps.append(_Gap(receipt_ns, start, end, missed))
        self._totals["gaps"] += 1
        self._totals["missed"] += missed
        return -1

    def _late_arrival(self, stamp: int) -> None:
        """A late message that falls into the last gap fills (part of) it."""
        if not self._gaps or not self._gaps[-1].start < stamp < self._gaps[-1].end:
            return
        gap = self._gaps.pop()
        self._totals["gaps"] -= 1
        self._totals["missed"] -= gap.missed
        for start, end in ((gap.start, stamp), (stamp, gap.end)):
            missed = self._missed(end - start)
            if missed:
                self._gaps.append(_Gap(gap.receipt_ns, start, end, missed))
                self._totals["gaps"] += 1
                self._totals["missed"] += missed

    def _prune(self, now_ns: int) -> None:
        horizon = now_ns - self._window_ns
        records, gaps = self._records, self._gaps
        while records and records[0][0] < horizon:
            records.popleft()
        while gaps and gaps[0].receipt_ns < horizon:
            gaps.popleft()

    def _records_array(self) -> NDArray[np.int64]:
        """The held records as an (n, 5) int64 array, oldest first; converts only what was
        appended since the last call."""
        records = self._records
        held = len(records)
        first = self._appended - held  # running index of the oldest held record
        cached = self._columns
        cached_first = self._columns_end - len(cached)
        new = self._appended - self._columns_end
        if new > held or cached_first > first:  # nothing of the cache is still held
            cached, new = cached[:0], held
        else:
            cached = cached[first - cached_first :]
        if new:
            fresh = np.array(list(itertools.islice(reversed(records), new))[::-1], np.int64).reshape(-1, 5)
            cached = np.concatenate((cached, fresh)) if len(cached) else fresh
        self._columns, self._columns_end = cached, self._appended
        return cached

    def summary(self, now_ns: int | None = None) -> TimingSummary:
        """Statistics over the window ending at `now_ns` (default: the last receipt)."""
        end = now_ns if now_ns is not None else (self._last_receipt or 0)
        horizon = end - self._window_ns
        gaps = [g for g in self._gaps if g.receipt_ns >= horizon]
        table = self._records_array()
        inside = table[:, 0] >= horizon  # receipts may step back a little: not sorted
        if not inside.all():
            table = table[inside]
        receipts, periods, intervals, latencies, flags = table.T
        n = len(receipts)
        # A record has a latency exactly when it has a usable (non-zero) stamp.
        stamped = (flags & (_NO_STAMP | _ZERO)) == 0
        future_ns = (-latencies[stamped & ((flags & _FUTURE) != 0)]).tolist()
        periods = periods[periods > 0]
        intervals = intervals[intervals >= 0]
        latencies = latencies[stamped]

        span_ns = int(receipts[-1] - receipts[0]) if n >= 2 else 0
        period_stats = _spread(periods)
        receipt_stats = _spread(intervals)
        last = self._last_receipt
        return TimingSummary(
            name=self.name,
            messages=n,
            window_s=span_ns / NS_PER_S,
            expected_rate_hz=self.expected_rate_hz,
            rate_hz=(n - 1) * NS_PER_S / span_ns if span_ns > 0 else None,
            period_median_ms=period_stats[0] if period_stats else None,
            jitter_std_ms=period_stats[1] if period_stats else None,
            jitter_p95_ms=period_stats[2] if period_stats else None,
            jitter_max_ms=period_stats[3] if period_stats else None,
            receipt_period_median_ms=receipt_stats[0] if receipt_stats else None,
            receipt_jitter_std_ms=receipt_stats[1] if receipt_stats else None,
            receipt_jitter_p95_ms=receipt_stats[2] if receipt_stats else None,
            receipt_jitter_max_ms=receipt_stats[3] if receipt_stats else None,
            gaps=len(gaps),
            missed_messages=sum(g.missed for g in gaps),
            longest_gap_ms=_ms(max(g.end - g.start for g in gaps)) if gaps else None,
            non_monotonic=int(np.count_nonzero(flags & _NON_MONOTONIC)),
            duplicate_stamps=int(np.count_nonzero(flags & _DUPLICATE)),
            zero_stamps=int(np.count_nonzero(flags & _ZERO)),
            missing_stamps=int(np.count_nonzero(flags & _NO_STAMP)),
            future_stamps=len(future_ns),
            max_future_ms=_ms(max(future_ns)) if future_ns else None,
            latency_median_ms=_ms(float(np.median(latencies))) if len(latencies) else None,
            latency_p95_ms=_ms(float(np.percentile(latencies, 95))) if len(latencies) else None,
            silence_ms=_ms(now_ns - last) if now_ns is not None and last is not None else None,
            clock_jumps=self.clock_jumps,
            last_clock_jump=self.last_clock_jump,
            total_messages=self._totals["messages"],
            total_gaps=self._totals["gaps"],
            total_missed=self._totals["missed"],
            total_non_monotonic=self._totals["non_monotonic"],
            total_future_stamps=self._totals["future"],
            total_zero_stamps=self._totals["zero"],
        )

    def assess(
        self, limits: TimingLimits | None = None, now_ns: int | None = None
    ) -> list[Finding]:
        """Judge the window against `limits`: one Finding per check, OK ones included."""
        return assess_summary(self.summary(now_ns), limits or TimingLimits())


def _level(value: float, warn: float | None, error: float | None) -> Severity:
    if error is not None and value > error:
        return Severity.ERROR
    if warn is not None and value > warn:
        return Severity.WARN
    return Severity.OK


def _limit(level: Severity, warn: float | None, error: float | None, unit: str) -> str:
    """", limit 10 %" naming the crossed limit; empty when nothing was crossed."""
    limit = error if level == Severity.ERROR else warn if level == Severity.WARN else None
    return f", limit {limit:g}{unit}" if limit is not None else ""


def assess_summary(s: TimingSummary, limits: TimingLimits) -> list[Finding]:
    """The judgement behind StreamTiming.assess, usable on a stored summary."""
    name = s.name or "stream"
    out: list[Finding] = []

    def add(level: Severity, check: str, text: str, **values: float) -> None:
        out.append(Finding(level, s.name, check, f"{name}: {text}", values))

    if s.clock_jumps:
        add(Severity.OK, "clock",
            f"statistics reset after {s.clock_jumps} clock jump(s), last: {s.last_clock_jump}",
            clock_jumps=s.clock_jumps)
    ref = s.reference_period_ms
    if s.silence_ms is not None and ref:
        lim_w, lim_e = limits.silence_warn_periods, limits.silence_error_periods
        level = _level(s.silence_ms / ref, lim_w, lim_e)
        add(level, "silence",
            f"last message {s.silence_ms:.1f} ms ago (period {ref:.3g} ms"
            f"{_limit(level, lim_w, lim_e, ' periods')})",
            silence_ms=s.silence_ms)
    if s.messages < limits.min_messages:
        add(Severity.OK, "rate", f"collecting ({s.messages} of {limits.min_messages} messages)",
            messages=s.messages)
        return out

    if s.rate_hz is not None and s.expected_rate_hz:
        dev = (s.rate_hz / s.expected_rate_hz - 1) * 100
        dev = 0.0 if abs(dev) < 0.05 else dev  # no "-0.0 %"
        level = _level(abs(dev), limits.rate_warn_pct, limits.rate_error_pct)
        add(level, "rate",
            f"rate {s.rate_hz:.2f} Hz vs expected {s.expected_rate_hz:g} Hz ({dev:+.1f} %"
            f"{_limit(level, limits.rate_warn_pct, limits.rate_error_pct, ' %')})",
            rate_hz=s.rate_hz, expected_rate_hz=s.expected_rate_hz, deviation_pct=dev)
    elif s.rate_hz is not None:
        add(Severity.OK, "rate", f"rate {s.rate_hz:.2f} Hz (no expected rate configured)",
            rate_hz=s.rate_hz)

    if s.jitter_p95_ms is not None and s.period_median_ms is not None and ref:
        pct = s.jitter_p95_ms / ref * 100
        lim_w, lim_e = limits.jitter_warn_pct, limits.jitter_error_pct
        level = _level(pct, lim_w, lim_e)
        add(level, "jitter",
            f"period {s.period_median_ms:.3f} ms, jitter p95 {s.jitter_p95_ms:.3f} ms "
            f"({pct:.1f} % of the period{_limit(level, lim_w, lim_e, ' %')})",
            period_median_ms=s.period_median_ms, jitter_p95_ms=s.jitter_p95_ms,
            jitter_std_ms=s.jitter_std_ms or 0.0)

    expected_messages = s.messages + s.missed_messages
    missed_pct = s.missed_messages / expected_messages * 100 if expected_messages else 0.0
    if s.gaps and s.longest_gap_ms is not None:
        level = Severity.OK
        if limits.gaps_warn is not None and s.gaps >= limits.gaps_warn:
            level = Severity.WARN
        if limits.missed_error_pct is not None and missed_pct > limits.missed_error_pct:
            level = Severity.ERROR
        add(level, "gaps",
            f"{s.gaps} gap(s) in the last {s.window_s:.1f} s, ~{s.missed_messages} message(s) "
            f"missing ({missed_pct:.1f} %{_limit(level, None, limits.missed_error_pct, ' %')}), "
            f"longest {s.longest_gap_ms:.1f} ms",
            gaps=s.gaps, missed_messages=s.missed_messages, missed_pct=missed_pct,
            longest_gap_ms=s.longest_gap_ms)
    else:
        add(Severity.OK, "gaps", f"no gaps in the last {s.window_s:.1f} s", gaps=0)

    bad_stamps = s.non_monotonic + s.duplicate_stamps + s.zero_stamps
    if bad_stamps:
        warn = limits.stamp_warn_count is not None and bad_stamps >= limits.stamp_warn_count
        parts = [f"{count} {what}" for count, what in (
            (s.non_monotonic, "going backwards"), (s.duplicate_stamps, "repeated"),
            (s.zero_stamps, "zero")) if count]
        add(Severity.WARN if warn else Severity.OK, "stamps",
            f"header stamps: {', '.join(parts)} of {s.messages}",
            non_monotonic=s.non_monotonic, duplicate_stamps=s.duplicate_stamps,
            zero_stamps=s.zero_stamps)
    elif s.missing_stamps < s.messages:
        add(Severity.OK, "stamps", "header stamps increasing", non_monotonic=0)

    if s.future_stamps and s.max_future_ms is not None:
        level = Severity.OK
        if limits.future_warn_count is not None and s.future_stamps >= limits.future_warn_count:
            level = Severity.WARN
        if limits.future_error_ms is not None and s.max_future_ms > limits.future_error_ms:
            level = Severity.ERROR
        add(level, "future",
            f"{s.future_stamps} of {s.messages} header stamps ahead of their receipt time by up "
            f"to {s.max_future_ms:.1f} ms (clocks not synchronized?"
            f"{_limit(level, None, limits.future_error_ms, ' ms')})",
            future_stamps=s.future_stamps, max_future_ms=s.max_future_ms)

    if s.latency_median_ms is not None and s.latency_p95_ms is not None:
        level = _level(s.latency_p95_ms, limits.latency_warn_ms, limits.latency_error_ms)
        add(level, "latency",
            f"receipt latency median {s.latency_median_ms:.2f} ms, p95 {s.latency_p95_ms:.2f} ms"
            f"{_limit(level, limits.latency_warn_ms, limits.latency_error_ms, ' ms')}",
            latency_median_ms=s.latency_median_ms, latency_p95_ms=s.latency_p95_ms)
    return out


StreamKey = tuple[str, str]  # (topic, frame_id)


class TimingTracker:
    """StreamTiming per (topic, header.frame_id), for topics that carry several sensors.

    `expected_rates` maps a topic (or a (topic, frame_id) pair) to its expected rate in Hz. With
    `group_by_frame=False` every topic is one stream whatever its frame ids. At most
    `max_frames_per_topic` frame ids get their own stream; further ones share (topic, "*").
    """

    def __init__(
        self,
        expected_rates: Mapping[str | StreamKey, float] | None = None,
        settings: TimingSettings | None = None,
        *,
        group_by_frame: bool = True,
        max_frames_per_topic: int = 16,
    ) -> None:
        _check_int_at_least("max_frames_per_topic", max_frames_per_topic, 1)
        for key, rate in (expected_rates or {}).items():
            _check_positive(f"expected_rates[{key!r}]", rate)
        self.expected_rates = dict(expected_rates or {})
        self.settings = settings or TimingSettings()
        self.group_by_frame = group_by_frame
        self.max_frames_per_topic = max_frames_per_topic
        self._streams: dict[StreamKey, StreamTiming] = {}
        self._frames: dict[str, int] = {}

    def stream(self, topic: str, frame_id: str = "") -> StreamTiming:
        """The stream for (topic, frame_id), created on first use."""
        key = (topic, frame_id if self.group_by_frame else "")
        found = self._streams.get(key)
        if found is not None:
            return found
        if self._frames.get(topic, 0) >= self.max_frames_per_topic:
            key = (topic, "*")
            found = self._streams.get(key)
            if found is not None:
                return found
        self._frames[topic] = self._frames.get(topic, 0) + 1
        rate = self.expected_rates.get(key, self.expected_rates.get(topic))
        name = f"{topic} [{key[1]}]" if key[1] else topic
        created = StreamTiming(rate, self.settings, name=name)
        self._streams[key] = created
        return created

    def observe(
        self,
        topic: str,
        stamp_ns: int | None,
        receipt_ns: int,
        frame_id: str = "",
        steady_ns: int | None = None,
    ) -> None:
        self.stream(topic, frame_id).observe(stamp_ns, receipt_ns, steady_ns)

    def note_clock_jump(self, reason: str = "clock jump reported") -> None:
        """Reset every stream (e.g. from a ROS clock jump callback)."""
        for stream in self._streams.values():
            stream.reset(reason)

    def streams(self) -> dict[StreamKey, StreamTiming]:
        return dict(self._streams)

    def summaries(self, now_ns: int | None = None) -> dict[StreamKey, TimingSummary]:
        return {key: s.summary(now_ns) for key, s in sorted(self._streams.items())}

    def assess(
        self,
        limits: TimingLimits | Mapping[str, TimingLimits] | None = None,
        now_ns: int | None = None,
    ) -> list[Finding]:
        """Findings of every stream; `limits` may map topics to their own limits."""
        out: list[Finding] = []
        for (topic, _), stream in sorted(self._streams.items()):
            if isinstance(limits, TimingLimits) or limits is None:
                chosen = limits or TimingLimits()
            else:
                chosen = limits.get(topic, TimingLimits())
            out.extend(stream.assess(chosen, now_ns))
        return out
