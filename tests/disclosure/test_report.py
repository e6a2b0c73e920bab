"""The report: valid JSON, readable and safe Markdown/HTML, atomic writes."""

import hashlib
import html
import json
import re

import polars as pl
import pytest

from disclosure import (
    Protection,
    Rules,
    build_report,
    check_file,
    check_regression,
    check_table,
    render_html,
    render_markdown,
    write_report,
)
from disclosure.errors import DisclosureInputError

HOSTILE = "<script>alert('x')</script>"
SECRET_TOP_VALUE = 7_777_777.0  # one person's value: it must never reach the report
POLICY = {"path": "/etc/tre/sdc.yaml", "sha256": "ab" * 32}


@pytest.fixture
def results():
    counts = pl.DataFrame(
        {"ward": ["A"] * 12 + ["B"] * 3 + [HOSTILE] * 10, "sex": ["F"] * 25}
    ).vstack(pl.DataFrame({"ward": ["A"] * 10 + [HOSTILE] * 12, "sex": ["M"] * 22}))
    table = check_table(counts, name="visits", rows=["ward"], columns=["sex"])
    costs = pl.DataFrame(
        {
            "ward": ["A"] * 11,
            "band": ["x"] * 11,
            "age": ["old"] * 11,
            "cost": [SECRET_TOP_VALUE] + [1.0] * 10,
        }
    )
    magnitude = check_table(
        costs, name=HOSTILE, rows=["ward", "band"], columns=["age"], value="cost", statistic="mean"
    )
    regression = check_regression(
        name="model",
        model="ols",
        n_obs=50,
        df_resid=47,
        rules=Rules(),
        value_counts={"smoker": {"0": 30, "1": 20}},
        coefficients=pl.DataFrame(
            {
                "term": ["(intercept)", "age"],
                "estimate": [1.5, -0.25],
                "std_error": [0.5, 0.1],
                "statistic": [3.0, -2.5],
                "p_value": [0.004, 0.0001],
            }
        ),
    )
    figure = check_file(
        name="figure",
        filename="plot.png",
        size=4096,
        sha256=hashlib.sha256(b"png").hexdigest(),
        description=HOSTILE,
    )
    return [table, magnitude, regression, figure]


@pytest.fixture
def report(results):
    return build_report(
        results,
        rules=Rules(),
        policy=POLICY,
        context={"job": 42, "project": "falls", "author": "ann", "title": HOSTILE},
    )


def test_the_report_is_valid_json_with_the_overall_verdict(report):
    loaded = json.loads(json.dumps(report, allow_nan=False))
    assert loaded["format"] == 2
    assert loaded["status"] == "fail"
    assert loaded["summary"] == {
        "outputs": 4,
        "pass": 1,
        "review": 2,  # the protected count table, and the file
        "fail": 1,  # the dominated magnitude table: every cell suppressed
        "protected": 2,
        "differencing": 0,
    }
    assert [o["check_status"] for o in loaded["outputs"]] == ["fail", "fail", "pass", "review"]
    assert loaded["rules"] == Rules().as_dict()
    assert loaded["protection"] == Protection().as_dict()
    assert loaded["policy"] == POLICY
    assert loaded["context"]["job"] == 42
    assert [o["kind"] for o in loaded["outputs"]] == ["table", "table", "regression", "file"]


def test_table_cells_carry_their_evidence_but_no_contributor_values(report):
    visits = report["outputs"][0]
    failing = next(c for c in visits["cells"] if c["keys"] == {"ward": "B", "sex": "F"})
    assert failing == {
        "keys": {"ward": "B", "sex": "F"},
        "margin": "",
        "value": 3.0,
        "n": 3,
        "records": 3,
        "dominance_share": None,
        "p_ratio": None,
        "negative": False,
        "missing": 0,
        "empty_cell": False,
        "no_value": False,
        "status": "fail",
        "reason": "3 records, below the threshold of 10",
        "suppressed": "primary",
        "published": None,
        "published_n": None,
        "interval": [0.0, 13.0],  # what the published table leaves it: 0 to 13
    }
    total = next(c for c in visits["cells"] if c["margin"] == "total")
    assert (total["keys"], total["value"], total["published"]) == (
        {"ward": None, "sex": None},
        47.0,
        47.0,
    )
    costs = report["outputs"][1]["cells"][0]
    assert costs["dominance_share"] == pytest.approx(1.0, abs=1e-3)  # rounded share only
    assert "top" not in costs
    assert "sum" not in costs


def test_raw_top_values_appear_nowhere(report):
    texts = [json.dumps(report), render_markdown(report), render_html(report)]
    for text in texts:
        assert "7777777" not in text.replace(",", "")


def test_html_marks_the_failing_cell_and_lists_its_reason(report):
    page = render_html(report)
    # The B/F cell: a class, a visible symbol and a link to its note.
    cell = re.search(
        r'<td class="fail suppressed">3 <span class="mark"[^>]*>✗</span>.*?</td>', page
    )
    assert cell is not None
    note = re.search(r'href="#(output-1-note-\d+)"', cell.group(0)).group(1)
    assert re.search(
        rf'<li id="{note}">ward B, sex F: .*3 records, below the threshold of 10</li>', page
    )
    assert '<th scope="col">F</th>' in page
    assert '<th scope="row">A</th>' in page
    assert '<tr class="total"><th scope="row">Total</th><td>25</td>' in page
    assert "Legend" in page
    assert "fails a rule" in page
    assert "suppressed in the release so other cells cannot be worked out" in page


