"""Live overhead: the monitor node against a no-op raw subscriber, on the simulated sensor suite.

Each phase starts a fresh publisher (`gap_monitor.ros.sim_node`: 1280x720 rgb8 camera and
640x480 16UC1 depth at 30 Hz, IMU 400 Hz, JointState 500 Hz, WrenchStamped 1 kHz), then one
subscriber process: either the monitor node with the shipped config/monitor.yaml (the five topics,
every check on, ring buffer on; snapshots redirected into the work folder) scoring against a
training profile built first from 90 s of the clean rig, or the no-op baseline in this module
(one raw subscription per topic, the QoS the monitor would choose, the same executor driven the
same way, callbacks that only count). After a warm-up, CPU (user+sys from /proc/<pid>/stat),
delivered rates and RSS are measured over a steady window. Phases run in ABBA order (no-op,
monitor, monitor, no-op, ...) so a drift in the machine's load biases neither side.

`python -m bench.live_overhead noop --params-file F --out F` runs the no-op baseline process itself.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import json
import os
import pstats
import re
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from bench import BenchOptions
from bench.machine import REPO, load
from bench.report import BenchResult, Row, Table, at_most, not_below, ratio_at_most
from gap_monitor.core.config import (
    NODE_NAME,
    MonitorConfig,
    config_from_parameters,
    load_config,
    parameters_from_file,
)
from gap_monitor.core.io.modalities import MODALITIES
from gap_monitor.core.units import NS_PER_S
from gap_monitor.launching import keep_discovery_local
from gap_monitor.sim.rig import DEFAULT_TOPICS, RigSettings

TITLE = "monitor node vs no-op raw subscribers, live simulated sensor suite"
MB = 1024.0 * 1024.0
SHIPPED_PARAMS = REPO / "config" / "monitor.yaml"

# Targets.
CPU_RATIO_MAX = 1.3
RSS_OVERHEAD_MAX_MB = 200.0
# A delivered rate may fall short of the no-op's by the larger of these before it counts as a miss:
# the windows of two runs cut at most a message or so at each edge, and 1 % is run-to-run noise.
RATE_REL_TOLERANCE = 0.01
RATE_EDGE_MESSAGES = 2.0

# The sensor suite: a 1280x720 colour camera with a 640x480 depth camera.
CAMERA_WIDTH, CAMERA_HEIGHT = 1280, 720
DEPTH_WIDTH, DEPTH_HEIGHT = 640, 480
READY_TIMEOUT_S = 30.0
DISCOVERY_SETTLE_S = 1.0
STOP_TIMEOUT_S = 15.0
SAFETY_MARGIN_S = 60.0  # children end on their own this long after a phase should have ended
RING_FILL_MARGIN_S = 2.0
# The monitor scores against a training profile (the issue: "profile loaded"), built before the
# phases from a clean recording of the same rig, as `gap-monitor demo` builds its own.
TRAINING_S = 90.0
TRAINING_START_S = 200.0  # another stretch of the rig's motion than the live phases see
# glibc malloc, left to itself, hands freed image buffers back to the kernel (heap trim, or
# munmap above its sliding mmap threshold; the trim threshold slides to twice that, ~5.5 MB) and
# faults fresh pages in for the next frame. Whether it does depends on where a buffer sits when
# it is freed: the same no-op process measured 4.6k or 60k minor faults/s, 0.05 or 0.17 cpu-s/s
# of kernel time, from one run to the next. Both subject processes run with fixed thresholds
# instead (the same for both), so the comparison measures their work, not the allocator's luck.
# The publisher keeps the default.
STEADY_MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(32 * 1024 * 1024),  # glibc's maximum: images come from the heap
    # A few frames' worth of freed buffers stay for the next messages; a backlog's worth (a
    # starved process) still goes back to the kernel.
    "MALLOC_TRIM_THRESHOLD_": str(64 * 1024 * 1024),
}
PROFILE_TOP = 15


class BenchError(RuntimeError):
    pass


@dataclass(frozen=True)
class LiveSettings:
    width: int = CAMERA_WIDTH
    height: int = CAMERA_HEIGHT
    depth_width: int = DEPTH_WIDTH
    depth_height: int = DEPTH_HEIGHT
    seconds: float = 15.0
    warmup_s: float = 5.0
    rounds: int = 2
    domain_id: int = 97
    work_dir: Path = REPO / "bench" / "results" / "work" / "live"
    profile: bool = False
    params_file: Path = SHIPPED_PARAMS
    steady_malloc: bool = True  # subjects with STEADY_MALLOC_ENV; False: glibc's defaults

    def __post_init__(self) -> None:
        if not 16 <= self.width <= 8192:
            raise ValueError(f"width: {self.width!r}: pixels in [16, 8192]")
        if not 16 <= self.height <= 8192:
            raise ValueError(f"height: {self.height!r}: pixels in [16, 8192]")
        if not 16 <= self.depth_width <= 8192:
            raise ValueError(f"depth_width: {self.depth_width!r}: pixels in [16, 8192]")
        if not 16 <= self.depth_height <= 8192:
            raise ValueError(f"depth_height: {self.depth_height!r}: pixels in [16, 8192]")
        if self.seconds < 2.0:
            raise ValueError(f"seconds: {self.seconds!r}: at least 2 (two 1 Hz rate records)")

    @classmethod
    def from_options(cls, options: BenchOptions) -> LiveSettings:
        return cls(
            seconds=options.seconds,
            warmup_s=options.warmup_s,
            rounds=options.rounds,
            domain_id=options.domain_id,
            work_dir=options.work_dir / "live",
            profile=options.profile,
        )

    def phase_order(self) -> list[str]:
        """ABBA: no-op, monitor, monitor, no-op, ..."""
        order: list[str] = []
        for i in range(self.rounds):
            order += ["noop", "monitor"] if i % 2 == 0 else ["monitor", "noop"]
        return order


# --- the monitor's configuration ------------------------------------------------------------------


@dataclass(frozen=True)
class MonitorSetup:
    params: dict[str, Any]
    source: str
    config: MonitorConfig
    ring_buffer_bytes: int  # configured budget: memory the user asked for, not overhead
    ring_window_s: float  # the ring's time window per topic (0: no ring)
    triggers_off: tuple[str, ...] = ()  # capture triggers the benchmark turned off
    profile: str = ""  # the training profile the monitor scores against ("": features only)


def _has_field(name: str) -> bool:
    return name in {f.name for f in dataclasses.fields(MonitorConfig)}


def monitor_setup(base_file: Path, snapshot_dir: Path, profile: Path | None = None) -> MonitorSetup:
    """The shipped params (the monitor as users run it) if they list exactly the sim's five topics,
    else a minimal config of those topics at the sim's rates; snapshots go to `snapshot_dir`; with
    `profile`, condition features on and scored against it."""
    topics = set(DEFAULT_TOPICS.values())
    source = str(base_file)
    try:
        params = parameters_from_file(base_file)
        shipped_topics = {s.topic for s in config_from_parameters(params, source=source).streams}
    except ValueError as exc:  # ConfigError is one
        params, shipped_topics, source = {}, set(), f"generated ({base_file} unusable: {exc})"
    if shipped_topics != topics:
        if shipped_topics:
            source = f"generated ({base_file} lists {sorted(shipped_topics)}, not the sim's topics)"
        rig = RigSettings()
        params = {}
        for stream, topic in DEFAULT_TOPICS.items():
            params.setdefault(MODALITIES[stream].config_key, {})[stream] = {
                "topic": topic,
                "rate_hz": rig.rate(stream),
            }
    triggers_off: list[str] = []
    if _has_field("capture"):
        # A snapshot during a benchmark belongs in the work folder, not in the user's ~/.ros. And
        # none should happen: a publisher starved on a busy machine stalls, the stall triggers a
        # snapshot, and the window measures the snapshot writer (its own benchmark), not the
        # steady state. The automatic triggers (on_* booleans) cost nothing until they fire.
        defaults = MonitorConfig().capture
        triggers_off = [
            f.name
            for f in dataclasses.fields(defaults)
            if f.name.startswith("on_") and isinstance(getattr(defaults, f.name), bool)
        ]
        capture_params = {**params.get("capture", {}), "output_dir": str(snapshot_dir)}
        params["capture"] = {**capture_params, **dict.fromkeys(triggers_off, False)}
    if profile is not None:
        params["conditions"] = {**params.get("conditions", {}), "enabled": True, "profile": str(profile)}
    config = config_from_parameters(params, source=source)
    capture: Any = getattr(config, "capture", None)
    enabled = capture is not None and bool(capture.enabled)
    ring_bytes = int(capture.buffer_bytes) if enabled else 0
    # The ring holds pre_s (+1 s) per topic unless its byte budget stops it sooner.
    ring_window = float(capture.pre_s) + 1.0 if enabled else 0.0
    return MonitorSetup(
        params, source, config, ring_bytes, ring_window, tuple(triggers_off), config.conditions.profile
    )


def build_training_profile(rig: RigSettings, path: Path, seconds: float = TRAINING_S) -> Path:
    """A profile of `seconds` of the clean rig (images at the monitor's feature rate, which is all a
    profile uses), written to `path`."""
    import shutil

    from gap_monitor.offline.extraction import build_profile
    from gap_monitor.sim.record import record_sim
    from gap_monitor.sim.scenario import Scenario

    rate = MonitorConfig().conditions.image_rate_hz
    training = dataclasses.replace(rig, camera_rate_hz=rate, depth_rate_hz=rate)
    recording = path.parent / "training_recording"
    shutil.rmtree(recording, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    record_sim(recording, Scenario(name="clean"), seconds, training, start_s=TRAINING_START_S)
    try:
        build_profile([recording]).save(path)
    finally:
        shutil.rmtree(recording, ignore_errors=True)
    return path


def write_params_file(path: Path, params: Mapping[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({NODE_NAME: {"ros__parameters": dict(params)}}, sort_keys=False))
    return path


def ros_env(domain_id: int) -> dict[str, str]:
    """Every process of the benchmark: its own domain, DDS kept on this machine."""
    env = dict(os.environ)
    env.update(
        ROS_DOMAIN_ID=str(domain_id),
        PYTHONUNBUFFERED="1",
    )
    keep_discovery_local(env)
    # The no-op process imports `bench`, which is not installed: it runs from the checkout.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


# --- /proc readings -------------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcTimes:
    """CPU seconds (all threads) and minor page faults of a process, from /proc/<pid>/stat."""

    user_s: float
    sys_s: float
    minflt: int

    @classmethod
    def read(cls, pid: int) -> ProcTimes:
        text = Path(f"/proc/{pid}/stat").read_text()
        # The command name (field 2) may hold spaces or parentheses: split after its closing one.
        f = text[text.rindex(")") + 2 :].split()
        # Fields 10 (minflt), 14 (utime) and 15 (stime), counted from 1 with pid and comm first.
        return cls(int(f[11]) / CLK_TCK, int(f[12]) / CLK_TCK, int(f[7]))


def status_mb(pid: int, key: str) -> float | None:
    """A kB line of /proc/<pid>/status (VmRSS, VmHWM) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024.0
    return None


