"""Disclosure control through the CLI, with real jobs: protected tables, failing outputs,
differencing within a request and against the project's release ledger, policy layers
and unit-level contributors."""

import csv
import itertools
import json

import pytest

from tests.conftest import PROJECT, write_spec
from tests.e2e.test_workflow import submit_and_run
from tre.service.ledger import released_tables
from tre.service.session import Session

pytestmark = pytest.mark.slow

RESOURCES = {"workers": 1, "cores": 1, "memory": "1GiB", "walltime": "10m"}
COLUMNS = ["local_authority", "age_band", "has_copd", "gp_visits_last_year"]


def table(name, **step):
    return {"kind": "table", "name": name, "dataset": "residents", **step}


def spec(folder, *steps, name="job.yaml", datasets=None):
    return write_spec(
        folder,
        {
            "project": PROJECT,
            "title": "Disclosure checks",
            "datasets": datasets or {"residents": COLUMNS},
            "resources": RESOURCES,
            "steps": list(steps),
        },
        name=name,
    )


def report_of(home, job):
    return json.loads((home / "jobs" / f"{int(job):06d}" / "report" / "report.json").read_text())


def vote_all(cli, job, decision, output=None):
    for checker in ("carl", "chen"):
        args = ["review", decision, job, "-m", "checked the report"]
        args += ["--output", output] if output else []
        result = cli(*args, who=checker)
        assert result.code == 0, result.err


by_area = table("everyone", rows=["local_authority"], columns=["age_band"])
without_copd = table(
    "without_copd",
    rows=["local_authority"],
    columns=["age_band"],
    filter="has_copd == false",
)


def test_two_outputs_that_disclose_together_cannot_both_be_approved(cli, home, tmp_path):
    job = submit_and_run(cli, spec(tmp_path, by_area, without_copd))
    report = report_of(home, job)
    (finding,) = report["differencing"]
    assert finding["outputs"] == ["everyone", "without_copd"]
    assert (finding["kind"], finding["status"]) == ("difference", "fail")
    assert [o["status"] for o in report["outputs"]] == ["review", "review"]
    html = (home / "jobs" / f"{int(job):06d}" / "report" / "report.html").read_text()
    assert '<a href="#output-1">everyone</a> and <a href="#output-2">without_copd</a>' in html

    first = cli("review", "approve", job, "--output", "everyone", "-m", "ok", who="carl")
    assert first.code == 0, first.err
    both = cli("review", "approve", job, "--output", "without_copd", "-m", "ok", who="carl")
    assert both.code == 4
    assert "discloses when released together" in both.err
    assert "everyone and without_copd" in both.err

    cli("review", "approve", job, "--output", "everyone", "-m", "ok", who="chen")
    vote_all(cli, job, "reject", "without_copd")
    released = cli("review", "release", job, who="carl")
    assert released.code == 0, released.err

    # The release is in the ledger: the project's next requests are checked against it.
    s = Session.open(home, "ada")
    try:
        ledger = released_tables(s.conn, PROJECT)
    finally:
        s.close()
    assert [(t.name, t.job_id) for t in ledger] == [("everyone", int(job))]

    again = submit_and_run(cli, spec(tmp_path, without_copd, name="again.yaml"))
    later = report_of(home, again)
    (finding,) = later["differencing"]
    assert finding["outputs"] == ["without_copd", "everyone"]
    assert finding["jobs"] == [None, int(job)]
    assert later["outputs"][0]["status"] == "fail"
    refused = cli("review", "approve", again, "-m", "fine", who="carl")
    assert refused.code == 4 and "even after protection" in refused.err


