"""Ring buffer of raw messages: time and byte bounds, latched topics, ordering, threads, memory."""

from __future__ import annotations

import gc
import random
import threading
import tracemalloc
from collections.abc import Callable

import pytest

from gap_monitor.core.capture.ring_buffer import MESSAGE_OVERHEAD_BYTES, RingBuffer

MS = 1_000_000
S = 1_000_000_000


def payload(size: int, tag: int = 0) -> bytes:
    # Distinct objects with recognisable content; tag makes each message identifiable.
    return tag.to_bytes(8, "little") + bytes(max(0, size - 8))


def tag_of(data: bytes) -> int:
    return int.from_bytes(data[:8], "little")


def test_each_topic_keeps_its_own_time_window() -> None:
    rb = RingBuffer(total_bytes=10**9, default_window_s=2.0)
    rb.add_topic("/imu", "sensor_msgs/msg/Imu")  # 200 Hz, default 2 s
    rb.add_topic("/image", "sensor_msgs/msg/Image", window_s=5.0)  # 10 Hz
    rb.add_topic("/joints", "sensor_msgs/msg/JointState", window_s=0.5)  # 100 Hz
    periods = {"/imu": 5 * MS, "/image": 100 * MS, "/joints": 10 * MS}
    windows = {"/imu": 2 * S, "/image": 5 * S, "/joints": S // 2}
    for t in range(0, 12 * S, 5 * MS):
        for topic, period in periods.items():
            if t % period == 0:
                rb.push(topic, t, payload(64))
        if t % (250 * MS) == 0:
            stats = rb.stats()
            for topic, window in windows.items():
                st = stats.topics[topic]
                assert st.newest_ns is not None and st.oldest_ns is not None
                assert st.newest_ns - st.oldest_ns <= window
    # After 12 s, each topic holds its full window (to one period).
    stats = rb.stats()
    for topic, window in windows.items():
        st = stats.topics[topic]
        assert st.seconds_held * S == pytest.approx(window, abs=periods[topic])
        assert st.count == window // periods[topic] + 1
        assert st.bytes == st.count * 64


def test_byte_budget_holds_under_a_burst_and_the_newest_survive() -> None:
    budget = 100_000
    rb = RingBuffer(total_bytes=budget, default_window_s=60.0)
    for name in ("/a", "/b", "/c"):
        rb.add_topic(name, "std_msgs/msg/String")
    rng = random.Random(1)
    pushed: list[tuple[str, int]] = []  # (topic, tag) in push order
    for i in range(3000):  # 3000 messages in the same millisecond: a burst far over budget
        topic = rng.choice(["/a", "/b", "/c"])
        size = rng.randint(100, 3000)
        assert rb.push(topic, 5 * S + i % 7, payload(size, i))
        pushed.append((topic, i))
        assert rb.stats().total_bytes <= budget
    held = rb.window(None, None)
    held_tags = sorted(tag_of(m.data) for m in held)
    # Oldest-first across topics: what is left is exactly the most recent pushes.
    assert held_tags == [tag for _, tag in pushed[-len(held_tags) :]]
    assert held_tags[-1] == 2999
    stats = rb.stats()
    assert stats.total_bytes == sum(len(m.data) for m in held)
    assert budget - 3000 < stats.total_bytes <= budget  # no needless eviction
    assert sum(st.evicted_for_budget for st in stats.topics.values()) == 3000 - len(held)


def test_global_eviction_takes_the_oldest_across_topics() -> None:
    rb = RingBuffer(total_bytes=10_000, default_window_s=60.0)
    rb.add_topic("/big", "sensor_msgs/msg/Image")
    rb.add_topic("/small", "sensor_msgs/msg/Imu")
    for i in range(100):
        rb.push("/small", i * MS, payload(50, i))
    for i in range(100, 106):
        rb.push("/big", i * MS, payload(1000, i))
    # 5000 + 6000 bytes: the 20 oldest small messages made room, nothing of /big went.
    assert sorted(tag_of(m.data) for m in rb.window(None, None)) == list(range(20, 106))
    for i in range(106, 110):
        rb.push("/big", i * MS, payload(1000, i))
    stats = rb.stats()
    assert stats.topics["/small"].count == 0
    assert stats.topics["/big"].count == 10
    assert stats.topics["/small"].evicted_for_budget == 100


def test_latched_messages_survive_window_and_budget_eviction() -> None:
    rb = RingBuffer(total_bytes=20_000, default_window_s=1.0)
    rb.add_topic("/tf_static", "tf2_msgs/msg/TFMessage", latched=True)
    rb.add_topic("/camera_info", "sensor_msgs/msg/CameraInfo", latched=True)
    rb.add_topic("/imu", "sensor_msgs/msg/Imu")
    rb.push("/tf_static", 0, payload(500, 1), latch_key="robot_state_publisher")
    rb.push("/tf_static", 1 * MS, payload(500, 2), latch_key="static_publisher_2")
    for i in range(3):
        rb.push("/camera_info", i * S, payload(300, 10 + i))
    for i in range(20_000):  # 100 s at 200 Hz, 10x the budget and 100x the window
        rb.push("/imu", 5 * S + i * 5 * MS, payload(100, 100 + i))
    latched = [m for m in rb.window(None, None) if m.latched]
    assert sorted(tag_of(m.data) for m in latched) == [1, 2, 12]  # last camera_info only
    assert all(m.latched for m in rb.latched_messages())
    # Latched messages are returned whatever the requested range.
    late = rb.window(104 * S, 105 * S)
    assert {tag_of(m.data) for m in late if m.latched} == {1, 2, 12}
    stats = rb.stats()
    assert stats.latched_bytes == 1300
    assert stats.total_bytes <= 20_000
    assert stats.topics["/tf_static"].count == 2


def test_latch_keys_are_capped() -> None:
    rb = RingBuffer(total_bytes=1000, default_window_s=1.0)
    rb.add_topic("/tf_static", "tf2_msgs/msg/TFMessage", latched=True)
    for i in range(500):
        rb.push("/tf_static", i, payload(10, i), latch_key=i)
    held = rb.latched_messages()
    assert 0 < len(held) < 500
    assert tag_of(held[-1].data) == 499  # the newest key is kept


def test_window_is_sorted_inclusive_and_crosses_topics() -> None:
    rb = RingBuffer(total_bytes=10**6, default_window_s=100.0)
    rb.add_topic("/a", "std_msgs/msg/String")
    rb.add_topic("/b", "std_msgs/msg/String")
    rb.add_topic("/latched", "std_msgs/msg/String", latched=True)
    rb.push("/latched", 1 * S, b"L")
    times_a = [10, 30, 50, 70]
    times_b = [20, 40, 45, 60, 80]
    for t in times_a:
        rb.push("/a", t * MS, b"a", publish_time_ns=t * MS - 1)
    for t in times_b:
        rb.push("/b", t * MS, b"b")
    got = rb.window(30 * MS, 60 * MS)
    normal = [m for m in got if not m.latched]
    assert [m.log_time_ns // MS for m in normal] == [30, 40, 45, 50, 60]
    assert [m.topic for m in normal] == ["/a", "/b", "/b", "/a", "/b"]
    assert normal[0].publish_time_ns == 30 * MS - 1
    assert normal[1].publish_time_ns == 40 * MS  # defaults to the log time
    assert [m.data for m in got if m.latched] == [b"L"]
    assert all(not m.latched for m in rb.window(0, 10**12, include_latched=False))


def test_out_of_order_log_times_are_sorted_in_windows() -> None:
    rb = RingBuffer(total_bytes=10**6, default_window_s=100.0)
    rb.add_topic("/a", "std_msgs/msg/String")
    for t in [5, 3, 9, 1, 7]:
        rb.push("/a", t * MS, b"x")
    assert [m.log_time_ns // MS for m in rb.window(None, None)] == [1, 3, 5, 7, 9]


def test_incremental_collect_has_no_gaps_or_duplicates() -> None:
    rb = RingBuffer(total_bytes=10**7, default_window_s=100.0)
    topics = ["/a", "/b", "/c"]
    for name in topics:
        rb.add_topic(name, "std_msgs/msg/String")
    rng = random.Random(3)
    seen: list[int] = []
    _, after = rb.collect(None, None, include_latched=False)
    for step in range(50):
        for _ in range(rng.randint(0, 30)):
            # Log times jitter backwards too: collection must follow push order, not time.
            t = step * 10 * MS + rng.randint(-5, 5) * MS
            rb.push(rng.choice(topics), t, b"")
        new, after = rb.collect(None, None, after_seq=after, include_latched=False)
        seen.extend(m.seq for m in new)
    assert sorted(seen) == list(range(1, rb.last_seq + 1))


def test_oversize_message_is_dropped_and_counted() -> None:
    rb = RingBuffer(total_bytes=1000, default_window_s=10.0)
    rb.add_topic("/image", "sensor_msgs/msg/Image")
    assert rb.push("/image", 0, payload(500, 1))
    assert not rb.push("/image", 1, payload(5000, 2))
    st = rb.stats().topics["/image"]
    assert st.dropped_oversize == 1
    assert [tag_of(m.data) for m in rb.window(None, None)] == [1]


def test_bad_usage_is_reported() -> None:
    with pytest.raises(ValueError, match="total_bytes"):
        RingBuffer(total_bytes=0, default_window_s=1.0)
    with pytest.raises(ValueError, match="default_window_s"):
        RingBuffer(total_bytes=10, default_window_s=-1.0)
    rb = RingBuffer(total_bytes=10, default_window_s=1.0)
    with pytest.raises(KeyError, match="/unknown"):
        rb.push("/unknown", 0, b"x")
    rb.add_topic("/a", "std_msgs/msg/String")
    rb.add_topic("/a", "std_msgs/msg/String")  # identical: fine
    with pytest.raises(ValueError, match="/a"):
        rb.add_topic("/a", "sensor_msgs/msg/Imu")
    with pytest.raises(ValueError, match="window_s"):
        rb.add_topic("/b", "std_msgs/msg/String", window_s=0)


def test_bytes_like_payloads_are_stored_as_bytes() -> None:
    rb = RingBuffer(total_bytes=100, default_window_s=1.0)
    rb.add_topic("/a", "std_msgs/msg/String")
    buf = bytearray(b"abc")
    rb.push("/a", 0, buf)  # type: ignore[arg-type]
    buf[0] = ord("z")  # the buffer must not alias the caller's mutable memory
    assert rb.window(None, None)[0].data == b"abc"


def test_concurrent_pushes_and_reads_stay_consistent() -> None:
    budget = 200_000
    rb = RingBuffer(total_bytes=budget, default_window_s=0.5)
    topics = [f"/t{i}" for i in range(4)]
    for name in topics:
        rb.add_topic(name, "std_msgs/msg/String")
    stop = threading.Event()
    errors: list[str] = []

    def writer(topic: str, seed: int) -> None:
        rng = random.Random(seed)
        for i in range(5000):
            rb.push(topic, i * MS, payload(rng.randint(10, 400)))

    def reader() -> None:
        while not stop.is_set():
            stats = rb.stats()
            if stats.total_bytes > budget:
                errors.append(f"over budget: {stats.total_bytes}")
            got = rb.window(None, None)
            if [m.log_time_ns for m in got] != sorted(m.log_time_ns for m in got):
                errors.append("window not sorted")

    threads = [threading.Thread(target=writer, args=(t, n)) for n, t in enumerate(topics)]
    read = threading.Thread(target=reader)
    read.start()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    stop.set()
    read.join()
    assert errors == []
    stats = rb.stats()
    held = rb.window(None, None)
    assert stats.total_bytes == sum(len(m.data) for m in held)
    assert stats.message_count == len(held)
    for name in topics:
        st = stats.topics[name]
        assert st.count == sum(1 for m in held if m.topic == name)
        if st.count:  # a topic that finished early may have been evicted by the budget
            assert st.newest_ns is not None and st.oldest_ns is not None
            assert st.newest_ns - st.oldest_ns <= S // 2


def traced_growth(fill: Callable[[], RingBuffer]) -> int:
    """Bytes still allocated after `fill()` built a buffer (the buffer is alive when measured)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        rb = fill()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        del rb
    finally:
        tracemalloc.stop()
    return after - before


@pytest.mark.parametrize("size", [64, 300, 20_000])
def test_memory_stays_within_budget_plus_documented_overhead(size: int) -> None:
    budget = 1_000_000

    def fill() -> RingBuffer:
        rb = RingBuffer(total_bytes=budget, default_window_s=1000.0)
        rb.add_topic("/a", "std_msgs/msg/String")
        rb.add_topic("/b", "std_msgs/msg/String")
        for i in range(3 * budget // size + 10):
            rb.push("/a" if i % 3 else "/b", i * MS, bytes(size))
        return rb

    grown = traced_growth(fill)
    held = budget // size + 1
    assert grown <= budget + held * MESSAGE_OVERHEAD_BYTES + 64_000


def test_window_eviction_does_not_leave_unbounded_bookkeeping() -> None:
    # A slow topic with a long window keeps the oldest push alive while a fast topic with a
    # short window churns: the push-order bookkeeping must not keep every evicted entry.
    def fill() -> RingBuffer:
        rb = RingBuffer(total_bytes=10**9, default_window_s=0.1)
        rb.add_topic("/slow", "std_msgs/msg/String", window_s=1000.0)
        rb.add_topic("/fast", "std_msgs/msg/String")
        for i in range(100_000):  # 10 s at 10 kHz
            t = i * 100_000
            if i % 10_000 == 0:
                rb.push("/slow", t, bytes(10))
            rb.push("/fast", t, bytes(10))
        return rb

    grown = traced_growth(fill)
    held = 1001 + 10  # 0.1 s of /fast, every /slow
    assert grown <= held * (MESSAGE_OVERHEAD_BYTES + 10) + 200_000


def test_clock_jump_back_restarts_the_topic_instead_of_starving_it() -> None:
    rb = RingBuffer(total_bytes=10**6, default_window_s=2.0)
    rb.add_topic("/imu", "sensor_msgs/msg/Imu")
    rb.add_topic("/tf_static", "tf2_msgs/msg/TFMessage", latched=True)
    rb.push("/tf_static", 500 * S, b"static")
    for t in range(1000 * S, 1005 * S, 10 * MS):
        rb.push("/imu", t, b"old")
    for t in range(0, 3 * S, 10 * MS):  # sim time restarted at 0
        rb.push("/imu", t, b"new")
    held = [m for m in rb.window(None, None) if not m.latched]
    assert {m.data for m in held} == {b"new"}
    assert held[-1].log_time_ns - held[0].log_time_ns == 2 * S  # the window works again
    st = rb.stats()
    assert st.topics["/imu"].clock_jumps == 1
    assert st.total_bytes == 3 * len(held)
    assert [m.data for m in rb.latched_messages()] == [b"static"]


def test_clear_keeps_latched_messages() -> None:
    rb = RingBuffer(total_bytes=10**6, default_window_s=2.0)
    rb.add_topic("/imu", "sensor_msgs/msg/Imu")
    rb.add_topic("/tf_static", "tf2_msgs/msg/TFMessage", latched=True)
    rb.push("/tf_static", 0, b"static")
    for i in range(10):
        rb.push("/imu", i, b"x")
    rb.clear()
    assert [m.data for m in rb.window(None, None)] == [b"static"]
    assert rb.stats().total_bytes == 0
    rb.push("/imu", 20, b"y")
    assert [m.data for m in rb.window(None, None, include_latched=False)] == [b"y"]


@pytest.mark.parametrize("seed", range(4))
def test_stats_equal_a_recount_of_the_held_messages(seed: int) -> None:
    """stats() reports its kept byte count; it must equal the payloads actually held, through
    window eviction, budget eviction, clock jumps, clear() and latched replacement."""
    rng = random.Random(seed)
    ring = RingBuffer(5_000, default_window_s=1.0)
    ring.add_topic("/a", "std_msgs/msg/String")
    ring.add_topic("/b", "std_msgs/msg/String", window_s=0.3)
    ring.add_topic("/l", "std_msgs/msg/String", latched=True)
    t = 10 * S
    for i in range(2000):
        t += rng.randint(0, 20_000_000)
        if rng.random() < 0.005:
            t -= 5 * S  # clock jump back
        elif rng.random() < 0.01 * seed:
            t -= rng.randint(0, 200_000_000)  # a little out of order, within the window
        topic = rng.choice(["/a", "/a", "/b", "/l"])
        ring.push(topic, t, bytes(rng.randint(0, 400)), latch_key=rng.randint(0, 3))
        if rng.random() < 0.002:
            ring.clear()
        if i % 97 == 0:
            stats = ring.stats()
            held = ring.window(None, None)
            for name, st in stats.topics.items():
                mine = [m for m in held if m.topic == name]
                assert st.count == len(mine)
                assert st.bytes == sum(len(m.data) for m in mine)
                times = [m.log_time_ns for m in mine]
                assert (st.oldest_ns, st.newest_ns) == (min(times, default=None), max(times, default=None))
            assert stats.total_bytes == sum(len(m.data) for m in held if not m.latched)
