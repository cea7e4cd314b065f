"""Snapshot writer: rosbag2/MCAP output, the background thread, streaming, atomicity, disk problems."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import yaml
from snapshot_helpers import (
    IMAGE_PERIOD,
    IMU_PERIOD,
    LATCHED_QOS,
    MS,
    T0,
    TMP_RE,
    Factory,
    S,
    big_buffer,
    camera_info_cdr,
    complete_snapshots,
    fake_clock_writers,
    image_cdr,
    imu_cdr,
    make_buffer,
    mcap_contents,
    read_rosbag,
    run_rig,
    settings,
    snapshot_every,
)

from gap_monitor.core.capture.policy import OutputDirError
from gap_monitor.core.capture.ring_buffer import RingBuffer
from gap_monitor.core.capture.snapshot_folder import WriteOptions, open_output
from gap_monitor.core.capture.writer import SnapshotWriter


@pytest.fixture
def writer_factory() -> Iterator[Factory]:
    with fake_clock_writers() as make:
        yield make


# -- output format and the writer thread --------------------------------------------------------


@pytest.mark.parametrize("compression", ["none", "lz4", "zstd"])
def test_snapshot_has_pre_and_post_windows_and_decodes(
    tmp_path: Path, writer_factory: Factory, compression: str
) -> None:
    rb = make_buffer()
    w = writer_factory(settings(tmp_path, compression=compression), rb)
    event = {
        "kind": "novel_condition",
        "reason": "image brightness outside training range",
        "time": T0 + 6 * S,
        "source": "scorer",
        "details": {"feature": "brightness", "score": 5.5, "scores": [1, 2.5]},
    }
    trig = T0 + 6 * S
    (result,) = run_rig(rb, w, T0, T0 + 10 * S, {trig: event})
    assert result.outcome == "started" and result.accepted
    assert w.flush(30)
    status = w.status()
    assert status.snapshots_written == 1 and not status.capture_stopped
    (folder,) = complete_snapshots(tmp_path / "snapshots")
    assert folder == result.path
    assert folder.name == "20251121T053018Z_novel_condition"

    topics = read_rosbag(folder)
    imu_times = [t for t, _ in topics["/imu"]]
    image_times = [t for t, _ in topics["/camera/image"]]
    # Pre and post windows within one message period of the configured seconds.
    assert trig - 2 * S <= imu_times[0] < trig - 2 * S + IMU_PERIOD
    assert trig + 1 * S - IMU_PERIOD < imu_times[-1] <= trig + 1 * S
    assert trig - 2 * S <= image_times[0] < trig - 2 * S + IMAGE_PERIOD
    assert trig + 1 * S - IMAGE_PERIOD < image_times[-1] <= trig + 1 * S
    # Nothing missing in between (100 Hz for 3 s, inclusive ends), in time order.
    assert imu_times == sorted(imu_times)
    assert len(imu_times) == 301
    for log_time, msg in topics["/imu"]:
        assert msg.header.stamp.sec * S + msg.header.stamp.nanosec == log_time
    _, first_image = topics["/camera/image"][0]
    assert (first_image.width, first_image.height, first_image.encoding) == (32, 24, "rgb8")
    assert len(first_image.data) == 32 * 24 * 3
    # The latched camera_info (pushed at T0, long before the window) is there, once, stamped
    # at the window start so the bag's duration stays the window.
    ((info_time, info),) = topics["/camera/camera_info"]
    assert info.distortion_model == "plumb_bob"
    assert info_time == trig - 2 * S

    meta = yaml.safe_load((folder / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["storage_identifier"] == "mcap"
    assert meta["version"] >= 5
    assert meta["relative_file_paths"] == [f"{folder.name}_0.mcap"]
    assert meta["message_count"] == sum(len(v) for v in topics.values())
    assert meta["starting_time"]["nanoseconds_since_epoch"] == trig - 2 * S
    assert meta["duration"]["nanoseconds"] == imu_times[-1] - (trig - 2 * S)
    by_name = {t["topic_metadata"]["name"]: t for t in meta["topics_with_message_count"]}
    assert by_name["/camera/image"]["topic_metadata"]["type"] == "sensor_msgs/msg/Image"
    assert by_name["/imu"]["message_count"] == 301
    for t in by_name.values():
        assert t["topic_metadata"]["serialization_format"] == "cdr"
    assert by_name["/camera/camera_info"]["topic_metadata"]["offered_qos_profiles"] == LATCHED_QOS

    mc = mcap_contents(folder)
    assert mc["profile"] == "ros2"
    assert all(s.encoding == "ros2msg" for s in mc["schemas"].values())
    assert set(mc["schemas"]) == {
        "sensor_msgs/msg/Imu",
        "sensor_msgs/msg/Image",
        "sensor_msgs/msg/CameraInfo",
    }
    assert all(c.message_encoding == "cdr" for c in mc["channels"].values())
    assert len(mc["messages"]) == meta["message_count"]
    imu_pub = [m.publish_time for _, c, m in mc["messages"] if c.topic == "/imu"]
    assert imu_pub[0] == imu_times[0] - 1 * MS  # publish times kept
    triggers = [md for name, md in mc["metadata"] if name == "gap_monitor.trigger"]
    assert len(triggers) == 1
    assert triggers[0]["kind"] == "novel_condition"
    assert triggers[0]["reason"] == event["reason"]
    assert triggers[0]["source"] == "scorer"
    assert int(triggers[0]["time"]) == event["time"]
    assert json.loads(triggers[0]["details"]) == event["details"]
    assert all(isinstance(v, str) for v in triggers[0].values())

    sidecar = json.loads((folder / "trigger.json").read_text())
    assert sidecar["triggers"][0]["event"] == event
    assert sidecar["start_ns"] == trig - 2 * S and sidecar["end_ns"] == trig + 1 * S


def test_writing_happens_on_a_background_thread(tmp_path: Path, writer_factory: Factory) -> None:
    threads: list[threading.Thread] = []

    def open_file(path: Path) -> IO[bytes]:
        threads.append(threading.current_thread())
        return open_output(path)

    rb = make_buffer()
    w = writer_factory(settings(tmp_path, post_s=0.0), rb, WriteOptions(open_file=open_file))
    run_rig(rb, w, T0, T0 + 3 * S, {T0 + 3 * S: {"kind": "x"}})
    assert w.flush(30)
    # The MCAP, metadata.yaml and trigger.json, each opened on the one writer thread.
    assert len(threads) == 3 and len(set(threads)) == 1
    assert threads[0] is not threading.current_thread()


def test_close_writes_an_open_snapshot_as_truncated(tmp_path: Path) -> None:
    rb = make_buffer()
    w = SnapshotWriter(settings(tmp_path, post_s=10.0), rb)
    run_rig(rb, w, T0, T0 + 4 * S, {T0 + 3 * S: {"kind": "x"}})
    assert w.status().collecting
    w.close(T0 + 4 * S, timeout_s=30)
    (folder,) = complete_snapshots(tmp_path / "snapshots")
    sidecar = json.loads((folder / "trigger.json").read_text())
    assert sidecar["truncated"] is True
    assert max(t for t, _ in read_rosbag(folder)["/imu"]) == T0 + 4 * S
    assert w.trigger({"kind": "late"}, T0 + 5 * S).outcome == "closed"


# -- crash safety and disk errors ---------------------------------------------------------------


CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from gap_monitor.core.capture.policy import SnapshotSettings
    from gap_monitor.core.capture.ring_buffer import RingBuffer
    from gap_monitor.core.capture.snapshot_folder import WriteOptions, open_output
    from gap_monitor.core.capture.writer import SnapshotWriter

    out = Path(sys.argv[1])

    class Slow:
        # A slow disk: the write takes seconds, so the parent surely kills it mid-way.
        def __init__(self, f):
            self._f = f
        def write(self, data):
            time.sleep(0.03)
            return self._f.write(data)
        def __getattr__(self, name):
            return getattr(self._f, name)
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            self._f.close()

    rb = RingBuffer(400 * 2**20, 100.0)
    rb.add_topic("/camera/image", "sensor_msgs/msg/Image")
    t0 = 1_763_703_012 * 10**9
    for i in range(150):  # 150 MB of 1 MB messages
        rb.push("/camera/image", t0 + i * 10**7, bytes(2**20))
    settings = SnapshotSettings(output_dir=out, pre_s=5, post_s=0, compression="none", min_free_bytes=0)
    w = SnapshotWriter(settings, rb, options=WriteOptions(open_file=lambda path: Slow(open_output(path))))
    print(w.trigger({"kind": "kill_test"}, t0 + 149 * 10**7).outcome, flush=True)
    w.flush()
    print("finished", flush=True)
    """
)


