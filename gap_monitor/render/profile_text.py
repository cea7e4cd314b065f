"""A training-condition profile in words: `gap-monitor profile show` and the build summary."""

from __future__ import annotations

from datetime import datetime, timezone

from gap_monitor.core.conditions.profile import Profile, StreamProfile
from gap_monitor.core.conditions.scoring import format_value
from gap_monitor.core.units import NS_PER_S


def describe_alarm(stream: StreamProfile) -> str:
    alarm = stream.alarm
    if alarm is None:
        return "no calibrated alarm (too little data, or a merged profile)"
    parts = [f"{alarm.fire_k} of {alarm.fire_n} scores > {format_value(alarm.threshold)}"]
    if alarm.instant_threshold > 0:
        parts.append(f"one score > {format_value(alarm.instant_threshold)}")
    if alarm.evidence_threshold > 0:
        parts.append(
            f"the running sum of score - {format_value(alarm.evidence_reference)} > "
            f"{format_value(alarm.evidence_threshold)}"
        )
    rules = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]
    return (
        f"alarm when {rules}, clears after {alarm.clear_n} < {format_value(alarm.clear_threshold)} "
        f"(scored at {alarm.frame_rate_hz:g} Hz, {alarm.target_false_alarms_per_hour:g} false alarm/h)"
    )


def format_profile(profile: Profile, origin: str = "") -> str:
    """A readable summary: sources, then per stream its modality, sample count, alarm, and each
    feature's p1 / p50 / p99 with its unit."""
    lines = []
    created = (
        datetime.fromtimestamp(profile.created_ns / NS_PER_S, tz=timezone.utc).strftime(
            "%Y-%m-%d %H:%M:%S UTC"
        )
        if profile.created_ns
        else "unknown"
    )
    head = f"{origin}: " if origin else ""
    lines.append(
        f"{head}profile schema {profile.schema_version}, created {created}, "
        f"{len(profile.streams)} stream(s), digest {profile.digest()[:12]}"
    )
    if profile.sources:
        lines.append("sources:")
        for s in profile.sources:
            lines.append(f"  {s.path} ({s.size_bytes / 1e6:.1f} MB, sha256 {s.sha256[:12]})")
    for name, stream in profile.streams.items():
        span = max(0, stream.last_time_ns - stream.first_time_ns) / NS_PER_S
        lines.append("")
        lines.append(f"{name}  [{stream.modality}]  {stream.sample_count} samples over {span:.1f} s")
        lines.append(f"  {describe_alarm(stream)}")
        rows = [("feature", "p1", "p50", "p99", "unit")]
        for feature, stats in stream.features.items():
            if stats.count == 0:
                rows.append((feature, "-", "-", "-", stats.unit))
                continue
            rows.append((
                feature,
                format_value(stats.quantile("p1")),
                format_value(stats.quantile("p50")),
                format_value(stats.quantile("p99")),
                stats.unit,
            ))  # fmt: skip
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        for row in rows:
            cells = [row[0].ljust(widths[0])] + [row[i].rjust(widths[i]) for i in (1, 2, 3)]
            lines.append("  " + "  ".join(cells) + "  " + row[4])
    return "\n".join(lines)
