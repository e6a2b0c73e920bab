"""Differencing: outputs safe alone that disclose together, within a request and against
what a project has already released."""

import json

import numpy as np
import polars as pl
import pytest

from disclosure import (
    Protection,
    PublishedTable,
    Rules,
    build_report,
    check_request,
    check_table,
    published_view,
    render_html,
)
from disclosure.differencing import published_from_report, relation


def population(filters=(), version=1, dataset="residents"):
    return {"datasets": {dataset: version}, "link": None, "filters": list(filters)}


@pytest.fixture(scope="module")
def residents():
    """A ward x age table where ward w3 has 3 children, and age bands to filter on."""
    rng = np.random.default_rng(3)
    wards = rng.choice(["w1", "w2", "w4"], 900).tolist() + ["w3"] * 43
    ages = rng.choice(["18-64", "65+"], 900).tolist() + ["0-15"] * 3 + ["18-64"] * 40
    ages = [a if i % 7 else "0-15" for i, a in enumerate(ages[:900])] + ages[900:]
    return pl.DataFrame({"ward": wards, "age": ages, "sex": rng.choice(["f", "m"], 943)})


def test_a_filtered_table_and_the_whole_show_a_small_group_by_difference(residents):
    everyone = check_table(residents, name="everyone", rows=["ward"], population=population())
    adults = check_table(
        residents.filter(pl.col("age") != "0-15"),
        name="adults",
        rows=["ward"],
        population=population(['age != "0-15"']),
    )
    assert everyone.status == adults.status == "pass"  # each is safe alone
    findings = check_request([everyone, adults])
    assert len(findings) == 1
    finding = findings[0]
    assert (finding.kind, finding.status, finding.outputs) == (
        "difference",
        "fail",
        ("everyone", "adults"),
    )
    assert finding.cells == ("ward w3",)  # 43 - 40 = the 3 children of w3
    assert "leaves between 1 and 9 in 1 cell" in finding.message
    # Both outputs now need a person, and carry the finding.
    assert (everyone.status, adults.status) == ("review", "review")
    assert everyone.findings == adults.findings == [finding]


def test_nested_tables_of_one_population_reveal_a_suppressed_cell(residents):
    by_ward = check_table(
        residents, name="by_ward", rows=["ward"], columns=["age"], population=population()
    )
    # Only primary suppression and no totals: safe alone, since the totals are not
    # published, but the 1-way table of wards publishes them. (Zeros may be shown here,
    # so the 3 children are the only suppressed cell of ward w3.)
    bare = check_table(
        residents,
        name="bare",
        rows=["ward"],
        columns=["age"],
        population=population(),
        rules=Rules(zeros_disclosive=False),
        protection=Protection(secondary=False, totals=False),
    )
    wards = check_table(residents, name="wards", rows=["ward"], population=population())
    findings = check_request([by_ward, bare, wards])
    pairs = {(f.outputs, f.kind, f.status) for f in findings}
    assert (("bare", "wards"), "recoverable", "fail") in pairs
    # The same table twice with different suppression gives itself away too.
    assert (("by_ward", "bare"), "recoverable", "fail") in pairs
    # The properly protected table is safe beside the 1-way table (its row totals are
    # those very cells).
    assert not any(set(f.outputs) == {"by_ward", "wards"} for f in findings)
    revealed = next(f for f in findings if f.outputs == ("bare", "wards"))
    assert "bare: ward w3, age 0-15" in revealed.cells


def test_unrelated_populations_are_not_compared(residents):
    one = check_table(residents, name="one", rows=["ward"], population=population())
    other = check_table(
        residents.filter(pl.col("age") != "0-15"),
        name="other",
        rows=["ward"],
        population=population(dataset="fire_incidents"),
    )
    none = check_table(residents.head(900), name="none", rows=["ward"], population=None)
    assert check_request([one, other, none]) == []


