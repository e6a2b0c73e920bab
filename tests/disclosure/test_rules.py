"""The rules: boundaries, precedence, reasons a person reads, and parameter validation."""

import polars as pl
import pytest

from disclosure import aggregate, check_table
from disclosure.errors import DisclosureInputError
from disclosure.rules import RULE_COLUMNS, Rules, apply_rules

DEFAULT = Rules()


def table(values_by_cell, statistic="sum", rules=DEFAULT):
    """Check a one-key table whose cells hold the given values."""
    rows = [(cell, v) for cell, values in values_by_cell.items() for v in values]
    frame = pl.DataFrame(rows, schema={"cell": pl.String, "v": pl.Float64}, orient="row")
    value = None if statistic == "count" else "v"
    partial = aggregate.partial(frame, ["cell"], value, statistic, top_k=max(2, rules.dominance_n))
    cells = aggregate.finalize(
        partial, ["cell"], statistic, 0.5 if statistic == "quantile" else None
    )
    checked = apply_rules(cells, statistic, rules)
    return {row["cell"]: row for row in checked.iter_rows(named=True)}


def test_threshold_boundary_nine_fails_ten_passes():
    cells = table({"nine": [1.0] * 9, "ten": [1.0] * 10}, statistic="count")
    assert cells["nine"]["status"] == "fail"
    assert cells["nine"]["reason"] == "9 records, below the threshold of 10"
    assert cells["ten"]["status"] == "pass"
    assert cells["ten"]["reason"] == ""


def test_threshold_counts_contributors_not_rows_with_missing_values():
    cells = table({"c": [1.0, 2.0] * 5 + [None]}, statistic="mean")
    assert cells["c"]["status"] == "pass"
    cells = table({"c": [1.0, 2.0, 3.0] * 3 + [None] * 5}, statistic="mean")
    assert cells["c"]["reason"] == "9 contributors, below the threshold of 10"


def test_a_custom_threshold_applies():
    cells = table({"c": [1.0] * 4, "d": [1.0] * 3}, statistic="count", rules=Rules(threshold=4))
    assert (cells["c"]["status"], cells["d"]["status"]) == ("pass", "fail")


def test_empty_cells_of_a_frequency_table_fail():
    frame = pl.DataFrame({"ward": ["a"] * 10 + ["b"] * 10, "sex": ["f"] * 10 + ["m"] * 10})
    cells = aggregate.finalize(
        aggregate.partial(frame, ["ward", "sex"], None, "count"), ["ward", "sex"], "count"
    )
    checked = apply_rules(cells, "count", Rules())
    empty = checked.filter(pl.col("n") == 0)
    assert empty.height == 2
    assert empty["status"].to_list() == ["fail", "fail"]
    assert "empty cell" in empty["reason"][0]


def test_dominance_boundary_ninety_percent_passes_more_fails():
    at_limit = [45.0, 45.0] + [1.0] * 10  # largest two hold exactly 90%
    above = [46.0, 45.0] + [1.0] * 9  # 91%
    cells = table({"at": at_limit, "above": above})
    assert cells["at"]["status"] == "pass"
    assert cells["at"]["dominance_share"] == pytest.approx(0.9)
    assert cells["above"]["status"] == "fail"
    assert cells["above"]["fails_threshold"] is False
    assert cells["above"]["reason"] == (
        "the largest 2 contributors hold 91% of the total, above 90%"
    )


def test_dominance_shows_enough_decimals_to_be_above_the_limit():
    cells = table({"c": [90_003.0] + [1.0] * 9_997})  # largest two: 90,004 of 100,000
    assert cells["c"]["reason"] == (
        "the largest 2 contributors hold 90.004% of the total, above 90%"
    )


def test_dominance_with_one_contributor_fails_both_rules():
    cells = table({"c": [500.0]})
    assert cells["c"]["status"] == "fail"
    assert cells["c"]["reason"] == (
        "1 contributor, below the threshold of 10; "
        "the largest 2 contributors hold 100% of the total, above 90%; "
        "the second largest contributor could work out the largest contribution exactly "
        "(p% rule)"
    )


def test_dominance_n_and_k_are_parameters():
    values = [40.0, 30.0, 20.0] + [1.0] * 10  # top 3 = 90 of 100
    rules = Rules(dominance_n=3, dominance_k=0.85)
    cells = table({"c": values}, rules=rules)
    assert cells["c"]["fails_dominance"] is True
    assert "the largest 3 contributors hold 90% of the total, above 85%" in cells["c"]["reason"]


def test_counts_never_fail_dominance():
    cells = table({"c": [1.0] * 12}, statistic="count")
    assert cells["c"]["fails_dominance"] is False
    assert cells["c"]["dominance_share"] is None