def test_sigkill_mid_write_leaves_no_complete_looking_folder(tmp_path: Path) -> None:
    out = tmp_path / "snapshots"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        partial: list[Path] = []
        while time.monotonic() < deadline and child.poll() is None:
            if out.is_dir():
                partial = [
                    p
                    for p in out.iterdir()
                    if TMP_RE.search(p.name) and any(f.stat().st_size > 0 for f in p.iterdir())
                ]
                if partial:
                    break
            time.sleep(0.01)
        assert partial, "the child never started writing"
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
    assert child.returncode == -signal.SIGKILL
    assert child.stdout is not None and "finished" not in child.stdout.read()
    assert complete_snapshots(out) == []
    assert any(TMP_RE.search(p.name) for p in out.iterdir())
    # The next writer removes the leftovers and does not count them as snapshots.
    rb = make_buffer()
    w = SnapshotWriter(settings(tmp_path), rb)
    try:
        assert list(out.iterdir()) == []
        assert w.status().snapshots_on_disk == 0
    finally:
        w.close()


class FailingFile:
    """A file whose writes fail with `code` once `limit` bytes were written."""

    def __init__(self, f: IO[bytes], path: Path, limit: int, code: int) -> None:
        self._f, self._path, self._limit, self._code = f, path, limit, code
        self._written = 0

    def write(self, data: bytes) -> int:
        if self._written + len(data) > self._limit:
            raise OSError(self._code, os.strerror(self._code), str(self._path))
        self._written += len(data)
        return self._f.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

    def __enter__(self) -> FailingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()


