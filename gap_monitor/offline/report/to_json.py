"""The report and the profile comparison as JSON: `report.json` (schema `gap_monitor.report/1`,
described by report_schema.json beside this module) and the comparison's JSON
(`gap_monitor.profile_compare/1`). Numbers that are not finite become null."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gap_monitor.core.conditions.profile import FeatureStats
from gap_monitor.core.values import json_number
from gap_monitor.offline.report.compare import ProfileComparison
from gap_monitor.offline.report.histograms import distribution_grid
from gap_monitor.offline.report.model import CollectionTarget, Report, SnapshotEntry, TargetFeature
from gap_monitor.offline.report.words import CRITERION, RANGE_NAME

__all__ = [
    "COMPARE_SCHEMA",
    "REPORT_SCHEMA",
    "SCHEMA_PATH",
    "comparison_json",
    "feature_plot_id",
    "report_json",
]

REPORT_SCHEMA = "gap_monitor.report/1"
COMPARE_SCHEMA = "gap_monitor.profile_compare/1"
SCHEMA_PATH = Path(__file__).with_name("report_schema.json")


def _stats_json(st: FeatureStats) -> dict[str, Any]:
    return {
        "count": int(st.count),
        "p1": json_number(st.p1),
        "p50": json_number(st.quantile("p50")),
        "p99": json_number(st.p99),
        "min": json_number(st.min),
        "max": json_number(st.max),
    }


def feature_plot_id(stream_index: int, feature_index: int) -> str:
    """The id of a feature's distribution plot in the JSON's `plots` and the HTML."""
    return f"dist-{stream_index}-{feature_index}"


def report_json(report: Report) -> dict[str, Any]:
    """The report as `report.json` holds it (schema in SCHEMA_PATH)."""
    bins = report.settings.histogram_bins
    streams = []
    plots: list[dict[str, str]] = []
    for si, s in enumerate(report.streams):
        features = []
        for fi, f in enumerate(s.features):
            plot_id = feature_plot_id(si, fi)
            entry: dict[str, Any] = {
                "name": f.name,
                "unit": f.unit,
                "training": _stats_json(f.training),
                "deployment": None,
                "below_share": json_number(f.below_share),
                "above_share": json_number(f.above_share),
                "outside_share": json_number(f.outside_share),
                "novel_below_share": None,
                "novel_above_share": None,
                "histogram": None,
                "plot_id": None,
            }
            n = f.deployment_count
            if n:
                entry["deployment"] = {
                    "count": n,
                    "nan_count": int(f.values.size - n),
                    **f.deployment_quantiles(),
                }
                entry["novel_below_share"] = float(f.novel_below.sum()) / n
                entry["novel_above_share"] = float(f.novel_above.sum()) / n
                edges, training, deployment, clipped = distribution_grid(f.training, f.values, bins)
                entry["histogram"] = {
                    "edges": [float(e) for e in edges],
                    "training": [float(v) for v in training],
                    "deployment": [float(v) for v in deployment],
                    "clipped": clipped,
                }
                entry["plot_id"] = plot_id
                plots.append({"id": plot_id, "kind": "distribution", "title": f"{s.name} {f.name}"})
            features.append(entry)
        finite = s.scores[np.isfinite(s.scores)]
        streams.append(
            {
                "name": s.name,
                "topic": s.topic,
                "modality": s.modality,
                "msgtype": s.msgtype,
                "status": s.status,
                "note": s.note,
                "samples": s.samples,
                "observed_s": s.observed_s,
                "malformed": s.malformed,
                "threshold": s.threshold,
                "threshold_source": s.threshold_source,
                "alarm": None
                if s.alarm is None
                else {
                    "threshold": s.alarm.threshold,
                    "clear_threshold": s.alarm.clear_threshold,
                    "fire_k": s.alarm.fire_k,
                    "fire_n": s.alarm.fire_n,
                    "clear_n": s.alarm.clear_n,
                    "frame_rate_hz": s.alarm.frame_rate_hz,
                    "target_false_alarms_per_hour": s.alarm.target_false_alarms_per_hour,
                },
                "alarms_fired": len(s.episodes),
                "score_median": json_number(float(np.median(finite))) if finite.size else None,
                "score_max": json_number(float(np.max(finite))) if finite.size else None,
                "features": features,
            }
        )
    for i, _ in enumerate(report.recordings):
        plots.insert(i, {"id": f"timeline-{i}", "kind": "timeline", "title": f"timeline {i}"})
    return {
        "schema": REPORT_SCHEMA,
        "generated_ns": report.generated_ns,
        "build_seconds": report.build_seconds,
        "profile": {
            "path": report.profile_path or None,
            "digest": report.profile.digest(),
            "created_ns": int(report.profile.created_ns),
            "sources": [
                {"path": src.path, "size_bytes": int(src.size_bytes), "sha256": src.sha256}
                for src in report.profile.sources
            ],
            "streams": list(report.profile.streams),
        },
        "settings": {
            "image_rate_hz": report.conditions.image_rate_hz,
            "window_s": report.conditions.window_s,
            "hop_s": report.conditions.hop_s,
            "near_m": report.conditions.near_m,
            "conditions_source": report.conditions_source,
            "training_range": RANGE_NAME,
            "uncalibrated_threshold": report.settings.uncalibrated_threshold,
            "min_share": report.settings.min_share,
            "group_overlap": report.settings.group_overlap,
            "audit_motion": report.settings.audit_motion,
        },
        "criterion": CRITERION,
        "recordings": [
            {
                "path": r.path,
                "kind": r.kind,
                "start_time_ns": r.start_time_ns,
                "end_time_ns": r.end_time_ns,
                "duration_s": r.duration_s,
                "messages": r.messages,
                "messages_read": r.messages_read,
                "malformed": dict(r.malformed),
            }
            for r in report.recordings
        ],
        "streams": streams,
        "unprofiled_topics": [{"topic": t, "type": ty} for t, ty in report.unprofiled],
        "alarm_episodes": [
            {
                "stream": e.stream,
                "recording": e.recording,
                "start_ns": e.start_ns,
                "end_ns": e.end_ns,
                "peak_score": json_number(e.peak_score),
                "description": e.description,
                "open": e.open,
                "explained": report.explains(e),
            }
            for s in report.streams
            for e in s.episodes
        ],
        "targets": [_target_json(t) for t in report.targets],
        "snapshots": [_snapshot_json(s) for s in report.snapshots],
        "audit": report.audit.to_json_dict(),
        "plots": plots,
    }


def _target_feature_json(t: TargetFeature) -> dict[str, Any]:
    return {
        "feature": t.feature,
        "side": t.side,
        "cut": t.cut,
        "unit": t.unit,
        "edge": t.edge,
        "deployment_share": t.deployment_share,
        "training_share": t.training_share,
        "novel_share": t.novel_share,
        "severity": t.severity,
        "priority": t.priority,
        "median_novel_value": t.median_novel_value,
    }


def _target_json(t: CollectionTarget) -> dict[str, Any]:
    return {
        "rank": t.rank,
        "stream": t.stream,
        "text": t.text(),
        **_target_feature_json(t.lead),
        "related": [_target_feature_json(r) for r in t.related],
        "observed_s": t.observed_s,
        "episodes": [{"recording": r, "start_ns": a, "end_ns": b} for r, a, b in t.episodes],
        "snapshots": list(t.snapshots),
    }


def _snapshot_json(s: SnapshotEntry) -> dict[str, Any]:
    return {
        "name": s.name,
        "path": s.path,
        "time_ns": s.time_ns,
        "start_ns": s.start_ns,
        "end_ns": s.end_ns,
        "duration_s": json_number(s.duration_s),
        "size_bytes": s.size_bytes,
        "message_count": s.message_count,
        "truncated": s.truncated,
        "recording": s.recording,
        "problem": s.problem or None,
        "triggers": [
            {"time_ns": t.time_ns, "kind": t.kind, "reason": t.reason, "source": t.source, "top": list(t.top)}
            for t in s.triggers
        ],
    }


def comparison_json(c: ProfileComparison) -> dict[str, Any]:
    """The profile comparison as the JSON beside its page holds it."""
    return {
        "schema": COMPARE_SCHEMA,
        "a": {"label": c.a_label, "digest": c.a.digest(), "streams": list(c.a.streams)},
        "b": {"label": c.b_label, "digest": c.b.digest(), "streams": list(c.b.streams)},
        "training_range": RANGE_NAME,
        "features": [
            {
                "rank": i,
                "stream": f.stream,
                "feature": f.feature,
                "unit": f.unit,
                "overlap": f.overlap,
                "below_share": f.below_share,
                "above_share": f.above_share,
                "outside_share": f.outside_share,
                "a": _stats_json(f.a),
                "b": _stats_json(f.b),
                "text": f.text(),
                "plot_id": f"cmp-{i}",
            }
            for i, f in enumerate(c.features, start=1)
        ],
        "only_in_a": list(c.only_in_a),
        "only_in_b": list(c.only_in_b),
    }
