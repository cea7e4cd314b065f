"""The benchmark report helpers: ratios and target checks, number formatting, tables, JSON output."""

import json
import math
from pathlib import Path

import pytest

from bench.report import (
    SCHEMA_VERSION,
    BenchResult,
    Row,
    Table,
    at_most,
    compare_lines,
    format_number,
    format_ratio,
    format_table,
    jsonable,
    not_below,
    ratio,
    ratio_at_most,
    render_result,
    run_document,
    verdict_lines,
    write_json,
)


def test_ratio_divides_and_refuses_what_cannot_be_divided():
    assert ratio(3.0, 2.0) == pytest.approx(1.5)
    assert ratio(None, 2.0) is None
    assert ratio(3.0, None) is None
    assert ratio(3.0, 0.0) is None
    assert ratio(3.0, -1.0) is None
    assert ratio(math.nan, 2.0) is None
    assert ratio(3.0, math.inf) is None


def test_ratio_at_most_is_inclusive_and_undecided_without_a_baseline():
    assert ratio_at_most(1.3, 1.0, 1.3) is True
    assert ratio_at_most(1.31, 1.0, 1.3) is False
    assert ratio_at_most(0.5, 1.0, 1.3) is True
    assert ratio_at_most(1.0, None, 1.3) is None
    assert ratio_at_most(1.0, 0.0, 1.3) is None


def test_not_below_allows_the_tolerance_and_no_more():
    assert not_below(29.8, 30.0, tolerance=0.3) is True
    assert not_below(29.6, 30.0, tolerance=0.3) is False
    assert not_below(30.0, 30.0) is True
    assert not_below(None, 30.0) is None
    assert not_below(30.0, None) is None


def test_at_most():
    assert at_most(200.0, 200.0) is True
    assert at_most(200.1, 200.0) is False
    assert at_most(None, 200.0) is None


@pytest.mark.parametrize("x", [0.0123, 0.5, 1.234, 42.42, 123.45, 999.8, 1000.0, 25_000.0, -3.5])
def test_format_number_keeps_about_three_significant_figures(x):
    text = format_number(x)
    assert float(text) == pytest.approx(x, rel=0.01, abs=0.001)
    assert len(text.lstrip("-").replace(".", "")) <= 6


def test_format_number_and_ratio_show_missing_values_as_a_dash():
    assert format_number(None) == "-"
    assert format_number(math.nan) == "-"
    assert format_number(math.inf) == "-"
    assert format_ratio(None) == "-"
    assert format_ratio(1.234) == "1.23x"


def test_format_table_aligns_columns():
    text = format_table(("name", "value"), [("cpu", "0.25"), ("a longer metric", "1234")])
    lines = text.splitlines()
    assert len(lines) == 4
    header, rule, *rows = lines
    # Right-aligned numbers end in the same column; the rule spans every column.
    assert len({len(line) for line in (header, *rows)}) == 1
    assert rows[0].endswith("0.25") and rows[1].endswith("1234")
    assert rule.replace(" ", "").strip("-") == ""
    assert len(rule) == len(header)


def test_format_table_rejects_a_row_with_the_wrong_number_of_cells():
    with pytest.raises(ValueError):
        format_table(("a", "b"), [("1", "2", "3")])


def test_table_validates_its_rows():
    with pytest.raises(ValueError, match=r"rows\[1\]"):
        Table("t", ("a", "b"), (("1", "2"), ("only one",)))


def test_row_ratio_and_result_verdict():
    ok = Row("cpu", 1.2, 1.0, "cpu-s/s", "<= 1.3x", passed=True)
    miss = Row("rate", 900.0, 1000.0, "Hz", ">= no-op", passed=False)
    info = Row("rss", 150.0, 100.0, "MB")
    assert ok.ratio == pytest.approx(1.2)
    assert BenchResult("b", "t", (info,)).passed is None
    assert BenchResult("b", "t", (ok, info)).passed is True
    assert BenchResult("b", "t", (ok, miss, info)).passed is False


