"""`python -m bench [--only NAME ...] [--seconds N] [--json PATH] [--compare OLD.json]`: run the
benchmarks, print a table per benchmark, the targets met and missed, and write one JSON document
with the machine facts (default bench/results/latest.json). `--compare` puts each targeted ratio
beside the same one from an earlier run's JSON.

Exit code 0 when every selected benchmark ran (a missed target is reported, not an error), 1 when one
failed to run, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from bench import BENCHMARKS, RESULTS_DIR, BenchOptions
from bench.machine import load, machine_facts
from bench.report import (
    BenchResult,
    compare_lines,
    render_result,
    run_document,
    verdict_lines,
    write_json,
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description="gap_monitor benchmarks")
    p.add_argument(
        "--only",
        action="append",
        choices=sorted(BENCHMARKS),
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    p.add_argument("--seconds", type=float, default=15.0, help="measurement window per phase (default 15)")
    p.add_argument("--warmup", type=float, default=5.0, help="warm-up before each window (default 5)")
    p.add_argument("--rounds", type=int, default=2, help="ABBA rounds for A/B benchmarks (default 2)")
    p.add_argument("--domain-id", type=int, default=97, help="ROS_DOMAIN_ID for the benchmark's processes")
    p.add_argument("--profile", action="store_true", help="also run the measured process once under cProfile")
    p.add_argument(
        "--json", type=Path, default=RESULTS_DIR / "latest.json", help="where to write the results"
    )
    p.add_argument(
        "--compare",
        type=Path,
        metavar="OLD.json",
        help="also show each targeted ratio against an earlier run's JSON (e.g. before a change)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(raw)
    try:
        options = BenchOptions(
            seconds=args.seconds,
            warmup_s=args.warmup,
            rounds=args.rounds,
            domain_id=args.domain_id,
            work_dir=args.json.resolve().parent / "work",
            profile=args.profile,
        )
    except ValueError as exc:
        parser.error(str(exc))
    previous = None
    if args.compare is not None:
        try:
            previous = json.loads(args.compare.read_text())
        except (OSError, ValueError) as exc:
            parser.error(f"--compare {args.compare}: cannot read it as JSON: {exc}")
    names = args.only or list(BENCHMARKS)
    started = time.time_ns()
    machine = machine_facts()
    print(
        f"machine: {machine['cores']} cores ({machine['cpu_model']}), {machine['python']}, "
        f"rclpy: {machine['rclpy']}, {machine['os']}; load {_load_text()}",
        flush=True,
    )
    results: list[BenchResult] = []
    errors: dict[str, str] = {}
    for name in names:
        module = importlib.import_module(BENCHMARKS[name])
        t0 = time.monotonic()
        try:
            result: BenchResult = module.run(options)
        except Exception as exc:  # one failing benchmark must not lose the others' results
            errors[name] = f"{type(exc).__name__}: {exc}"
            print(f"\n== {name}: FAILED to run\n{traceback.format_exc()}", file=sys.stderr, flush=True)
            continue
        results.append(result)
        print(f"\n{render_result(result)}\n({name} took {time.monotonic() - t0:.0f} s)", flush=True)
    machine["load_at_end"] = load()
    doc = run_document(
        results, machine, started_ns=started, finished_ns=time.time_ns(), argv=raw, errors=errors
    )
    path = write_json(args.json, doc)
    print("\n" + "\n".join(verdict_lines(results)))
    if previous is not None:
        print("\n" + "\n".join(compare_lines(previous, results)))
    print(f"\nload {_load_text()}; results written to {path}")
    return 1 if errors else 0


def _load_text() -> str:
    la = load()
    return f"{la['1min']:.2f} {la['5min']:.2f} {la['15min']:.2f} (1/5/15 min)"


if __name__ == "__main__":
    sys.exit(main())