def system_jiffies() -> tuple[int, int, int]:
    """(busy, total, steal) jiffies over all cores since boot; idle and iowait count as not busy.
    Steal is time the hypervisor gave our virtual CPUs to someone else: noise we cannot see."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = values[3] + values[4]
    total = sum(values)
    return total - idle, total, values[7]


@dataclass(frozen=True)
class CpuSnapshot:
    mono_s: float
    wall_ns: int
    process: dict[str, ProcTimes]
    system_busy: int
    system_total: int
    system_steal: int

    @classmethod
    def take(cls, pids: Mapping[str, int]) -> CpuSnapshot:
        busy, total, steal = system_jiffies()
        return cls(
            mono_s=time.monotonic(),
            wall_ns=time.time_ns(),
            process={role: ProcTimes.read(pid) for role, pid in pids.items()},
            system_busy=busy,
            system_total=total,
            system_steal=steal,
        )


def cpu_between(
    a: CpuSnapshot, b: CpuSnapshot, cores: int
) -> tuple[dict[str, dict[str, float]], float, float]:
    """Per role: cpu, user, sys (CPU-seconds per wall second) and minor faults per second; and the
    whole machine's busy and stolen cores."""
    wall = b.mono_s - a.mono_s
    per_role = {}
    for role, pa in a.process.items():
        pb = b.process[role]
        user, sys_ = (pb.user_s - pa.user_s) / wall, (pb.sys_s - pa.sys_s) / wall
        per_role[role] = {
            "cpu": user + sys_,
            "user": user,
            "sys": sys_,
            "minflt_per_s": (pb.minflt - pa.minflt) / wall,
        }
    total = b.system_total - a.system_total
    busy_cores = (b.system_busy - a.system_busy) / total * cores if total > 0 else 0.0
    steal_cores = (b.system_steal - a.system_steal) / total * cores if total > 0 else 0.0
    return per_role, busy_cores, steal_cores