@pytest.mark.parametrize(
    ("failing_file", "limit", "code"),
    [(".mcap", 200_000, errno.ENOSPC), ("metadata.yaml", 0, errno.EDQUOT)],
)
def test_full_disk_mid_write_stops_capture_and_leaves_nothing(
    tmp_path: Path, writer_factory: Factory, failing_file: str, limit: int, code: int
) -> None:
    disk_full = True

    def open_file(path: Path) -> IO[bytes]:
        f = open_output(path)
        if disk_full and path.name.endswith(failing_file):
            return FailingFile(f, path, limit, code)  # type: ignore[return-value]
        return f

    rb = big_buffer()
    s = settings(tmp_path, pre_s=2.0, post_s=0.0, compression="none")
    w = writer_factory(s, rb, WriteOptions(open_file=open_file))
    (result,) = snapshot_every(w, rb, 1)  # trigger() itself must not raise
    assert result.accepted
    st = w.status()
    assert st.capture_stopped and st.stopped_reason is not None
    assert errno.errorcode[code] in st.stopped_reason
    assert failing_file in st.stopped_reason  # names the file that failed
    assert st.last_error == st.stopped_reason
    assert list(s.output_dir.iterdir()) == []  # neither a complete nor a temporary folder
    assert w.trigger({"kind": "again"}, T0 + 50 * S).outcome == "stopped"
    # Once space is back, an operator can resume.
    disk_full = False
    w.resume()
    assert w.trigger({"kind": "again"}, T0 + 60 * S).outcome == "started"
    assert w.flush(30)
    assert len(complete_snapshots(s.output_dir)) == 1


def test_startup_cleans_temp_leftovers_and_counts_existing_snapshots(tmp_path: Path) -> None:
    out = tmp_path / "snapshots"
    (out / "20251121T053012Z_novel.tmp-abc123").mkdir(parents=True)
    (out / "20251121T053012Z_novel.tmp-abc123" / "x_0.mcap").write_bytes(b"partial")
    (out / "20251120T000000Z_old").mkdir()
    (out / "20251120T000000Z_old" / "metadata.yaml").write_bytes(b"x" * 1000)
    (out / "operator_notes").mkdir()  # not ours: never touched
    w = SnapshotWriter(settings(tmp_path), make_buffer())
    try:
        assert sorted(p.name for p in out.iterdir()) == ["20251120T000000Z_old", "operator_notes"]
        st = w.status()
        assert st.snapshots_on_disk == 1 and st.bytes_used == 1000
    finally:
        w.close()


def test_unwritable_output_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(OutputDirError) as info:
        SnapshotWriter(settings(tmp_path, output_dir=blocker / "snapshots"), make_buffer())
    assert isinstance(info.value, OSError)
    assert str(blocker / "snapshots") in str(info.value)
    assert "not a writable directory" in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only directories")
