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