# --- delivered rates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RateSample:
    """Cumulative receive counts (and any reported rates) per topic at one instant."""

    t_ns: int
    counts: Mapping[str, int]
    rates: Mapping[str, float | None] = field(default_factory=dict)


def _inside(samples: Sequence[RateSample], topic: str, t0_ns: int, t1_ns: int) -> list[RateSample]:
    return [s for s in samples if t0_ns <= s.t_ns <= t1_ns and topic in s.counts]


def count_rate(samples: Sequence[RateSample], topic: str, t0_ns: int, t1_ns: int) -> float | None:
    """Messages per second between the first and last sample inside the window."""
    inside = _inside(samples, topic, t0_ns, t1_ns)
    if len(inside) < 2:
        return None
    first, last = inside[0], inside[-1]
    dt = (last.t_ns - first.t_ns) / NS_PER_S
    return (last.counts[topic] - first.counts[topic]) / dt if dt > 0 else None


def mean_reported_rate(samples: Sequence[RateSample], topic: str, t0_ns: int, t1_ns: int) -> float | None:
    """Mean of the rates the process itself reported inside the window; a missing rate counts as 0."""
    inside = _inside(samples, topic, t0_ns, t1_ns)
    if not inside:
        return None
    return sum(s.rates.get(topic) or 0.0 for s in inside) / len(inside)


# --- the harness's own ROS side: it only listens to /diagnostics --------------------------------


@dataclass(frozen=True)
class MonitorEvent:
    """One event from the monitor's ~/events, with the harness's receipt time."""

    t_ns: int
    kind: str
    severity: str
    source: str
    reason: str


@dataclass(frozen=True)
class AuxStatus:
    """The monitor's own statuses (`monitor`, `capture`) from one /diagnostics message."""

    t_ns: int
    values: Mapping[str, Mapping[str, str]]


class _Ros:
    """rclpy in the harness: its own context in the benchmark's domain, one /diagnostics listener."""

    def __init__(self, domain_id: int, prefix: str, topics: Sequence[str]) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.context import Context
        from rclpy.node import Node
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
        from std_msgs.msg import String

        from gap_monitor.ros import runtime

        self.context = Context()
        try:
            from rclpy.signals import SignalHandlerOptions

            rclpy.init(
                args=[],
                context=self.context,
                domain_id=domain_id,
                signal_handler_options=SignalHandlerOptions.NO,
            )
        except ImportError:  # rclpy without SignalHandlerOptions
            rclpy.init(args=[], context=self.context, domain_id=domain_id)
        self.node = Node("gap_monitor_bench", context=self.context)
        self.executor = runtime.make_executor(self.context)
        self.executor.add_node(self.node)
        self.samples: list[RateSample] = []
        self.aux: list[AuxStatus] = []
        self.qos: dict[str, str] = {}
        head = f"{prefix}: "
        wanted = set(topics)

        def on_diagnostics(msg: Any) -> None:
            counts: dict[str, int] = {}
            rates: dict[str, float | None] = {}
            aux: dict[str, dict[str, str]] = {}
            for status in msg.status:
                name = status.name[len(head) :] if status.name.startswith(head) else ""
                values = {kv.key: kv.value for kv in status.values}
                if name in ("monitor", "capture"):
                    aux[name] = values
                if name not in wanted:
                    continue
                with contextlib.suppress(KeyError, ValueError):
                    counts[name] = int(values["count"])
                    rates[name] = float(values["rate_hz"]) if values.get("rate_hz") else None
                    self.qos[name] = values.get("qos", "")
            stamp = msg.header.stamp
            t_ns = stamp.sec * NS_PER_S + stamp.nanosec
            if counts:
                self.samples.append(RateSample(t_ns, counts, rates))
            if aux:
                self.aux.append(AuxStatus(t_ns, aux))

        self.node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
        self.events: list[MonitorEvent] = []

        def on_event(msg: Any) -> None:
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                d = json.loads(msg.data)
                self.events.append(
                    MonitorEvent(
                        time.time_ns(),
                        str(d.get("kind")),
                        str(d.get("severity")),
                        str(d.get("source")),
                        str(d.get("reason")),
                    )
                )

        events_qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=100,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self.node.create_subscription(String, f"/{NODE_NAME}/events", on_event, events_qos)

    def clear(self) -> None:
        self.samples.clear()
        self.aux.clear()
        self.events.clear()
        self.qos.clear()

    def spin_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.executor.spin_once(timeout_sec=min(0.05, left))

    def close(self) -> None:
        import rclpy

        self.executor.remove_node(self.node)
        self.node.destroy_node()
        if self.context.ok():
            rclpy.shutdown(context=self.context)


