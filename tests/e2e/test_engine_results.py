"""The engine's tables equal plain polars on the plaintext sources: filters pushed into
the encrypted read, filters after a linkage, and a linkage itself."""

import polars as pl
import pytest

from tests.conftest import PROJECT, write_spec
from tre.service.session import Session
from tre.store import repo

pytestmark = pytest.mark.slow


def released_table(home, job_id: int, name: str) -> pl.DataFrame:
    table = pl.read_csv(home / "jobs" / f"{job_id:06d}" / "outputs" / name / f"{name}.csv")
    # Keep the cells only (protection may add total rows and a suppressed flag).
    keys = [c for c in table.columns if c not in ("count", "suppressed", "n")]
    return table.filter(~pl.any_horizontal(pl.col(keys).cast(pl.String) == "Total"))


def test_filters_before_and_after_a_linkage_match_polars(cli, home, sources, tmp_path):
    spec = write_spec(
        tmp_path,
        {
            "project": PROJECT,
            "title": "Incidents at homes of older residents",
            "datasets": {
                "fire_incidents": ["resident_id", "incident_type"],
                "residents": ["resident_id", "age_band"],
            },
            "resources": {"workers": 2},
            "steps": [
                {
                    "kind": "table",
                    "name": "incidents",
                    "dataset": "fire_incidents",
                    "rows": ["incident_type"],
                    "filter": [
                        "incident_type != 'flooding'",
                        "age_band in ['65-74', '75-84', '85+']",
                    ],
                    "link": {"dataset": "residents", "on": "resident_id", "columns": ["age_band"]},
                }
            ],
        },
    )
    assert cli("submit", spec, who="rita").code == 0
    assert cli("run", "--once", who="ada").code == 0
    s = Session.open(home, "ada")
    state = repo.get_job(s.conn, 1).state.value
    s.close()
    assert state == "awaiting_review"

    fire = pl.read_parquet(sources["fire_incidents"])
    residents = pl.read_parquet(sources["residents"]).select("resident_id", "age_band")
    expected = (
        fire.filter(pl.col("incident_type") != "flooding")
        .join(residents, on="resident_id")
        .filter(pl.col("age_band").is_in(["65-74", "75-84", "85+"]))
        .group_by("incident_type")
        .len(name="count")
        .sort("incident_type")
    )
    got = released_table(home, 1, "incidents").select("incident_type", "count")
    # Cells below the threshold are published suppressed (empty); compare the rest.
    shown = got.filter(pl.col("count").is_not_null()).sort("incident_type")
    assert shown.height > 0
    joined = shown.join(expected, on="incident_type", suffix="_polars")
    assert joined["count"].to_list() == joined["count_polars"].to_list()


def test_a_table_with_a_unit_id_matches_polars(cli, home, sources, tmp_path):
    # The unit id is text that is not a grouping key, so the engine reads through polars
    # rather than pyarrow's dictionary read: the counts must not change with the reader.
    spec = write_spec(
        tmp_path,
        {
            "project": PROJECT,
            "title": "Incidents by type, residents as the contributors",
            "datasets": {"fire_incidents": ["resident_id", "incident_type"]},
            "resources": {"workers": 2},
            "steps": [
                {
                    "kind": "table",
                    "name": "incidents",
                    "dataset": "fire_incidents",
                    "rows": ["incident_type"],
                    "unit": "resident_id",
                }
            ],
        },
    )
    assert cli("submit", spec, who="rita").code == 0
    assert cli("run", "--once", who="ada").code == 0
    expected = (
        pl.read_parquet(sources["fire_incidents"])
        .group_by("incident_type")
        .len(name="count")
        .sort("incident_type")
    )
    got = released_table(home, 1, "incidents").select("incident_type", "count")
    shown = got.filter(pl.col("count").is_not_null())
    assert shown.height > 0
    joined = shown.join(expected, on="incident_type", suffix="_polars")
    assert joined.height == shown.height
    assert joined["count"].to_list() == joined["count_polars"].to_list()


def test_steps_that_share_their_reads_each_match_polars(cli, home, sources, tmp_path):
    # Two steps with the same filter read each fragment once together; a third with
    # another filter reads on its own. Each table must be what polars computes.
    older = ["age_band in ['75-84', '85+']"]
    spec = write_spec(
        tmp_path,
        {
            "project": PROJECT,
            "title": "Older residents: counts and GP visits by area",
            "datasets": {
                "residents": ["local_authority", "age_band", "gp_visits_last_year", "sex"]
            },
            "resources": {"workers": 2},
            "steps": [
                {"kind": "table", "name": "older", "dataset": "residents",
                 "rows": ["local_authority"], "filter": older},
                {"kind": "table", "name": "older_visits", "dataset": "residents",
                 "rows": ["sex"], "value": "gp_visits_last_year", "statistic": "sum",
                 "filter": older},
                {"kind": "table", "name": "everyone", "dataset": "residents",
                 "rows": ["local_authority"]},
            ],
        },
    )  # fmt: skip
    assert cli("submit", spec, who="rita").code == 0
    assert cli("run", "--once", who="ada").code == 0
    residents = pl.read_parquet(sources["residents"])
    kept = residents.filter(pl.col("age_band").is_in(["75-84", "85+"]))
    expected = {
        "older": kept.group_by("local_authority").len(name="count"),
        "older_visits": kept.group_by("sex").agg(pl.col("gp_visits_last_year").sum()),
        "everyone": residents.group_by("local_authority").len(name="count"),
    }
    for name, frame in expected.items():
        got = released_table(home, 1, name)
        key, value = frame.columns
        column = "count" if value == "count" else "sum"
        shown = got.filter(pl.col(column).is_not_null()).select(key, column)
        assert shown.height > 0, name
        joined = shown.join(frame, on=key)
        assert joined.height == shown.height, name
        assert joined[column].to_list() == joined[value].to_list(), name
