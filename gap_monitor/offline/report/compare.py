"""`gap-monitor profile compare`: how much of profile B's conditions profile A covers, without
recordings.

`profile compare A B` compares two profiles without recordings: per feature, the overlap of the two
distributions (sum over common bins of the smaller share, both histograms uniform within a bin) and
the share of B outside A's p1-p99 estimated from B's histogram, ranked by that share. Shares read
from a histogram (this one, and the training share of a target's cut) are kept within the bounds
the stored quantiles imply: otherwise an atom (an integer level, a saturated value) at a bin edge
would be spread over its whole bin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gap_monitor.core.conditions.profile import FeatureStats, Profile
from gap_monitor.core.conditions.scoring import format_value
from gap_monitor.offline.report.histograms import common_edges, rebin, share_below
from gap_monitor.offline.report.words import RANGE_NAME, percent

__all__ = ["FeatureComparison", "ProfileComparison", "compare_profiles"]


@dataclass(frozen=True)
class FeatureComparison:
    """One feature of a stream in both profiles: B's share outside A's training range, and the overlap."""

    stream: str
    feature: str
    unit: str
    a: FeatureStats
    b: FeatureStats
    overlap: float  # sum over common bins of the smaller share (1: same histogram)
    below_share: float  # share of B below A's p1 (from B's histogram)
    above_share: float

    @property
    def outside_share(self) -> float:
        return self.below_share + self.above_share

    def text(self) -> str:
        parts = []
        if self.below_share > 0:
            parts.append(f"below {format_value(self.a.p1)}: {percent(self.below_share)}")
        if self.above_share > 0:
            parts.append(f"above {format_value(self.a.p99)}: {percent(self.above_share)}")
        where = f" ({', '.join(parts)})" if parts else ""
        return (
            f"{self.stream}: {self.feature}: {percent(self.outside_share)} of B outside A's {RANGE_NAME}"
            f"{where}; overlap {self.overlap:.2f}"
        )


@dataclass(frozen=True)
class ProfileComparison:
    """Profile B against profile A, feature by feature, most of B outside A first."""

    a_label: str
    b_label: str
    a: Profile
    b: Profile
    features: tuple[FeatureComparison, ...]  # ranked: most of B outside A first
    only_in_a: tuple[str, ...]  # "stream" or "stream feature"
    only_in_b: tuple[str, ...]
    histogram_bins: int = 48

    def format_text(self, limit: int = 30) -> str:
        lines = [f"A = {self.a_label}", f"B = {self.b_label}", ""]
        lines.append(f"features ranked by the share of B outside A's {RANGE_NAME} (about 2 % if alike):")
        for i, f in enumerate(self.features[:limit], start=1):
            lines.append(f"{i:3d}. {f.text()}")
        if len(self.features) > limit:
            lines.append(f"     ... and {len(self.features) - limit} more")
        if self.only_in_a:
            lines.append("only in A: " + ", ".join(self.only_in_a))
        if self.only_in_b:
            lines.append("only in B: " + ", ".join(self.only_in_b))
        return "\n".join(lines)


def compare_profiles(
    a: Profile, b: Profile, a_label: str = "A", b_label: str = "B", histogram_bins: int = 48
) -> ProfileComparison:
    """How much of profile B's conditions profile A covers, per feature (module notes)."""
    rows = []
    only_a: list[str] = [s for s in a.streams if s not in b.streams]
    only_b: list[str] = [s for s in b.streams if s not in a.streams]
    for name, sa in a.streams.items():
        sb = b.streams.get(name)
        if sb is None:
            continue
        for feature, fa in sa.features.items():
            fb = sb.features.get(feature)
            if fb is None:
                only_a.append(f"{name} {feature}")
                continue
            if fa.count == 0 or fb.count == 0:
                continue
            edges = common_edges(fa, fb, histogram_bins)
            overlap = float(np.minimum(rebin(fa.histogram, edges), rebin(fb.histogram, edges)).sum())
            below = share_below(fb, fa.p1, strict=True)
            above = 1.0 - share_below(fb, fa.p99, strict=False)
            rows.append(
                FeatureComparison(
                    name,
                    feature,
                    fa.unit or fb.unit,
                    fa,
                    fb,
                    min(1.0, overlap),
                    max(0.0, below),
                    max(0.0, above),
                )
            )
        only_b += [f"{name} {f}" for f in sb.features if f not in sa.features]
    rows.sort(key=lambda r: (-r.outside_share, r.overlap, r.stream, r.feature))
    return ProfileComparison(
        a_label, b_label, a, b, tuple(rows), tuple(only_a), tuple(only_b), histogram_bins
    )