# --- child processes ------------------------------------------------------------------------------


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    log: Any

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        return rc


def spawn(name: str, args: Sequence[str], log_path: Path, env: Mapping[str, str]) -> Child:
    log = log_path.open("wb")
    proc = subprocess.Popen([sys.executable, *args], stdout=log, stderr=subprocess.STDOUT, env=dict(env))
    return Child(name, proc, log_path, log)


def _require_alive(child: Child) -> None:
    if not child.alive():
        raise BenchError(f"{child.name} exited early (code {child.proc.returncode}):\n{child.tail()}")


_PUBLISHED = re.compile(r"published (\{[^}]*\}), dropped (\d+) late")


def sim_totals(log_text: str) -> tuple[dict[str, int] | None, int | None]:
    """The sim's closing log line: messages published per stream and late ones it dropped."""
    m = _PUBLISHED.search(log_text)
    if not m:
        return None, None
    try:
        published = {str(k): int(v) for k, v in ast.literal_eval(m.group(1)).items()}
    except (ValueError, SyntaxError):
        return None, int(m.group(2))
    return published, int(m.group(2))


def read_noop_output(path: Path) -> tuple[dict[str, Any] | None, list[RateSample]]:
    """The no-op process's JSON lines: its `ready` record and every count sample."""
    ready: dict[str, Any] | None = None
    samples: list[RateSample] = []
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None, []
    for line in lines:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by the process stopping
            continue
        if rec.get("event") == "ready":
            ready = rec
        elif rec.get("event") in ("counts", "final"):
            samples.append(RateSample(int(rec["t_ns"]), {k: int(v) for k, v in rec["counts"].items()}))
    return ready, samples


def profile_summary(path: Path, seconds: float, top: int = PROFILE_TOP) -> dict[str, list[dict[str, Any]]]:
    """From a cProfile dump, per second of the profiled run: the functions with the most own time,
    and the project's functions with the most cumulative time (with their cost per call)."""
    stats: Any = pstats.Stats(str(path))
    rows = []
    for (filename, line, func), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():
        where = filename
        for marker in ("/gap_monitor/", "/bench/", "/site-packages/", "/lib/python"):
            if marker in filename:
                where = filename[filename.index(marker) + 1 :]
                break
        rows.append(
            {
                "function": f"{where}:{line}({func})" if line else func,
                "ours": "/gap_monitor/" in filename,
                "calls_per_s": ncalls / seconds,
                "own_s_per_s": tottime / seconds,
                "cum_s_per_s": cumtime / seconds,
                "cum_ms_per_call": 1000.0 * cumtime / ncalls if ncalls else 0.0,
            }
        )
    own = sorted(rows, key=lambda r: -float(r["own_s_per_s"]))[:top]
    cumulative = sorted((r for r in rows if r["ours"]), key=lambda r: -float(r["cum_s_per_s"]))[:top]
    return {"own": own, "cumulative": cumulative}


# --- one phase ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhaseResult:
    index: int
    kind: str  # "monitor" or "noop"
    window_s: float
    cpu: dict[str, float]  # role (subject, sim, harness) -> CPU-s per wall-s
    cpu_detail: dict[str, dict[str, float]]  # role -> user, sys (CPU-s/s), minflt_per_s
    machine_busy_cores: float
    steal_cores: float
    other_cores: float  # busy cores not used by this benchmark's processes: other users' load
    rss_mb: float | None
    hwm_mb: float | None
    rates: dict[str, float | None]  # delivered: count delta over the window, both kinds alike
    reported_rates: dict[str, float | None]  # monitor only: mean of its /diagnostics rate_hz
    samples: int
    qos: dict[str, str]
    load_before: dict[str, float]
    load_after: dict[str, float]
    sim_published: dict[str, int] | None
    sim_dropped: int | None
    sim_seconds: float
    subject_exit: int
    sim_exit: int
    snapshots_in_window: int | None = None  # monitor only: snapshots written during the window
    ring_held_bytes: int | None = None  # monitor only: what the ring buffer held at the window's end
    internal_errors: int | None = None
    events_in_window: dict[str, int] = field(default_factory=dict)  # "kind SEVERITY" -> count
    snapshot_events: int = 0  # from the monitor's start to the window's end


def _aux_value(aux: Sequence[AuxStatus], status: str, key: str, t0_ns: int, t1_ns: int) -> list[int]:
    out = []
    for a in aux:
        if t0_ns <= a.t_ns <= t1_ns:
            with contextlib.suppress(KeyError, ValueError):
                out.append(int(a.values[status][key]))
    return out