def test_read_only_output_dir_is_a_clear_error(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(OutputDirError, match="ro"):
            SnapshotWriter(settings(tmp_path, output_dir=ro), make_buffer())
    finally:
        ro.chmod(0o700)


# -- streaming ----------------------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def temp_mcap_bytes(out: Path) -> int:
    return sum(f.stat().st_size for p in out.iterdir() if TMP_RE.search(p.name) for f in p.glob("*.mcap"))


def test_the_pre_window_is_written_before_the_post_window_ends(
    tmp_path: Path, writer_factory: Factory
) -> None:
    rb = RingBuffer(total_bytes=64 * 2**20, default_window_s=100.0)
    rb.add_topic("/camera/image", "sensor_msgs/msg/Image")
    frame = 2**20
    for i in range(20):  # 20 MB over 2 s: several MCAP chunks and write buffers
        rb.push("/camera/image", T0 + i * IMAGE_PERIOD, image_cdr(T0 + i * IMAGE_PERIOD, 591, 591))
    s = settings(tmp_path, pre_s=2.0, post_s=5.0, compression="none")
    w = writer_factory(s, rb)
    trig = T0 + 2 * S
    assert w.trigger({"kind": "stream"}, trig).outcome == "started"
    # Nothing but the trigger has happened: the post window is open and no poll has run, yet
    # the temporary MCAP fills with the pre-window.
    assert wait_for(lambda: temp_mcap_bytes(s.output_dir) >= 10 * frame)
    assert w.status().collecting and complete_snapshots(s.output_dir) == []
    for i in range(20, 71):  # up to trig + 5 s: the poll there closes the post window
        t = T0 + i * IMAGE_PERIOD
        rb.push("/camera/image", t, image_cdr(t, 32, 24))
        w.poll(t)
    assert w.flush(30)
    (folder,) = complete_snapshots(s.output_dir)
    times = [t for t, _ in read_rosbag(folder)["/camera/image"]]
    assert times == sorted(times)
    assert times[0] == T0 and times[-1] == trig + 5 * S
    assert len(times) == 71  # every frame from T0 to trig + 5 s inclusive


def test_a_late_message_older_than_the_streamed_part_is_still_in_order(
    tmp_path: Path, writer_factory: Factory
) -> None:
    rb = make_buffer()
    w = writer_factory(settings(tmp_path, pre_s=2.0, post_s=2.0), rb)
    trig = T0 + 2 * S
    run_rig(rb, w, T0, T0 + 3 * S, {trig: {"kind": "late"}})
    # By now the writer may have streamed up to ~T0 + 2.8 s; a message stamped 0.75 s earlier
    # arrives (a stalled callback) and must still land in log-time order.
    late = T0 + 2 * S + 55 * MS
    rb.push("/imu", late, imu_cdr(late))
    w.poll(T0 + 3 * S + 1 * MS)
    run_rig(rb, w, T0 + 3 * S + 10 * MS, T0 + 5 * S)
    assert w.flush(30)
    (folder,) = complete_snapshots(tmp_path / "snapshots")
    contents = mcap_contents(folder)
    log_times = [m.log_time for _, _, m in contents["messages"]]
    assert log_times == sorted(log_times)
    imu_times = [t for t, _ in read_rosbag(folder)["/imu"]]
    assert imu_times == sorted(imu_times)
    assert late in imu_times and len(imu_times) == 401 + 1
    sequences = [m.sequence for _, c, m in contents["messages"] if c.topic == "/imu"]
    assert sequences == list(range(1, len(imu_times) + 1))


def test_latched_message_replaced_in_the_post_window_is_written_once(
    tmp_path: Path, writer_factory: Factory
) -> None:
    rb = make_buffer()
    w = writer_factory(settings(tmp_path, pre_s=2.0, post_s=2.0), rb)
    trig = T0 + 3 * S
    run_rig(rb, w, T0, T0 + 4 * S, {trig: {"kind": "latched"}})
    replaced = T0 + 4 * S + 5 * MS
    rb.push("/camera/camera_info", replaced, camera_info_cdr(replaced))
    run_rig(rb, w, T0 + 4 * S + 10 * MS, T0 + 6 * S)
    assert w.flush(30)
    (folder,) = complete_snapshots(tmp_path / "snapshots")
    topics = read_rosbag(folder)
    # As when everything was written at the end: the latched message held then, at its time.
    ((info_time, info),) = topics["/camera/camera_info"]
    assert info_time == replaced
    assert info.header.stamp.sec * S + info.header.stamp.nanosec == replaced
    log_times = [m.log_time for _, _, m in mcap_contents(folder)["messages"]]
    assert log_times == sorted(log_times)


def test_a_topic_added_after_the_trigger_is_in_the_snapshot(tmp_path: Path, writer_factory: Factory) -> None:
    rb = make_buffer()
    w = writer_factory(settings(tmp_path, pre_s=2.0, post_s=2.0), rb)
    trig = T0 + 3 * S
    run_rig(rb, w, T0, T0 + 4 * S, {trig: {"kind": "new_topic"}})
    rb.add_topic("/imu2", "sensor_msgs/msg/Imu")
    rb.add_topic("/silent", "sensor_msgs/msg/Imu")
    for k in range(5):
        t = T0 + 4 * S + (k + 1) * 100 * MS
        rb.push("/imu2", t, imu_cdr(t))
        w.poll(t)
    w.poll(T0 + 6 * S)
    assert w.flush(30)
    (folder,) = complete_snapshots(tmp_path / "snapshots")
    assert len(read_rosbag(folder)["/imu2"]) == 5
    assert {"/imu2", "/silent"} <= set(mcap_contents(folder)["channels"])
    meta = yaml.safe_load((folder / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    counts = {t["topic_metadata"]["name"]: t["message_count"] for t in meta["topics_with_message_count"]}
    assert counts["/imu2"] == 5 and counts["/silent"] == 0


@pytest.mark.parametrize("fadvise", ["works", "absent", "fails"])
def test_write_behind_covers_the_whole_file_and_keeps_it_intact(
    tmp_path: Path, writer_factory: Factory, monkeypatch: pytest.MonkeyPatch, fadvise: str
) -> None:
    """With 16 KiB chunks and write-behind every 32 KiB the snapshot is still complete; with
    posix_fadvise the MCAP is handed to the disk range after range while streaming and dropped
    from the cache once fsynced; without it (or when the filesystem refuses the advice),
    fsyncs while streaming bound what is left, and capture goes on."""
    step = 32 * 1024
    options = WriteOptions(chunk_bytes=16 * 1024, write_behind_bytes=step, fadvise=fadvise != "absent")
    advised: list[tuple[int, int]] = []
    fsyncs: list[int] = []
    real_fadvise = getattr(os, "posix_fadvise", None)
    real_fsync = os.fsync

    def spy_fadvise(fd: int, offset: int, length: int, advice: int) -> None:
        if Path(f"/proc/self/fd/{fd}").readlink().name.endswith(".mcap"):
            advised.append((offset, length))
        if fadvise == "fails":
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        assert real_fadvise is not None
        real_fadvise(fd, offset, length, advice)

    def spy_fsync(fd: int) -> None:
        fsyncs.append(fd)
        real_fsync(fd)

    if fadvise != "absent":
        if real_fadvise is None or not Path("/proc/self/fd").is_dir():
            pytest.skip("posix_fadvise or /proc/self/fd not available")
        monkeypatch.setattr(os, "posix_fadvise", spy_fadvise)
    monkeypatch.setattr(os, "fsync", spy_fsync)
    rb = make_buffer()
    w = writer_factory(settings(tmp_path, compression="none"), rb, options)
    trig = T0 + 3 * S
    run_rig(rb, w, T0, T0 + 5 * S, {trig: {"kind": "behind"}})
    assert w.flush(30)
    (folder,) = complete_snapshots(tmp_path / "snapshots")
    assert len(read_rosbag(folder)["/imu"]) == 301
    (mcap_file,) = folder.glob("*.mcap")
    size = mcap_file.stat().st_size
    assert size > 4 * step
    assert not w.status().capture_stopped and w.status().last_error is None
    if fadvise == "works":
        # Streaming: [mark, end) handed over, then [0, mark) dropped, each range following the
        # last; at the end the whole file (length 0: to its end) is dropped.
        assert advised[-1] == (0, 0)
        streamed = advised[:-1]
        handed = [a for i, a in enumerate(streamed) if i == 0 or streamed[i - 1][0] == 0]
        mark = 0
        for offset, length in handed:
            assert offset == mark and length >= step
            mark = offset + length
        assert (0, mark) not in streamed  # dropped only once a later range was handed over
        assert len(handed) >= size // step - 2
        assert mark > size - 2 * step
    else:
        # fsyncs while streaming, besides those at the end (MCAP, metadata, trigger, 2 folders).
        assert len(fsyncs) - 5 >= size // step - 2
