"""SVG plots without a plotting library: a few primitives, linear scales with round ticks, and the
report's two plots, a distribution overlay (training against deployment, or profile A against B)
and a recording's timeline (novelty score per stream, health per topic, skew per pair, with alarms
and snapshots marked)."""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from gap_monitor.core.conditions.scoring import format_value
from gap_monitor.core.events import Severity
from gap_monitor.core.timing.skew import nearest_offsets
from gap_monitor.core.units import NS_PER_S
from gap_monitor.offline.audit import PairAudit, TopicAudit
from gap_monitor.offline.report.model import (
    BoolArray,
    FloatArray,
    IntArray,
    Report,
    StreamReport,
    TopicTrace,
)
from gap_monitor.offline.report.words import RANGE_NAME
from gap_monitor.render.numbers import format_utc

__all__ = ["COLOURS", "FONT", "distribution_svg", "escape", "timeline_svg"]


COLOURS = {
    "training": "#4c72b0",
    "deployment": "#dd8452",
    "threshold": "#c44e52",
    "alarm": "#f4c7c3",
    "snapshot": "#8172b3",
    "axis": "#444444",
    "grid": "#e5e5e5",
    "text": "#222222",
    Severity.OK.name: "#55a868",
    Severity.WARN.name: "#e1a100",
    Severity.ERROR.name: "#c44e52",
    Severity.STALE.name: "#8c8c8c",
}


FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif"


def escape(text: object) -> str:
    """Text for SVG and HTML: &, <, >, and quotes escaped."""
    return html.escape(str(text), quote=True)


def _f(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if math.isfinite(value) else "0"


class _Scale:
    """Linear map from data [d0, d1] to pixels [r0, r1]."""

    def __init__(self, d0: float, d1: float, r0: float, r1: float) -> None:
        if not d1 > d0:
            pad = max(abs(d0) * 0.05, 1e-9)
            d0, d1 = d0 - pad, d1 + pad
        self.d0, self.d1, self.r0, self.r1 = d0, d1, r0, r1

    def __call__(self, value: float) -> float:
        return self.r0 + (value - self.d0) / (self.d1 - self.d0) * (self.r1 - self.r0)

    def ticks(self, count: int = 5) -> list[float]:
        span = self.d1 - self.d0
        raw = span / max(1, count)
        magnitude = 10.0 ** math.floor(math.log10(raw))
        step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
        first = math.ceil(self.d0 / step - 1e-9) * step
        out: list[float] = []
        value = first
        while value <= self.d1 + step * 1e-9 and len(out) < 50:
            out.append(0.0 if abs(value) < step * 1e-9 else value)
            value += step
        return out


class _Svg:
    def __init__(self, plot_id: str, width: int, height: int, label: str) -> None:
        self.plot_id, self.width, self.height, self.label = plot_id, width, height, label
        self.parts: list[str] = []

    def add(self, element: str) -> None:
        self.parts.append(element)

    def line(
        self,
        x1: float,
        y1: float,
        x2: float,
        y2: float,
        stroke: str,
        width: float = 1.0,
        dash: str = "",
        title: str = "",
    ) -> None:
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        body = f"<title>{escape(title)}</title>" if title else ""
        self.add(
            f'<line x1="{_f(x1)}" y1="{_f(y1)}" x2="{_f(x2)}" y2="{_f(y2)}" stroke="{stroke}" '
            f'stroke-width="{_f(width)}"{extra}>{body}</line>'
        )

    def rect(
        self,
        x: float,
        y: float,
        w: float,
        h: float,
        fill: str,
        opacity: float = 1.0,
        title: str = "",
        cls: str = "",
    ) -> None:
        body = f"<title>{escape(title)}</title>" if title else ""
        extra = f' class="{cls}"' if cls else ""
        self.add(
            f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(max(w, 0.0))}" height="{_f(max(h, 0.0))}" '
            f'fill="{fill}" fill-opacity="{opacity:g}"{extra}>{body}</rect>'
        )

    def path(
        self,
        d: str,
        stroke: str = "none",
        fill: str = "none",
        width: float = 1.0,
        opacity: float = 1.0,
        cls: str = "",
    ) -> None:
        extra = f' class="{cls}"' if cls else ""
        self.add(
            f'<path d="{d}" stroke="{stroke}" fill="{fill}" stroke-width="{_f(width)}" '
            f'fill-opacity="{opacity:g}"{extra}/>'
        )

    def text(
        self,
        x: float,
        y: float,
        text: str,
        size: float = 11,
        anchor: str = "start",
        fill: str = COLOURS["text"],
        weight: str = "",
        rotate: bool = False,
        title: str = "",
    ) -> None:
        attrs = f' font-weight="{weight}"' if weight else ""
        if rotate:
            attrs += f' transform="rotate(-90 {_f(x)} {_f(y)})"'
        body = escape(text) + (f"<title>{escape(title)}</title>" if title else "")
        self.add(
            f'<text x="{_f(x)}" y="{_f(y)}" font-size="{size:g}" text-anchor="{anchor}" fill="{fill}"{attrs}>'
            f"{body}</text>"
        )

    def render(self) -> str:
        return (
            f'<svg class="plot" id="{escape(self.plot_id)}" width="{self.width}" height="{self.height}" '
            f'viewBox="0 0 {self.width} {self.height}" role="img" aria-label="{escape(self.label)}" '
            f'font-family="{escape(FONT)}"><title>{escape(self.label)}</title>'
            + "".join(self.parts)
            + "</svg>"
        )