class LiveBench:
    def __init__(self, settings: LiveSettings, out: TextIO = sys.stdout) -> None:
        self.s = settings
        self.out = out
        self.rig = RigSettings(
            width=settings.width,
            height=settings.height,
            depth_width=settings.depth_width,
            depth_height=settings.depth_height,
        )
        self.topics = dict(DEFAULT_TOPICS)
        self.profile_path = settings.work_dir / "training_profile.yaml"
        self.setup = monitor_setup(settings.params_file, settings.work_dir / "snapshots", self.profile_path)
        self.env = ros_env(settings.domain_id)
        self.subject_env = {**self.env, **(STEADY_MALLOC_ENV if settings.steady_malloc else {})}
        self.cores = os.cpu_count() or 1
        # Steady state includes a full ring buffer: warm up at least until it has filled its window.
        ring_fill = 0.0
        if self.setup.ring_buffer_bytes:
            # The ring stops growing at its time window or at its byte budget, whichever comes first.
            ring_fill = RING_FILL_MARGIN_S + min(
                self.setup.ring_window_s, self.setup.ring_buffer_bytes / self.bytes_per_s()
            )
        self.warmup_s = max(settings.warmup_s, ring_fill)

    def bytes_per_s(self) -> float:
        """The publisher's payload rate (images dominate; the small messages are ~100 B each)."""
        dw, dh = self.rig.depth_size
        image = (
            3 * self.s.width * self.s.height * self.rig.camera_rate_hz + 2 * dw * dh * self.rig.depth_rate_hz
        )
        small = 100.0 * (self.rig.imu_rate_hz + self.rig.joints_rate_hz + self.rig.wrench_rate_hz)
        return image + small

    def say(self, text: str) -> None:
        print(f"[live] {text}", file=self.out, flush=True)

    def run(self) -> BenchResult:
        work = self.s.work_dir
        work.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        build_training_profile(self.rig, self.profile_path)
        self.say(
            f"training profile: {TRAINING_S:g} s of the clean rig in {time.monotonic() - started:.1f} s "
            f"({self.profile_path})"
        )
        params_file = write_params_file(work / "monitor_params.yaml", self.setup.params)
        order = self.s.phase_order()
        per_phase = 4.0 + self.warmup_s + self.s.seconds
        self.say(
            f"{len(order)} phases ({', '.join(order)}), ~{per_phase:.0f} s each "
            f"(warm-up {self.warmup_s:.1f} s, window {self.s.seconds:g} s); "
            f"ROS_DOMAIN_ID={self.s.domain_id}; logs in {work}"
        )
        ros = _Ros(self.s.domain_id, self.setup.config.diagnostic_prefix, list(self.topics.values()))
        phases: list[PhaseResult] = []
        profile: dict[str, list[dict[str, Any]]] = {}
        try:
            for i, kind in enumerate(order):
                phase = self._phase(i, kind, params_file, ros)
                phases.append(phase)
                rates = " ".join(_fmt_rate(r) for r in phase.rates.values())
                self.say(
                    f"phase {i + 1}/{len(order)} {kind}: cpu {phase.cpu['subject']:.3f}, "
                    f"sim {phase.cpu['sim']:.3f}, others {phase.other_cores:.2f} cores, "
                    f"rss {phase.rss_mb or 0:.0f} MB, rates {rates}"
                )
            if self.s.profile:
                self.say("profiling the monitor under cProfile (not part of the figures)")
                profile = self._profile(params_file, ros)
        finally:
            ros.close()
        return self._result(phases, params_file, profile)

    def _start_sim(self, name: str, ros: _Ros) -> Child:
        lifetime = self.warmup_s + self.s.seconds + SAFETY_MARGIN_S
        args = [
            "-m",
            "gap_monitor.ros.sim_node",
            "--width",
            str(self.s.width),
            "--height",
            str(self.s.height),
            "--depth-width",
            str(self.s.depth_width),
            "--depth-height",
            str(self.s.depth_height),
        ]
        sim = spawn(
            "sim", [*args, "--duration", f"{lifetime:g}"], self.s.work_dir / f"{name}_sim.log", self.env
        )
        self._wait(sim, lambda: "publishing the simulated rig" in sim.log_text(), ros, "start publishing")
        ros.spin_for(DISCOVERY_SETTLE_S)
        return sim

    def _start_monitor(self, name: str, params_file: Path, ros: _Ros, prefix: Sequence[str] = ()) -> Child:
        ros.clear()
        args = [
            *prefix,
            "-m",
            "gap_monitor.ros.monitor_node",
            "--ros-args",
            "--params-file",
            str(params_file),
        ]
        monitor = spawn("monitor", args, self.s.work_dir / f"{name}_monitor.log", self.subject_env)
        self._wait(monitor, lambda: bool(ros.samples), ros, "publish /diagnostics")
        return monitor

    def _phase(self, index: int, kind: str, params_file: Path, ros: _Ros) -> PhaseResult:
        name = f"phase{index + 1}"
        noop_out = self.s.work_dir / f"{name}_noop.jsonl"
        load_before = load()
        sim = self._start_sim(name, ros)
        sim_ready = time.monotonic()
        subject: Child | None = None
        try:
            if kind == "monitor":
                subject = self._start_monitor(name, params_file, ros)
            else:
                noop_out.unlink(missing_ok=True)
                lifetime = self.warmup_s + self.s.seconds + SAFETY_MARGIN_S
                args = ["-m", "bench.live_overhead", "noop", "--params-file", str(params_file)]
                args += ["--out", str(noop_out), "--duration", f"{lifetime:g}"]
                subject = spawn("noop", args, self.s.work_dir / f"{name}_noop.log", self.subject_env)
                self._wait(subject, lambda: read_noop_output(noop_out)[0] is not None, ros, "subscribe")
            ros.spin_for(self.warmup_s)
            _require_alive(subject)
            _require_alive(sim)
            pids = {"subject": subject.pid, "sim": sim.pid, "harness": os.getpid()}
            before = CpuSnapshot.take(pids)
            ros.spin_for(self.s.seconds)
            after = CpuSnapshot.take(pids)
            rss = status_mb(subject.pid, "VmRSS")
            hwm = status_mb(subject.pid, "VmHWM")
            _require_alive(subject)
        finally:
            subject_exit = subject.stop() if subject is not None else -1
            sim_stopped = time.monotonic()
            sim_exit = sim.stop()
        load_after = load()
        detail, busy, steal = cpu_between(before, after, self.cores)
        cpu = {role: d["cpu"] for role, d in detail.items()}
        t0, t1 = before.wall_ns, after.wall_ns
        topics = list(self.topics.values())
        extra: dict[str, Any] = {}
        reported: dict[str, float | None]
        if kind == "monitor":
            samples = list(ros.samples)
            qos_used = dict(ros.qos)
            reported = {t: mean_reported_rate(samples, t, t0, t1) for t in topics}
            written = _aux_value(ros.aux, "capture", "snapshots_written", t0, t1)
            held = _aux_value(ros.aux, "capture", "buffer_bytes", t0, t1)
            errors = _aux_value(ros.aux, "monitor", "internal_errors", t0, t1)
            in_window: dict[str, int] = {}
            for e in ros.events:
                if t0 <= e.t_ns <= t1:
                    key = f"{e.kind} {e.severity}"
                    in_window[key] = in_window.get(key, 0) + 1
            extra = {
                "events_in_window": in_window,
                "snapshot_events": sum(e.kind.startswith("snapshot") and e.t_ns <= t1 for e in ros.events),
                "snapshots_in_window": written[-1] - written[0] if written else None,
                "ring_held_bytes": held[-1] if held else None,
                "internal_errors": errors[-1] if errors else None,
            }
        else:
            ready, samples = read_noop_output(noop_out)
            qos_used = dict((ready or {}).get("qos", {}))
            reported = {}
        published, dropped = sim_totals(sim.log_text())
        return PhaseResult(
            index=index + 1,
            kind=kind,
            window_s=after.mono_s - before.mono_s,
            cpu=cpu,
            cpu_detail=detail,
            machine_busy_cores=busy,
            steal_cores=steal,
            other_cores=max(0.0, busy - sum(cpu.values())),
            rss_mb=rss,
            hwm_mb=hwm,
            rates={t: count_rate(samples, t, t0, t1) for t in topics},
            reported_rates=reported,
            samples=len(_inside(samples, topics[0], t0, t1)),
            qos=qos_used,
            load_before=load_before,
            load_after=load_after,
            sim_published=published,
            sim_dropped=dropped,
            sim_seconds=sim_stopped - sim_ready,
            subject_exit=subject_exit,
            sim_exit=sim_exit,
            **extra,
        )

    def _profile(self, params_file: Path, ros: _Ros) -> dict[str, list[dict[str, Any]]]:
        """One more monitor run under cProfile; its figures are inflated, the proportions are not."""
        prof = self.s.work_dir / "monitor.prof"
        prof.unlink(missing_ok=True)
        sim = self._start_sim("profile", ros)
        monitor: Child | None = None
        try:
            monitor = self._start_monitor("profile", params_file, ros, ("-m", "cProfile", "-o", str(prof)))
            started = time.monotonic()
            ros.spin_for(self.warmup_s + self.s.seconds)
            _require_alive(monitor)
        finally:
            if monitor is not None:
                monitor.stop()
            seconds = time.monotonic() - started if monitor is not None else 0.0
            sim.stop()
        if not prof.exists():
            raise BenchError(f"cProfile wrote no {prof}")
        return profile_summary(prof, seconds)

    def _wait(self, child: Child, ready: Callable[[], bool], ros: _Ros, what: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not ready():
            _require_alive(child)
            if time.monotonic() > deadline:
                raise BenchError(f"{child.name} did not {what} within {READY_TIMEOUT_S:g} s:\n{child.tail()}")
            ros.spin_for(0.1)

    # --- summary ----------------------------------------------------------------------------------

    def _result(
        self, phases: list[PhaseResult], params_file: Path, profile: dict[str, list[dict[str, Any]]]
    ) -> BenchResult:
        mon = [p for p in phases if p.kind == "monitor"]
        noop = [p for p in phases if p.kind == "noop"]
        window = min(p.window_s for p in phases)
        cpu_m = _mean(p.cpu["subject"] for p in mon)
        cpu_b = _mean(p.cpu["subject"] for p in noop)
        rows = [
            Row(
                "cpu",
                cpu_m,
                cpu_b,
                unit="cpu-s/s",
                target=f"<= {CPU_RATIO_MAX:g}x no-op",
                passed=ratio_at_most(cpu_m, cpu_b, CPU_RATIO_MAX),
            )
        ]
        # Where the CPU goes: user (Python, DDS) vs kernel (page faults of fresh buffers, copies).
        for key, label, unit in (
            ("user", "  of which user", "cpu-s/s"),
            ("sys", "  of which sys", "cpu-s/s"),
        ):
            rows.append(
                Row(
                    label,
                    _mean(p.cpu_detail["subject"][key] for p in mon),
                    _mean(p.cpu_detail["subject"][key] for p in noop),
                    unit,
                )
            )
        rows.append(
            Row(
                "minor page faults",
                _mean(p.cpu_detail["subject"]["minflt_per_s"] for p in mon),
                _mean(p.cpu_detail["subject"]["minflt_per_s"] for p in noop),
                "1/s",
            )
        )
        nominal = {topic: self.rig.rate(stream) for stream, topic in self.topics.items()}
        for topic in self.topics.values():
            m = _mean(p.rates[topic] for p in mon)
            b = _mean(p.rates[topic] for p in noop)
            tol = max(RATE_REL_TOLERANCE * (b or 0.0), RATE_EDGE_MESSAGES / window)
            rows.append(
                Row(
                    f"rate {topic}",
                    m,
                    b,
                    unit="Hz",
                    target=f">= no-op -{tol:.2g} (nominal {nominal[topic]:g})",
                    passed=not_below(m, b, tol),
                )
            )
        rss_m = _mean(p.rss_mb for p in mon)
        rss_b = _mean(p.rss_mb for p in noop)
        ring_mb = self.setup.ring_buffer_bytes / MB
        rows.append(Row("rss", rss_m, rss_b, unit="MB"))
        overhead = None if rss_m is None or rss_b is None else rss_m - rss_b - ring_mb
        rows.append(
            Row(
                "rss - no-op - ring budget",
                overhead,
                unit="MB",
                target=f"<= {RSS_OVERHEAD_MAX_MB:g} MB (ring budget {ring_mb:g} MB)",
                passed=at_most(overhead, RSS_OVERHEAD_MAX_MB),
            )
        )
        held = _mean(None if p.ring_held_bytes is None else p.ring_held_bytes / MB for p in mon)
        if held is not None:
            rows.append(Row("ring buffer held", held, unit="MB"))
        rows += [
            Row(
                "publisher (sim) cpu",
                _mean(p.cpu["sim"] for p in mon),
                _mean(p.cpu["sim"] for p in noop),
                "cpu-s/s",
            ),
            Row(
                "other processes",
                _mean(p.other_cores for p in mon),
                _mean(p.other_cores for p in noop),
                "cores",
            ),
            Row(
                "cpu stolen by hypervisor",
                _mean(p.steal_cores for p in mon),
                _mean(p.steal_cores for p in noop),
                "cores",
            ),
            Row(
                "load average 1 min",
                _mean(p.load_after["1min"] for p in mon),
                _mean(p.load_after["1min"] for p in noop),
            ),
        ]
        short = {topic: stream for stream, topic in self.topics.items()}
        tables = [
            Table(
                "per phase (cpu in cpu-s/s; rates in Hz)",
                ("#", "process", "cpu", "sim cpu", "others", "load", "rss MB", *short.values()),
                tuple(
                    (
                        str(p.index),
                        p.kind,
                        f"{p.cpu['subject']:.3f}",
                        f"{p.cpu['sim']:.3f}",
                        f"{p.other_cores:.2f}",
                        f"{p.load_after['1min']:.2f}",
                        f"{p.rss_mb or 0:.0f}",
                        *(_fmt_rate(p.rates[t]) for t in short),
                    )
                    for p in phases
                ),
            )
        ]
        headers = ("function", "calls/s", "own s/s", "cum s/s", "cum ms/call")
        for key, title in (
            ("own", "monitor under cProfile, most own time (per second of run; the profiler inflates all)"),
            ("cumulative", "monitor under cProfile, gap_monitor functions by cumulative time"),
        ):
            if profile.get(key):
                tables.append(
                    Table(
                        title,
                        headers,
                        tuple(
                            (
                                str(r["function"]),
                                f"{r['calls_per_s']:.1f}",
                                f"{r['own_s_per_s']:.3f}",
                                f"{r['cum_s_per_s']:.3f}",
                                f"{r['cum_ms_per_call']:.3f}",
                            )
                            for r in profile[key]
                        ),
                    )
                )
        return BenchResult(
            name="live",
            title=TITLE,
            rows=tuple(rows),
            value_label="monitor",
            baseline_label="no-op",
            tables=tuple(tables),
            notes=tuple(self._notes(phases, nominal)),
            details={
                "settings": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self.s).items()},
                "warmup_s_used": self.warmup_s,
                "phase_order": [p.kind for p in phases],
                "publisher": self._publisher_facts(),
                "monitor_config_source": self.setup.source,
                "monitor_profile": self.setup.profile,
                "monitor_params_file": str(params_file),
                "monitor_parameters": self.setup.params,
                "nominal_rates_hz": nominal,
                "rate_measure": (
                    "delivered = count delta / time between the first and last 1 Hz count record inside "
                    "the window (monitor: /diagnostics `count`; no-op: its own counts); the monitor's own "
                    "rate_hz mean is in phases[].reported_rates"
                ),
                "rate_tolerance": {"relative": RATE_REL_TOLERANCE, "edge_messages": RATE_EDGE_MESSAGES},
                "targets": {
                    "cpu_ratio_max": CPU_RATIO_MAX,
                    "rss_overhead_max_mb": RSS_OVERHEAD_MAX_MB,
                    "ring_buffer_configured_bytes": self.setup.ring_buffer_bytes,
                },
                "cores": self.cores,
                "subject_malloc_env": STEADY_MALLOC_ENV if self.s.steady_malloc else {},
                "phases": [asdict(p) for p in phases],
                "profile": profile,
            },
        )

    def _publisher_facts(self) -> dict[str, Any]:
        w, h = self.s.width, self.s.height
        dw, dh = self.rig.depth_size
        return {
            "process": "gap_monitor.ros.sim_node",
            "camera": {
                "encoding": "rgb8",
                "width": w,
                "height": h,
                "rate_hz": self.rig.camera_rate_hz,
                "bytes": w * h * 3,
            },
            "depth": {
                "encoding": "16UC1",
                "width": dw,
                "height": dh,
                "rate_hz": self.rig.depth_rate_hz,
                "bytes": dw * dh * 2,
            },
            "imu_rate_hz": self.rig.imu_rate_hz,
            "joints_rate_hz": self.rig.joints_rate_hz,
            "wrench_rate_hz": self.rig.wrench_rate_hz,
            "topics": self.topics,
        }

    def _notes(self, phases: list[PhaseResult], nominal: Mapping[str, float]) -> list[str]:
        w, h = self.s.width, self.s.height
        dw, dh = self.rig.depth_size
        ring = self.setup.ring_buffer_bytes
        notes = [
            f"publisher: sim_node, camera {w}x{h} rgb8 @ {self.rig.camera_rate_hz:g} Hz, "
            f"depth {dw}x{dh} 16UC1 @ {self.rig.depth_rate_hz:g} Hz, IMU {self.rig.imu_rate_hz:g} Hz, joints "
            f"{self.rig.joints_rate_hz:g} Hz, wrench {self.rig.wrench_rate_hz:g} Hz "
            f"({self.bytes_per_s() / MB:.0f} MB/s); a fresh publisher per phase",
            f"monitor config: {self.setup.source}; profile {self.setup.profile or 'none'} "
            f"({TRAINING_S:g} s of the clean rig); capture triggers off for the benchmark: "
            f"{', '.join(self.setup.triggers_off) or 'none'}; snapshots (if any) in "
            f"{self.s.work_dir / 'snapshots'}",
            f"window {self.s.seconds:g} s after {self.warmup_s:.1f} s warm-up (ring buffer full by then); "
            f"{self.cores} cores; 'other processes' = busy cores not used by sim, subject or harness",
            f"ring buffer budget: {ring} bytes ({ring / MB:g} MB) configured; subtracted from RSS overhead",
            (
                "monitor and no-op both run with glibc malloc thresholds fixed ("
                + ", ".join(f"{k}={v}" for k, v in STEADY_MALLOC_ENV.items())
                + "): by default glibc may return each freed image buffer to the kernel and fault it "
                "back in, run to run at random (see STEADY_MALLOC_ENV)"
                if self.s.steady_malloc
                else "glibc malloc defaults: the no-op's page faults (kernel time) vary run to run"
            ),
        ]
        for p in phases:
            if p.sim_dropped:
                notes.append(f"phase {p.index}: the sim dropped {p.sim_dropped} late messages (overloaded)")
            if p.subject_exit != 0 or p.sim_exit != 0:
                notes.append(f"phase {p.index}: exit codes {p.kind} {p.subject_exit}, sim {p.sim_exit}")
            if p.snapshots_in_window:
                notes.append(
                    f"phase {p.index}: {p.snapshots_in_window} snapshot(s) written inside the window"
                )
            if p.snapshot_events:
                notes.append(
                    f"phase {p.index}: {p.snapshot_events} snapshot event(s) before the window's end"
                )
            if p.events_in_window:
                listed = ", ".join(f"{n} {k}" for k, n in sorted(p.events_in_window.items()))
                notes.append(f"phase {p.index}: monitor events inside the window: {listed}")
            if p.internal_errors:
                notes.append(f"phase {p.index}: monitor reports {p.internal_errors} internal error(s)")
        ratios = [
            rep / got
            for p in phases
            for t, rep in p.reported_rates.items()
            if rep is not None and (got := p.rates.get(t))
        ]
        if ratios:
            bias = sum(ratios) / len(ratios) - 1.0
            notes.append(
                f"the monitor's own rate_hz averages {bias:+.1%} vs its counted rate "
                "(rate over first-to-last receipt in 2 s: bursty callbacks shorten that span)"
            )
        mon_qos = next((p.qos for p in phases if p.kind == "monitor" and p.qos), {})
        noop_qos = next((p.qos for p in phases if p.kind == "noop" and p.qos), {})
        # The monitor's text may add the publisher count after the QoS ("...; 1 publisher(s)").
        differ = [t for t in nominal if not str(mon_qos.get(t, "")).startswith(str(noop_qos.get(t)))]
        if differ:
            notes.append(
                "QoS differs between monitor and no-op on "
                + "; ".join(f"{t}: {mon_qos.get(t)} vs {noop_qos.get(t)}" for t in differ)
            )
        else:
            notes.append("QoS (monitor = no-op): " + "; ".join(f"{t} {noop_qos.get(t)}" for t in nominal))
        return notes


