import pytest

from gap_monitor.core.events import Severity
from gap_monitor.core.timing.health import StreamHealth

NS = 1_000_000_000


def feed(health: StreamHealth, start_ns: int, rate_hz: float, seconds: float, nbytes: int = 100) -> int:
    period = int(NS / rate_hz)
    t = start_ns
    for _ in range(int(seconds * rate_hz)):
        health.observe(t, nbytes)
        t += period
    return t - period


def make(rate=100.0, tolerance=0.2, timeout=0.5, window=2.0, start=0):
    return StreamHealth(rate, tolerance, timeout, window, started_ns=start)


def test_ok_at_expected_rate_with_rate_and_bandwidth():
    h = make()
    last = feed(h, 0, 100.0, 3.0, nbytes=1000)
    r = h.report(last + NS // 200)
    assert r.level == Severity.OK
    assert r.rate_hz == pytest.approx(100.0, rel=1e-3)
    assert r.bytes_per_s == pytest.approx(100_000, rel=1e-2)
    assert r.count == 300


def test_warn_when_rate_outside_tolerance():
    h = make()
    last = feed(h, 0, 50.0, 3.0)
    r = h.report(last + NS // 100)
    assert r.level == Severity.WARN
    assert "outside 80.0-120.0 Hz" in r.message
    h2 = make()
    last = feed(h2, 0, 130.0, 3.0)
    assert h2.report(last).level == Severity.WARN


def test_stale_before_first_message_and_after_stall_then_ok_on_resume():
    h = make(start=0)
    assert h.report(NS // 10).level == Severity.OK  # still within the timeout
    assert h.report(NS).level == Severity.STALE
    last = feed(h, NS, 100.0, 2.0)
    assert h.report(last + NS // 100).level == Severity.OK
    stalled = h.report(last + NS)
    assert stalled.level == Severity.STALE
    assert "stalled" in stalled.message
    resumed_at = last + 3 * NS
    last = feed(h, resumed_at, 100.0, 0.2)
    assert h.report(last + NS // 200).rate_hz is None  # too short a span to judge a rate
    last = feed(h, last + NS // 100, 100.0, 1.0)
    # Judged on the messages since the stall, not on a window containing the gap.
    r = h.report(last + NS // 200)
    assert r.level == Severity.OK
    assert r.rate_hz == pytest.approx(100.0, rel=1e-3)
    assert r.resets == 1


def test_backwards_clock_jump_restarts_the_window():
    h = make()
    last = feed(h, 10 * NS, 100.0, 2.0)
    feed(h, 0, 100.0, 1.5)  # sim time restarted
    r = h.report(3 * NS // 2)
    assert r.resets == 1
    assert r.level == Severity.OK
    assert r.rate_hz == pytest.approx(100.0, rel=1e-2)
    assert last > 0


def test_memory_bounded_under_burst_without_reports():
    h = make(rate=100.0, window=2.0)
    feed(h, 0, 100_000.0, 1.0)
    held, most = h.held
    assert held <= most
    assert h.count == 100_000
