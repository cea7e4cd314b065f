"""With use_sim_time and no /clock the monitor's timers never fire: the watch says so."""

from gap_monitor.core.timing.sim_clock import SimClockWatch

S = 1_000_000_000


def test_waiting_for_clock_warns_throttled_then_recovers():
    watch = SimClockWatch(warn_after_s=3.0, log_every_s=30.0)
    notes = [watch.observe(True, 0, t * S) for t in range(0, 40)]
    assert not any(n.waiting for n in notes[:3])
    assert all(n.waiting for n in notes[3:])
    logged = [t for t, n in enumerate(notes) if n.log is not None]
    assert logged == [3, 33]  # once, then every 30 s
    assert "waiting for /clock" in notes[3].status
    received = watch.observe(True, 5 * S, 40 * S)
    assert not received.waiting
    assert received.log is not None and received.log.startswith("/clock received")


def test_a_stopped_clock_is_told_apart_from_a_missing_one():
    watch = SimClockWatch(warn_after_s=3.0)
    for t in range(5):
        assert not watch.observe(True, (100 + t) * S, t * S).waiting  # advancing
    stalled = [watch.observe(True, 104 * S, t * S) for t in range(5, 12)]
    assert stalled[-1].waiting
    assert "has not advanced" in stalled[-1].status and "104.000 s" in stalled[-1].status


def test_nothing_to_say_without_sim_time():
    watch = SimClockWatch(warn_after_s=1.0)
    assert not any(watch.observe(False, 0, t * S).waiting for t in range(10))