def test_filters_are_read_as_ranges_so_a_condition_every_count_meets_holds_the_other(
    cli, home, tmp_path, sources
):
    # The example: "ltc_count >= 0" and "ltc_count <= 7" each pass, and compared
    # as text they were no finding, yet their difference is the people with 8 long-term
    # conditions in each authority. Ingest noted that no count is below 0, so the first
    # is recorded as "not null", which holds the second: a proven difference.
    import polars as pl

    columns = ["local_authority", "ltc_count"]
    everyone = table("everyone", rows=["local_authority"], filter="ltc_count >= 0")
    fewer = table("fewer", rows=["local_authority"], filter="ltc_count <= 7")
    job = submit_and_run(cli, spec(tmp_path, everyone, fewer, datasets={"residents": columns}))
    report = report_of(home, job)
    eight = pl.read_parquet(sources["residents"]).filter(pl.col("ltc_count") == 8)
    small = eight.group_by("local_authority").len().filter(pl.col("len") < 10)
    assert small.height and eight.height < 10  # the data has such a group, and so a test
    (finding,) = report["differencing"]
    assert (finding["kind"], finding["status"]) == ("difference", "fail")
    assert finding["outputs"] == ["everyone", "fewer"]
    named = {f"local_authority {a}" for a in small.get_column("local_authority")}
    assert named | {"grand total"} == set(finding["cells"]) or named <= set(finding["cells"])
    assert [o["status"] for o in report["outputs"]] == ["review", "review"]
    # What is recorded is the verdict, never the range itself (a largest value can be
    # one person's).
    population = report["outputs"][0]["population"]
    assert population["filters"] == ["ltc_count not null"]
    assert population["types"] == {"ltc_count": "integer"}
    assert population["written"] == ["ltc_count >= 0"]  # and what the checkers read
    assert "max" not in json.dumps(population) and "8" not in json.dumps(population)
    md = (home / "jobs" / f"{int(job):06d}" / "report" / "report.md").read_text()
    assert "only rows where ltc\\_count not null (written as ltc\\_count &gt;= 0;" in md


def test_a_count_of_a_value_counts_the_records_that_have_one(cli, home, tmp_path, sources):
    # 204 of the synthetic incidents name no resident: counting resident_id counts the
    # incidents whose resident is known, per type, as polars does.
    import polars as pl

    known = table("known", dataset="fire_incidents", rows=["incident_type"], value="resident_id")
    columns = {"fire_incidents": ["incident_type", "resident_id"]}
    job = submit_and_run(cli, spec(tmp_path, known, datasets=columns))
    cells = report_of(home, job)["outputs"][0]["cells"]
    counted = {c["keys"]["incident_type"]: c["value"] for c in cells if c["margin"] == ""}
    expected = (
        pl.read_parquet(sources["fire_incidents"])
        .group_by("incident_type")
        .agg(pl.col("resident_id").count())
    )
    assert counted == dict(expected.iter_rows())
    assert sum(counted.values()) < pl.read_parquet(sources["fire_incidents"]).height


def test_a_histogram_counts_each_bin_and_its_small_bins_are_suppressed(
    cli, home, tmp_path, sources
):
    import polars as pl

    edges = [0, 2, 4, 8, 12, 60]  # two residents had 60 or more visits
    visits = table("visits", rows=["gp_visits_last_year"], bins={"gp_visits_last_year": edges})
    job = submit_and_run(cli, spec(tmp_path, visits))
    output = report_of(home, job)["outputs"][0]
    cells = {c["keys"]["gp_visits_last_year"]: c for c in output["cells"] if c["margin"] == ""}
    data = pl.read_parquet(sources["residents"]).get_column("gp_visits_last_year")
    expected = {"< 0": int((data < 0).sum()), ">= 60": int((data >= 60).sum())}
    for low, high in itertools.pairwise(edges):
        expected[f"[{low}, {high})"] = int(((data >= low) & (data < high)).sum())
    assert 0 < expected[">= 60"] < 10
    assert {k: c["value"] for k, c in cells.items()} == {k: v for k, v in expected.items() if v}
    for label, cell in cells.items():  # the frequency rule holds per bin
        assert (cell["status"] == "fail") == (0 < expected[label] < 10), label
        if cell["status"] == "fail":
            assert cell["suppressed"] == "primary"


def test_three_tables_that_disclose_together_cannot_all_be_approved(cli, home, tmp_path):
    # Everyone, those with at most 4 conditions and those with 6 or more: together they
    # count the residents with 5 conditions in each authority, whom no table publishes.
    columns = {"residents": ["local_authority", "ltc_count"]}
    steps = [
        table("everyone", rows=["local_authority"]),
        table("few", rows=["local_authority"], filter="ltc_count <= 4"),
        table("many", rows=["local_authority"], filter="ltc_count >= 6"),
    ]
    job = submit_and_run(cli, spec(tmp_path, *steps, datasets=columns))
    report = report_of(home, job)
    (found,) = [f for f in report["differencing"] if f["kind"] == "combination"]
    assert sorted(found["outputs"]) == ["everyone", "few", "many"]
    assert found["status"] == "fail" and "ltc_count == 5" in found["message"]
    assert "local_authority St Helens" in found["cells"]  # 9 residents there
    for name in ("everyone", "few"):
        approved = cli("review", "approve", job, "--output", name, "-m", "ok", who="carl")
        assert approved.code == 0, approved.err
    third = cli("review", "approve", job, "--output", "many", "-m", "ok", who="carl")
    assert third.code == 4
    assert "discloses when released together" in third.err
    assert "everyone, few and many" in third.err


