"""Snapshot writing: SnapshotWriter per compression against a raw sequential write of the same bytes.

The sensor suite of the live benchmark, as serialized CDR: 1280x720 rgb8 camera and 640x480 16UC1
depth at 30 Hz, IMU 400 Hz, JointState 500 Hz, WrenchStamped 1 kHz (about 100 MB/s). Content is
the simulated rig's (`gap_monitor.sim.rig.SimRig`: textured scene with sharp-edged shapes and sensor
noise, depth with holes), serialized with rosbags' Jazzy typestore; a pool of one second of distinct
messages per stream is cycled (the same bytes objects, so neither filling a ring nor pushing at
100 MB/s costs a copy: what is measured is the writer). MCAP compresses each 4 MB chunk (one or two
camera frames) on its own, so cycling a 30-frame pool does not flatter lz4/zstd.

Two phases per compression (none, lz4, zstd):

1. Simulated clock (write speed). A RingBuffer holds pre_s + post_s + 1 s; the writer's clock is
   simulated, so the post window elapses instantly: trigger at T0 (the writer starts streaming the
   pre-window), push the post window (polling every 100 ms of stamp time), the poll at T0 + post_s
   closes it. Write time = trigger until `flush()` returns (folder written, fsynced, renamed).
   MB/s = payload bytes / write time. The baseline writes the same payload bytes (the ring's
   window, in order) sequentially to one new file in the same folder, 1 MB buffered, then fsync
   of file and folder, in two disciplines: 'write-behind' (judged), the writer's own (every
   WRITE_BEHIND_BYTES the new range is handed to the disk and older ranges leave the page cache),
   so the ratio is what MCAP framing, CRCs and Python cost; and 'plain' (everything, then one
   fsync), reported beside it. The uncompressed snapshot (the judged one) runs max(3, `--rounds`)
   times, each bracketed by both raw writes (raw, none, raw, none, ...: this disk's speed drifts
   between writes); medians are compared and the spread is printed. One more uncompressed write
   without chunk CRCs (a private switch of the writer, not a setting) shows what they cost.
   On a VM whose free memory goes back to the host (virtio-balloon free page reporting), every
   fresh page-cache page costs a host fault, so a plain write of 1.5 GB runs anywhere from ~0.3
   to ~2 GB/s depending on how long ago the previous write freed its pages; write-behind
   recycles a few ranges of pages and does not depend on it.
2. Real time (latency and stalls). The ring holds pre_s + 1 s, pre-filled instantly; then a loop
   pushes the suite at its real rates, as the node's callbacks would (receipt time = now; a
   message whose time has passed by a whole period is dropped, as a driver drops frames), polls
   the writer every 100 ms, triggers after 0.5 s and runs until the folder is renamed. Latency =
   trigger -> final folder exists. Stalls: the largest gap between two pushes, and the messages
   dropped, while the writer thread writes (post window closed -> folder renamed), against the same
   loop with no snapshot for as long as the longest write.

Everything written goes to `<work_dir>/snapshot/` and is deleted once measured.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import sys
import time
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

from bench import BenchOptions
from bench.machine import load
from bench.report import BenchResult, Row, Table, at_most, format_number, ratio
from gap_monitor.core.capture.policy import COMPRESSIONS, SnapshotSettings
from gap_monitor.core.capture.ring_buffer import RingBuffer
from gap_monitor.core.capture.snapshot_folder import WRITE_BEHIND_BYTES, WriteOptions
from gap_monitor.core.capture.writer import SnapshotWriter
from gap_monitor.core.units import NS_PER_S
from gap_monitor.sim.record import SimSerializer
from gap_monitor.sim.rig import (
    DEFAULT_TOPICS,
    FRAME_IDS,
    ImageSample,
    ImuSample,
    JointSample,
    RigSettings,
    SimRig,
    WrenchSample,
)
from gap_monitor.sim.scenario import Scenario

TITLE = "snapshot writing: SnapshotWriter (none/lz4/zstd) vs raw sequential write + fsync of the same bytes"
MS = 1_000_000
MB = 1e6  # throughput in decimal MB/s, as disks are rated

PRE_S = 10.0
POST_S = 5.0
POLL_S = 0.1  # the node polls the writer on a 10 Hz timer
TRIGGER_AFTER_S = 0.5  # real-time phase: pushes before the trigger
TAIL_S = 0.3  # real-time phase: pushes after the folder appeared
LIVE_TIMEOUT_S = 90.0
WRITE_TIMEOUT_S = 120.0
RAW_CHUNK_BUFFER = 1024 * 1024  # the snapshot writer's own file buffer
RAW_DISCIPLINES = ("write-behind", "plain")  # the first is the judged baseline
UNCOMPRESSED_MIN_RATIO = 0.8
LATENCY_MARGIN_S = 1.0
MIN_ROUNDS = 3  # uncompressed writes, each followed by both raw writes
NO_CRC = "none without chunk CRCs"
POOL_S = 1.0  # one second of distinct messages per stream
REFERENCE_WIDTH = 640

CAMERA_SIZE = (1280, 720)
DEPTH_SIZE = (640, 480)
IMAGE_TYPE = "sensor_msgs/msg/Image"
MSG_TYPES = {
    "camera": IMAGE_TYPE,
    "depth": IMAGE_TYPE,
    "imu": "sensor_msgs/msg/Imu",
    "joints": "sensor_msgs/msg/JointState",
    "wrench": "geometry_msgs/msg/WrenchStamped",
}
RATES_HZ = {"camera": 30.0, "depth": 30.0, "imu": 400.0, "joints": 500.0, "wrench": 1000.0}


class BenchError(RuntimeError):
    pass


# --- messages -------------------------------------------------------------------------------------


def suite_schedule(rates_hz: Mapping[str, float], start_ns: int, end_ns: int) -> list[tuple[int, str, int]]:
    """(time_ns, stream, seq) of every message due in [start_ns, end_ns), time order (ties in the
    order of `rates_hz`). Message k of a stream is due at floor(k / rate) in integer ns (the rate as
    a fraction, so no rounding accumulates), so consecutive spans join without a gap or a repeat
    and seq is k."""
    out: list[tuple[int, int, str, int]] = []
    for order, (stream, rate) in enumerate(rates_hz.items()):
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"rates_hz[{stream!r}]: {rate!r}: a rate > 0")
        frac = Fraction(rate).limit_denominator(10_000)
        num, den = frac.numerator, frac.denominator * NS_PER_S  # t_k = k * den // num
        k = -((-start_ns * num) // den)  # the first k with t_k >= start_ns
        t = k * den // num
        while t < end_ns:
            out.append((t, order, stream, k))
            k += 1
            t = k * den // num
    out.sort()
    return [(t, stream, k) for t, _, stream, k in out]


class SuiteSerializer:
    """The suite's messages as CDR bytes: the sim recorder's serializer (one CDR path for the
    project), fed arrays instead of sim samples."""

    def __init__(self) -> None:
        self._sim = SimSerializer()
        self.typestore = self._sim.typestore

    def image(
        self, pixels: npt.NDArray[Any], encoding: str, stamp_ns: int, frame_id: str = "camera"
    ) -> bytes:
        # The frame id follows the stream; depth images are serialized as the "depth" stream.
        stream = "depth" if encoding in ("16UC1", "32FC1") else "camera"
        return self._sim.serialize(stream, ImageSample(encoding, np.ascontiguousarray(pixels)), stamp_ns)

    def imu(self, accel: Any, gyro: Any, stamp_ns: int) -> bytes:
        sample = ImuSample(np.asarray(accel, dtype=np.float64), np.asarray(gyro, dtype=np.float64))
        return self._sim.serialize("imu", sample, stamp_ns)

    def joints(self, names: Sequence[str], position: Any, velocity: Any, effort: Any, stamp_ns: int) -> bytes:
        sample = JointSample(
            tuple(names),
            np.asarray(position, dtype=np.float64),
            np.asarray(velocity, dtype=np.float64),
            np.asarray(effort, dtype=np.float64),
        )
        return self._sim.serialize("joints", sample, stamp_ns)

    def wrench(self, force: Any, torque: Any, stamp_ns: int) -> bytes:
        sample = WrenchSample(np.asarray(force, dtype=np.float64), np.asarray(torque, dtype=np.float64))
        return self._sim.serialize("wrench", sample, stamp_ns)


_SERIALIZER: list[SuiteSerializer] = []


def serializer() -> SuiteSerializer:
    """One shared serializer (building the typestore costs ~0.1 s)."""
    if not _SERIALIZER:
        _SERIALIZER.append(SuiteSerializer())
    return _SERIALIZER[0]


def sim_rig(width: int, height: int, seed: int = 7) -> SimRig:
    """The simulated rig at this size, its focal length scaled to keep the field of view."""
    settings = RigSettings(
        width=width, height=height, focal_px=RigSettings().focal_px * width / REFERENCE_WIDTH
    )
    return SimRig(settings, Scenario(seed=seed))


class MessagePool:
    """`POOL_S` seconds of distinct serialized messages per stream (stamped 0 .. POOL_S), handed out
    in turn. The same bytes objects come back every POOL_S: no per-message copy, so filling a ring
    or pushing at 100 MB/s costs next to nothing, and what is measured is the writer."""

    def __init__(self, rates_hz: Mapping[str, float] = RATES_HZ, seconds: float = POOL_S) -> None:
        ser = serializer()
        camera_rig = sim_rig(*CAMERA_SIZE)
        rig = sim_rig(*DEPTH_SIZE)
        self.pool: dict[str, list[bytes]] = {}
        for stream, rate in rates_hz.items():
            msgs = []
            for i in range(max(1, round(seconds * rate))):
                t = i / rate
                stamp = round(t * NS_PER_S)
                if stream == "camera":
                    msgs.append(ser.image(camera_rig.camera(t).pixels, "rgb8", stamp, FRAME_IDS["camera"]))
                elif stream == "depth":
                    msgs.append(ser.image(rig.depth(t).pixels, "16UC1", stamp, FRAME_IDS["depth"]))
                elif stream == "imu":
                    imu = rig.imu(t)
                    msgs.append(ser.imu(imu.accel, imu.gyro, stamp))
                elif stream == "joints":
                    js = rig.joints(t)
                    msgs.append(ser.joints(js.names, js.position, js.velocity, js.effort, stamp))
                elif stream == "wrench":
                    w = rig.wrench(t)
                    msgs.append(ser.wrench(w.force, w.torque, stamp))
                else:
                    raise ValueError(f"unknown stream {stream!r}")
            self.pool[stream] = msgs

    def message(self, stream: str, seq: int) -> bytes:
        msgs = self.pool[stream]
        return msgs[seq % len(msgs)]

    def bytes_per_s(self) -> float:
        return sum(len(m[0]) * RATES_HZ[s] for s, m in self.pool.items())


# --- measurement pieces ---------------------------------------------------------------------------


def make_ring(window_s: float, rate_bytes_per_s: float) -> RingBuffer:
    """A ring holding `window_s` of the suite with 20 % to spare (the budget never evicts)."""
    ring = RingBuffer(int(rate_bytes_per_s * window_s * 1.2) + 64 * 1024**2, window_s)
    for stream, msgtype in MSG_TYPES.items():
        ring.add_topic(DEFAULT_TOPICS[stream], msgtype)
    return ring


def fill(ring: RingBuffer, pool: MessagePool, start_ns: int, end_ns: int) -> tuple[int, int]:
    """Push every suite message due in [start_ns, end_ns), log time = stamp; (messages, bytes)."""
    count = size = 0
    for t, stream, seq in suite_schedule(RATES_HZ, start_ns, end_ns):
        data = pool.message(stream, seq)
        ring.push(DEFAULT_TOPICS[stream], t, data)
        count += 1
        size += len(data)
    return count, size


def _mb_s(raw: tuple[float, int]) -> float:
    seconds, size = raw
    return size / MB / seconds


def _drop(fd: int, offset: int, length: int) -> None:
    if length > 0 and hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


def raw_write(folder: Path, chunks: Iterable[bytes], discipline: str = "plain") -> tuple[float, int]:
    """Write `chunks` in order to one new file in `folder` (1 MB buffer), fsync it and the
    folder, delete it; (seconds, bytes). `discipline` (one of RAW_DISCIPLINES):

    - 'plain': write everything, then one fsync;
    - 'write-behind': what the snapshot writer does with its file, without MCAP: every
      WRITE_BEHIND_BYTES the new range is handed to the disk and the ranges before it leave
      the page cache (POSIX_FADV_DONTNEED), then fsync and drop at the end."""
    if discipline not in RAW_DISCIPLINES:
        raise ValueError(f"discipline: {discipline!r}: one of {', '.join(RAW_DISCIPLINES)}")
    behind = discipline == "write-behind"
    path = folder / f"raw-baseline-{os.getpid()}.bin"
    path.unlink(missing_ok=True)
    size = done = 0
    t0 = time.perf_counter()
    with path.open("xb", buffering=RAW_CHUNK_BUFFER) as f:
        fd = f.fileno()
        for chunk in chunks:
            f.write(chunk)
            size += len(chunk)
            if behind and size - done >= WRITE_BEHIND_BYTES:
                f.flush()
                _drop(fd, done, size - done)
                _drop(fd, 0, done)
                done = size
        f.flush()
        os.fsync(fd)
        if behind:
            _drop(fd, 0, size)
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    seconds = time.perf_counter() - t0
    path.unlink()
    return seconds, size


def snapshot_settings(folder: Path, compression: str) -> SnapshotSettings:
    return SnapshotSettings(
        output_dir=folder,
        pre_s=PRE_S,
        post_s=POST_S,
        compression=compression,
        cooldown_s=0.0,
        max_per_hour=10_000,
        quota_bytes=256 * 1024**3,
        quota_count=10_000,
    )


def _event(compression: str) -> dict[str, Any]:
    return {"kind": "benchmark", "source": "bench.snapshot_write", "reason": f"compression {compression}"}


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _message_count(path: Path) -> int | None:
    try:
        return int(json.loads((path / "trigger.json").read_text())["message_count"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass
class SimulatedWrite:
    compression: str
    write_s: float
    payload_bytes: int
    messages: int
    folder_bytes: int
    written_messages: int | None
    error: str | None

    @property
    def mb_per_s(self) -> float:
        return self.payload_bytes / MB / self.write_s


def snapshot_payload(pool: MessagePool, t0_ns: int) -> list[bytes]:
    """The messages a snapshot triggered at `t0_ns` holds (pre_s before to post_s after, as
    `simulated_write` pushes them), in order: what the raw baseline writes."""
    pre_ns, post_ns = round(PRE_S * NS_PER_S), round(POST_S * NS_PER_S)
    ring = make_ring(PRE_S + POST_S + 1.0, pool.bytes_per_s())
    fill(ring, pool, t0_ns - pre_ns, t0_ns + post_ns + 1)
    return [m.data for m in ring.window(t0_ns - pre_ns, t0_ns + post_ns, include_latched=False)]


def simulated_write(
    compression: str, pool: MessagePool, folder: Path, t0_ns: int, chunk_crcs: bool = True
) -> tuple[SimulatedWrite, list[bytes]]:
    """Phase 1 for one compression, triggered at `t0_ns`; also the payload written, in order."""
    pre_ns, post_ns = round(PRE_S * NS_PER_S), round(POST_S * NS_PER_S)
    ring = make_ring(PRE_S + POST_S + 1.0, pool.bytes_per_s())
    fill(ring, pool, t0_ns - pre_ns - NS_PER_S, t0_ns + 1)
    now = [t0_ns]
    writer = SnapshotWriter(
        snapshot_settings(folder, compression),
        ring,
        clock=lambda: now[0],
        options=WriteOptions(chunk_crcs=chunk_crcs),
    )
    try:
        # The writer streams from the trigger on, so its write time runs from the trigger to the
        # flush; the simulated post window itself costs only the pushes (references into the pool).
        begin = time.perf_counter()
        started = writer.trigger(_event(compression), now_ns=t0_ns)
        if not started.accepted:
            raise BenchError(f"trigger refused: {started.outcome}: {started.reason}")
        poll_ns = round(POLL_S * NS_PER_S)
        t = t0_ns + 1
        end = t0_ns + post_ns
        while t <= end:
            nxt = min(t + poll_ns, end + 1)
            fill(ring, pool, t, nxt)
            t = nxt
            if t <= end:
                now[0] = t
                writer.poll(now_ns=t)
        now[0] = end
        writer.poll(now_ns=end)  # closes the post window
        if not writer.flush(WRITE_TIMEOUT_S):
            raise BenchError(f"{compression}: snapshot not written within {WRITE_TIMEOUT_S:g} s")
        write_s = time.perf_counter() - begin
        window = ring.window(t0_ns - pre_ns, end, include_latched=False)
        payload = sum(len(m.data) for m in window)
        status = writer.status()
        path = status.last_path
        result = SimulatedWrite(
            compression,
            write_s,
            payload,
            len(window),
            _folder_bytes(path) if path else 0,
            _message_count(path) if path else None,
            status.last_error,
        )
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)
        return result, [m.data for m in window]
    finally:
        writer.close(now_ns=now[0])


@dataclass
class LoopRun:
    """Push times of one real-time loop and its snapshot milestones (time.time_ns)."""

    push_ns: array[int] = field(default_factory=lambda: array("q"))
    late_ns: array[int] = field(default_factory=lambda: array("q"))  # push time - due time
    drop_ns: array[int] = field(default_factory=lambda: array("q"))  # one entry per dropped message
    start_ns: int = 0
    trigger_ns: int | None = None
    closed_ns: int | None = None  # the poll that closed the post window
    done_ns: int | None = None  # the final folder exists
    folder: Path | None = None
    error: str | None = None


@dataclass(frozen=True)
class WindowStats:
    """How the push loop kept up over [lo, hi]."""

    seconds: float
    pushes: int
    max_gap_ms: float | None  # largest gap between consecutive pushes (edges included)
    p99_gap_ms: float | None
    max_late_ms: float | None  # largest push time - due time
    dropped: int  # messages a whole period overdue, skipped

    @property
    def dropped_per_s(self) -> float | None:
        return self.dropped / self.seconds if self.seconds > 0 else None


def window_stats(
    push_ns: Sequence[int], late_ns: Sequence[int], drop_ns: Sequence[int], lo_ns: int, hi_ns: int
) -> WindowStats:
    """Statistics of the pushes in [lo_ns, hi_ns] (push_ns sorted, late_ns aligned with it). The
    max gap includes the gaps from the last push before lo_ns and to the first after hi_ns, so a
    stall that spans an edge still counts."""
    times = np.asarray(push_ns, dtype=np.int64)
    late = np.asarray(late_ns, dtype=np.int64)
    if len(late) != len(times):
        raise ValueError(f"late_ns: {len(late)} values for {len(times)} pushes: must be one per push")
    drops = np.asarray(drop_ns, dtype=np.int64)
    inside = (times >= lo_ns) & (times <= hi_ns)
    i0 = max(int(np.searchsorted(times, lo_ns, side="left")) - 1, 0)
    i1 = min(int(np.searchsorted(times, hi_ns, side="right")) + 1, len(times))
    edged = np.diff(times[i0:i1])
    gaps = np.diff(times[inside])
    return WindowStats(
        seconds=max(hi_ns - lo_ns, 0) / NS_PER_S,
        pushes=int(inside.sum()),
        max_gap_ms=float(edged.max()) / MS if len(edged) else None,
        p99_gap_ms=float(np.quantile(gaps, 0.99)) / MS if len(gaps) else None,
        max_late_ms=float(late[inside].max()) / MS if inside.any() else None,
        dropped=int(((drops >= lo_ns) & (drops <= hi_ns)).sum()),
    )


def live_loop(
    ring: RingBuffer,
    pool: MessagePool,
    writer: SnapshotWriter | None,
    start_ns: int,
    seconds: float | None,
    event: Mapping[str, Any] | None = None,
) -> LoopRun:
    """Push the suite at its rates from `start_ns` (a real time.time_ns in the near future),
    polling `writer` every POLL_S; with `event`, trigger after TRIGGER_AFTER_S and stop TAIL_S after
    the snapshot folder exists; without, stop after `seconds`. A message a whole period overdue is
    dropped (a driver drops frames rather than bursting), and recorded."""
    run = LoopRun(start_ns=start_ns)
    periods = {s: round(NS_PER_S / r) for s, r in RATES_HZ.items()}
    topics = {s: DEFAULT_TOPICS[s] for s in RATES_HZ}
    seq = dict.fromkeys(RATES_HZ, 0)
    due = {s: start_ns for s in RATES_HZ}
    poll_ns = round(POLL_S * NS_PER_S)
    next_poll = start_ns + poll_ns
    trigger_at = start_ns + round(TRIGGER_AFTER_S * NS_PER_S)
    stop_at = start_ns + round((seconds if seconds is not None else LIVE_TIMEOUT_S) * NS_PER_S)
    push_ns, late_ns, drop_ns = run.push_ns, run.late_ns, run.drop_ns
    while True:
        nxt = min(min(due.values()), next_poll)
        now = time.time_ns()
        if nxt > now:
            time.sleep((nxt - now) / NS_PER_S)
            now = time.time_ns()
        for stream, t in due.items():
            if t > now:
                continue
            period = periods[stream]
            behind = (now - t) // period
            if behind:
                drop_ns.extend([now] * behind)
                t += behind * period
                seq[stream] += behind
            ring.push(topics[stream], now, pool.message(stream, seq[stream]))
            pushed = time.time_ns()
            push_ns.append(pushed)
            late_ns.append(pushed - t)
            seq[stream] += 1
            due[stream] = t + period
        now = time.time_ns()
        if writer is not None and event is not None and run.trigger_ns is None and now >= trigger_at:
            run.trigger_ns = now
            result = writer.trigger(event)
            if not result.accepted:
                run.error = f"trigger refused: {result.outcome}: {result.reason}"
                return run
            run.folder = result.path
        if now >= next_poll:
            next_poll += poll_ns
            if writer is not None:
                writer.poll()
                if run.trigger_ns is not None and run.closed_ns is None and not writer.status().collecting:
                    run.closed_ns = now
        if (
            run.closed_ns is not None
            and run.done_ns is None
            and run.folder is not None
            and run.folder.is_dir()
        ):
            run.done_ns = time.time_ns()
            stop_at = min(stop_at, run.done_ns + round(TAIL_S * NS_PER_S))
        if now >= stop_at:
            if writer is not None and event is not None and run.done_ns is None:
                run.error = f"snapshot not complete after {LIVE_TIMEOUT_S:g} s"
            return run


@dataclass
class LiveWrite:
    compression: str
    latency_s: float | None
    write_s: float | None
    post: WindowStats | None  # trigger -> post window closed
    writing: WindowStats | None  # post window closed -> folder renamed
    folder_bytes: int
    written_messages: int | None
    error: str | None


def _prefill_live(pool: MessagePool) -> tuple[RingBuffer, int]:
    """A ring of pre_s + 1 s, filled instantly with the (pre_s + 1) s before a loop start 0.5 s
    ahead (log times in the past are what the ring would hold had the loop run all along)."""
    ring = make_ring(PRE_S + 1.0, pool.bytes_per_s())
    start = time.time_ns() + NS_PER_S // 2
    fill(ring, pool, start - round((PRE_S + 1.0) * NS_PER_S), start)
    return ring, start


def live_write(compression: str, pool: MessagePool, folder: Path) -> LiveWrite:
    ring, start = _prefill_live(pool)
    writer = SnapshotWriter(snapshot_settings(folder, compression), ring)
    try:
        run = live_loop(ring, pool, writer, start, None, _event(compression))
    finally:
        writer.close()
    error = run.error or writer.status().last_error
    path = run.folder if run.folder is not None and run.folder.is_dir() else None
    size = _folder_bytes(path) if path else 0
    count = _message_count(path) if path else None
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)
    latency = write = None
    post = writing = None
    if run.trigger_ns is not None and run.done_ns is not None and run.closed_ns is not None:
        latency = (run.done_ns - run.trigger_ns) / NS_PER_S
        write = (run.done_ns - run.closed_ns) / NS_PER_S
        post = window_stats(run.push_ns, run.late_ns, run.drop_ns, run.trigger_ns, run.closed_ns)
        writing = window_stats(run.push_ns, run.late_ns, run.drop_ns, run.closed_ns, run.done_ns)
    return LiveWrite(compression, latency, write, post, writing, size, count, error)


def live_baseline(pool: MessagePool, seconds: float) -> WindowStats:
    """The same loop (ring pushes, the poll timer) with no snapshot, for `seconds` after a
    TRIGGER_AFTER_S lead-in."""
    ring, start = _prefill_live(pool)
    run = live_loop(ring, pool, None, start, TRIGGER_AFTER_S + seconds)
    lo = start + round(TRIGGER_AFTER_S * NS_PER_S)
    hi = run.push_ns[-1] if run.push_ns else lo
    return window_stats(run.push_ns, run.late_ns, run.drop_ns, lo, hi)


# --- the benchmark --------------------------------------------------------------------------------


def _check_disk(folder: Path, need_bytes: float) -> None:
    free = shutil.disk_usage(folder).free
    if free < need_bytes:
        raise BenchError(f"{folder}: {free / 1e9:.1f} GB free, the benchmark needs {need_bytes / 1e9:.1f} GB")


def run(options: BenchOptions, out: TextIO = sys.stdout) -> BenchResult:
    folder = options.work_dir / "snapshot"
    folder.mkdir(parents=True, exist_ok=True)

    def say(text: str) -> None:
        print(f"[snapshot] {text}", file=out, flush=True)

    t0 = time.monotonic()
    pool = MessagePool()
    rate = pool.bytes_per_s()
    snapshot_bytes = rate * (PRE_S + POST_S)
    _check_disk(folder, 2.2 * snapshot_bytes + 1024**3)
    say(
        f"suite {rate / MB:.1f} MB/s, a {PRE_S:g}+{POST_S:g} s snapshot ~{snapshot_bytes / MB:.0f} MB "
        f"(pool built in {time.monotonic() - t0:.1f} s); load {load()['1min']:.2f}"
    )

    simulated: list[SimulatedWrite] = []
    raws: dict[str, list[tuple[float, int]]] = {d: [] for d in RAW_DISCIPLINES}
    # Every write has the same trigger time, so the same payload.
    t0_ns = (time.time_ns() // NS_PER_S) * NS_PER_S
    payload = snapshot_payload(pool, t0_ns)

    def raw_slot(slot: int) -> str:
        # Both raw disciplines, in alternating order (the one after a write may find the page
        # cache in another state).
        order = RAW_DISCIPLINES if slot % 2 == 0 else RAW_DISCIPLINES[::-1]
        for discipline in order:
            raws[discipline].append(raw_write(folder, payload, discipline))
        return "; ".join(f"raw {d} {_mb_s(raws[d][-1]):.0f} MB/s" for d in RAW_DISCIPLINES)

    # The judged (uncompressed) write runs `rounds` (>= 3) times, each bracketed by the raw
    # baselines (raw, none, raw, none, raw, ...): this disk's speed drifts between writes.
    rounds = max(MIN_ROUNDS, options.rounds)
    say(f"raw before the first write: {raw_slot(0)}")
    for i in range(rounds):
        result, written = simulated_write("none", pool, folder, t0_ns)
        if written != payload:
            raise BenchError("the snapshot's payload differs from the raw baseline's")
        simulated.append(result)
        say(f"none (simulated clock) {i + 1}/{rounds}: {result.write_s:.2f} s, {result.mb_per_s:.0f} MB/s")
        say(f"raw after it: {raw_slot(i + 1)}")
    for compression in COMPRESSIONS:
        if compression != "none":
            result, _ = simulated_write(compression, pool, folder, t0_ns)
            simulated.append(result)
            say(f"{compression} (simulated clock): {result.write_s:.2f} s, {result.mb_per_s:.0f} MB/s")
    # What the chunk CRCs cost (not a shipped setting): one uncompressed write without them.
    result, _ = simulated_write("none", pool, folder, t0_ns, chunk_crcs=False)
    result.compression = NO_CRC
    simulated.append(result)
    say(f"{NO_CRC} (simulated clock): {result.write_s:.2f} s, {result.mb_per_s:.0f} MB/s")

    lives: list[LiveWrite] = []
    for compression in COMPRESSIONS:
        live = live_write(compression, pool, folder)
        lives.append(live)
        gap = live.writing.max_gap_ms if live.writing else None
        say(
            f"{compression} (real time): latency {format_number(live.latency_s)} s, "
            f"max push gap while writing {format_number(gap)} ms"
        )
    longest = max((lw.write_s for lw in lives if lw.write_s is not None), default=3.0)
    baseline = live_baseline(pool, max(longest, 2.0))
    base_gap = format_number(baseline.max_gap_ms)
    say(f"no-snapshot loop: max push gap {base_gap} ms over {baseline.seconds:.1f} s")
    return _result(simulated, raws, lives, baseline, rate)


def _stats_cells(w: WindowStats | None) -> tuple[str, ...]:
    if w is None:
        return ("-",) * 5
    return (
        format_number(w.max_gap_ms),
        format_number(w.p99_gap_ms),
        format_number(w.max_late_ms),
        str(w.dropped),
        format_number(w.dropped_per_s),
    )


def _result(
    simulated: Sequence[SimulatedWrite],
    raws: Mapping[str, Sequence[tuple[float, int]]],
    lives: Sequence[LiveWrite],
    baseline: WindowStats,
    rate: float,
) -> BenchResult:
    raw_mb_s = {d: [_mb_s(r) for r in raws.get(d, ())] for d in RAW_DISCIPLINES}
    judged_raw = RAW_DISCIPLINES[0]
    raw = statistics.median(raw_mb_s[judged_raw]) if raw_mb_s[judged_raw] else None
    latency_limit = POST_S + LATENCY_MARGIN_S
    rows: list[Row] = []
    for compression in (*COMPRESSIONS, NO_CRC):
        runs = [s.mb_per_s for s in simulated if s.compression == compression]
        if not runs:
            continue
        speed = statistics.median(runs)
        judged = compression == "none"
        r = ratio(speed, raw)
        of = f", median of {len(runs)}" if len(runs) > 1 else ""
        rows.append(
            Row(
                f"write speed {compression} (simulated clock{of})",
                speed,
                raw,
                "MB/s",
                target=f">= {UNCOMPRESSED_MIN_RATIO:g}x raw {judged_raw}" if judged else "",
                passed=(r is not None and r >= UNCOMPRESSED_MIN_RATIO) if judged else None,
            )
        )
        if judged:
            for other in RAW_DISCIPLINES[1:]:
                if raw_mb_s[other]:
                    rows.append(
                        Row(
                            f"write speed none against raw {other} write",
                            speed,
                            statistics.median(raw_mb_s[other]),
                            "MB/s",
                        )
                    )
    for lw in lives:
        rows.append(
            Row(
                f"trigger -> folder renamed, {lw.compression} (real time)",
                lw.latency_s,
                latency_limit,
                "s",
                target=f"<= post {POST_S:g} s + {LATENCY_MARGIN_S:g} s",
                passed=at_most(lw.latency_s, latency_limit),
            )
        )
    for lw in lives:
        w = lw.writing
        rows.append(
            Row(
                f"max gap between pushes while writing, {lw.compression}",
                w.max_gap_ms if w else None,
                baseline.max_gap_ms,
                "ms",
            )
        )
        rows.append(
            Row(
                f"messages dropped while writing, {lw.compression}",
                w.dropped_per_s if w else None,
                baseline.dropped_per_s,
                "1/s",
            )
        )
    sim_table = tuple(
        (
            s.compression,
            format_number(s.payload_bytes / MB),
            str(s.messages),
            format_number(s.folder_bytes / MB),
            format_number(s.payload_bytes / s.folder_bytes if s.folder_bytes else None),
            format_number(s.write_s),
            format_number(POST_S + s.write_s),
            "yes" if s.written_messages == s.messages else f"no ({s.written_messages})",
        )
        for s in simulated
    )
    live_rows: list[tuple[str, ...]] = []
    for lw in lives:
        head = (format_number(lw.latency_s), format_number(lw.folder_bytes / MB))
        for label, w in (("post window", lw.post), ("writing", lw.writing)):
            live_rows.append(
                (
                    f"{lw.compression}: {label}",
                    format_number(w.seconds if w else None),
                    *head,
                    *_stats_cells(w),
                )
            )
    live_rows.append(("no snapshot", format_number(baseline.seconds), "-", "-", *_stats_cells(baseline)))
    notes = [
        f"suite: camera {CAMERA_SIZE[0]}x{CAMERA_SIZE[1]} rgb8 + depth {DEPTH_SIZE[0]}x{DEPTH_SIZE[1]} "
        f"16UC1 @ 30 Hz, IMU 400 Hz, joints 500 Hz, wrench 1 kHz = {rate / MB:.1f} MB/s of CDR; "
        f"snapshot pre {PRE_S:g} s + post {POST_S:g} s",
        "write speed: payload MB / (trigger -> folder written, fsynced and renamed), the writer's clock "
        "simulated so the post window is pushed at once (the writer streams from the trigger on; its "
        "latency is post_s + write time); "
        f"uncompressed runs: {_spread([s.mb_per_s for s in simulated if s.compression == 'none'])}",
        "raw: the same payload bytes written sequentially (1 MB buffer) to one file in the same folder, "
        "then fsync of file and folder, before the first and after every uncompressed snapshot, both "
        f"disciplines each time: write-behind (judged: the writer's own I/O discipline, every "
        f"{WRITE_BEHIND_BYTES // 2**20} MiB the new range handed to the disk and the older ones dropped "
        "from the page cache, POSIX_FADV_DONTNEED) "
        f"{_spread(raw_mb_s['write-behind'])}; plain (everything, then one fsync) "
        f"{_spread(raw_mb_s['plain'])}",
        "real time: the suite pushed into the ring at its rates from one thread (the node's callbacks), "
        "the writer polled at 10 Hz from it; latency = trigger -> final folder exists; 'writing' = post "
        "window closed -> folder exists; a message a whole period overdue is dropped; the no-snapshot "
        "loop runs as long as the longest write",
    ]
    errors = [f"{s.compression}: {s.error}" for s in simulated if s.error] + [
        f"{lw.compression} (real time): {lw.error}" for lw in lives if lw.error
    ]
    notes += [f"error: {e}" for e in errors]
    return BenchResult(
        name="snapshot",
        title=TITLE,
        rows=tuple(rows),
        value_label="writer",
        baseline_label="baseline",
        tables=(
            Table(
                "simulated clock: every snapshot written (post window elapsed instantly)",
                (
                    "compression",
                    "payload MB",
                    "messages",
                    "folder MB",
                    "ratio",
                    "write s",
                    "latency s (post+write)",
                    "all messages",
                ),
                sim_table,
            ),
            Table(
                "real time: the push loop while a snapshot is collected and written (gaps in ms)",
                (
                    "run: window",
                    "window s",
                    "latency s",
                    "folder MB",
                    "max gap",
                    "p99 gap",
                    "max late",
                    "dropped",
                    "dropped/s",
                ),
                tuple(live_rows),
            ),
        ),
        notes=tuple(notes),
        details={
            "suite_bytes_per_s": rate,
            "raw_mb_per_s": raw_mb_s,
            "simulated": [vars(s) | {"mb_per_s": s.mb_per_s} for s in simulated],
            "live": [vars(lw) | {"post": _asdict(lw.post), "writing": _asdict(lw.writing)} for lw in lives],
            "live_baseline": _asdict(baseline),
            "latency_limit_s": latency_limit,
            "target_ratio_uncompressed": UNCOMPRESSED_MIN_RATIO,
        },
    )


def _spread(values: Sequence[float]) -> str:
    """'median M (min a, max b; n runs) MB/s' of some MB/s figures."""
    if not values:
        return "none measured"
    return (
        f"median {statistics.median(values):.0f} MB/s (min {min(values):.0f}, max {max(values):.0f}; "
        f"{len(values)} runs: {', '.join(f'{v:.0f}' for v in values)})"
    )


def _asdict(w: WindowStats | None) -> dict[str, Any] | None:
    return None if w is None else asdict(w) | {"dropped_per_s": w.dropped_per_s}
