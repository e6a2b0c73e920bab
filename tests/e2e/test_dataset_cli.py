"""`tre dataset` and `tre keys` as an admin types them: drafts, confirmations, folders,
partitions, verification, and refusals with their reasons."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow.parquet as pq
import yaml


def _split(source: Path, folder: Path) -> Path:
    """The fire incidents source as a folder of two Parquet files."""
    folder.mkdir()
    table = pq.read_table(source)
    half = table.num_rows // 2
    pq.write_table(table.slice(0, half), folder / "part-a.parquet")
    pq.write_table(table.slice(half), folder / "part-b.parquet")
    return folder


def test_describe_drafts_a_descriptor_to_correct_then_ingest(cli, sources, tmp_path):
    folder = _split(sources["fire_incidents"], tmp_path / "fire")
    draft = tmp_path / "fire.yaml"
    described = cli("dataset", "describe", folder, "--out", draft, who="ada")
    assert described.code == 0, described.err
    data = yaml.safe_load(draft.read_text())
    assert "set\n# each column's sensitivity" in draft.read_text()
    assert {c["sensitivity"] for c in data["columns"]} == {"attribute"}
    for column in data["columns"]:
        if column["name"] in ("incident_id", "resident_id"):
            column["sensitivity"] = "identifier"
    assert "unit" in data and data["unit"] is None  # a place to say who rows are about
    data["unit"] = "incident_id"
    draft.write_text(yaml.safe_dump(data))
    ingested = cli(
        "dataset", "ingest", "fire_copy", folder, "--describe", draft,
        "--partition-by", "incident_month", who="ada",
    )  # fmt: skip
    assert ingested.code == 0, ingested.err
    assert "Ingested fire_copy version 1" in ingested.out and "12 file(s)" in ingested.out
    shown = cli("dataset", "show", "fire_copy", who="rita")
    assert "resident_id" in shown.out and "identifier" in shown.out
    assert "Each row is about one incident_id" in " ".join(shown.out.split())


def test_an_inferred_schema_must_be_confirmed(cli, home, sources, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    refused = cli("dataset", "ingest", "fire_copy", sources["fire_incidents"], who="ada")
    assert refused.code == 130  # answered no: nothing is written
    assert "Ingest with these types? [y/N]" in refused.err
    assert "Inferred from" in refused.err and "incident_type" in refused.err
    assert "every column will be an 'attribute'" in refused.err
    assert not (home / "data" / "fire_copy").exists()
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    accepted = cli("dataset", "ingest", "fire_copy", sources["fire_incidents"], who="ada")
    assert accepted.code == 0, accepted.err
    again = cli("dataset", "ingest", "fire_copy", sources["fire_incidents"], "--yes", who="ada")
    assert again.code == 0 and "Ingested fire_copy version 2" in again.out


def test_partitioning_on_a_sensitive_column_is_refused_with_the_reason(cli, home, sources):
    result = cli(
        "dataset", "ingest", "residents", sources["residents"],
        "--describe", Path("tre/demo/datasets/residents.yaml").absolute(),
        "--partition-by", "local_authority", who="ada",
    )  # fmt: skip
    assert result.code == 2
    assert "'local_authority' is quasi_identifier: partition values become plaintext" in result.err
    assert sorted(p.name for p in (home / "data" / "residents").iterdir()) == ["v1"]


def test_verify_passes_then_names_the_corrupted_file(cli, home):
    assert cli("dataset", "verify", "early_help", who="ada").out.startswith(
        "early_help v1: 1 file(s), all match the catalog"
    )
    path = home / "data" / "early_help" / "v1" / "part-00000.parquet"
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    result = cli("dataset", "verify", "early_help", who="ada")
    assert result.code == 6
    assert "early_help/v1/part-00000.parquet: sha256 is" in result.err
    assert "restore the named files from backup" in result.err
    assert cli("dataset", "verify", "early_help", who="rita").code == 4


def test_researchers_cannot_manage_keys(cli):
    for args in (("keys", "list"), ("keys", "grants"), ("keys", "rotate", "--all")):
        result = cli(*args, who="rita")
        assert result.code == 4, (args, result.err)
        assert "needs the admin role" in result.err
    usage = cli("keys", "rotate", who="ada")
    assert usage.code == 2 and "exactly one of --dataset NAME, --key ID or --all" in usage.err


def test_a_symlink_to_a_secret_file_is_refused_and_its_text_never_shown(cli, home, tmp_path):
    secret = tmp_path / "outside" / "shadow"
    secret.parent.mkdir()
    secret.write_text("root:$6$Qv7-not-for-anyone:19000:0:99999:7:::\n")
    link = tmp_path / "care.csv"
    link.symlink_to(secret)
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "a.csv").write_text("a,b\n1,2\n")
    (folder / "b.csv").symlink_to(secret)
    for source in (link, folder):
        for command in ("ingest", "describe"):
            args = ["dataset", command] + (
                ["care", source, "--yes"] if command == "ingest" else [source]
            )
            result = cli(*args, who="ada")
            assert result.code != 0
            assert "Qv7-not-for-anyone" not in result.out + result.err
            assert "symlink to" in result.err
    assert not (home / "data" / "care").exists()