def _tick_label(value: float, step: float) -> str:
    if step >= 1 and abs(value) < 1e6:
        return f"{value:.0f}"
    return format_value(value)


def _x_axis(svg: _Svg, scale: _Scale, y: float, label: str, count: int = 5) -> None:
    svg.line(scale.r0, y, scale.r1, y, COLOURS["axis"])
    ticks = scale.ticks(count)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    for t in ticks:
        x = scale(t)
        svg.line(x, y, x, y + 4, COLOURS["axis"])
        # Labels at the ends stay inside the plot.
        anchor = "end" if x > scale.r1 - 12 else "start" if x < scale.r0 - 30 else "middle"
        svg.text(x, y + 15, _tick_label(t, step), size=10, anchor=anchor)
    if label:
        svg.text((scale.r0 + scale.r1) / 2, y + 30, label, size=10.5, anchor="middle")


def _y_axis(svg: _Svg, scale: _Scale, x: float, x_end: float, label: str, count: int = 4) -> None:
    svg.line(x, scale.r0, x, scale.r1, COLOURS["axis"])
    ticks = scale.ticks(count)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    for t in ticks:
        y = scale(t)
        svg.line(x, y, x_end, y, COLOURS["grid"], 0.8)
        svg.line(x - 4, y, x, y, COLOURS["axis"])
        svg.text(x - 6, y + 3.5, _tick_label(t, step), size=10, anchor="end")
    if label:
        svg.text(x - 38, (scale.r0 + scale.r1) / 2, label, size=10.5, anchor="middle", rotate=True)


def _step_path(edges: FloatArray, shares: FloatArray, xs: _Scale, ys: _Scale, closed: bool) -> str:
    points = [f"M{_f(xs(edges[0]))},{_f(ys(0.0))}"]
    for i, share in enumerate(shares):
        y = ys(100.0 * share)
        points.append(f"L{_f(xs(edges[i]))},{_f(y)}L{_f(xs(edges[i + 1]))},{_f(y)}")
    points.append(f"L{_f(xs(edges[-1]))},{_f(ys(0.0))}")
    if closed:
        points.append("Z")
    return "".join(points)