def test_negative_values_send_a_cell_to_review():
    cells = table({"c": [-5.0, 100.0] + [1.0] * 10})
    assert cells["c"]["status"] == "review"
    assert cells["c"]["fails_dominance"] is False  # not meaningful with negatives
    assert "negative values" in cells["c"]["reason"]
    assert "a person must review it" in cells["c"]["reason"]


def test_fail_beats_review():
    cells = table({"c": [-5.0, 1.0, 2.0]})
    assert cells["c"]["status"] == "fail"
    assert cells["c"]["reason"].startswith("3 contributors, below the threshold of 10; ")
    assert "negative values" in cells["c"]["reason"]


@pytest.mark.parametrize("statistic", ["min", "max"])
def test_min_and_max_always_fail(statistic):
    cells = table({"c": [float(i) for i in range(50)]}, statistic=statistic)
    assert cells["c"]["status"] == "fail"
    assert cells["c"]["reason"] == "min and max reveal a single contributor's value"


def test_the_p_percent_rule_fails_a_cell_whose_largest_value_can_be_estimated():
    # Not dominated at (2, 95%): the largest two hold 91.8%. But the rest is 9, less than
    # 10% of the largest (100): the second largest contributor can estimate it closely.
    values = [100.0, 1.0] + [0.5] * 18
    cells = table({"c": values}, rules=Rules(dominance_k=0.95))
    assert cells["c"]["fails_dominance"] is False
    assert cells["c"]["fails_p_percent"] is True
    assert cells["c"]["p_ratio"] == pytest.approx(0.09)
    assert cells["c"]["reason"] == (
        "the second largest contributor could estimate the largest contribution to within "
        "9%, closer than 10% (p% rule)"
    )
    assert table({"c": values}, rules=Rules(dominance_k=0.95, p_ratio=0.0))["c"]["status"] == (
        "pass"
    )


def test_with_the_default_parameters_p_percent_never_fails_alone():
    # rest < 10% of the largest implies the largest two hold > 90% of the total.
    for values in ([100.0, 1.0] + [0.5] * 18, [60.0, 39.0] + [0.1] * 9, [10.0] * 12):
        cells = table({"c": values})
        assert not cells["c"]["fails_p_percent"] or cells["c"]["fails_dominance"]


def test_empty_cells_can_be_allowed():
    frame = pl.DataFrame({"ward": ["a"] * 10 + ["b"] * 10, "sex": ["f"] * 10 + ["m"] * 10})
    cells = aggregate.finalize(
        aggregate.partial(frame, ["ward", "sex"], None, "count"), ["ward", "sex"], "count"
    )
    checked = apply_rules(cells, "count", Rules(zeros_disclosive=False))
    assert checked.filter(pl.col("n") == 0)["status"].to_list() == ["pass", "pass"]


def test_without_disclosive_zeros_an_empty_cell_passes_but_a_count_of_one_fails():
    # ACRO fails the empty cell either way (docs/disclosure.md, difference 13).
    frame = pl.DataFrame({"ward": ["a"] * 10 + ["b"], "sex": ["f"] * 10 + ["m"]})
    cells = aggregate.finalize(
        aggregate.partial(frame, ["ward", "sex"], None, "count"), ["ward", "sex"], "count"
    )
    checked = apply_rules(cells, "count", Rules(zeros_disclosive=False))
    status = {(r["ward"], r["sex"], r["n"]): r["status"] for r in checked.iter_rows(named=True)}
    assert status == {
        ("a", "f", 10): "pass",
        ("a", "m", 0): "pass",  # empty: nobody to single out
        ("b", "f", 0): "pass",
        ("b", "m", 1): "fail",  # one record: a small count
    }
    strict = apply_rules(cells, "count", Rules(zeros_disclosive=True))
    assert strict.filter(pl.col("n") == 0)["status"].to_list() == ["fail", "fail"]


def test_dominance_at_exactly_k_passes_and_just_over_fails():
    # "More than k" (Hundepool et al. 2012; ACRO's agg_nk), not "k or more":
    # docs/disclosure.md, difference 14. 750/1000 is exact in floating point.
    rules = Rules(dominance_n=3, dominance_k=0.75)
    cells = table(
        {
            "exactly": [300.0, 300.0, 150.0] + [25.0] * 10,
            "over": [300.0, 300.0, 160.0] + [25.0] * 10,
        },
        rules=rules,
    )
    assert cells["exactly"]["dominance_share"] == 0.75
    assert (cells["exactly"]["fails_dominance"], cells["exactly"]["status"]) == (False, "pass")
    assert cells["over"]["fails_dominance"] is True
    assert cells["over"]["reason"].startswith("the largest 3 contributors hold 75.2%")
    # A TRE that wants "k or more" lowers k a little, and the cell at exactly 75% fails.
    lowered = table(
        {"exactly": [300.0, 300.0, 150.0] + [25.0] * 10},
        rules=Rules(dominance_n=3, dominance_k=0.749),
    )
    assert lowered["exactly"]["fails_dominance"] is True