def test_filters_unknown_to_the_engine_are_a_matter_for_review(residents):
    unknown = {"datasets": {"residents": 1}, "link": None, "filters": None}
    everyone = check_table(residents, name="everyone", rows=["ward"], population=unknown)
    adults = check_table(
        residents.filter(pl.col("age") != "0-15"), name="adults", rows=["ward"], population=unknown
    )
    (finding,) = check_request([everyone, adults])
    assert (finding.kind, finding.status) == ("difference", "review")
    assert "may count one group inside the other" in finding.message


def test_rounded_tables_are_not_compared(residents):
    rounding = Protection(round_to=5)
    everyone = check_table(
        residents, name="everyone", rows=["ward"], population=population(), protection=rounding
    )
    adults = check_table(
        residents.filter(pl.col("age") != "0-15"),
        name="adults",
        rows=["ward"],
        population=population(['age != "0-15"']),
        protection=rounding,
    )
    assert check_request([everyone, adults]) == []


def test_a_new_table_against_a_released_one(residents):
    released = published_view(
        check_table(residents, name="wards", rows=["ward"], population=population(version=1)),
        job_id=7,
    )
    stored = PublishedTable.from_json(json.loads(json.dumps(released.to_json())), job_id=7)
    assert stored.to_json() == released.to_json()
    # The same table over a newer version of the data, with three people added in w1.
    grown = pl.concat([residents, residents.filter(pl.col("ward") == "w1").head(3)])
    again = check_table(grown, name="wards_v2", rows=["ward"], population=population(version=2))
    (finding,) = check_request([again], [stored])
    assert finding.status == "review"
    assert finding.jobs == (None, 7)
    assert finding.outputs == ("wards_v2", "wards")
    assert "wards (released in job 7)" in finding.message
    assert "same table over two versions of the data" in finding.message
    assert again.status == "review"


def test_a_proven_difference_with_a_released_table_fails_the_new_output(residents):
    released = published_view(
        check_table(residents, name="everyone", rows=["ward"], population=population()), job_id=3
    )
    adults = check_table(
        residents.filter(pl.col("age") != "0-15"),
        name="adults",
        rows=["ward"],
        population=population(['age != "0-15"']),
    )
    (finding,) = check_request([adults], [released])
    assert finding.status == "fail"
    assert adults.status == "fail"


def test_a_ledger_entry_built_from_the_report_matches_the_table(residents):
    result = check_table(
        residents,
        name="by_ward",
        rows=["ward"],
        columns=["age"],
        population=population(),
        rules=Rules(threshold=12),
    )
    report = json.loads(json.dumps(build_report([result], rules=Rules(), policy={}, context={})))
    from_report = published_from_report(report["outputs"][0], report, job_id=5)
    assert from_report is not None
    assert from_report.to_json() == published_view(result, job_id=5).to_json()
    assert from_report.threshold == 12


def test_the_report_links_a_finding_to_both_outputs(residents):
    everyone = check_table(residents, name="everyone", rows=["ward"], population=population())
    adults = check_table(
        residents.filter(pl.col("age") != "0-15"),
        name="adults",
        rows=["ward"],
        population=population(['age != "0-15"']),
    )
    findings = check_request([everyone, adults])
    report = build_report(
        [everyone, adults], rules=Rules(), policy={}, context={}, findings=findings
    )
    assert report["differencing"][0]["outputs"] == ["everyone", "adults"]
    assert [o["findings"] for o in report["outputs"]] == [[1], [1]]
    page = render_html(report)
    assert (
        '<li id="finding-1"><a href="#output-1">everyone</a> and <a href="#output-2">adults</a>'
        in page
    )
    assert page.count('<a href="#finding-1">finding 1</a>') == 2


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        (population(), population(), "same"),
        (population(), population(["a"]), "contains"),
        (population(["a", "b"]), population(["a"]), "inside"),
        (population(["a"]), population(["b"]), None),
        (population(version=1), population(version=2), "versions"),
        (population(), population(dataset="other"), None),
        (population(), {"datasets": {"residents": 1}, "link": None, "filters": None}, "unknown"),
        (None, population(), None),
    ],
)
def test_how_two_populations_relate(first, second, expected):
    assert relation(first, second) == expected


