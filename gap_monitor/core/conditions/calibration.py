"""A calibrated profile from recorded feature streams: cross-fitted held-out scores calibrate each
stream's alarm.

``build_calibrated_profile`` gets its held-out scores by cross-fitting (each block of the recording
scored by a profile built without it). Measured on synthetic camera-feature streams (AR(1)
illumination and texture, 5 Hz): profiles from 2 h of data, calibrated for 1 false alarm per hour,
gave 0-0.4 alarms/h over 10 further hours each (12 seeds; thresholds 3.3-4.6).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from functools import partial

import numpy as np

from gap_monitor.core.conditions.alarm import (
    INSTANT_FACTOR,
    FloatArray,
    InsufficientDataError,
    calibrate,
    evidence_statistic,
    persistence_statistic,
)
from gap_monitor.core.conditions.persistence import DEFAULT_PERSISTENCE
from gap_monitor.core.conditions.profile import AlarmCalibration, FeatureSample, Profile, SourceRecording
from gap_monitor.core.conditions.profile_builder import ProfileBuilder
from gap_monitor.core.conditions.scoring import StreamScorer

# ----------------------------------------------------------------------------------------------
# From recorded feature streams to a calibrated profile


def fold_blocks(count: int, folds: int, blocks_per_fold: int = 2) -> list[list[tuple[int, int]]]:
    """(start, stop) index ranges of each fold: the recording is cut into folds * blocks_per_fold
    contiguous blocks and block b belongs to fold b % folds, so every fold is spread over the
    recording and held-out frames keep their real frame-to-frame correlation (random frames would
    sit next to near-identical training frames)."""
    if folds < 2:
        raise ValueError(f"folds={folds!r}: must be >= 2")
    if blocks_per_fold < 1:
        raise ValueError(f"blocks_per_fold={blocks_per_fold!r}: must be >= 1")
    blocks = folds * blocks_per_fold
    bounds = [round(b * count / blocks) for b in range(blocks + 1)]
    return [
        [(bounds[b], bounds[b + 1]) for b in range(fold, blocks, folds) if bounds[b + 1] > bounds[b]]
        for fold in range(folds)
    ]


def build_calibrated_profile(
    samples: Iterable[FeatureSample],
    *,
    folds: int = 5,
    blocks_per_fold: int = 2,
    frame_rate_hz: float | Mapping[str, float] | None = None,
    target_false_alarms_per_hour: float = 1.0,
    fire_k: int = DEFAULT_PERSISTENCE.k,
    fire_n: int = DEFAULT_PERSISTENCE.n,
    clear_n: int = 10,
    safety_factor: float = 2.0,
    min_threshold: float = 2.0,
    evidence_rule: bool = True,
    sources: Sequence[SourceRecording] = (),
    histogram_bins: int = 64,
    shrinkage: float | None = None,
    created_ns: int | None = None,
) -> Profile:
    """Profile of per-frame feature dicts, each stream's alarm calibrated on held-out data.

    Cross-fitting: per stream (in time order), each fold of ``fold_blocks`` is held out in turn,
    scored against a profile built from the other folds, and all the held-out score segments
    calibrate the alarm; the returned profile is built from all the data. Every frame is thus
    held out once (an hour of recording gives an hour of held-out scores rather than 1/folds of
    it), and the final profile, having seen more, scores in-distribution data no higher than
    the fold profiles did, which keeps the calibration conservative.

    ``frame_rate_hz`` is the rate the monitor will score at (one for all streams, or per stream);
    when the recording is faster, held-out frames are decimated to it. None: the recording's own
    rate. A stream with too little data (fewer than 10 persistence values) gets no alarm.
    """
    by_stream: dict[str, list[FeatureSample]] = {}
    for sample in samples:
        by_stream.setdefault(sample.stream, []).append(sample)
    builder = ProfileBuilder(histogram_bins=histogram_bins, shrinkage=shrinkage)
    for stream_samples in by_stream.values():
        stream_samples.sort(key=lambda s: s.time_ns)
        builder.add_samples(stream_samples)
    profile = builder.build(sources=sources, created_ns=created_ns)
    for name, stream_samples in by_stream.items():
        rate = frame_rate_hz.get(name) if isinstance(frame_rate_hz, Mapping) else frame_rate_hz
        data_rate = _sample_rate_hz([stream_samples])
        if rate is None:
            rate = data_rate
        if rate is None or not rate > 0:
            continue
        series: list[FloatArray] = []
        segments: list[list[FeatureSample]] = []
        for ranges in fold_blocks(len(stream_samples), folds, blocks_per_fold):
            held = np.zeros(len(stream_samples), dtype=bool)
            for start, stop in ranges:
                held[start:stop] = True
            if held.all() or not held.any():
                continue
            fold_builder = ProfileBuilder(histogram_bins=histogram_bins, shrinkage=shrinkage)
            fold_builder.add_samples(s for s, out in zip(stream_samples, held, strict=True) if not out)
            scorer = StreamScorer(fold_builder.build(created_ns=0).stream(name), name)
            for start, stop in ranges:
                segment = stream_samples[start:stop]
                if data_rate is not None and data_rate > 1.5 * rate:
                    segment = _decimate(segment, rate)
                series.append(scorer.scores(s.features for s in segment))
                segments.append(segment)

        calibrated = partial(
            calibrate,
            frame_rate_hz=rate,
            target_false_alarms_per_hour=target_false_alarms_per_hour,
            fire_k=fire_k,
            fire_n=fire_n,
            clear_n=clear_n,
            safety_factor=safety_factor,
            min_threshold=min_threshold,
            evidence_rule=evidence_rule,
        )
        try:
            alarm = calibrated(series)
            alarm = _without_unrepresented_block(
                alarm, series, segments, StreamScorer(profile.stream(name), name), fire_k, fire_n, calibrated
            )
        except InsufficientDataError:
            continue  # the stream is profiled but has no alarm
        profile = profile.with_alarm(name, alarm)
    return profile


# How far above the other blocks' threshold a block's held-out peak must be to count as a condition
# no other block has. Measured: EuRoC's motors-off start peaks at 5x the flight blocks' threshold; on
# the sim the highest ordinary block peaks at 2.3x (a rare pose, which must keep counting).
UNREPRESENTED_FACTOR = 4.0


def _without_unrepresented_block(
    alarm: AlarmCalibration,
    series: Sequence[FloatArray],
    segments: Sequence[Sequence[FeatureSample]],
    full_scorer: StreamScorer,
    fire_k: int,
    fire_n: int,
    calibrated: Callable[..., AlarmCalibration],
) -> AlarmCalibration:
    """Cross-fitting scores each block against the others, so a condition that only one block
    contains (a motors-off start, a single visit to a bright room) looks novel when held out and
    lifts the threshold until real novelty goes unseen. Such a block is in the profile, though, and
    deployment that revisits it is scored against the profile it is in. So when the block with the
    highest held-out peak exceeds the threshold of the other blocks by UNREPRESENTED_FACTOR, the
    threshold comes from the other blocks, floored at that block's peak when scored against the full
    profile (what deployment in that condition would score)."""
    if len(series) < 3:
        return alarm
    peaks = [float(np.max(persistence_statistic(s, fire_k, fire_n), initial=-np.inf)) for s in series]
    worst = int(np.argmax(peaks))
    others = [s for i, s in enumerate(series) if i != worst]
    try:
        rest = calibrated(others)
    except InsufficientDataError:
        return alarm
    if not peaks[worst] > UNREPRESENTED_FACTOR * rest.threshold:
        return alarm
    segment = segments[worst]
    in_profile = full_scorer.scores(s.features for s in segment)
    peak_in = float(np.max(persistence_statistic(in_profile, fire_k, fire_n), initial=-np.inf))
    start_s = (segment[0].time_ns - segments[0][0].time_ns) / 1e9 if segment else 0.0
    note = (
        f"; one block ({len(segment)} samples from t+{start_s:.1f} s) unlike the rest: held out it peaks at "
        f"{peaks[worst]:.1f}, against the full profile at {peak_in:.1f}; threshold from the other blocks"
    )
    threshold = max(rest.threshold, peak_in)
    instant = max(rest.instant_threshold, float(np.max(in_profile, initial=0.0)), INSTANT_FACTOR * threshold)
    evidence = rest.evidence_threshold
    if evidence > 0:
        peak = evidence_statistic(in_profile, rest.evidence_reference)
        evidence = max(evidence, float(np.max(peak, initial=0.0)))
    return replace(
        rest,
        threshold=threshold,
        instant_threshold=instant,
        evidence_threshold=evidence,
        clear_threshold=min(rest.clear_threshold, 0.75 * threshold),
        held_out_samples=alarm.held_out_samples,
        method=rest.method + note,
    )


def _sample_rate_hz(segments: Sequence[Sequence[FeatureSample]]) -> float | None:
    intervals = sum(max(0, len(segment) - 1) for segment in segments)
    duration_ns = sum(segment[-1].time_ns - segment[0].time_ns for segment in segments if segment)
    if intervals == 0 or duration_ns <= 0:
        return None
    return intervals / (duration_ns * 1e-9)


def _decimate(segment: Sequence[FeatureSample], rate_hz: float) -> list[FeatureSample]:
    """Keep a frame when at least 0.9 periods have passed since the last kept one (jitter-tolerant)."""
    min_gap_ns = 0.9e9 / rate_hz
    kept: list[FeatureSample] = []
    for sample in segment:
        if not kept or sample.time_ns - kept[-1].time_ns >= min_gap_ns:
            kept.append(sample)
    return kept
