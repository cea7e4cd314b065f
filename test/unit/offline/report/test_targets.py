"""Collection targets: the sim's scripted darkness and force drift come first, in words; cuts are
round numbers."""

from __future__ import annotations

import pytest

from gap_monitor.offline.report import Report, round_cut
from gap_monitor.sim.rig import DEFAULT_TOPICS

NS = 1_000_000_000
LUMINANCE = {"mean_luminance", "luminance_p5", "luminance_p95"}


def _seconds(report: Report, ns: int, recording: int = 0) -> float:
    return (ns - report.recordings[recording].start_time_ns) / NS


@pytest.mark.slow
def test_sim_darkness_and_force_drift_are_the_top_two_collection_targets(deployment_sim, sim_report):
    darkness, drift_window = deployment_sim.dark, deployment_sim.drift
    top = sim_report.targets[:2]
    assert len(top) == 2, [t.text() for t in sim_report.targets]
    by_stream = {t.stream: t for t in top}
    assert set(by_stream) == {DEFAULT_TOPICS["camera"], DEFAULT_TOPICS["wrench"]}, [t.text() for t in top]

    dark = by_stream[DEFAULT_TOPICS["camera"]]
    assert dark.lead.side == "below"
    assert {dark.lead.feature, *(r.feature for r in dark.related)} & LUMINANCE
    # 12 s of 40 s were dark; the training never was.
    assert dark.lead.deployment_share == pytest.approx((darkness[1] - darkness[0]) / 40.0, abs=0.05)
    assert dark.lead.training_share < 0.01
    assert dark.lead.cut < dark.lead.edge
    (episode,) = dark.episodes
    assert _seconds(sim_report, episode[1]) == pytest.approx(darkness[0], abs=1.0)
    assert _seconds(sim_report, episode[2]) == pytest.approx(darkness[1], abs=1.0)

    drift = by_stream[DEFAULT_TOPICS["wrench"]]
    assert drift.lead.side == "above" and drift.lead.feature.startswith("force")
    assert drift.lead.training_share < 0.01
    (episode,) = drift.episodes
    # Once it left the range:
    assert drift_window[0] <= _seconds(sim_report, episode[1]) < drift_window[0] + 6.0
    assert _seconds(sim_report, episode[2]) == pytest.approx(drift_window[1], abs=1.0)

    text = dark.text()
    assert f"{dark.lead.feature} below" in text and "of deployment time" in text and "of training" in text


def test_round_cut_is_a_round_number_between_the_value_and_halfway_to_the_edge():
    assert round_cut(43.3, 145.1, "below") == 50
    assert round_cut(-0.3, 0.5, "below") == 0
    assert round_cut(1037.2, 1027.0, "above") == 1035
    small = round_cut(0.0317, 0.000119, "above")
    assert (0.0317 + 0.000119) / 2 <= small <= 0.0317
    assert float(f"{small:.1g}") == pytest.approx(small)  # one significant digit
    for value, edge, side in ((43.3, 145.1, "below"), (1037.2, 1027.0, "above"), (7.0, 7.0, "below")):
        cut = round_cut(value, edge, side)
        assert min(value, edge) <= cut <= max(value, edge)