def test_a_pair_too_large_to_check_is_flagged_not_run_out_of_memory(residents, monkeypatch):
    # The recovery check is a dense rank computation: over its bound (here lowered, as a
    # wide table with a released one once needed 289 GiB) the pair is not computed but
    # flagged with the same status, for a checker.
    from disclosure import pairs

    monkeypatch.setattr(pairs, "MAX_RECOVERY_UNKNOWNS", 0)
    bare = check_table(
        residents,
        name="bare",
        rows=["ward"],
        columns=["age"],
        population=population(),
        rules=Rules(zeros_disclosive=False),
        protection=Protection(secondary=False, totals=False),
    )
    wards = check_table(residents, name="wards", rows=["ward"], population=population())
    findings = check_request([bare, wards])
    unchecked = [f for f in findings if f.kind == "unchecked"]
    assert [(f.outputs, f.status) for f in unchecked] == [(("bare", "wards"), "fail")]
    assert (
        "too large to check" in unchecked[0].message
        and "a checker must decide" in unchecked[0].message
    )
    assert bare.status != "pass" and wards.status != "pass"


# --- bounded work: candidate pairs only, alike tables free, a budget per request -------


def test_two_hundred_alike_tables_are_no_finding_and_no_comparison(residents):
    one = check_table(residents, name="t0", rows=["ward"], columns=["age"], population=population())
    views = [published_view(one)]
    views += [PublishedTable(**{**views[0].__dict__, "name": f"t{i}"}) for i in range(1, 200)]
    from disclosure.differencing import Budget, find_differencing

    # A budget of no pairs at all: alike tables cost none, so nothing is left unchecked.
    assert find_differencing(views, budget=Budget(pairs=0, seconds=60)) == []


def test_tables_that_cannot_relate_are_never_paired(residents):
    from disclosure.differencing import Budget, find_differencing

    tables = [
        check_table(residents, name=f"d{i}", rows=["ward"], population=population(dataset=f"d{i}"))
        for i in range(5)
    ]
    assert find_differencing([published_view(t) for t in tables], budget=Budget(pairs=0)) == []


def test_a_request_over_its_budget_gets_unchecked_findings_for_a_checker(residents):
    from disclosure.differencing import Budget

    filters = ['age != "0-15"', 'sex == "f"', 'ward != "w1"']
    tables = [
        check_table(residents, name=f"t{i}", rows=["ward"], population=population(filters[:i]))
        for i in range(4)
    ]
    findings = check_request(tables, budget=Budget(pairs=2, seconds=60))
    unchecked = [f for f in findings if f.kind == "unchecked"]
    assert unchecked, findings
    names = {f.outputs[0] for f in unchecked}
    assert names and all(f.status == "review" and f.outputs[1] == "" for f in unchecked)
    assert "the differencing check stopped at the TRE's limit (2 pairs" in unchecked[0].message
    for table in tables:
        if table.name in names:
            assert table.status in ("review", "fail")
            assert any(f.kind == "unchecked" for f in table.findings)
    # The report names the one output and links no second.
    report = build_report(tables, rules=Rules(), policy={}, context={}, findings=findings)
    html = render_html(report)
    assert "was not compared with" in html


def test_a_time_budget_of_nothing_leaves_every_related_pair_unchecked(residents):
    from disclosure.differencing import Budget

    a = check_table(residents, name="a", rows=["ward"], population=population())
    b = check_table(
        residents.filter(pl.col("age") != "0-15"),
        name="b",
        rows=["ward"],
        population=population(['age != "0-15"']),
    )
    findings = check_request([a, b], budget=Budget(pairs=100, seconds=-1))
    assert [(f.kind, f.outputs[0]) for f in findings] == [("unchecked", "a"), ("unchecked", "b")]
