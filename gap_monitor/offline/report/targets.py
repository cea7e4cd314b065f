"""The collection targets: conditions the deployment met that the training data did not cover.

Collection targets (the criterion). A deployment sample of a feature is *novel* on one side when
it is outside the training range on that side and the feature alone would take the stream's score
over the calibrated alarm threshold T of the profile: its score -log10(min(1, 2 m p)), with p the
two-sided tail probability of the monitor's own tail model (`scoring.TailTable`) and m the stream's
scored features (the Bonferroni factor of the stream score), is at least T. A stream without a
calibrated alarm uses `ReportSettings.uncalibrated_threshold` (said in the report). Novel samples
count only when they persist as the alarm requires: at least fire_k of fire_n consecutive samples
(the calibration's, default 3 of 5) are novel on that side. Since T is set so that held-out
training data exceeds it at most at the calibrated false-alarm rate, a feature side is a collection
target when its persistent novel samples cover at least `min_share` of the stream's samples: more
than a calibrated profile lets in-distribution data do. The sentence a data team acts on names a
cut X: on the low side the least extreme persistent novel value, rounded outward to a round number
and never beyond p1 (mirrored on the high side), with the deployment share beyond X and the
training share beyond X read from the profile's histogram (uniform within each bin).

Severity is the median score of the persistent novel samples. Targets are ranked by
priority = novel share x min(1, severity / (2 T)): the time a condition is certainly outside the
training data, discounted by up to half for conditions only just past the threshold; ties go to
the feature registry's order, which lists the primary features first. Feature sides of the same
stream whose novel samples coincide (overlap of at least `group_overlap` of the smaller set) are
one condition: the highest-priority one names it, the others are listed with it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from gap_monitor.core.conditions.features import FEATURE_SPECS, JOINT_SEPARATOR
from gap_monitor.core.conditions.persistence import DEFAULT_PERSISTENCE
from gap_monitor.offline.report.histograms import share_below
from gap_monitor.offline.report.model import (
    BoolArray,
    CollectionTarget,
    FeatureReport,
    ReportSettings,
    SnapshotEntry,
    StreamReport,
    TargetFeature,
)

__all__ = ["collection_targets", "round_cut"]


def _registry_order(modality: str, feature: str) -> int:
    base = feature.split(JOINT_SEPARATOR, 1)[0] if modality == "joints" else feature
    for i, spec in enumerate(FEATURE_SPECS.get(modality, ())):
        if spec.name == base:
            return i
    return len(FEATURE_SPECS.get(modality, ()))


def _target_feature(
    stream: StreamReport, feature: FeatureReport, side: str, settings: ReportSettings
) -> TargetFeature | None:
    novel = feature.novel_below if side == "below" else feature.novel_above
    n = feature.deployment_count
    count = int(novel.sum())
    if n == 0 or count == 0 or count / n < settings.min_share:
        return None
    st = feature.training
    values = feature.values
    finite = values[np.isfinite(values)]
    novel_values = values[novel]
    if side == "below":
        cut = round_cut(float(np.max(novel_values)), st.p1, side)
        deployment_share = float((finite <= cut).sum()) / n
        training_share = share_below(st, cut, strict=False)
        edge = st.p1
    else:
        cut = round_cut(float(np.min(novel_values)), st.p99, side)
        deployment_share = float((finite >= cut).sum()) / n
        training_share = 1.0 - share_below(st, cut, strict=True)
        edge = st.p99
    severity = float(np.median(feature.scores[novel]))
    novel_share = count / n
    priority = novel_share * min(1.0, severity / (2.0 * stream.threshold))
    return TargetFeature(
        stream=stream.name,
        feature=feature.name,
        side=side,
        cut=float(cut),
        unit=feature.unit,
        edge=float(edge),
        deployment_share=deployment_share,
        training_share=max(0.0, min(1.0, training_share)),
        novel_share=novel_share,
        severity=severity,
        priority=priority,
        median_novel_value=float(np.median(novel_values)),
    )


def round_cut(value: float, edge: float, side: str) -> float:
    """The roundest number between `value` and halfway to the training `edge` (below: `value` <=
    edge; above: `value` >= edge), nearest to `value`; `value` itself when there is none."""
    if side == "below":
        low, high = value, value + (edge - value) / 2.0
    else:
        low, high = value - (value - edge) / 2.0, value
    if not (math.isfinite(low) and math.isfinite(high)) or not high > low:
        return value
    exponent = math.floor(math.log10(max(abs(low), abs(high), high - low))) + 1
    for e in range(exponent, exponent - 15, -1):
        for mantissa in (1.0, 0.5, 0.2):
            step = mantissa * 10.0**e
            candidate = math.ceil(low / step) * step if side == "below" else math.floor(high / step) * step
            if low <= candidate <= high:
                return float(round(candidate, 12) + 0.0)
    return value


def collection_targets(
    streams: Sequence[StreamReport], settings: ReportSettings, snapshots: Sequence[SnapshotEntry]
) -> tuple[CollectionTarget, ...]:
    """The streams' collection targets, ranked, at most `settings.max_targets` (module notes)."""
    groups: list[tuple[tuple[float, int, str, int], CollectionTarget]] = []
    for stream in streams:
        candidates: list[tuple[TargetFeature, BoolArray, int]] = []
        for feature in stream.features:
            for side in ("below", "above"):
                target = _target_feature(stream, feature, side, settings)
                if target is not None:
                    mask = feature.novel_below if side == "below" else feature.novel_above
                    candidates.append((target, mask, _registry_order(stream.modality, feature.name)))
        candidates.sort(key=lambda c: (-c[0].priority, c[2], c[0].feature, c[0].side))
        used = [False] * len(candidates)
        for i, (lead, lead_mask, order) in enumerate(candidates):
            if used[i]:
                continue
            used[i] = True
            related = []
            for j in range(i + 1, len(candidates)):
                other, mask, _ = candidates[j]
                if used[j]:
                    continue
                overlap = int((lead_mask & mask).sum())
                if overlap >= settings.group_overlap * min(int(lead_mask.sum()), int(mask.sum())):
                    used[j] = True
                    related.append(other)
            episodes = _episodes(stream, lead_mask)
            names = tuple(
                s.name
                for s in snapshots
                if s.start_ns is not None
                and s.end_ns is not None
                and any(s.start_ns <= end and s.end_ns >= start for _, start, end in episodes)
            )
            key = (-lead.priority, order, stream.name, 0 if lead.side == "below" else 1)
            groups.append(
                (key, CollectionTarget(0, lead, tuple(related), episodes, names, stream.observed_s))
            )
    groups.sort(key=lambda g: g[0])
    return tuple(
        replace(target, rank=rank) for rank, (_, target) in enumerate(groups[: settings.max_targets], start=1)
    )


def _episodes(stream: StreamReport, mask: BoolArray) -> tuple[tuple[int, int, int], ...]:
    """Runs of novel samples (a gap of up to the alarm's window joins them), per recording."""
    window = (stream.alarm.persistence if stream.alarm is not None else DEFAULT_PERSISTENCE).n
    out = []
    for rec in np.unique(stream.recording_index):
        where = np.flatnonzero((stream.recording_index == rec) & mask)
        if where.size == 0:
            continue
        breaks = np.flatnonzero(np.diff(where) > window)
        starts = np.concatenate([[where[0]], where[breaks + 1]])
        ends = np.concatenate([where[breaks], [where[-1]]])
        out += [
            (int(rec), int(stream.times_ns[a]), int(stream.times_ns[b]))
            for a, b in zip(starts, ends, strict=True)
        ]
    return tuple(out)
