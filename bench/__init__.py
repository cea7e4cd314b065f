"""gap_monitor benchmarks: `python -m bench [--only NAME] [--seconds N] [--json PATH]`.

Each benchmark is a module with `TITLE` and `run(options: BenchOptions) -> report.BenchResult`;
add one by listing it in BENCHMARKS. Modules are imported only when selected, so a benchmark that
needs no ROS never pays for importing rclpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# name -> module; run in this order.
BENCHMARKS: dict[str, str] = {
    "live": "bench.live_overhead",
    "feature": "bench.feature_cost",
    "snapshot": "bench.snapshot_write",
    "offline": "bench.offline_throughput",
    "skew": "bench.skew_accuracy",
    "detection": "bench.detection_quality",
}

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class BenchOptions:
    """What the command line sets for every benchmark; each reads the fields that apply to it."""

    seconds: float = 15.0  # measurement window (per phase, for benchmarks with phases)
    warmup_s: float = 5.0
    rounds: int = 2
    domain_id: int = 97
    work_dir: Path = RESULTS_DIR / "work"  # logs and generated configs of the last run
    profile: bool = False  # also profile the measured process (an extra run, not in the figures)

    def __post_init__(self) -> None:
        if not 2.0 <= self.seconds <= 600.0:
            raise ValueError(f"seconds: {self.seconds!r}: seconds in [2, 600] (two 1 Hz rate records)")
        if not 0.0 <= self.warmup_s <= 120.0:
            raise ValueError(f"warmup_s: {self.warmup_s!r}: a number of seconds in [0, 120]")
        if not 1 <= self.rounds <= 20:
            raise ValueError(f"rounds: {self.rounds!r}: an integer in [1, 20]")
        # 0-101 is the portable DDS domain range; 42 is what ./dev uses by default.
        if not 0 <= self.domain_id <= 101 or self.domain_id == 42:
            raise ValueError(f"domain_id: {self.domain_id!r}: an integer in [0, 101] other than 42")
