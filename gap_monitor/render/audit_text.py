"""The audit's text report: per recording the topic and pair tables, the motion offsets and the
findings above OK, then the verdict (what `gap-monitor audit` prints)."""

from __future__ import annotations

from collections.abc import Sequence

from gap_monitor.core.events import Severity
from gap_monitor.offline.audit import AuditResult, MotionAudit, TopicAudit
from gap_monitor.render.numbers import format_optional
from gap_monitor.render.text import text_table

__all__ = ["format_report"]


def _stamp_issues(t: TopicAudit) -> str:
    labels = {
        "backwards": "back",
        "repeated": "repeated",
        "zero": "zero",
        "missing": "no stamp",
        "ahead_of_log_time": "ahead",
    }
    parts = [f"{n} {labels[k]}" for k, n in t.stamp_issues.items() if n]
    if t.malformed:
        parts.append(f"{t.malformed} malformed")
    return ", ".join(parts) or "-"


def _short_type(msgtype: str) -> str:
    return msgtype.replace("/msg/", "/")


def _motion_lines(motions: Sequence[MotionAudit]) -> list[str]:
    """One line per estimate; combinations not estimated for the same reason share a line."""
    out = []
    skipped: dict[str, int] = {}
    for m in motions:
        e = m.estimate
        if e is None:
            skipped[m.reason] = skipped.get(m.reason, 0) + 1
            continue
        if e.offset_s is not None and e.confident:
            head = f"{e.offset_s * 1e3:+.1f} ± {(e.uncertainty_s or 0) * 1e3:.1f} ms"
        else:
            head = "no confident estimate"
        out.append(
            f"motion offset {m.camera} vs {m.imu}: {head}, confidence {e.confidence:.2f} "
            f"[{m.level.name}]: {m.reason}"
        )
    for reason, n in skipped.items():
        out.append(f"motion offset of {n} camera-IMU combination(s) {reason}")
    return [*out, ""] if out else out


def format_report(result: AuditResult, fail_on: Severity = Severity.ERROR) -> str:
    """The tables and findings `gap-monitor audit` prints."""
    out: list[str] = []
    for r in result.recordings:
        out.append(
            f"== {r.path} ({r.kind}, {r.duration_s:.1f} s, {r.messages} messages, "
            f"{len(r.topic_types)} topics): {r.level.name}"
        )
        out.append("")
        rows = []
        for t in r.topics:
            s = t.summary
            rate = format_optional(s.rate_hz, ".2f")
            if s.expected_rate_hz:
                rate += f" ({s.expected_rate_hz:g})"
            rows.append(
                [
                    t.name,
                    _short_type(t.msgtype),
                    str(s.total_messages),
                    rate,
                    format_optional(s.period_median_ms, ".3f"),
                    format_optional(s.jitter_p95_ms, ".3f"),
                    str(s.total_gaps),
                    format_optional(s.latency_median_ms, ".2f"),
                    format_optional(s.latency_p95_ms, ".2f"),
                    _stamp_issues(t),
                    t.level.name,
                ]
            )
        out += text_table(
            [
                "topic",
                "type",
                "count",
                "rate Hz",
                "period ms",
                "jitter p95 ms",
                "gaps",
                "latency med ms",
                "latency p95 ms",
                "stamp issues",
                "level",
            ],
            rows,
            left=2,
        )
        for sk in r.skipped:
            out.append(f"skipped {sk.topic} ({_short_type(sk.msgtype)}): {sk.reason}")
        out.append("")
        if r.pairs:
            rows = []
            for p in r.pairs:
                s2 = p.summary
                frac = s2.unmatched_fraction if s2 else None
                rows.append(
                    [
                        p.name,
                        str(s2.matched) if s2 else "-",
                        format_optional(s2.offset_median_ms if s2 else None, "+.3f"),
                        format_optional(s2.offset_p95_ms if s2 else None, "+.3f"),
                        format_optional(s2.drift_ppm if s2 else None, "+.1f"),
                        format_optional(frac * 100 if frac is not None else None, ".1f"),
                        p.level.name,
                    ]
                )
            out += text_table(
                [
                    "pair (offset = a - b)",
                    "matched",
                    "median ms",
                    "p95 ms",
                    "drift ppm",
                    "unmatched %",
                    "level",
                ],
                rows,
            )
            out.append("")
        out += _motion_lines(r.motion_offsets)
        bad = [f for f in r.findings if f.level >= Severity.WARN]
        if bad:
            out.append("findings:")
            out += [f"  {f.level.name:5s} {f.message}" for f in sorted(bad, key=lambda f: -f.level)]
        else:
            out.append("findings: none above OK")
        out.append("")
    verdict = "FAIL" if result.failed(fail_on) else "pass"
    out.append(f"worst level: {result.worst_level.name} ({verdict} with --fail-on {fail_on.name.lower()})")
    return "\n".join(out)