def distribution_svg(
    plot_id: str,
    title: str,
    unit: str,
    edges: FloatArray,
    training: FloatArray,
    deployment: FloatArray,
    p1: float,
    p99: float,
    labels: tuple[str, str] = ("training", "deployment"),
    note: str = "",
) -> str:
    """Two distributions over the same bins (shares in %), with the training p1 and p99."""
    width, height = 380, 250
    left, right, top, bottom = 52, 12, 58, 46
    svg = _Svg(plot_id, width, height, f"{title}: {labels[0]} and {labels[1]} distributions")
    xs = _Scale(float(edges[0]), float(edges[-1]), left, width - right)
    peak = max(float(np.max(training, initial=0.0)), float(np.max(deployment, initial=0.0)), 1e-6)
    ys = _Scale(0.0, 100.0 * peak * 1.08, height - bottom, top)
    lo, hi = xs(max(p1, xs.d0)), xs(min(p99, xs.d1))
    svg.rect(lo, top, hi - lo, height - bottom - top, "#eef3fa", 1.0, title=f"training {RANGE_NAME}")
    _y_axis(svg, ys, left, width - right, "% of samples per bin")
    svg.path(
        _step_path(edges, training, xs, ys, True),
        stroke=COLOURS["training"],
        fill=COLOURS["training"],
        width=1.2,
        opacity=0.35,
        cls="training",
    )
    svg.path(
        _step_path(edges, deployment, xs, ys, False),
        stroke=COLOURS["deployment"],
        width=2.0,
        cls="deployment",
    )
    marks = [(v, n) for v, n in ((p1, "p1"), (p99, "p99")) if xs.d0 <= v <= xs.d1]
    for value, name in marks:
        x = xs(value)
        svg.line(
            x,
            top,
            x,
            height - bottom,
            COLOURS["axis"],
            1.0,
            "4 3",
            f"training {name} = {format_value(value)}",
        )

    def label_x(x: float) -> float:
        return min(max(x, left + 16), width - right - 16)

    if len(marks) == 2 and xs(p99) - xs(p1) < 24:
        x = label_x((xs(p1) + xs(p99)) / 2)
        svg.text(x, top - 3, "p1-p99", size=9.5, anchor="middle", fill=COLOURS["axis"])
    else:
        for value, name in marks:
            svg.text(label_x(xs(value)), top - 3, name, size=9.5, anchor="middle", fill=COLOURS["axis"])
    _x_axis(svg, xs, height - bottom, unit or "value", 4)
    svg.text(8, 14, title, size=12, weight="600")
    if note:
        svg.text(8, 28, note, size=10, fill="#555555")
    # Legend: one row under the title.
    svg.rect(8, 36, 12, 8, COLOURS["training"], 0.45)
    svg.text(24, 44, labels[0], size=10)
    svg.line(92, 40, 106, 40, COLOURS["deployment"], 2.0)
    svg.text(110, 44, labels[1], size=10)
    svg.line(186, 40, 198, 40, COLOURS["axis"], 1.0, "4 3")
    svg.text(202, 44, f"training {RANGE_NAME} (shaded)", size=10)
    return svg.render()


def _envelope(
    x: FloatArray, values: FloatArray, x0: float, x1: float, both: bool = False
) -> list[tuple[float, float]]:
    """(x, y) points: all of them when few, else per pixel column its maximum (scores: peaks
    survive) or, with `both`, its minimum and maximum (a signed quantity such as a skew)."""
    keep = np.isfinite(values)
    x, v = x[keep], values[keep]
    columns = max(1, int(x1 - x0))
    if x.size <= 2 * columns:
        return [(float(a), float(b)) for a, b in zip(x, v, strict=True)]
    cols = np.clip(np.floor(x - x0), 0, columns).astype(np.int64)
    order = np.argsort(cols, kind="stable")
    cols, x, v = cols[order], x[order], v[order]
    starts = np.flatnonzero(np.concatenate([[True], np.diff(cols) > 0]))
    centres = np.add.reduceat(x, starts) / np.diff(np.concatenate([starts, [x.size]]))
    peaks = np.maximum.reduceat(v, starts)
    if not both:
        return [(float(a), float(b)) for a, b in zip(centres, peaks, strict=True)]
    lows = np.minimum.reduceat(v, starts)
    out: list[tuple[float, float]] = []
    for c, lo, hi in zip(centres, lows, peaks, strict=True):
        out += [(float(c), float(lo)), (float(c), float(hi))]
    return out


