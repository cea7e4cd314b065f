"""Pairwise inter-topic skew from header stamps: are two streams stamped in step?

Each message of the slower stream (the reference) is matched to the nearest stamp of the other
stream, so streams of different rates compare by the offset of their best alignment, not by their
rate difference. The offset is `stamp(a) - stamp(b)`: positive when `a` is stamped later.

Reported per pair: the offset median and p95 (signed), the drift of the offset over time in ppm
(a Theil-Sen line through a decimated offset history), and the fraction of reference messages
without a partner within the tolerance (half the faster period unless configured).

Nearest-stamp matching sees offsets only modulo the faster stream's period: a 30 ms offset between
a 10 Hz and a 200 Hz stream reads as 0. Pair streams that are meant to be synchronised (equal or
integer-multiple rates), and expect offsets under half the faster period.

`PairSkew` is fed live (`observe(topic, stamp_ns)`) with bounded memory; `measure_skew` runs the
same code over two complete stamp arrays offline.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from gap_monitor.core.timing.stamps import Finding, Severity
from gap_monitor.core.units import NS_PER_MS, NS_PER_S
from gap_monitor.core.values import number

__all__ = [
    "PairSkew",
    "SkewLimits",
    "SkewPair",
    "SkewSettings",
    "SkewSummary",
    "SkewTracker",
    "assess_skew",
    "measure_skew",
    "nearest_offsets",
]

_SAME_RATE = 0.05  # periods within 5 % of each other: `a` is the reference


def _positive(name: str, value: float | None, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} = {value!r}: must be a finite number > 0")


def _int_at_least(name: str, value: int, minimum: int) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= minimum):
        raise ValueError(f"{name} = {value!r}: must be an integer >= {minimum}")


def _warn_below_error(warn_name: str, warn: float | None, error_name: str, error: float | None) -> None:
    # `field: value: what is allowed`, so the config reports a bad pair as `skew_pairs.<name>.<field>`.
    for name, value in ((warn_name, warn), (error_name, error)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name}: {value!r}: a finite number >= 0 or None")
    if warn is not None and error is not None and warn > error:
        raise ValueError(f"{error_name}: {error!r}: a number >= {warn_name} ({warn:g})")


@dataclass(frozen=True)
class SkewSettings:
    """How a pair is measured."""

    window_s: float = 10.0  # offset statistics over this much recent stamp time
    tolerance_ms: float | None = None  # max |offset| of a match; None: half the faster period
    drift_window_s: float = 300.0  # the drift line is fitted over this much history
    drift_points: int = 256  # history points kept for the fit (older ones are decimated)
    min_drift_span_s: float = 10.0  # no drift figure from a shorter history
    max_wait_s: float = 1.0  # how long a message waits for a partner stamped after it
    clock_jump_s: float = 5.0  # a stamp going back further than this resets the pair
    max_buffer: int = 4096  # stamps kept per topic for matching

    def __post_init__(self) -> None:
        _positive("window_s", self.window_s)
        _positive("tolerance_ms", self.tolerance_ms, allow_none=True)
        _positive("drift_window_s", self.drift_window_s)
        _int_at_least("drift_points", self.drift_points, 16)
        _positive("min_drift_span_s", self.min_drift_span_s)
        _positive("max_wait_s", self.max_wait_s)
        _positive("clock_jump_s", self.clock_jump_s)
        _int_at_least("max_buffer", self.max_buffer, 16)


@dataclass(frozen=True)
class SkewLimits:
    """Thresholds for `assess`; None disables that level."""

    offset_warn_ms: float | None = 2.0  # |median offset|
    offset_error_ms: float | None = 10.0
    p95_warn_ms: float | None = 5.0  # |p95 offset|
    p95_error_ms: float | None = None
    drift_warn_ppm: float | None = 100.0  # |drift|
    drift_error_ppm: float | None = 1000.0
    unmatched_warn_pct: float | None = 5.0
    unmatched_error_pct: float | None = 50.0
    min_matches: int = 5  # fewer matched messages: only an OK "collecting" finding

    def __post_init__(self) -> None:
        _warn_below_error("offset_warn_ms", self.offset_warn_ms, "offset_error_ms", self.offset_error_ms)
        _warn_below_error("p95_warn_ms", self.p95_warn_ms, "p95_error_ms", self.p95_error_ms)
        _warn_below_error("drift_warn_ppm", self.drift_warn_ppm, "drift_error_ppm", self.drift_error_ppm)
        _warn_below_error(
            "unmatched_warn_pct", self.unmatched_warn_pct, "unmatched_error_pct", self.unmatched_error_pct
        )
        _int_at_least("min_matches", self.min_matches, 1)


@dataclass(frozen=True)
class SkewSummary:
    """Skew of one pair over the window; offsets are stamp(a) - stamp(b) in ms."""

    name: str  # "a vs b"
    a: str
    b: str
    reference: str | None  # the slower topic, whose messages are matched
    matched: int
    unmatched: int
    unmatched_fraction: float | None
    offset_median_ms: float | None
    offset_p95_ms: float | None  # the offset at the 95th percentile of |offset|, sign kept
    offset_min_ms: float | None
    offset_max_ms: float | None
    drift_ppm: float | None  # d(offset)/dt; positive: a's stamps gain on b's
    drift_span_s: float  # history the drift line was fitted over
    period_a_ms: float | None
    period_b_ms: float | None
    tolerance_ms: float | None
    out_of_order: int  # stamps that went back a little and were ignored
    clock_jumps: int

    def values(self) -> dict[str, str]:
        """The named values in display form (`core/values.py`)."""
        unmatched = self.unmatched_fraction
        return {
            # Signed: an offset is `a - b`, a drift has a direction.
            "offset_median_ms": number(self.offset_median_ms, "+.3f"),
            "offset_p95_ms": number(self.offset_p95_ms, "+.3f"),
            "drift_ppm": number(self.drift_ppm, "+.1f"),
            "matched": str(self.matched),
            "unmatched_pct": number(None if unmatched is None else unmatched * 100, ".1f"),
        }


def nearest_offsets(ref: NDArray[np.int64], other: NDArray[np.int64]) -> NDArray[np.int64]:
    """For each stamp in `ref`, `ref - nearest stamp in other` (ns); `other` sorted, non-empty."""
    ref = np.asarray(ref, dtype=np.int64)
    other = np.asarray(other, dtype=np.int64)
    idx = np.searchsorted(other, ref)
    before = other[np.clip(idx - 1, 0, len(other) - 1)]
    after = other[np.clip(idx, 0, len(other) - 1)]
    d_before, d_after = ref - before, ref - after
    return np.where(np.abs(d_after) < np.abs(d_before), d_after, d_before)


def _theil_sen_slope(t: NDArray[np.float64], y: NDArray[np.float64]) -> float | None:
    """Median of pairwise slopes: robust to outliers and to a few wrong matches."""
    dt = t[None, :] - t[:, None]
    dy = y[None, :] - y[:, None]
    upper = dt > 0
    if not upper.any():
        return None
    return float(np.median(dy[upper] / dt[upper]))


class PairSkew:
    """Streaming skew of stamps(a) against stamps(b)."""

    def __init__(self, a: str, b: str, settings: SkewSettings | None = None) -> None:
        if a == b:
            raise ValueError(f"a skew pair needs two different topics, got {a!r} twice")
        self.a, self.b = a, b
        self.settings = settings or SkewSettings()
        s = self.settings
        self._window_ns = int(s.window_s * NS_PER_S)
        self._wait_ns = int(s.max_wait_s * NS_PER_S)
        self._jump_ns = int(s.clock_jump_s * NS_PER_S)
        self._drift_window_ns = int(s.drift_window_s * NS_PER_S)
        self.clock_jumps = 0
        self.out_of_order = 0
        self._clear()

    def _clear(self) -> None:
        self._stamps: dict[str, list[int]] = {self.a: [], self.b: []}  # sorted, bounded
        self._done: dict[str, int] = {self.a: -(2**63), self.b: -(2**63)}
        self._periods: dict[str, float | None] = {self.a: None, self.b: None}
        self._since_periods = 0
        self._reference: str | None = None
        self._newest = -(2**63)
        # (reference stamp, offset a - b in ns, matched)
        self._matches: deque[tuple[int, int, bool]] = deque(maxlen=self.settings.max_buffer * 4)
        self._history: list[tuple[int, int]] = []  # (stamp, unwrapped offset) for the drift
        self._stride = 1
        self._since_history = 0
        self._last_unwrapped: int | None = None
        self._wrap_shift = 0

    def reset(self) -> None:
        """Forget everything but the counters (e.g. after a clock jump)."""
        self._clear()

    @property
    def name(self) -> str:
        return f"{self.a} vs {self.b}"

    @property
    def held(self) -> tuple[int, int]:
        """(stamps held for matching on the fuller side, drift history points): memory stays bounded."""
        return max(len(x) for x in self._stamps.values()), len(self._history)

    def observe(self, topic: str, stamp_ns: int) -> None:
        """Add a header stamp of `topic` (one of the pair) and match what can be matched."""
        stamps = self._stamps.get(topic)
        if stamps is None:
            raise ValueError(f"topic {topic!r} is not part of the pair {self.name}")
        if stamps and stamp_ns <= stamps[-1]:
            if stamps[-1] - stamp_ns > self._jump_ns:
                self.clock_jumps += 1
                self._clear()
                stamps = self._stamps[topic]
            else:
                if stamp_ns < stamps[-1]:  # a repeated stamp is no news
                    self.out_of_order += 1
                return
        stamps.append(stamp_ns)
        self._newest = max(self._newest, stamp_ns)
        self._since_periods += 1
        if self._since_periods >= 32 or None in self._periods.values():
            self._update_periods()
        self._process(final=False)
        self._trim()

    def flush(self) -> None:
        """Match every waiting message now (no more stamps are coming)."""
        self._update_periods()
        self._process(final=True)

    def _update_periods(self) -> None:
        self._since_periods = 0
        for topic, stamps in self._stamps.items():
            if len(stamps) >= 2:
                self._periods[topic] = float(np.median(np.diff(stamps[-65:])))
        pa, pb = self._periods[self.a], self._periods[self.b]
        if pa is None or pb is None:
            return
        reference = self.a if pa >= pb * (1 - _SAME_RATE) else self.b
        if self._reference is not None and reference != self._reference:
            # The new reference must not re-match the time the old one already covered.
            self._done[reference] = max(self._done[reference], self._done[self._reference])
        self._reference = reference

    def _fast_period(self) -> float | None:
        known = [p for p in self._periods.values() if p is not None]
        return min(known) if len(known) == 2 else None

    def _tolerance_ns(self) -> float | None:
        if self.settings.tolerance_ms is not None:
            return self.settings.tolerance_ms * NS_PER_MS
        fast = self._fast_period()
        return fast / 2 if fast is not None else None

    def _process(self, final: bool) -> None:
        ref = self._reference
        tolerance = self._tolerance_ns()
        if ref is None or tolerance is None:
            return
        other = self.b if ref == self.a else self.a
        ref_stamps, other_stamps = self._stamps[ref], self._stamps[other]
        start = bisect.bisect_right(ref_stamps, self._done[ref])
        for stamp in ref_stamps[start:]:
            partner_known = bool(other_stamps) and other_stamps[-1] >= stamp
            if not (partner_known or final or self._newest - stamp > self._wait_ns):
                break
            self._done[ref] = stamp
            if not other_stamps:
                self._record(stamp, 0, matched=False)
                continue
            i = bisect.bisect_left(other_stamps, stamp)
            candidates = other_stamps[max(i - 1, 0) : i + 1]
            nearest = min(candidates, key=lambda x: abs(stamp - x))
            offset = stamp - nearest if ref == self.a else nearest - stamp
            self._record(stamp, offset, matched=abs(offset) <= tolerance)

    def _record(self, stamp: int, offset: int, matched: bool) -> None:
        self._matches.append((stamp, offset, matched))
        horizon = stamp - self._window_ns
        while self._matches and self._matches[0][0] < horizon:
            self._matches.popleft()
        if matched:
            self._add_history(stamp, offset)

    def _add_history(self, stamp: int, offset: int) -> None:
        # Unwrap: a drifting offset that passes half the faster period jumps by one period.
        fast = self._fast_period()
        unwrapped = offset + self._wrap_shift
        if fast and self._last_unwrapped is not None:
            turns = round((unwrapped - self._last_unwrapped) / fast)
            if turns:
                self._wrap_shift -= int(turns * fast)
                unwrapped -= int(turns * fast)
        self._last_unwrapped = unwrapped
        self._since_history += 1
        if self._since_history < self._stride:
            return
        self._since_history = 0
        history = self._history
        history.append((stamp, unwrapped))
        horizon = stamp - self._drift_window_ns
        if history[0][0] < horizon:
            self._history = history = [h for h in history if h[0] >= horizon]
        if len(history) > self.settings.drift_points:  # halve the density, keep the span
            self._history = history[::2]
            self._stride *= 2

    def _trim(self) -> None:
        # Waiting messages are at most max_wait old once the pair is matching; keep a margin.
        horizon = self._newest - self._wait_ns - NS_PER_S
        for stamps in self._stamps.values():
            if len(stamps) > 64 and stamps[0] < horizon:
                cut = bisect.bisect_left(stamps, horizon)
                del stamps[: max(cut - 1, 0)]  # one older stamp stays as a nearest candidate
            excess = len(stamps) - self.settings.max_buffer
            if excess > 0:
                del stamps[:excess]

    def summary(self) -> SkewSummary:
        matches = list(self._matches)
        offsets = np.array([m[1] for m in matches if m[2]], dtype=np.int64)
        unmatched = sum(1 for m in matches if not m[2])
        total = len(matches)
        median = p95 = lo = hi = None
        if len(offsets):
            median = float(np.median(offsets)) / NS_PER_MS
            order = np.argsort(np.abs(offsets), kind="stable")
            p95 = float(offsets[order[math.ceil(0.95 * len(offsets)) - 1]]) / NS_PER_MS
            lo, hi = float(np.min(offsets)) / NS_PER_MS, float(np.max(offsets)) / NS_PER_MS
        drift, span = self._drift()
        tolerance = self._tolerance_ns()
        pa, pb = self._periods[self.a], self._periods[self.b]
        return SkewSummary(
            name=self.name,
            a=self.a,
            b=self.b,
            reference=self._reference,
            matched=len(offsets),
            unmatched=unmatched,
            unmatched_fraction=unmatched / total if total else None,
            offset_median_ms=median,
            offset_p95_ms=p95,
            offset_min_ms=lo,
            offset_max_ms=hi,
            drift_ppm=drift,
            drift_span_s=span,
            period_a_ms=pa / NS_PER_MS if pa else None,
            period_b_ms=pb / NS_PER_MS if pb else None,
            tolerance_ms=tolerance / NS_PER_MS if tolerance else None,
            out_of_order=self.out_of_order,
            clock_jumps=self.clock_jumps,
        )

    def _drift(self) -> tuple[float | None, float]:
        if len(self._history) < 8:
            return None, 0.0
        t = np.array([h[0] for h in self._history], dtype=np.float64)
        y = np.array([h[1] for h in self._history], dtype=np.float64)
        span = float(t[-1] - t[0]) / NS_PER_S
        if span < self.settings.min_drift_span_s:
            return None, span
        slope = _theil_sen_slope(t - t[0], y)
        return (slope * 1e6 if slope is not None else None), span

    def assess(self, limits: SkewLimits | None = None) -> list[Finding]:
        """Judge the pair: one Finding per check (skew, drift, matching), OK ones included."""
        return assess_skew(self.summary(), limits or SkewLimits())


def _fmt(ms: float) -> str:
    return f"{ms:+.3f}" if abs(ms) < 1 else f"{ms:+.1f}"


def _judge(value: float, warn: float | None, error: float | None) -> tuple[Severity, str]:
    if error is not None and value > error:
        return Severity.ERROR, f"limit {error:g}"
    if warn is not None and value > warn:
        return Severity.WARN, f"limit {warn:g}"
    return Severity.OK, ""


def assess_skew(s: SkewSummary, limits: SkewLimits) -> list[Finding]:
    """The judgement behind PairSkew.assess, usable on a stored summary."""
    out: list[Finding] = []

    def add(level: Severity, check: str, text: str, **values: float) -> None:
        out.append(Finding(level, s.name, check, f"{s.name}: {text}", values))

    if s.clock_jumps:
        add(Severity.OK, "clock", f"statistics reset after {s.clock_jumps} stamp clock jump(s)",
            clock_jumps=s.clock_jumps)
    if s.matched < limits.min_matches or s.offset_median_ms is None or s.offset_p95_ms is None:
        add(Severity.OK, "skew",
            f"collecting ({s.matched} of {limits.min_matches} matched messages)",
            matched=s.matched)
        if s.unmatched and s.unmatched_fraction == 1.0:
            level, limit = _judge(100.0, limits.unmatched_warn_pct, limits.unmatched_error_pct)
            tolerance = f" within {s.tolerance_ms:.2f} ms" if s.tolerance_ms else ""
            add(level, "matching",
                f"none of {s.unmatched} {s.reference} message(s) has a partner{tolerance}"
                + (f" ({limit} %)" if limit else ""),
                unmatched=s.unmatched, unmatched_pct=100.0)
        return out

    median, p95 = s.offset_median_ms, s.offset_p95_ms
    level, limit = _judge(abs(median), limits.offset_warn_ms, limits.offset_error_ms)
    p95_level, p95_limit = _judge(abs(p95), limits.p95_warn_ms, limits.p95_error_ms)
    text = f"{_fmt(median)} ms median"
    if limit:
        text += f" ({limit} ms)"
    text += f", p95 {_fmt(p95)} ms"
    if p95_limit:
        text += f" ({p95_limit} ms)"
    add(max(level, p95_level), "skew", text + f" over {s.matched} matched messages",
        offset_median_ms=median, offset_p95_ms=p95)

    if s.drift_ppm is not None:
        level, limit = _judge(abs(s.drift_ppm), limits.drift_warn_ppm, limits.drift_error_ppm)
        add(level, "drift",
            f"offset drifts {s.drift_ppm:+.1f} ppm ({s.drift_ppm * 3.6:+.1f} ms per hour) "
            f"over {s.drift_span_s:.0f} s" + (f" ({limit} ppm)" if limit else ""),
            drift_ppm=s.drift_ppm, drift_span_s=s.drift_span_s)

    if s.unmatched_fraction is not None and s.tolerance_ms is not None:
        pct = s.unmatched_fraction * 100
        level, limit = _judge(pct, limits.unmatched_warn_pct, limits.unmatched_error_pct)
        add(level, "matching",
            f"{s.unmatched} of {s.matched + s.unmatched} {s.reference} message(s) without a "
            f"partner within {s.tolerance_ms:.2f} ms ({pct:.1f} %" + (f", {limit} %)" if limit else ")"),
            unmatched=s.unmatched, unmatched_pct=pct)
    return out


def measure_skew(
    stamps_a: Iterable[int],
    stamps_b: Iterable[int],
    settings: SkewSettings | None = None,
    a: str = "a",
    b: str = "b",
) -> SkewSummary:
    """Skew of two complete stamp sequences (offline); the window covers all of them."""
    sa = sorted(int(x) for x in stamps_a)
    sb = sorted(int(x) for x in stamps_b)
    base = settings or SkewSettings()
    everything = sa + sb
    span_s = (max(everything) - min(everything)) / NS_PER_S + 1 if everything else 1.0
    n = max(len(sa), len(sb), 16)
    settings = SkewSettings(
        window_s=max(base.window_s, span_s),
        tolerance_ms=base.tolerance_ms,
        drift_window_s=max(base.drift_window_s, span_s),
        drift_points=base.drift_points,
        min_drift_span_s=base.min_drift_span_s,
        max_wait_s=base.max_wait_s,
        clock_jump_s=base.clock_jump_s,
        max_buffer=max(base.max_buffer, n),
    )
    pair = PairSkew(a, b, settings)
    merged = sorted([(x, 0) for x in sa] + [(x, 1) for x in sb])
    for stamp, which in merged:
        pair.observe(a if which == 0 else b, stamp)
    pair.flush()
    return pair.summary()


@dataclass(frozen=True)
class SkewPair:
    """A pair to watch, with its own settings and limits."""

    a: str
    b: str
    settings: SkewSettings = field(default_factory=SkewSettings)
    limits: SkewLimits = field(default_factory=SkewLimits)

    def __post_init__(self) -> None:
        if not self.a or not self.b or self.a == self.b:
            raise ValueError(f"skew pair ({self.a!r}, {self.b!r}): need two different topic names")


class SkewTracker:
    """Several pairs fed from one stream of (topic, stamp) observations."""

    def __init__(self, pairs: Sequence[SkewPair]) -> None:
        seen: set[tuple[str, str]] = set()
        for p in pairs:
            if (p.a, p.b) in seen:
                raise ValueError(f"skew pair {p.a} vs {p.b} is listed twice")
            seen.add((p.a, p.b))
        self.pairs = list(pairs)
        self._skews = [PairSkew(p.a, p.b, p.settings) for p in self.pairs]
        self._by_topic: dict[str, list[PairSkew]] = {}
        for skew in self._skews:
            self._by_topic.setdefault(skew.a, []).append(skew)
            self._by_topic.setdefault(skew.b, []).append(skew)

    @property
    def topics(self) -> set[str]:
        return set(self._by_topic)

    def observe(self, topic: str, stamp_ns: int) -> None:
        """Feed a stamp; topics in no pair are ignored."""
        for skew in self._by_topic.get(topic, ()):
            skew.observe(topic, stamp_ns)

    def reset(self) -> None:
        for skew in self._skews:
            skew.reset()

    def flush(self) -> None:
        """Match every waiting message (end of a recording)."""
        for skew in self._skews:
            skew.flush()

    def summaries(self) -> dict[tuple[str, str], SkewSummary]:
        return {(s.a, s.b): s.summary() for s in self._skews}

    def assess(self) -> list[Finding]:
        """Every pair's findings in one list."""
        return [f for findings in self.assess_pairs().values() for f in findings]

    def assess_pairs(self) -> dict[str, list[Finding]]:
        """Judge every pair: its findings (at least one) by pair name ("a vs b"), in pair order."""
        pairs = zip(self.pairs, self._skews, strict=True)
        return {skew.name: skew.assess(pair.limits) for pair, skew in pairs}