def test_a_table_that_cannot_be_protected_cannot_be_approved(cli, home, tmp_path):
    maximum = table(
        "oldest",
        rows=["local_authority"],
        value="gp_visits_last_year",
        statistic="max",
    )
    job = submit_and_run(cli, spec(tmp_path, maximum))
    status = cli("status", job, who="rita")
    assert "oldest (table): fail" in status.out
    assert "nothing is left to release" in status.out
    failing = cli("review", "approve", job, "-m", "ok", who="carl")
    assert failing.code == 4 and "fail the disclosure rules even after protection" in failing.err


def test_the_release_holds_the_protected_table_and_a_summary_without_evidence(cli, home, tmp_path):
    copd = table(
        "copd",
        rows=["local_authority"],
        columns=["age_band"],
        filter="has_copd == true",
    )
    job = submit_and_run(cli, spec(tmp_path, copd))
    vote_all(cli, job, "approve")
    assert cli("review", "release", job, who="carl").code == 0
    fetched = tmp_path / "mine"
    assert cli("outputs", job, "--to", fetched, who="rita").code == 0
    rows = list(csv.DictReader((fetched / "copd" / "copd.csv").open()))
    assert list(rows[0]) == ["local_authority", "age_band", "count", "suppressed"]
    hidden = [r for r in rows if r["suppressed"] == "true"]
    assert hidden and all(r["count"] == "" for r in hidden)
    assert rows[-1]["local_authority"] == rows[-1]["age_band"] == "Total"
    summary = (fetched / "copd" / "copd-disclosure.md").read_text()
    assert "suppressed because they fail a rule" in summary
    assert "records, below the threshold" not in summary  # the checkers' words, with counts
    # The checkers' report has the evidence; what the researcher fetched does not.
    evidence = report_of(home, job)["outputs"][0]["cells"]
    small = next(c for c in evidence if c["suppressed"] == "primary" and c["value"] > 0)
    assert f"{int(small['value'])} records" not in summary


def test_project_and_dataset_policies_apply_and_are_recorded(cli, home, tmp_path):
    policies = home / "policies"
    (policies / "projects").mkdir(parents=True)
    (policies / "datasets").mkdir()
    (policies / "projects" / f"{PROJECT}.yaml").write_text("round_to: 5\nthreshold: 5\n")
    (policies / "datasets" / "residents.yaml").write_text("threshold: 12\n")
    job = submit_and_run(cli, spec(tmp_path, by_area))
    report = report_of(home, job)
    layers = [f["layer"] for f in report["policy"]["files"]]
    assert layers == ["packaged", f"project {PROJECT}", "dataset residents"]
    assert all(len(f["sha256"]) == 64 for f in report["policy"]["files"])
    assert any("threshold: 5, looser than" in note for note in report["policy"]["notes"])
    output = report["outputs"][0]
    assert output["rules"]["threshold"] == 12  # the dataset's, stricter than the project's
    assert output["rounded_to"] == 5
    counts = [c["published"] for c in output["cells"] if c["published"] is not None]
    assert counts and all(value % 5 == 0 for value in counts)
    vote_all(cli, job, "approve")
    assert cli("review", "release", job, who="carl").code == 0
    manifest = json.loads((home / "releases" / f"{int(job):06d}" / "manifest.json").read_text())
    assert [f["layer"] for f in manifest["rules"]["files"]] == layers
    assert manifest["rules"]["parameters"]["round_to"] == 5


def test_a_unit_column_counts_people_not_incidents(cli, home, tmp_path):
    incidents = {
        "kind": "table",
        "name": "incidents",
        "dataset": "fire_incidents",
        "rows": ["incident_type"],
        "unit": "resident_id",
    }
    job = submit_and_run(
        cli,
        spec(
            tmp_path,
            incidents,
            datasets={"fire_incidents": ["incident_type", "resident_id"]},
        ),
    )
    cells = report_of(home, job)["outputs"][0]["cells"]
    assert any(c["n"] < c["records"] for c in cells)  # some people had several incidents
    status = cli("status", job, who="rita")
    assert "incidents (table)" in status.out