def test_render_result_shows_rows_verdict_tables_and_notes():
    result = BenchResult(
        "live",
        "monitor vs no-op",
        (
            Row("cpu", 0.5, 0.25, "cpu-s/s", "<= 1.3x no-op", passed=False),
            Row("rss", 150.0, 100.0, "MB"),
        ),
        value_label="monitor",
        baseline_label="no-op",
        tables=(Table("per phase", ("#", "kind"), (("1", "noop"),)),),
        notes=("machine was busy",),
    )
    text = render_result(result)
    assert "TARGET MISSED" in text
    assert "monitor" in text and "no-op" in text
    cpu_line = next(line for line in text.splitlines() if line.startswith("cpu"))
    assert "2.00x" in cpu_line and "MISS" in cpu_line
    rss_line = next(line for line in text.splitlines() if line.startswith("rss"))
    assert "1.50x" in rss_line and "MISS" not in rss_line
    assert "per phase" in text and "note: machine was busy" in text


def test_jsonable_turns_non_json_values_into_json_ones():
    value = {"a": math.nan, "b": (1, 2.5, math.inf), "c": Path("/x/y"), 3: {"d": None, "e": True}}
    out = jsonable(value)
    assert out == {"a": None, "b": [1, 2.5, None], "c": "/x/y", "3": {"d": None, "e": True}}
    json.dumps(out, allow_nan=False)


def test_run_document_carries_machine_facts_and_results():
    result = BenchResult("live", "t", (Row("cpu", 1.0, 2.0, passed=True), Row("rss", math.nan)))
    doc = run_document(
        [result],
        {"cores": 2, "cpu_model": "test cpu"},
        started_ns=1,
        finished_ns=2,
        argv=["--only", "live"],
        errors={"other": "boom"},
    )
    assert doc["schema_version"] == SCHEMA_VERSION
    assert doc["machine"] == {"cores": 2, "cpu_model": "test cpu"}
    assert doc["argv"] == ["--only", "live"]
    assert doc["errors"] == {"other": "boom"}
    (res,) = doc["results"]
    assert res["name"] == "live" and res["passed"] is True
    assert res["rows"][0]["ratio"] == pytest.approx(0.5)
    assert res["rows"][1]["value"] is None
    json.dumps(doc, allow_nan=False)


def test_write_json_creates_folders_and_leaves_only_the_file(tmp_path):
    target = tmp_path / "results" / "nested" / "latest.json"
    doc = {"x": [1, 2], "y": math.nan}
    assert write_json(target, doc) == target
    assert json.loads(target.read_text()) == {"x": [1, 2], "y": None}
    assert [p.name for p in target.parent.iterdir()] == ["latest.json"]
    # Overwriting replaces the whole content.
    write_json(target, {"z": 1})
    assert json.loads(target.read_text()) == {"z": 1}


def test_verdict_lines_count_targets_and_name_each_miss():
    results = [
        BenchResult("a", "A", (Row("cpu", 1.5, 1.0, target="<= 1.3x", passed=False),
                               Row("rate", 30.0, 30.0, target=">= no-op", passed=True),
                               Row("rss", 100.0))),
        BenchResult("b", "B", (Row("speed", 2.0, 1.0, target=">= 0.5x", passed=True),)),
    ]
    lines = verdict_lines(results)
    assert lines[0] == "targets: 2 of 3 met"
    assert len(lines) == 2
    assert "MISS a: cpu" in lines[1] and "1.50x" in lines[1] and "<= 1.3x" in lines[1]


def test_compare_lines_put_each_targeted_ratio_beside_the_earlier_one():
    before = run_document(
        [BenchResult("a", "A", (Row("cpu", 1.5, 1.0, target="<= 1.3x", passed=False),
                                Row("gone", 1.0, 1.0, target="x", passed=True)))],
        {}, started_ns=0, finished_ns=1, argv=[],
    )
    now = [BenchResult("a", "A", (Row("cpu", 1.2, 1.0, target="<= 1.3x", passed=True),
                                  Row("new", 1.0, 1.0, target="x", passed=True)))]
    text = "\n".join(compare_lines(before, now))
    assert "1.50x" in text and "1.20x" in text and "-20 %" in text and "MISS -> ok" in text
    assert "gone" not in text and "new" not in text
    assert compare_lines({"results": []}, now) == [
        "compare: no targeted figure in common with the earlier run"
    ]