def test_html_is_self_contained_and_escapes_hostile_text(report):
    page = render_html(report)
    assert "<script" not in page
    assert html.escape(HOSTILE, quote=True) in page
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page)
    assert "<style>" in page
    assert "<link" not in page


def test_markdown_marks_failures_and_escapes_hostile_text(report):
    text = render_markdown(report)
    assert "**Overall: ✗ FAIL**" in text
    assert "| B | 3 **✗** **⊘** (" in text
    assert "Computed: ✗ FAIL; as released: ? REVIEW." in text
    assert "3 records, below the threshold of 10" in text
    assert "<script" not in text
    assert "- policy: /etc/tre/sdc.yaml (sha256 " + "ab" * 32 + ")" in text
    assert "| (intercept) | 1.50 | 0.5 | 3.00 | 0.004 |" in text
    assert "| age | -0.25 | 0.1 | -2.50 | <0.001 |" in text
    assert "needs a person's review" in text


def test_long_tables_are_listed_cell_by_cell(report):
    text = render_markdown(report)
    assert (
        "| ward | band | age | value | contributors | share of the largest 2 | status | "
        "released | reason |" in text
    )
    assert "| A | x | old | 707,071.55 **⊘** | 11 | 100.0% | ✗ FAIL | suppressed **⊘** |" in text
    assert "| Total | Total | Total | 707,071.55 **⊘** |" in text


def test_a_long_list_shows_only_the_cells_a_checker_must_see(monkeypatch):
    from disclosure import render_layout

    monkeypatch.setattr(render_layout, "LIST_LIMIT", 3)
    frame = pl.DataFrame(
        {
            "ward": ["A"] * 30 + ["B"] * 30 + ["C"] * 2,
            "band": ["x"] * 62,
            "age": ["old"] * 62,
        }
    )
    result = check_table(frame, name="t", rows=["ward", "band"], columns=["age"])
    text = render_markdown(build_report([result], rules=Rules(), policy={}, context={}))
    assert "| C | x | old | 2 **⊘** |" in text
    assert "| A | x | old | 30 **⊘²** |" in text  # protecting C
    assert "| B | x | old |" not in text  # passes, unprotected: left out
    assert "passing cells are not listed (report.json has them)" in text


def test_write_report_writes_three_files_atomically(report, tmp_path):
    target = tmp_path / "job-42"
    paths = write_report(report, target)
    assert set(paths) == {"json", "markdown", "html"}
    assert json.loads(paths["json"].read_text(encoding="utf-8")) == report
    stored = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert paths["markdown"].read_text(encoding="utf-8") == render_markdown(stored)
    assert paths["html"].read_text(encoding="utf-8") == render_html(report)
    assert paths["html"].read_text(encoding="utf-8").startswith("<!doctype html>")
    write_report(report, target)  # overwriting is fine
    assert sorted(p.name for p in target.iterdir()) == ["report.html", "report.json", "report.md"]


def test_a_report_that_cannot_be_json_writes_nothing(tmp_path):
    bad = {"format": 1, "outputs": [], "value": float("nan")}
    with pytest.raises(DisclosureInputError, match="cannot be written as JSON"):
        write_report(bad, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_no_outputs_needs_review():
    report = build_report([], rules=Rules(), policy={}, context={})
    assert report["status"] == "review"
    assert "0 outputs" in render_markdown(report)


def test_missing_values_are_reported_to_the_checkers():
    frame = pl.DataFrame({"ward": ["A"] * 15, "cost": [1.0, 2.0] * 6 + [None] * 3})
    result = check_table(frame, name="t", rows=["ward"], value="cost", statistic="mean")
    report = build_report([result], rules=Rules(), policy={}, context={})
    assert report["outputs"][0]["missing"] == 3
    assert "Records with no value (not counted as contributors): 3." in render_markdown(report)
    assert "not counted as contributors): 3." in render_html(report)
    assert "no value" not in result.summary  # the summary line also reaches the researcher


def test_a_regressions_value_counts_are_evidence_in_the_report(report):
    model = report["outputs"][2]
    assert model["value_counts"] == {"smoker": {"0": 30, "1": 20}}
    assert model["few_values"] == Rules().few_values


def test_empty_cells_and_cells_with_no_value_are_counted_and_shown():
    frame = pl.DataFrame(
        {
            "ward": ["A"] * 12 + ["B"] * 3 + ["B"] * 12,
            "sex": ["F"] * 12 + ["F"] * 3 + ["M"] * 12,
            "cost": [1.0, 2.0] * 6 + [None] * 3 + [3.0, 4.0] * 6,
        }
    )
    result = check_table(
        frame, name="costs", rows=["ward"], columns=["sex"], value="cost", statistic="mean"
    )
    report = build_report([result], rules=Rules(), policy=POLICY, context={})
    output = report["outputs"][0]
    assert (output["missing"], output["empty_cells"], output["no_value_cells"]) == (3, 1, 2)
    flagged = {
        (c["keys"]["ward"], c["keys"]["sex"]): (c["empty_cell"], c["no_value"])
        for c in output["cells"]
        if c["margin"] == ""
    }
    assert flagged == {
        ("A", "F"): (False, False),
        ("A", "M"): (True, True),  # nobody: empty, so no mean either
        ("B", "F"): (False, True),  # 3 records, none with a cost
        ("B", "M"): (False, False),
    }
    page = render_html(report)
    assert "<p>Empty cells (no records; flagged empty_cell): 1.</p>" in page
    assert "<p>Cells with no value (shown as –; flagged no_value): 2.</p>" in page
    text = render_markdown(report)
    assert "Empty cells (no records; flagged empty\\_cell): 1." in text
    assert "Records with no value (not counted as contributors): 3." in text
