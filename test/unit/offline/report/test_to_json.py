"""report.json against its schema: the sim's report validates, a broken one does not."""

from __future__ import annotations

import json

import pytest

from gap_monitor.offline.report import report_json


@pytest.mark.slow
def test_schema_validator_rejects_broken_reports(sim_report, report_schema):
    data = report_json(sim_report)
    assert report_schema.errors(data) == []
    broken = json.loads(json.dumps(data))
    del broken["targets"]
    broken["streams"][0]["features"][0]["below_share"] = 1.5
    broken["snapshots"][0]["extra"] = 1
    errors = report_schema.errors(broken)
    assert any("missing 'targets'" in e for e in errors)
    assert any("below_share" in e and "maximum" in e for e in errors)
    assert any("unexpected key 'extra'" in e for e in errors)
    found = report_schema.keywords()
    assert found <= report_schema.SUPPORTED_KEYWORDS, found - report_schema.SUPPORTED_KEYWORDS
