"""The audit's text report: per recording the topic and pair tables, the motion offsets and the
findings above OK, then the verdict (what `gap-monitor audit` prints)."""

from __future__ import annotations

from collections.abc import Sequence

from gap_monitor.core.events import Severity
from gap_monitor.offline.audit import AuditResult, MotionAudit, TopicAudit
from gap_monitor.render.numbers import SKEW_COLUMNS, shown
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
        v = e.values()
        head = f"{v['offset_ms']} ± {v['uncertainty_ms']} ms" if e.confident and v["offset_ms"] else ""
        out.append(
            f"motion offset {m.camera} vs {m.imu}: {head or 'no confident estimate'}, "
            f"confidence {v['confidence']} [{m.level.name}]: {m.reason}"
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
            v = s.values()
            rate = shown(v["stamp_rate_hz"])
            if s.expected_rate_hz:
                rate += f" ({s.expected_rate_hz:g})"
            rows.append(
                [
                    t.name,
                    _short_type(t.msgtype),
                    str(s.total_messages),
                    rate,
                    shown(v["period_median_ms"]),
                    shown(v["jitter_p95_ms"]),
                    str(s.total_gaps),
                    shown(v["latency_median_ms"]),
                    shown(v["latency_p95_ms"]),
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
                v = p.summary.values() if p.summary else {}
                rows.append(
                    [
                        p.name,
                        *(shown(v.get(key, "")) for _, key in SKEW_COLUMNS),
                        p.level.name,
                    ]
                )
            out += text_table(
                ["pair (offset = a - b)", *(header for header, _ in SKEW_COLUMNS), "level"],
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
