"""Tests of tre.demo.synth: the synthetic Liverpool City Region data the demo ingests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
import yaml

from tre.demo import synth
from tre.demo.synth import DATASETS, descriptor_path, generate, load_descriptor, main
from tre.errors import NotFound
from tre.models import DatasetDescriptor, Sensitivity

ROWS = 2_000
# Real populations, largest first (ONS mid-2022).
AUTHORITIES_BY_SIZE = ["Liverpool", "Wirral", "Sefton", "St Helens", "Knowsley", "Halton"]
AGE_BANDS = ["0-15", "16-24", "25-34", "35-44", "45-54", "55-64", "65-74", "75-84", "85+"]
KEY_PATTERNS = {
    "residents": ("resident_id", r"^R[0-9a-f]{10}$"),
    "fire_incidents": ("incident_id", r"^F[0-9a-f]{10}$"),
    "early_help": ("referral_id", r"^E[0-9a-f]{10}$"),
}


def share_of(mask: pl.Series) -> float:
    """The share of rows where `mask` holds."""
    return float(mask.cast(pl.Float64).to_numpy().mean())


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return generate(tmp_path_factory.mktemp("demo"), rows=ROWS, seed=7)


@pytest.fixture(scope="module")
def tables(demo: dict[str, Path]) -> dict[str, pl.DataFrame]:
    return {name: pl.read_parquet(path) for name, path in demo.items()}


def test_writes_one_parquet_file_per_dataset(demo: dict[str, Path]) -> None:
    assert list(demo) == list(DATASETS)
    assert all(path.name == f"{name}.parquet" for name, path in demo.items())
    # No half-written files are left behind next to the results.
    assert sorted(p.name for p in demo["residents"].parent.iterdir()) == sorted(
        f"{name}.parquet" for name in DATASETS
    )


def test_same_seed_gives_the_same_bytes(demo: dict[str, Path], tmp_path: Path) -> None:
    again = generate(tmp_path, rows=ROWS, seed=7)
    for name in DATASETS:
        assert again[name].read_bytes() == demo[name].read_bytes(), name


def test_another_seed_gives_other_data(tables: dict[str, pl.DataFrame], tmp_path: Path) -> None:
    other = generate(tmp_path, rows=ROWS, seed=8)
    for name in DATASETS:
        assert not pl.read_parquet(other[name]).equals(tables[name]), name
    # Keys are pseudonyms keyed by the seed: no resident keeps their key.
    other_ids = set(pl.read_parquet(other["residents"])["resident_id"])
    assert not other_ids & set(tables["residents"]["resident_id"])


@pytest.mark.parametrize(
    ("rows", "fires", "referrals"),
    [(ROWS, 300, 300), (6_000, 300, 400), (12_000, 600, 800)],
)
def test_row_counts_scale_with_residents(
    rows: int, fires: int, referrals: int, tmp_path: Path
) -> None:
    paths = generate(tmp_path, rows=rows, seed=1)
    counts = {name: pq.read_metadata(path).num_rows for name, path in paths.items()}
    # About rows/20 incidents and rows/15 referrals, never fewer than a few hundred.
    assert counts == {"residents": rows, "fire_incidents": fires, "early_help": referrals}


def test_keys_are_unique_pseudonyms(tables: dict[str, pl.DataFrame]) -> None:
    for name, (column, pattern) in KEY_PATTERNS.items():
        keys = tables[name][column]
        assert keys.null_count() == 0, name
        assert keys.n_unique() == len(keys), name
        assert keys.str.contains(pattern).all(), name


def test_links_point_at_real_residents_in_the_same_ward(
    tables: dict[str, pl.DataFrame],
) -> None:
    residents = tables["residents"]
    for name in ("fire_incidents", "early_help"):
        linked = tables[name].drop_nulls("resident_id")
        assert linked.height > 0, name
        assert linked.join(residents, on="resident_id", how="anti").height == 0, name
        joined = linked.join(residents, on="resident_id", suffix="_home")
        assert (joined["ward"] == joined["ward_home"]).all(), name
        assert (joined["local_authority"] == joined["local_authority_home"]).all(), name


def test_only_incidents_at_homes_name_a_resident(tables: dict[str, pl.DataFrame]) -> None:
    fires = tables["fire_incidents"]
    linked = fires.group_by("incident_type").agg(pl.col("resident_id").is_not_null().mean())
    share = dict(linked.iter_rows())
    assert share["accidental dwelling fire"] == 1.0
    assert share["road traffic collision"] == share["secondary fire"] == 0.0
    assert 0.0 < share["false alarm"] < 1.0


def test_early_help_is_mostly_for_children(tables: dict[str, pl.DataFrame]) -> None:
    joined = tables["early_help"].join(tables["residents"], on="resident_id")
    assert joined.height == tables["early_help"].height
    assert share_of(joined["age_band"] == "0-15") > 0.8
    assert set(joined["age_band"]) <= {"0-15", "16-24"}


def test_all_six_authorities_in_order_of_real_population(
    tables: dict[str, pl.DataFrame],
) -> None:
    sizes = tables["residents"]["local_authority"].value_counts(sort=True)
    assert sizes["local_authority"].to_list() == AUTHORITIES_BY_SIZE
    wards = tables["residents"].group_by("local_authority").agg(pl.col("ward").n_unique())
    assert all(8 <= n <= 30 for _, n in wards.iter_rows())


@pytest.mark.parametrize("name", DATASETS)
def test_files_match_their_descriptors_exactly(demo: dict[str, Path], name: str) -> None:
    raw = yaml.safe_load(descriptor_path(name).read_text())
    descriptor = DatasetDescriptor.model_validate(raw)
    assert descriptor.name == name
    schema = pq.read_schema(demo[name])
    assert schema.names == [c.name for c in descriptor.columns]
    assert [str(t) for t in schema.types] == [c.type for c in descriptor.columns]
    assert all(c.description for c in descriptor.columns)


@pytest.mark.parametrize("name", DATASETS)
def test_descriptors_classify_keys_and_quasi_identifiers(name: str) -> None:
    sensitivity = {c.name: c.sensitivity for c in load_descriptor(name).columns}
    quasi = {"local_authority", "ward", "age_band", "sex", "deprivation_decile"}
    for column, level in sensitivity.items():
        if column.endswith("_id"):
            assert level is Sensitivity.IDENTIFIER, column
        elif column in quasi:
            assert level is Sensitivity.QUASI_IDENTIFIER, column
        else:
            assert level is Sensitivity.ATTRIBUTE, column


def test_unknown_dataset_names_the_known_ones() -> None:
    with pytest.raises(NotFound) as caught:
        descriptor_path("patients")
    assert "patients" in str(caught.value)
    assert all(name in str(caught.value) for name in DATASETS)


def test_long_term_conditions_rise_with_age_and_deprivation(
    tables: dict[str, pl.DataFrame],
) -> None:
    residents = tables["residents"]
    by_age = residents.group_by("age_band").agg(pl.col("ltc_count").mean())
    means = dict(by_age.iter_rows())
    assert [means[band] for band in AGE_BANDS] == sorted(means[band] for band in AGE_BANDS)
    ltc = pl.col("ltc_count").mean()
    deprived = residents.filter(pl.col("deprivation_decile") <= 3).select(ltc).item()
    affluent = residents.filter(pl.col("deprivation_decile") >= 8).select(ltc).item()
    assert deprived > affluent


def test_deprivation_follows_the_real_region(tables: dict[str, pl.DataFrame]) -> None:
    residents = tables["residents"]
    mean = dict(
        residents.group_by("local_authority").agg(pl.col("deprivation_decile").mean()).iter_rows()
    )
    assert max(mean["Knowsley"], mean["Liverpool"]) < min(mean["Wirral"], mean["Sefton"])
    # Incidents at homes and early-help referrals concentrate in deprived households.
    for name in ("fire_incidents", "early_help"):
        joined = tables[name].join(residents, on="resident_id")
        decile = joined["deprivation_decile"]
        assert share_of(decile <= 3) > 2 * share_of(decile >= 8), name


def test_small_and_dominated_cells_exist_for_disclosure_checks(
    tables: dict[str, pl.DataFrame],
) -> None:
    residents = tables["residents"]
    cells = (
        residents.filter(pl.col("has_copd") & (pl.col("age_band") == "85+"))
        .group_by("local_authority", "ward")
        .len()
    )
    assert ((cells["len"] >= 1) & (cells["len"] < 10)).any()
    # Social care spend is mostly zero, and one person can dominate an authority's total.
    cost = residents["social_care_cost_gbp"]
    assert share_of(cost == 0) > 0.9
    share = residents.group_by("local_authority").agg(
        (pl.col("social_care_cost_gbp").max() / pl.col("social_care_cost_gbp").sum()).alias("top")
    )
    assert share.select(pl.col("top").max()).item() > 0.5


def test_progress_reports_every_dataset_to_completion(tmp_path: Path) -> None:
    seen: dict[str, tuple[int, int]] = {}
    generate(
        tmp_path, rows=ROWS, progress=lambda name, done, total: seen.update({name: (done, total)})
    )
    assert seen == {
        "residents": (ROWS, ROWS),
        "fire_incidents": (300, 300),
        "early_help": (300, 300),
    }


def test_many_chunks_keep_keys_unique_and_links_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(synth, "CHUNK_ROWS", 700)  # 2,000 residents in three chunks
    paths = generate(tmp_path, rows=ROWS, seed=7)
    assert pq.read_metadata(paths["residents"]).num_row_groups == 3
    frames = {name: pl.read_parquet(path) for name, path in paths.items()}
    assert {name: f.height for name, f in frames.items()} == {
        "residents": ROWS,
        "fire_incidents": 300,
        "early_help": 300,
    }
    for name, (column, _) in KEY_PATTERNS.items():
        assert frames[name][column].n_unique() == frames[name].height, name
    for name in ("fire_incidents", "early_help"):
        linked = frames[name].drop_nulls("resident_id")
        assert linked.join(frames["residents"], on="resident_id", how="anti").height == 0


def test_cli_writes_the_files_and_prints_row_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(tmp_path / "out"), "--rows", "2000", "--seed", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("residents")
    assert "2,000 rows" in lines[0]
    assert lines[1].startswith("fire_incidents")
    assert "300 rows" in lines[1]
    assert all((tmp_path / "out" / f"{name}.parquet").exists() for name in DATASETS)


def test_cli_refuses_too_few_rows_and_a_negative_seed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(tmp_path), "--rows", "50", "--seed", "-1"]) == 2
    err = capsys.readouterr().err
    # Every problem at once, each naming the value and what is allowed.
    assert "--rows 50 is outside 100..200,000,000" in err
    assert "--seed -1 is negative" in err
    assert not list(tmp_path.iterdir())


def test_cli_refuses_to_overwrite_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(tmp_path), "--rows", "200"]) == 0
    before = (tmp_path / "residents.parquet").read_bytes()
    assert main([str(tmp_path), "--rows", "300"]) == 2
    err = capsys.readouterr().err
    assert "residents.parquet already exists" in err
    assert "--force" in err
    assert (tmp_path / "residents.parquet").read_bytes() == before
    assert main([str(tmp_path), "--rows", "300", "--force"]) == 0
    assert pq.read_metadata(tmp_path / "residents.parquet").num_rows == 300


def test_cli_rejects_a_non_number(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path), "--rows", "many"]) == 2
    assert "invalid int value: 'many'" in capsys.readouterr().err


def test_module_runs_as_a_command(tmp_path: Path) -> None:
    # -W error: running the module must not warn about importing itself twice.
    done = subprocess.run(
        [sys.executable, "-W", "error", "-m", "tre.demo.synth", str(tmp_path), "--rows", "10"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "cannot generate the demo data" in done.stderr
    assert "Traceback" not in done.stderr
