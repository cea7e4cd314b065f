"""The report's and the comparison's pages: self-contained files, every plot of the JSON on the page."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gap_monitor.offline.report import compare_profiles
from gap_monitor.render.report_html import write_comparison, write_report
from gap_monitor.sim.rig import DEFAULT_TOPICS


@pytest.mark.slow
def test_report_files_are_self_contained_and_json_validates(sim_report, tmp_path, report_schema):
    html_path, json_path = write_report(sim_report, tmp_path / "report.html")
    assert json_path == tmp_path / "report.json"
    data = json.loads(json_path.read_text())
    assert report_schema.errors(data) == []
    text = html_path.read_text()
    for external in ("http://", "https://", "src=", "<link", "<script", "url(", "@import"):
        assert external not in text, external
    ids = [p["id"] for p in data["plots"]]
    assert len(ids) == len(set(ids)) == text.count('<svg class="plot"')
    for plot_id in ids:
        assert f'<svg class="plot" id="{plot_id}"' in text
    kinds = {p["kind"] for p in data["plots"]}
    assert kinds == {"distribution", "timeline"}
    # Every feature with deployment values has its overlay, with units on the axis.
    lum = next(f for s in data["streams"] if s["name"] == DEFAULT_TOPICS["camera"] for f in s["features"]
               if f["name"] == "mean_luminance")  # fmt: skip
    assert lum["plot_id"] in ids and "level (0-255)" in text
    assert data["targets"][0]["text"] in [t.text() for t in sim_report.targets]


def test_compare_writes_html_and_json(tmp_path, camera_profile):
    rng = np.random.default_rng(2)
    a = camera_profile({"mean_luminance": rng.normal(120, 10, 500)})
    b = camera_profile({"mean_luminance": rng.normal(60, 10, 500), "sharpness": rng.normal(5, 1, 500)})
    html_path, json_path = write_comparison(compare_profiles(a, b), tmp_path / "compare.html")
    data = json.loads(json_path.read_text())
    assert data["features"][0]["feature"] == "mean_luminance"
    assert data["features"][0]["below_share"] > 0.95
    assert data["only_in_b"] == ["/cam sharpness"]
    assert '<svg class="plot" id="cmp-1"' in html_path.read_text()