@pytest.mark.parametrize(("setting", "status"), [("review", "review"), ("fail", "fail")])
def test_a_cell_whose_contributors_all_share_a_value(setting, status):
    cells = table(
        {"c": [3.0] * 12, "d": [3.0] * 11 + [4.0]},
        statistic="mean",
        rules=Rules(same_value=setting),
    )
    assert cells["c"]["status"] == status
    assert cells["c"]["reason"] == (
        "every contributor has the same value, so the cell shows each one's value"
    )
    assert cells["d"]["status"] == "pass"


@pytest.mark.parametrize("statistic", ["median", "quantile", "mode"])
def test_positional_statistics_need_values_on_both_sides(statistic):
    # 12 distinct values: the 0.5 quantile has 6 values on each side; a quantile side of 7
    # is more than either.
    values = [float(v) for v in range(12)]
    assert table({"c": values}, statistic=statistic)["c"]["fails_statistic"] is (
        statistic == "mode"  # the mode of distinct values is the smallest: one value below
    )
    strict = table({"c": values}, statistic=statistic, rules=Rules(quantile_side=7))
    assert strict["c"]["status"] == "fail"
    assert "at or below it" in strict["c"]["reason"]
    assert "it needs at least 7 on each side" in strict["c"]["reason"]


def test_a_standard_deviation_needs_degrees_of_freedom():
    cells = table(
        {"ten": [float(v) for v in range(10)], "eleven": [float(v) for v in range(11)]},
        statistic="std",
    )
    assert cells["ten"]["status"] == "fail"
    assert cells["ten"]["reason"] == (
        "a standard deviation of 10 contributors has 9 degrees of freedom, below the minimum of 10"
    )
    assert cells["eleven"]["status"] == "pass"


def test_negative_values_do_not_stop_the_other_cells_being_checked():
    cells = table(
        {"negative": [-5.0] + [1.0] * 11, "small": [1.0, 2.0, 3.0], "fine": [2.0] * 11 + [3.0]}
    )
    assert cells["negative"]["status"] == "review"
    assert cells["small"]["status"] == "fail"
    assert cells["fine"]["status"] == "pass"


def test_apply_rules_adds_the_rule_columns():
    frame = pl.DataFrame({"k": ["a"], "v": [1.0]})
    cells = aggregate.finalize(aggregate.partial(frame, ["k"], "v", "mean"), ["k"], "mean")
    assert apply_rules(cells, "mean", Rules()).columns == [*cells.columns, *RULE_COLUMNS]


def test_too_few_top_values_are_refused_rather_than_under_counted():
    frame = pl.DataFrame({"k": ["a"] * 12, "v": [50.0, 45.0] + [1.0] * 10})
    cells = aggregate.finalize(aggregate.partial(frame, ["k"], "v", "sum", top_k=1), ["k"], "sum")
    with pytest.raises(DisclosureInputError, match=r"top_k=2"):
        apply_rules(cells, "sum", Rules())


def test_apply_rules_refuses_a_table_without_evidence():
    with pytest.raises(DisclosureInputError, match="lacks the evidence column"):
        apply_rules(pl.DataFrame({"k": ["a"], "value": [1.0]}), "count", Rules())


def test_rules_from_a_policy_mapping():
    rules = Rules.from_mapping({"threshold": 5, "dominance_k": 0.8})
    assert rules == Rules(threshold=5, dominance_n=2, dominance_k=0.8, min_dof=10)
    assert Rules.from_mapping(rules.as_dict()) == rules
    assert Rules().as_dict() == {
        "threshold": 10,
        "dominance_n": 2,
        "dominance_k": 0.9,
        "p_ratio": 0.1,
        "min_dof": 10,
        "zeros_disclosive": True,
        "same_value": "review",
        "quantile_side": 5,
        "few_values": 5,
    }
    # A policy file holds the protection parameters too: the rules leave them alone.
    assert Rules.from_mapping({"threshold": 7, "round_to": 5}) == Rules(threshold=7)