def _mean(values: Iterable[float | None]) -> float | None:
    vs = [v for v in values if v is not None]
    return sum(vs) / len(vs) if vs else None


def _fmt_rate(r: float | None) -> str:
    return "-" if r is None else f"{r:.1f}"


def run(options: BenchOptions, out: TextIO = sys.stdout) -> BenchResult:
    return LiveBench(LiveSettings.from_options(options), out).run()


# --- the no-op baseline process ---------------------------------------------------------------


def noop_main(argv: Sequence[str]) -> int:
    """One raw subscription per topic with the monitor's QoS choice; callbacks only count."""
    p = argparse.ArgumentParser(prog="python -m bench.live_overhead noop")
    p.add_argument("--params-file", required=True)
    p.add_argument("--out", required=True, help="JSON lines: ready, then counts once a second")
    p.add_argument("--duration", type=float, default=None)
    p.add_argument("--discovery-timeout", type=float, default=5.0)
    args = p.parse_args(argv)

    from rclpy.node import Node

    from gap_monitor.ros import qos, runtime
    from gap_monitor.ros.convert import message_class

    config = load_config(args.params_file)
    stop = runtime.StopFlag()
    stop.install()
    runtime.init([])
    node = Node("gap_monitor_bench_noop")
    topics = [s.topic for s in config.streams]
    deadline = time.monotonic() + args.discovery_timeout
    # Subscribe once publishers are known, so the QoS choice is the one the monitor settles on.
    while time.monotonic() < deadline and not all(node.count_publishers(t) for t in topics):
        time.sleep(0.05)
    counts = [0] * len(topics)
    chosen: dict[str, str] = {}

    def counter(i: int) -> Callable[[bytes], None]:
        def on_message(_data: bytes) -> None:
            counts[i] += 1

        return on_message

    for i, sc in enumerate(config.streams):
        offers = [info.qos_profile for info in node.get_publishers_info_by_topic(sc.topic)]
        profile = qos.adapted_qos(offers, sc.queue_depth, sc.reliability)
        node.create_subscription(message_class(sc.msgtype), sc.topic, counter(i), profile, raw=True)
        chosen[sc.topic] = qos.describe(profile)
    with Path(args.out).open("w", buffering=1) as out:

        def record(event: str, **extra: Any) -> None:
            rec = {"event": event, "t_ns": time.time_ns(), "counts": dict(zip(topics, counts, strict=True))}
            out.write(json.dumps({**rec, **extra}) + "\n")

        record("ready", qos=chosen, publishers={t: node.count_publishers(t) for t in topics})
        node.create_timer(1.0, lambda: record("counts"))
        if args.duration is not None:
            # A timer rather than a clock check per spin: the loop must cost what the monitor's costs.
            node.create_timer(args.duration, stop.set)
        executor = runtime.make_executor()
        executor.add_node(node)
        try:
            runtime.spin(executor, stop, traceback.print_exc)  # the monitor's own loop
        finally:
            record("final")
            executor.remove_node(node)
            node.destroy_node()
            runtime.shutdown()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["noop"]:
        return noop_main(args[1:])
    print("usage: python -m bench.live_overhead noop --params-file F --out F", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
