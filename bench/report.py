"""What every benchmark hands back, and how it is shown: a plain-text table and one JSON document.

A benchmark measures something (the monitor) against a baseline (a no-op process, a reference
implementation); each row carries both, their ratio and the target it is judged by, so the table
and the JSON read the same whichever benchmark produced them.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Bump when the JSON layout changes in a way a reader of old results must know about.
SCHEMA_VERSION = 1


def ratio(value: float | None, baseline: float | None) -> float | None:
    """value / baseline; None when either is missing or the baseline is not positive."""
    if value is None or baseline is None or not math.isfinite(value) or not math.isfinite(baseline):
        return None
    if baseline <= 0.0:
        return None
    return value / baseline


def ratio_at_most(value: float | None, baseline: float | None, limit: float) -> bool | None:
    """Is value <= limit x baseline? None when the ratio cannot be formed (nothing to judge)."""
    r = ratio(value, baseline)
    return None if r is None else r <= limit


def not_below(value: float | None, floor: float | None, tolerance: float = 0.0) -> bool | None:
    """Is value >= floor - tolerance? None when either is missing."""
    if value is None or floor is None:
        return None
    return value >= floor - tolerance


def at_most(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def format_number(x: float | None) -> str:
    """Three or four significant figures, enough for rates, seconds and megabytes alike."""
    if x is None or not math.isfinite(x):
        return "-"
    a = abs(x)
    if a >= 1000 or (x == int(x) and a >= 100):
        return f"{x:.0f}"
    if a >= 100:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def format_ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x"


def format_passed(passed: bool | None) -> str:
    return "" if passed is None else ("ok" if passed else "MISS")


@dataclass(frozen=True)
class Row:
    """One measured figure beside its baseline; `passed` is None when the row has no target."""

    metric: str
    value: float | None
    baseline: float | None = None
    unit: str = ""
    target: str = ""
    passed: bool | None = None

    @property
    def ratio(self) -> float | None:
        return ratio(self.value, self.baseline)

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "unit": self.unit,
            "value": self.value,
            "baseline": self.baseline,
            "ratio": self.ratio,
            "target": self.target or None,
            "passed": self.passed,
        }


@dataclass(frozen=True)
class Table:
    """A secondary table (per phase, per topic ...) shown under a result's main rows."""

    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def __post_init__(self) -> None:
        for i, row in enumerate(self.rows):
            if len(row) != len(self.headers):
                raise ValueError(
                    f"rows[{i}]: {len(row)} cells: must have one cell per header ({len(self.headers)})"
                )


@dataclass(frozen=True)
class BenchResult:
    """Everything one benchmark reports: main rows, extra tables, notes, and free-form details."""

    name: str
    title: str
    rows: tuple[Row, ...]
    value_label: str = "measured"
    baseline_label: str = "baseline"
    tables: tuple[Table, ...] = ()
    notes: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool | None:
        """False if any target was missed, True if all were met, None if no row has a target."""
        judged = [r.passed for r in self.rows if r.passed is not None]
        return None if not judged else all(judged)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "value_label": self.value_label,
            "baseline_label": self.baseline_label,
            "passed": self.passed,
            "rows": [r.to_json() for r in self.rows],
            "tables": [
                {"title": t.title, "headers": list(t.headers), "rows": [list(r) for r in t.rows]}
                for t in self.tables
            ],
            "notes": list(self.notes),
            "details": self.details,
        }


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right_from: int = 1) -> str:
    """Aligned plain text; columns from `right_from` on are right-aligned (numbers)."""
    widths = [len(h) for h in headers]
    for i, row in enumerate(rows):
        if len(row) != len(headers):
            raise ValueError(f"rows[{i}]: {len(row)} cells: must have one cell per header ({len(headers)})")
        for col, cell in enumerate(row):
            widths[col] = max(widths[col], len(cell))

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if i >= right_from else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def render_result(result: BenchResult) -> str:
    headers = ("metric", result.value_label, result.baseline_label, "ratio", "target", "")
    cells = [
        (
            f"{r.metric} ({r.unit})" if r.unit else r.metric,
            format_number(r.value),
            format_number(r.baseline),
            format_ratio(r.ratio),
            r.target,
            format_passed(r.passed),
        )
        for r in result.rows
    ]
    verdict = {None: "no targets", True: "all targets met", False: "TARGET MISSED"}[result.passed]
    parts = [f"== {result.name}: {result.title} ({verdict})", format_table(headers, cells)]
    for t in result.tables:
        parts += ["", t.title, format_table(t.headers, t.rows)]
    if result.notes:
        parts += ["", *(f"note: {n}" for n in result.notes)]
    return "\n".join(parts)


def jsonable(obj: Any) -> Any:
    """Plain JSON values: NaN/inf become null (JSON has neither), tuples lists, paths strings."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    return str(obj)


def run_document(
    results: Sequence[BenchResult],
    machine: Mapping[str, Any],
    *,
    started_ns: int,
    finished_ns: int,
    argv: Sequence[str],
    errors: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The whole run as one JSON-ready mapping: machine facts travel with every result."""
    return jsonable(
        {
            "schema_version": SCHEMA_VERSION,
            "started_ns": started_ns,
            "finished_ns": finished_ns,
            "argv": list(argv),
            "machine": dict(machine),
            "results": [r.to_json() for r in results],
            "errors": dict(errors or {}),
        }
    )


def write_json(path: str | Path, document: Mapping[str, Any]) -> Path:
    """Write atomically (temp file + rename), creating the folder, so a reader never sees half a file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(jsonable(document), f, indent=2, allow_nan=False)
            f.write("\n")
        Path(tmp).replace(p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def verdict_lines(results: Sequence[BenchResult]) -> list[str]:
    """The run's verdict: how many targets were met, then each missed one with its figures."""
    judged = [(res, row) for res in results for row in res.rows if row.passed is not None]
    missed = [(res, row) for res, row in judged if not row.passed]
    lines = [f"targets: {len(judged) - len(missed)} of {len(judged)} met"]
    for res, row in missed:
        lines.append(
            f"  MISS {res.name}: {row.metric}: {format_number(row.value)} vs "
            f"{format_number(row.baseline)} = {format_ratio(row.ratio)} (target {row.target})"
        )
    return lines


def compare_lines(previous: Mapping[str, Any], results: Sequence[BenchResult]) -> list[str]:
    """Each targeted figure's ratio now against the same figure in an earlier run's JSON, to see a
    regression between commits (figures only one run has are skipped)."""
    before: dict[tuple[str, str], Mapping[str, Any]] = {}
    for res in previous.get("results", []):
        for row in res.get("rows", []):
            before[(str(res.get("name")), str(row.get("metric")))] = row
    headers = ("benchmark", "metric", "ratio before", "ratio now", "change", "")
    cells = []
    for res in results:
        for row in res.rows:
            old = before.get((res.name, row.metric))
            if row.target == "" or old is None:
                continue
            was = old.get("ratio")
            now = row.ratio
            change = "-" if was is None or now is None or was == 0 else f"{(now / was - 1) * 100:+.0f} %"
            flip = ""
            if old.get("passed") != row.passed:
                flip = f"{format_passed(old.get('passed')) or '-'} -> {format_passed(row.passed) or '-'}"
            cells.append((res.name, row.metric, format_ratio(was), format_ratio(now), change, flip))
    if not cells:
        return ["compare: no targeted figure in common with the earlier run"]
    return ["compared with the earlier run:", format_table(headers, cells, right_from=2)]
