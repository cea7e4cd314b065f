"""Offline throughput: `profile build` and `audit` against reading the same MCAP and decoding nothing.

Measured: `gap_monitor.offline.extraction.build_profile` (the conditions layer over every sensor message,
then the calibrated profile, progress bar off) and `gap_monitor.offline.audit.run_audit` (stamp timing of
every message, camera-IMU motion offset, findings), each on a whole recording. Baseline: iterating
the recording's .mcap file(s) with the mcap reader (`mcap.reader.make_reader(f).iter_messages()`),
which reads and decompresses every chunk and decodes no message. Throughput is the .mcap files'
size on disk over the wall time; ratio = measured MB/s / baseline MB/s.

Recordings: the real EuRoC MH_01 excerpt (`../shared/data/real/euroc_mh01_micro_ros2`, IMU-heavy:
29k small messages, 190 images) when it is there, and a recording of the simulated rig written by
`gap_monitor.sim.record.record_sim` into the work folder (image-heavy: 640x480 rgb8 + 16UC1 @ 30 Hz,
IMU 400 Hz, joints 500 Hz, wrench 1 kHz). A warm-up pass reads each file first, so every figure
is from the page cache (a cold disk would slow the baseline and hide part of the gap). Each figure
is the median of REPEATS runs, the three tools taking turns within each round.

Also shown, to say where the time goes: reading through `gap_monitor.core.io.recordings` with rosbags
(`Recording.messages`, every payload copied) and in place (`Recording.views`, what both commands
read with: payloads as memoryviews into the mapped MCAP), and the SHA-256 of the files (profile
build hashes its sources on a second thread while it extracts and calibrates, so on uncompressed
image data the hash, not the analysis, sets its pace). With `--profile`, each command also runs
once under cProfile (not in the figures).
"""

from __future__ import annotations

import cProfile
import functools
import hashlib
import io
import logging
import pstats
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from bench import BenchOptions
from bench.machine import REPO, load
from bench.report import BenchResult, Row, Table, format_number, ratio
from gap_monitor.core.io.recordings import open_recording
from gap_monitor.offline.audit import run_audit
from gap_monitor.offline.extraction import build_profile
from gap_monitor.sim.record import record_sim
from gap_monitor.sim.scenario import Scenario

TITLE = "offline throughput: profile build and audit vs iterating the MCAP with the mcap reader"
MB = 1e6
REPEATS = 5
MIN_RATIO = 0.5
SIM_SECONDS = 10.0
EUROC = REPO.parent / "shared" / "data" / "real" / "euroc_mh01_micro_ros2"
PROFILE_TOP = 12
SIM_DIR = "sim_recording"


class BenchError(RuntimeError):
    pass


def mcap_files(recording: Path) -> list[Path]:
    """The .mcap storage files of a rosbag2 folder (sorted), or the file itself."""
    if recording.is_file():
        return [recording]
    files = sorted(recording.glob("*.mcap"))
    if not files:
        raise BenchError(f"{recording}: no .mcap file (this benchmark reads MCAP recordings)")
    return files


def iterate_mcap(files: Sequence[Path]) -> int:
    """The baseline: every message of the files through the mcap reader, nothing decoded; the
    message count."""
    from mcap.reader import make_reader

    count = 0
    for path in files:
        with path.open("rb") as f:
            for _schema, _channel, _message in make_reader(f).iter_messages():
                count += 1
    return count


def iterate_bags(recording: Path, in_place: bool = False) -> int:
    """Every message through gap_monitor.core.io.recordings: with rosbags (payloads copied), or in place
    (`Recording.views`, what profile build and audit read with)."""
    count = 0
    with open_recording(recording) as rec:
        for _ in rec.views() if in_place else rec.messages():
            count += 1
    return count


def sha256_files(files: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


@dataclass(frozen=True)
class Subject:
    name: str
    path: Path
    files: tuple[Path, ...]
    bytes: int
    messages: int


@dataclass
class Timings:
    baseline: list[float]
    profile: list[float]
    audit: list[float]
    bags: list[float]
    views: list[float]
    sha256: list[float]

    def median(self, name: str) -> float:
        values: list[float] = getattr(self, name)
        return statistics.median(values)


def measure(subject: Subject, repeats: int = REPEATS) -> Timings:
    paths = [subject.path]
    iterate_mcap(subject.files)  # warm-up: the files are in the page cache from here on
    t = Timings([], [], [], [], [], [])
    for _ in range(repeats):
        t.baseline.append(timed(lambda: iterate_mcap(subject.files)))
        t.profile.append(timed(lambda: build_profile(paths)))
        t.audit.append(timed(lambda: run_audit(paths)))
    for _ in range(repeats):
        t.bags.append(timed(lambda: iterate_bags(subject.path)))
        t.views.append(timed(lambda: iterate_bags(subject.path, in_place=True)))
        t.sha256.append(timed(lambda: sha256_files(subject.files)))
    return t


def profile_top(fn: Callable[[], object], top: int = PROFILE_TOP) -> list[tuple[str, ...]]:
    """The functions with the most cumulative time (excluding the call chain down to them)."""
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    stream = io.StringIO()
    stats = pstats.Stats(prof, stream=stream)
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = []
    for (filename, line, func), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append((tottime, cumtime, calls, f"{_short(filename)}:{line}({func})"))
    rows.sort(reverse=True)
    return [
        (where, str(calls), format_number(tottime), format_number(100.0 * tottime / total))
        for tottime, _cum, calls, where in rows[:top]
    ]


def _short(filename: str) -> str:
    path = Path(filename)
    if path.is_relative_to(REPO):
        return str(path.relative_to(REPO))
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1]
    return path.name