def timeline_svg(report: Report, rec_index: int) -> str:
    """One recording's lanes: novelty score per stream, stream health per topic, skew per pair,
    with alarms and snapshots marked; x is seconds since the recording's start."""
    rec = report.recordings[rec_index]
    width = 1120
    left, right = 230, 20
    t0 = rec.start_time_ns
    xs = _Scale(0.0, max(rec.duration_s, 1e-3), left, width - right)

    def x_of(ns: int) -> float:
        return xs((ns - t0) / NS_PER_S)

    def x_arr(ns: IntArray) -> FloatArray:
        return np.asarray(
            xs.r0 + ((ns - t0) / NS_PER_S - xs.d0) / (xs.d1 - xs.d0) * (xs.r1 - xs.r0), dtype=np.float64
        )

    lanes: list[tuple[str, int, Callable[[_Svg, float, float], None], str]] = []
    for s in report.streams:
        sel = s.recording_index == rec_index
        if not sel.any():
            continue
        lanes.append((s.name, 78, _score_lane(s, sel, x_of, x_arr, xs), f"novelty score of {s.name}"))
    audit_rec = next((r for r in report.audit.recordings if r.path == rec.path), None)
    traces = {t.topic: t for t in report.traces if t.recording == rec_index}
    if audit_rec is not None:
        for topic_audit in audit_rec.topics:
            findings = [f.message for f in audit_rec.findings if f.subject == topic_audit.topic]
            lanes.append(
                (
                    topic_audit.name,
                    20,
                    _health_lane(topic_audit, traces.get(topic_audit.topic), x_of, findings),
                    f"health of {topic_audit.name}",
                )
            )
        for pair in audit_rec.pairs:
            ta, tb = traces.get(pair.a), traces.get(pair.b)
            if ta is None or tb is None or ta.stamps is None or tb.stamps is None:
                continue
            if ta.stamps.size == 0 or tb.stamps.size == 0:
                continue
            # Stamps on another clock (sim time in a wall-clock log) are drawn where they arrived.
            shift = ta.first_ns - int(ta.stamps[0])
            shift = shift if abs(shift) > NS_PER_S else 0
            lanes.append(
                (
                    f"skew {pair.a} - {pair.b}",
                    56,
                    _skew_lane(pair, ta.stamps + shift, tb.stamps + shift, x_of, x_arr, xs.r1),
                    f"skew {pair.name}",
                )
            )
    top = 34
    height = top + sum(h + 10 for _, h, _, _ in lanes) + 44
    svg = _Svg(f"timeline-{rec_index}", width, height, f"timeline of {rec.path}")
    svg.text(
        8,
        16,
        f"{Path(rec.path).name}: {rec.duration_s:.1f} s from {format_utc(rec.start_time_ns)}",
        size=12,
        weight="600",
    )
    y = float(top)
    for label, h, draw, _ in lanes:
        short = label if len(label) <= 34 else "…" + label[-33:]
        svg.text(left - 8, y + min(h, 20) / 2 + 4, short, size=10.5, anchor="end", title=label)
        draw(svg, y, y + h)
        y += h + 10
    _x_axis(svg, xs, y, "seconds since the start of the recording", 10)
    # Snapshots: a line across every lane.
    for n, snap in enumerate(report.snapshots, start=1):
        if snap.recording != rec_index or snap.time_ns is None:
            continue
        x = x_of(snap.time_ns)
        why = snap.triggers[0].reason if snap.triggers else snap.name
        svg.line(x, top - 6, x, y, COLOURS["snapshot"], 1.4, "2 2", f"snapshot {snap.name}: {why}")
        svg.text(
            x + 2,
            top - 8,
            f"S{n}",
            size=10,
            fill=COLOURS["snapshot"],
            weight="600",
            title=f"snapshot {snap.name}: {why}",
        )
    return svg.render()


def _score_lane(
    s: StreamReport,
    sel: BoolArray,
    x_of: Callable[[int], float],
    x_arr: Callable[[IntArray], FloatArray],
    xs: _Scale,
) -> Callable[[_Svg, float, float], None]:
    def draw(svg: _Svg, y0: float, y1: float) -> None:
        times, scores = s.times_ns[sel], s.scores[sel]
        finite = scores[np.isfinite(scores)]
        top_score = float(np.max(finite)) if finite.size else 0.0
        ymax = max(1.5 * s.threshold, min(top_score * 1.05, 4.0 * s.threshold), 1.0)
        ys = _Scale(0.0, ymax, y1, y0)
        svg.rect(xs.r0, y0, xs.r1 - xs.r0, y1 - y0, "#fafafa")
        # Alarm active: shaded spans.
        active = s.alarm_active[sel]
        if active.any():
            idx = np.flatnonzero(active)
            breaks = np.flatnonzero(np.diff(idx) > 1)
            for a, b in zip(
                np.concatenate([[idx[0]], idx[breaks + 1]]),
                np.concatenate([idx[breaks], [idx[-1]]]),
                strict=True,
            ):
                xa, xb = x_of(int(times[a])), x_of(int(times[b]))
                svg.rect(
                    xa,
                    y0,
                    max(xb - xa, 1.5),
                    y1 - y0,
                    COLOURS["alarm"],
                    0.8,
                    title="alarm active",
                    cls="alarm",
                )
        for tick in ys.ticks(2):
            svg.text(xs.r0 - 3, ys(tick) + 3, _tick_label(tick, 1.0), size=8.5, anchor="end", fill="#777777")
        points = _envelope(x_arr(times), np.minimum(scores, ymax), xs.r0, xs.r1)
        if points:
            d = "M" + "L".join(f"{_f(x)},{_f(ys(v))}" for x, v in points)
            svg.path(d, stroke=COLOURS["training"], width=1.2, cls="score")
        yt = ys(s.threshold)
        kind = "calibrated alarm threshold" if s.threshold_source == "calibrated" else "assumed threshold"
        svg.line(
            xs.r0, yt, xs.r1, yt, COLOURS["threshold"], 1.0, "5 3", f"{kind} {format_value(s.threshold)}"
        )
        svg.text(
            xs.r1 - 2,
            yt - 3,
            f"threshold {format_value(s.threshold)}",
            size=9,
            anchor="end",
            fill=COLOURS["threshold"],
        )
        if top_score > ymax:
            svg.text(
                xs.r0 + 2,
                y0 + 9,
                f"scores above {format_value(ymax)} drawn at the top",
                size=8.5,
                fill="#777777",
            )
        for e in s.episodes:
            if e.recording != int(s.recording_index[sel][0]):
                continue
            x = x_of(e.start_ns)
            svg.path(f"M{_f(x)},{_f(y0)}l-4,-7h8z", fill=COLOURS["threshold"], cls="alarm-fired")
            svg.add(
                f"<g><title>{escape('alarm fired: ' + e.description)}</title>"
                f'<rect x="{_f(x - 5)}" y="{_f(y0 - 8)}" width="10" height="9" fill-opacity="0"/></g>'
            )

    return draw