def test_rules_from_mapping_lists_every_problem_at_once():
    with pytest.raises(DisclosureInputError) as caught:
        Rules.from_mapping(
            {
                "treshold": 3,
                "dominance_k": 1.5,
                "min_dof": True,
                "dominance_n": 2.0,
                "threshold": "10",
            }
        )
    reasons = caught.value.reasons
    assert len(reasons) == 5
    text = str(caught.value)
    assert "unknown parameter 'treshold' (did you mean 'threshold'?)" in text
    assert "dominance_k is 1.5; it must be a number greater than 0 and less than 1" in text
    assert "min_dof is True; it must be a whole number of at least 1" in text
    assert "dominance_n is 2.0; it must be a whole number from 1 to 10" in text
    assert "threshold is '10'" in text
    assert "Fix: correct them in the disclosure policy file" in text


@pytest.mark.parametrize(
    "bad",
    [
        {"threshold": 0},
        {"dominance_n": 11},
        {"dominance_k": 0.0},
        {"dominance_k": 1},
        {"min_dof": -1},
        {"p_ratio": 1.0},
        {"same_value": "ignore"},
        {"zeros_disclosive": "yes"},
        {"quantile_side": 0},
        # A 0/1 predictor is always checked, and at most MAX_FEW_VALUES values are counted.
        {"few_values": 1},
        {"few_values": 21},
    ],
)
def test_out_of_range_rules_are_refused(bad):
    with pytest.raises(DisclosureInputError, match=next(iter(bad))):
        Rules.from_mapping(bad)
    with pytest.raises(DisclosureInputError):
        Rules(**bad)


def test_rules_must_be_a_mapping():
    with pytest.raises(DisclosureInputError, match="must be a mapping"):
        Rules.from_mapping([("threshold", 10)])  # type: ignore[arg-type]


def _cells(result):
    return {(r["ward"], r["sex"]): r for r in result.inner_cells.iter_rows(named=True)}


def test_an_empty_cell_is_flagged_whatever_the_threshold_decides():
    frame = pl.DataFrame({"ward": ["a"] * 10 + ["b"] * 10, "sex": ["f"] * 10 + ["m"] * 10})
    for zeros, status in ((True, "fail"), (False, "pass")):
        result = check_table(
            frame, name="t", rows=["ward"], columns=["sex"], rules=Rules(zeros_disclosive=zeros)
        )
        cells = _cells(result)
        assert (cells[("a", "m")]["empty_cell"], cells[("a", "m")]["status"]) == (True, status)
        assert cells[("a", "m")]["no_value"] is False  # a count of 0 is a value
        assert cells[("a", "f")]["empty_cell"] is False


def test_a_cell_whose_records_all_lack_a_value_is_flagged_with_a_reason():
    frame = pl.DataFrame(
        {
            "ward": ["a"] * 12 + ["b"] * 3 + ["c"] * 12,
            "sex": ["f"] * 27,
            "cost": [float(i) for i in range(1, 13)] + [None] * 3 + [float(i) for i in range(12)],
        }
    )
    strict = check_table(frame, name="t", rows=["ward"], value="cost", statistic="mean")
    cells = {r["ward"]: r for r in strict.inner_cells.iter_rows(named=True)}
    b = cells["b"]
    assert (b["value"], b["n"], b["records"], b["missing"]) == (None, 0, 3, 3)
    assert (b["no_value"], b["empty_cell"], b["status"]) == (True, False, "fail")
    assert b["reason"] == (
        "no contributors, below the threshold of 10: none of its 3 records has a value"
    )
    assert cells["a"]["no_value"] is False
    # Zeros allowed: the cell still says that nobody in it has a value, so a person decides.
    allowed = check_table(
        frame,
        name="t",
        rows=["ward"],
        value="cost",
        statistic="mean",
        rules=Rules(zeros_disclosive=False),
    )
    b = {r["ward"]: r for r in allowed.inner_cells.iter_rows(named=True)}["b"]
    assert (b["no_value"], b["status"]) == (True, "review")
    assert "1 of 3 cells need review (1 with no value)" in allowed.summary
    assert "a cell whose records all lack a value is reviewed" in allowed.rules.describe()[0]
    assert b["reason"] == (
        "no value: none of its 3 records has one, so the cell shows that nobody in it has a "
        "value; a person must review it"
    )


def test_an_empty_cell_of_a_magnitude_table_is_empty_and_has_no_value():
    frame = pl.DataFrame(
        {
            "ward": ["a"] * 12 + ["b"] * 12,
            "sex": ["f"] * 12 + ["m"] * 12,
            "cost": [float(i) for i in range(24)],
        }
    )
    result = check_table(
        frame, name="t", rows=["ward"], columns=["sex"], value="cost", statistic="mean"
    )
    cells = _cells(result)
    assert (cells[("a", "m")]["empty_cell"], cells[("a", "m")]["no_value"]) == (True, True)
    assert cells[("a", "m")]["reason"].startswith("empty cell, below the threshold of 10")
    assert (cells[("a", "f")]["empty_cell"], cells[("a", "f")]["no_value"]) == (False, False)