def subjects(work: Path, say: Callable[[str], None]) -> tuple[list[Subject], list[str]]:
    notes: list[str] = []
    out: list[Subject] = []
    if EUROC.is_dir():
        out.append(_subject("EuRoC MH_01 (real)", EUROC))
    else:
        notes.append(f"EuRoC recording not found at {EUROC}: only the sim recording was measured")
    sim = work / SIM_DIR
    shutil.rmtree(sim, ignore_errors=True)
    t0 = time.monotonic()
    record_sim(sim, Scenario(name="clean"), SIM_SECONDS)
    say(f"sim recording: {SIM_SECONDS:g} s written in {time.monotonic() - t0:.1f} s")
    out.append(_subject(f"sim {SIM_SECONDS:g} s (640x480)", sim))
    return out, notes


def _subject(name: str, path: Path) -> Subject:
    files = tuple(mcap_files(path))
    return Subject(name, path, files, sum(f.stat().st_size for f in files), iterate_mcap(files))


def run(options: BenchOptions, out: TextIO = sys.stdout) -> BenchResult:
    work = options.work_dir / "offline"
    work.mkdir(parents=True, exist_ok=True)

    def say(text: str) -> None:
        print(f"[offline] {text}", file=out, flush=True)

    # build_profile logs a warning per stream without features; the figures do not need them.
    logger = logging.getLogger("gap_monitor")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return _measure_all(options, work, say)
    finally:
        logger.setLevel(level)
        shutil.rmtree(work / SIM_DIR, ignore_errors=True)  # ~0.5 GB, rewritten every run


def _measure_all(options: BenchOptions, work: Path, say: Callable[[str], None]) -> BenchResult:
    found, notes = subjects(work, say)
    rows: list[Row] = []
    detail_rows: list[tuple[str, ...]] = []
    profiles: list[Table] = []
    details: dict[str, Any] = {"repeats": REPEATS, "recordings": {}}
    for subject in found:
        size = f"{subject.bytes / MB:.0f} MB, {subject.messages} messages"
        say(f"{subject.name}: {size}; load {load()['1min']:.2f}")
        t = measure(subject)
        base = subject.bytes / MB / t.median("baseline")
        for tool, label in (("profile", "profile build"), ("audit", "audit")):
            mbs = subject.bytes / MB / t.median(tool)
            r = ratio(mbs, base)
            rows.append(
                Row(
                    f"{label}, {subject.name}",
                    mbs,
                    base,
                    "MB/s",
                    target=f">= {MIN_RATIO:g}x mcap reader",
                    passed=None if r is None else r >= MIN_RATIO,
                )
            )
        for name, label in (
            ("baseline", "mcap reader, nothing decoded"),
            ("bags", "core.bags reading, rosbags (copies)"),
            ("views", "core.bags reading in place (views)"),
            ("sha256", "sha256 of the files"),
            ("profile", "profile build"),
            ("audit", "audit"),
        ):
            seconds = t.median(name)
            detail_rows.append(
                (
                    subject.name,
                    label,
                    format_number(seconds),
                    format_number(subject.bytes / MB / seconds),
                    format_number(subject.messages / seconds / 1000.0),
                    format_number(seconds / subject.messages * 1e6),
                )
            )
        details["recordings"][subject.name] = {
            "path": str(subject.path),
            "bytes": subject.bytes,
            "messages": subject.messages,
            "seconds": {
                k: getattr(t, k) for k in ("baseline", "profile", "audit", "bags", "views", "sha256")
            },
        }
        if options.profile:
            paths = [subject.path]
            commands: tuple[tuple[str, Callable[[], object]], ...] = (
                ("profile build", functools.partial(build_profile, paths)),
                ("audit", functools.partial(run_audit, paths)),
            )
            for label, fn in commands:
                profiles.append(
                    Table(
                        f"cProfile, {label}, {subject.name}: most self time",
                        ("function", "calls", "self s", "% of total"),
                        tuple(profile_top(fn)),
                    )
                )
    notes += [
        "MB = the .mcap files' size on disk; every pass reads from the page cache (a warm-up pass first); "
        f"median of {REPEATS} runs, the tools taking turns",
        "profile build includes the profile's calibration and the SHA-256 of each source recording "
        "(hashed on a second thread); audit includes the motion-based camera-IMU offset (frame "
        "motion of every camera frame); the mcap reader uses one thread",
    ]
    return BenchResult(
        name="offline",
        title=TITLE,
        rows=tuple(rows),
        value_label="command",
        baseline_label="mcap reader",
        tables=(
            Table(
                "where the time goes (median wall time)",
                ("recording", "pass", "s", "MB/s", "k msgs/s", "us/msg"),
                tuple(detail_rows),
            ),
            *profiles,
        ),
        notes=tuple(notes),
        details=details,
    )