def _health_lane(
    topic: TopicAudit, trace: TopicTrace | None, x_of: Callable[[int], float], findings: Sequence[str]
) -> Callable[[_Svg, float, float], None]:
    def draw(svg: _Svg, y0: float, y1: float) -> None:
        level = topic.level.name
        xa, xb = x_of(topic.first_log_time_ns), x_of(topic.last_log_time_ns)
        summary = topic.summary
        rate = f"{summary.values()['stamp_rate_hz']} Hz" if summary.rate_hz else "rate -"
        tip = f"{topic.name}: {level}, {summary.total_messages} msgs, {rate}"
        if findings:
            tip += " | " + " | ".join(findings[:4])
        svg.rect(xa, y0 + 3, max(xb - xa, 1.5), y1 - y0 - 6, COLOURS[level], 0.85, title=tip, cls="health")
        if trace is not None:
            for a, b in trace.gaps:
                ga, gb = x_of(a), x_of(b)
                svg.rect(
                    ga,
                    y0,
                    max(gb - ga, 1.2),
                    y1 - y0,
                    "#222222",
                    0.9,
                    title=f"gap of {(b - a) / 1e6:.0f} ms",
                    cls="gap",
                )

    return draw


def _skew_lane(
    pair: PairAudit,
    a: IntArray,
    b: IntArray,
    x_of: Callable[[int], float],
    x_arr: Callable[[IntArray], FloatArray],
    x_end: float,
) -> Callable[[_Svg, float, float], None]:
    def draw(svg: _Svg, y0: float, y1: float) -> None:
        ref, other, sign = (a, b, 1.0) if a.size <= b.size else (b, a, -1.0)
        offsets_ms = np.asarray(sign * nearest_offsets(ref, other) / 1e6, dtype=np.float64)
        # Stamps serve as the time axis here: close enough to the log times for a timeline.
        level = pair.level.name
        low = float(min(0.0, offsets_ms.min()))
        high = float(max(0.0, offsets_ms.max()))
        ys = _Scale(low, high if high > low else low + 1.0, y1, y0)
        svg.line(x_of(int(ref[0])), ys(0.0), x_of(int(ref[-1])), ys(0.0), COLOURS["grid"], 1.0)
        points = _envelope(x_arr(ref), offsets_ms, x_arr(ref[:1])[0], x_arr(ref[-1:])[0] + 1.0, both=True)
        d = "M" + "L".join(f"{_f(x)},{_f(ys(v))}" for x, v in points)
        svg.path(d, stroke=COLOURS[level], width=1.3, cls="skew")
        med = float(np.median(offsets_ms))
        svg.text(
            x_end,
            y0 + 9,
            f"{pair.name}: median {med:+.2f} ms [{level}]",
            size=9,
            anchor="end",
            fill="#555555",
        )
        first = x_arr(ref[:1])[0]
        for tick in sorted({round(low, 3), round(high, 3)}):
            svg.text(first - 3, ys(tick) + 3, f"{tick:+.2f} ms", size=8.5, anchor="end", fill="#777777")

    return draw
