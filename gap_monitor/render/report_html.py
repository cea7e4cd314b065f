"""The report's HTML: the deployment report page (collection targets, timeline, distributions,
snapshot catalogue, sync audit, method) and the profile comparison page, each one self-contained
file (inline CSS and SVG, no scripts) written with its JSON beside it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from gap_monitor.core.conditions.scoring import format_value
from gap_monitor.core.events import Severity
from gap_monitor.core.units import NS_PER_S
from gap_monitor.offline.report.compare import ProfileComparison
from gap_monitor.offline.report.histograms import common_edges, distribution_grid, rebin
from gap_monitor.offline.report.model import Report
from gap_monitor.offline.report.to_json import comparison_json, feature_plot_id, report_json
from gap_monitor.offline.report.words import CRITERION, RANGE_NAME, duration, percent
from gap_monitor.render.files import write_text_atomic
from gap_monitor.render.numbers import SKEW_COLUMNS, format_bytes, format_utc, shown
from gap_monitor.render.svg import FONT, distribution_svg, escape, timeline_svg

__all__ = ["comparison_html", "report_html", "write_comparison", "write_report"]


_CSS = """
body{font-family:FONT_STACK;margin:0;color:#222;background:#fff}
main{max-width:1160px;margin:0 auto;padding:16px 20px 60px}
h1{font-size:22px;margin:8px 0 4px}
h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}p,li{line-height:1.45;font-size:14px}
table{border-collapse:collapse;font-size:12.5px;margin:6px 0 12px}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#666}.small{font-size:12px}
.lvl-OK{color:#2e7d32}.lvl-WARN{color:#a66f00;font-weight:600}.lvl-ERROR{color:#c62828;font-weight:700}
.grid{display:flex;flex-wrap:wrap;gap:6px}
figure{margin:0}figure.timeline{margin:8px 0 16px;overflow-x:auto}
ol.targets li{margin-bottom:6px}
code{font-size:12.5px;background:#f6f6f6;padding:0 3px}
nav a{margin-right:12px;font-size:13px}
""".replace("FONT_STACK", FONT)


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Iterable[int] = ()) -> str:
    num = set(numeric)
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(f'<td class="n">{c}</td>' if i in num else f"<td>{c}</td>" for i, c in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{escape(title)}</title>'
        f"<style>{_CSS}</style></head><body><main>{body}</main></body></html>\n"
    )


def _level(name: str) -> str:
    return f'<span class="lvl-{escape(name)}">{escape(name)}</span>'


def report_html(report: Report) -> str:
    """The deployment report as one self-contained page (inline SVG, no scripts)."""
    out: list[str] = []
    out.append("<h1>Deployment conditions against the training profile</h1>")
    out.append(
        f'<p class="muted small">generated {format_utc(report.generated_ns)} '
        f"in {report.build_seconds:.1f} s; "
        f"profile {escape(report.profile_path or '(in memory)')} (digest {report.profile.digest()[:12]}, "
        f"{len(report.profile.streams)} streams, built from "
        f"{', '.join(escape(s.path) for s in report.profile.sources) or 'unknown recordings'})</p>"
    )
    out.append(
        '<nav><a href="#targets">collection targets</a><a href="#timeline">timeline</a>'
        '<a href="#distributions">distributions</a><a href="#snapshots">snapshots</a>'
        '<a href="#audit">sync audit</a><a href="#method">method</a></nav>'
    )
    rows = [
        [
            escape(r.path),
            escape(r.kind),
            format_utc(r.start_time_ns),
            f"{r.duration_s:.1f}",
            f"{r.messages:,}",
            f"{r.messages_read:,}",
        ]
        for r in report.recordings
    ]
    out.append("<h3>Deployment recordings</h3>")
    out.append(
        _table(["recording", "kind", "start", "duration s", "messages", "read for features"], rows, [3, 4, 5])
    )
    alarms = sum(len(s.episodes) for s in report.streams)
    out.append(
        f"<p>{len(report.targets)} collection target(s); {alarms} alarm(s) of the calibrated monitor; "
        f"sync audit: {_level(report.audit.worst_level.name)}; {len(report.snapshots)} snapshot(s).</p>"
    )
    out.append(_targets_html(report))
    out.append('<h2 id="timeline">Timeline</h2>')
    out.append(
        '<p class="small muted">Per stream: the monitor\'s novelty score (blue; -log10 p), its alarm '
        "threshold (red dashed), alarm-active spans (shaded) and alarms firing (red triangles). Per "
        "topic: the audit's level over the time it was recorded (green OK, amber WARN, red ERROR) with "
        "arrival gaps longer than three periods in black. Per audited pair: the header-stamp offset. "
        "Snapshots are the purple dashed lines S1, S2, ... (see the catalogue).</p>"
    )
    for i in range(len(report.recordings)):
        out.append(f'<figure class="timeline">{timeline_svg(report, i)}</figure>')
    out.append(_episodes_html(report))
    out.append(_distributions_html(report))
    out.append(_snapshots_html(report))
    out.append(_audit_html(report))
    out.append(_method_html(report))
    return _page("gap_monitor deployment report", "".join(out))


def _unexplained_html(report: Report) -> str:
    lines = []
    for s in report.streams:
        for e in s.episodes:
            if report.explains(e):
                continue
            rec = report.recordings[e.recording]
            at = (e.start_ns - rec.start_time_ns) / NS_PER_S
            lines.append(
                f"<li>{escape(s.name)} in {escape(Path(rec.path).name)} at {at:.1f} s "
                f"for {(e.end_ns - e.start_ns) / NS_PER_S:.1f} s: {escape(e.description)}</li>"
            )
    if not lines:
        return ""
    return (
        "<p>Alarms of the calibrated monitor that no single feature explains (an unusual combination "
        "of features each inside or near its range; see the distributions):</p><ul>"
        + "".join(lines)
        + "</ul>"
    )


def _targets_html(report: Report) -> str:
    out = ['<h2 id="targets">Collection targets</h2>']
    if not report.targets:
        out.append(
            "<p>No condition of the deployment lies outside the training data beyond the calibrated "
            'rate (criterion in <a href="#method">method</a>): nothing to collect for.</p>'
        )
        out.append(_unexplained_html(report))
        return "".join(out)
    out.append(
        "<p>Conditions the deployment met and the training data did not cover, most time and most "
        'severe first. Record training data under these conditions:</p><ol class="targets">'
    )
    for t in report.targets:
        snaps = (
            f' <span class="small muted">examples: {escape(", ".join(t.snapshots[:3]))}</span>'
            if t.snapshots
            else ""
        )
        out.append(f"<li>{escape(t.text())}{snaps}</li>")
    out.append("</ol>")
    rows = []
    for t in report.targets:
        lead = t.lead
        rows.append(
            [
                str(t.rank),
                escape(t.stream),
                escape(lead.phrase()),
                percent(lead.deployment_share),
                percent(lead.training_share),
                percent(lead.novel_share),
                format_value(lead.severity),
                format_value(lead.median_novel_value),
                f"{format_value(lead.edge)} ({'p1' if lead.side == 'below' else 'p99'})",
                escape(lead.unit),
                str(len(t.episodes)),
                escape(", ".join(r.phrase() for r in t.related)) or "-",
            ]
        )
    out.append(
        _table(
            [
                "#",
                "stream",
                "condition",
                "deployment",
                "training",
                "novel",
                "severity",
                "median value",
                "training edge",
                "unit",
                "episodes",
                "co-occurring",
            ],
            rows,
            [0, 3, 4, 5, 6, 7, 10],
        )
    )
    out.append(_unexplained_html(report))
    return "".join(out)


def _episodes_html(report: Report) -> str:
    rows = []
    for s in report.streams:
        for e in s.episodes:
            rec = report.recordings[e.recording]
            rows.append(
                [
                    escape(s.name),
                    escape(Path(rec.path).name),
                    f"{(e.start_ns - rec.start_time_ns) / NS_PER_S:.1f}",
                    f"{(e.end_ns - e.start_ns) / NS_PER_S:.1f}" + (" (open)" if e.open else ""),
                    format_value(e.peak_score),
                    escape(e.description),
                ]
            )
    if not rows:
        return "<p>The calibrated monitor raised no alarm over the deployment.</p>"
    return "<h3>Alarms</h3>" + _table(
        ["stream", "recording", "fired at s", "lasted s", "peak score", "when it fired"], rows, [2, 3, 4]
    )


def _distributions_html(report: Report) -> str:
    out = ['<h2 id="distributions">Distributions per stream and feature</h2>']
    out.append(
        f'<p class="small muted">Training (the profile\'s histogram, spread uniformly within its bins) '
        f"against the deployment (features computed from the recordings by the live path), as shares "
        f"of samples in common bins. The shaded band is the training {RANGE_NAME} range; the share "
        f"outside it is in each plot's second line (about 2 % for data like the training).</p>"
    )
    bins = report.settings.histogram_bins
    for si, s in enumerate(report.streams):
        head = f"{s.name} [{s.modality}]"
        out.append(f"<h3>{escape(head)}</h3>")
        if s.status != "scored":
            out.append(f"<p>{escape(s.status)}: {escape(s.note)}</p>")
            continue
        alarm = (
            f"alarm threshold {format_value(s.threshold)} (calibrated, {s.alarm.fire_k} of {s.alarm.fire_n})"
            if s.alarm is not None
            else f"no calibrated alarm: threshold {format_value(s.threshold)} assumed"
        )
        out.append(
            f'<p class="small">{s.samples} samples over {duration(s.observed_s)} '
            f"({escape(s.msgtype or '')}); "
            f"{alarm}; {len(s.episodes)} alarm(s); {s.malformed} malformed message(s)"
            f"{'; ' + escape(s.note) if s.note else ''}</p>"
        )
        figures = []
        rows = []
        for fi, f in enumerate(s.features):
            st = f.training
            if f.deployment_count:
                edges, training, deployment, clipped = distribution_grid(f.training, f.values, bins)
                note = (
                    f"outside {RANGE_NAME}: {percent(f.outside_share)} (below {percent(f.below_share)}, "
                    f"above {percent(f.above_share)})"
                )
                if clipped:
                    note += f"; {clipped} beyond the axis"
                figures.append(
                    "<figure>"
                    + distribution_svg(
                        feature_plot_id(si, fi),
                        f.name,
                        f.unit,
                        edges,
                        training,
                        deployment,
                        st.p1,
                        st.p99,
                        note=note,
                    )
                    + "</figure>"
                )
            q = f.deployment_quantiles()
            rows.append(
                [
                    escape(f.name),
                    escape(f.unit),
                    format_value(st.p1),
                    format_value(st.quantile("p50")),
                    format_value(st.p99),
                    "-" if q["p50"] is None else format_value(q["p50"]),
                    str(f.deployment_count),
                    percent(f.below_share),
                    percent(f.above_share),
                    percent(float(f.novel_below.sum() + f.novel_above.sum()) / f.deployment_count)
                    if f.deployment_count
                    else "-",
                ]
            )
        out.append(
            _table(
                [
                    "feature",
                    "unit",
                    "training p1",
                    "p50",
                    "p99",
                    "deployment p50",
                    "samples",
                    "below p1",
                    "above p99",
                    "novel",
                ],
                rows,
                [2, 3, 4, 5, 6, 7, 8, 9],
            )
        )
        out.append(f'<div class="grid">{"".join(figures)}</div>')
    if report.unprofiled:
        out.append("<h3>Sensor topics the profile does not cover</h3>")
        out.append(_table(["topic", "type"], [[escape(t), escape(ty)] for t, ty in report.unprofiled]))
    return "".join(out)


def _snapshots_html(report: Report) -> str:
    out = ['<h2 id="snapshots">Snapshot catalogue</h2>']
    if not report.snapshots:
        out.append("<p>No snapshots given (<code>--snapshots DIR</code>).</p>")
        return "".join(out)
    rows = []
    for n, s in enumerate(report.snapshots, start=1):
        why = "<br>".join(
            f"<b>{escape(t.kind)}</b>: {escape(t.reason)}"
            + (f'<br><span class="small">top: {escape("; ".join(t.top))}</span>' if t.top else "")
            for t in s.triggers
        ) or escape(s.problem)
        where = "outside the deployment recordings"
        if s.recording is not None and s.time_ns is not None:
            rec = report.recordings[s.recording]
            where = f"{escape(Path(rec.path).name)} at {(s.time_ns - rec.start_time_ns) / NS_PER_S:.1f} s"
        rows.append(
            [
                f"S{n}",
                format_utc(s.time_ns),
                where,
                why,
                "-"
                if s.duration_s is None
                else f"{s.duration_s:.1f}" + (" (truncated)" if s.truncated else ""),
                format_bytes(s.size_bytes),
                "-" if s.message_count is None else str(s.message_count),
                f"<code>{escape(s.path)}</code>",
            ]
        )
    out.append(
        _table(["", "when", "where", "why", "duration s", "size", "messages", "path"], rows, [4, 5, 6])
    )
    return "".join(out)


def _audit_html(report: Report) -> str:
    out = ['<h2 id="audit">Sync audit</h2>']
    out.append(
        f"<p>From <code>gap-monitor audit</code> over the same recordings: worst level "
        f"{_level(report.audit.worst_level.name)}.</p>"
    )
    for r in report.audit.recordings:
        out.append(f"<h3>{escape(Path(r.path).name)}: {_level(r.level.name)}</h3>")
        rows = []
        for t in r.topics:
            s = t.summary
            v = s.values()
            expected = f" ({s.expected_rate_hz:g})" if s.expected_rate_hz else ""
            rows.append(
                [
                    escape(t.name),
                    escape(t.msgtype.replace("/msg/", "/")),
                    str(s.total_messages),
                    shown(v["stamp_rate_hz"]) + expected,
                    shown(v["period_median_ms"]),
                    shown(v["jitter_p95_ms"]),
                    str(s.total_gaps),
                    shown(v["latency_median_ms"]),
                    _level(t.level.name),
                ]
            )
        out.append(
            _table(
                [
                    "topic",
                    "type",
                    "count",
                    "rate Hz",
                    "period ms",
                    "jitter p95 ms",
                    "gaps",
                    "latency ms",
                    "level",
                ],
                rows,
                [2, 3, 4, 5, 6, 7],
            )
        )
        if r.pairs:
            rows = []
            for p in r.pairs:
                v = p.summary.values() if p.summary else {}
                rows.append(
                    [
                        escape(p.name),
                        escape(p.source),
                        *(shown(v.get(key, "")) for _, key in SKEW_COLUMNS),
                        _level(p.level.name),
                    ]
                )
            out.append(
                _table(
                    ["pair (offset = a - b)", "source", *(header for header, _ in SKEW_COLUMNS), "level"],
                    rows,
                    [2, 3, 4, 5, 6],
                )
            )
        motions = [m for m in r.motion_offsets if m.estimate is not None]
        if motions:
            rows = [
                [
                    escape(m.camera),
                    escape(m.imu),
                    shown(m.estimate.values()["offset_ms"]) if m.estimate else "-",
                    shown(m.estimate.values()["confidence"]) if m.estimate else "-",
                    _level(m.level.name),
                    escape(m.reason),
                ]
                for m in motions
            ]
            out.append(_table(["camera", "IMU", "offset ms", "confidence", "level", "note"], rows, [2, 3]))
        bad = [f for f in r.findings if f.level >= Severity.WARN]
        if bad:
            out.append(
                "<ul>"
                + "".join(f"<li>{_level(f.level.name)} {escape(f.message)}</li>" for f in bad)
                + "</ul>"
            )
        else:
            out.append("<p>No finding above OK.</p>")
    return "".join(out)


def _method_html(report: Report) -> str:
    c = report.conditions
    return (
        '<h2 id="method">Method</h2>'
        f"<p>Features: the live path (<code>conditions.StreamConditions</code>) with image rate "
        f"{c.image_rate_hz:g} Hz, window {c.window_s:g} s, hop {c.hop_s:g} s, near {c.near_m:g} m, "
        f"taken from {escape(report.conditions_source)}. They must match the settings the profile was "
        "built with.</p>"
        f"<p>Training range: the profile's {RANGE_NAME} per feature. Shares are shares of a stream's "
        "feature samples, which come evenly in time while the stream flows.</p>"
        f"<p>Collection targets: {escape(CRITERION)} Here min_share = {percent(report.settings.min_share)}; "
        "streams without a calibrated alarm use threshold "
        f"{format_value(report.settings.uncalibrated_threshold)}. "
        'The cut X in "feature below X" is the least extreme persistent novel value rounded outward (never '
        "beyond the training edge); the training share beyond X is read from the profile's histogram. "
        "Severity is the median score of the novel samples; targets are ranked by novel share x min(1, "
        "severity / (2 x threshold)), and feature sides whose novel samples coincide are one condition.</p>"
    )


def comparison_html(c: ProfileComparison) -> str:
    """The profile comparison as one self-contained page."""
    out = ["<h1>Profile coverage comparison</h1>"]
    out.append(
        f"<p>A = <code>{escape(c.a_label)}</code> (digest {c.a.digest()[:12]}), "
        f"B = <code>{escape(c.b_label)}</code> "
        f"(digest {c.b.digest()[:12]}). Per feature: the share of B outside A's {RANGE_NAME} (estimated from "
        "B's histogram within the bounds of its quantiles; about 2 % when B is like A) and the overlap "
        "of the two distributions (1 = same).</p>"
    )
    rows = [
        [
            str(i),
            escape(f.stream),
            escape(f.feature),
            percent(f.outside_share),
            percent(f.below_share),
            percent(f.above_share),
            f"{f.overlap:.2f}",
            format_value(f.a.p1),
            format_value(f.a.p99),
            format_value(f.b.p1),
            format_value(f.b.p99),
            escape(f.unit),
        ]
        for i, f in enumerate(c.features, start=1)
    ]
    out.append(
        _table(
            [
                "#",
                "stream",
                "feature",
                "B outside A",
                "below A p1",
                "above A p99",
                "overlap",
                "A p1",
                "A p99",
                "B p1",
                "B p99",
                "unit",
            ],
            rows,
            [0, 3, 4, 5, 6, 7, 8, 9, 10],
        )
    )
    if c.only_in_a:
        out.append(f"<p>Only in A: {escape(', '.join(c.only_in_a))}</p>")
    if c.only_in_b:
        out.append(f"<p>Only in B: {escape(', '.join(c.only_in_b))}</p>")
    figures = []
    for i, f in enumerate(c.features, start=1):
        edges = common_edges(f.a, f.b, c.histogram_bins)
        figures.append(
            "<figure>"
            + distribution_svg(
                f"cmp-{i}",
                f"{f.stream} {f.feature}",
                f.unit,
                edges,
                rebin(f.a.histogram, edges),
                rebin(f.b.histogram, edges),
                f.a.p1,
                f.a.p99,
                labels=("A", "B"),
                note=f"B outside A's {RANGE_NAME}: {percent(f.outside_share)}; overlap {f.overlap:.2f}",
            )
            + "</figure>"
        )
    out.append(f'<div class="grid">{"".join(figures)}</div>')
    return _page("gap_monitor profile comparison", "".join(out))


def write_report(report: Report, html_path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write the HTML and `<stem>.json` beside it (each atomically); returns both paths."""
    target = Path(html_path)
    json_path = target.with_suffix(".json")
    write_text_atomic(json_path, json.dumps(report_json(report), indent=1, allow_nan=False) + "\n")
    write_text_atomic(target, report_html(report))
    return target, json_path


def write_comparison(comparison: ProfileComparison, html_path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write the comparison's HTML and `<stem>.json` beside it (each atomically); returns both paths."""
    target = Path(html_path)
    json_path = target.with_suffix(".json")
    write_text_atomic(json_path, json.dumps(comparison_json(comparison), indent=1, allow_nan=False) + "\n")
    write_text_atomic(target, comparison_html(comparison))
    return target, json_path
