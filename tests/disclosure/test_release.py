"""What leaves for a table: the protected table, and a summary with no evidence values."""

import re

import numpy as np
import polars as pl

from disclosure import Protection, check_file, check_table, released_table, researcher_summary
from tests.disclosure.test_protect import microdata

SECRET = 987_654.0  # one person's value


def protected_table():
    counts = np.array([[3, 40, 12], [50, 60, 14], [70, 80, 90]])
    return check_table(microdata(counts), name="visits", rows=["ward"], columns=["sex"])


def test_the_released_table_holds_the_protected_values_and_totals_only():
    table = released_table(protected_table())
    assert table.columns == ["ward", "sex", "count", "suppressed"]
    assert table.schema["count"] == pl.Int64  # whole numbers in the released file, not 55.0
    assert table.filter(pl.col("suppressed"))["count"].null_count() == 4
    assert table.filter(~pl.col("suppressed"))["count"].null_count() == 0
    assert table.filter(pl.col("ward") == "Total", pl.col("sex") == "Total")["count"].to_list() == [
        419.0
    ]
    assert table.filter(pl.col("ward") == "w0", pl.col("sex") == "Total")["count"].to_list() == [
        55.0
    ]


def test_a_magnitude_table_releases_its_value_and_contributors():
    frame = pl.DataFrame({"ward": ["a"] * 12 + ["b"] * 15, "cost": [float(i) for i in range(27)]})
    table = released_table(
        check_table(frame, name="c", rows=["ward"], value="cost", statistic="mean")
    )
    assert table.columns == ["ward", "mean", "n", "suppressed"]
    assert table.row(0) == ("a", 5.5, 12, False)
    assert table.row(2) == ("Total", 13.0, 27, False)


def test_a_real_level_called_total_is_not_confused_with_a_total():
    frame = pl.DataFrame({"ward": ["Total"] * 12 + ["b"] * 15})
    table = released_table(check_table(frame, name="c", rows=["ward"]))
    assert table["ward"].to_list() == ["Total", "b", "(Total)"]


def test_the_researcher_is_told_what_was_suppressed_and_why_without_any_evidence():
    frame = pl.DataFrame(
        {
            "ward": ["a"] * 12 + ["b"] * 12 + ["c"] * 3 + ["d"] * 20,
            "cost": [SECRET] + [1.0] * 11 + [2.0, 3.0] * 6 + [4.0, 5.0, 6.0] + [7.0, 8.0] * 10,
        }
    )
    result = check_table(frame, name="costs", rows=["ward"], value="cost", statistic="sum")
    text = researcher_summary(result)
    # Cells a (dominated), c (3 people) and the grand total (dominated by a's person).
    assert "3 cell(s) or total(s) suppressed because they fail a rule" in text
    assert "1 with fewer contributors than the threshold" in text
    assert "2 dominated by their largest contributors" in text
    assert "- ward a\n" in text and "- ward c\n" in text and "- ward Total\n" in text
    # No value, share or count of any cell: only names, rule parameters and tallies.
    assert "987" not in text.replace(",", "")
    assert not re.search(r"\d%", text.split("What was done")[1])
    assert not re.search(r"\b(3|12|20) (records|contributors)\b", text)
    # Which cells failed and which only protect them is not said per cell.
    assert "primary" not in text and "secondary" not in text


def test_rounding_is_explained():
    counts = np.array([[13, 22], [37, 41]])
    result = check_table(
        microdata(counts),
        name="t",
        rows=["ward"],
        columns=["sex"],
        protection=Protection(round_to=5),
    )
    assert "counts rounded to the nearest 5; totals are the sums of the published cells" in (
        researcher_summary(result)
    )


def test_other_outputs_get_a_short_note():
    result = check_file(name="f", filename="f.png", size=1, sha256="0" * 64)
    assert "released as it is" in researcher_summary(result)
