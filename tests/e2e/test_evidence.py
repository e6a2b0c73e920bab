"""Disclosure evidence that researcher code computed is never taken on trust.

A python step's `ctx.table` computes its cells and evidence in the researcher's own
process, which can rewrite them. Run for real, in the sandbox: the rewritten table is
labelled advisory, does not pass, and a checker must approve it by name.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.conftest import PROJECT, write_spec
from tests.e2e.test_hostile import _job, _run
from tre.models import JobState

pytestmark = pytest.mark.slow

REWRITE = textwrap.dedent("""
    import polars as pl

    def rewrite(ctx):
        costs = ctx.dataset("residents").filter(pl.col("social_care_cost_gbp") > 0)
        three = costs.unique("social_care_cost_gbp").head(3)
        three = three.with_columns(pl.lit("all").alias("area"))
        ctx.table("mean_of_three", three, rows=["area"], value="social_care_cost_gbp",
                  statistic="mean")
        table = ctx.outputs[-1]
        # Claim a thousand contributors, none of them dominant.
        table.cells = table.cells.with_columns(
            pl.lit(1000).cast(table.cells.schema["n"]).alias("n"),
            pl.lit(1000).cast(table.cells.schema["records"]).alias("records"),
            pl.col("top").list.eval(pl.element() / 1000),
        )
""")


def test_evidence_rewritten_in_the_step_is_advisory_and_never_passes(cli, home, tmp_path: Path):
    (tmp_path / "rewrite.py").write_text(REWRITE)
    spec = write_spec(
        tmp_path,
        {
            "project": PROJECT,
            "title": "A mean of three, with its evidence rewritten",
            "datasets": {"residents": ["social_care_cost_gbp"]},
            "steps": [
                {
                    "kind": "python",
                    "name": "rewrite",
                    "function": "rewrite.py:rewrite",
                    "outputs": {"mean_of_three": "Mean social care cost."},
                }
            ],
        },
        name="rewrite.yaml",
    )
    job_id = _run(cli, spec)
    job = _job(home, job_id)
    assert job.state is JobState.AWAITING_REVIEW, job.reason
    report = json.loads((home / "jobs" / f"{job_id:06d}" / "report" / "report.json").read_text())
    (table,) = report["outputs"]
    # The rewrite fooled every rule that reads the evidence...
    assert {c["status"] for c in table["cells"]} == {"pass"}
    # ...but the table is labelled, and does not pass.
    assert table["advisory"].startswith("computed by researcher code: these checks are advisory")
    # tre's own words on why plan mode could not run it (slices and distinct rows).
    assert (
        "(plan mode: its plan uses what plan mode does not run: distinct rows (unique), "
        "slices (head, tail, slice) (plan mode runs" in table["advisory"]
    )
    assert table["status"] == "review" and table["check_status"] == "review"
    html = (home / "jobs" / f"{job_id:06d}" / "report" / "report.html").read_text()
    assert "Advisory:" in html
    shown = cli("review", "show", job_id, who="carl")
    assert shown.code == 0, shown.err
    assert "advisory" in shown.out.lower()
    researcher = cli("status", job_id, who="rita")  # one fixed sentence, no reason
    assert "computed by your code, so its checks are advisory" in " ".join(researcher.out.split())
    bulk = cli("review", "approve", job_id, "-m", "ok", who="carl")
    assert bulk.code == 4 and "must be approved by name" in bulk.err
    named = cli("review", "approve", job_id, "--output", "mean_of_three", "-m", "x", who="carl")
    assert named.code == 0, named.err


LINGER = textwrap.dedent("""
    import json
    import os
    import time
    from pathlib import Path

    def linger(ctx):
        seen = {
            "uid": os.getuid(),
            "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
            "out": sorted(str(p) for p in Path("/job/out").rglob("*")),
        }
        if os.fork() == 0:  # a grandchild that outlives the step, out to rewrite evidence
            os.setsid()
            if os.fork():
                os._exit(0)
            deadline = time.time() + 60
            while time.time() < deadline:
                for root in ("/job", "/tmp"):
                    for path in Path(root).rglob("*.parquet"):
                        try:
                            path.write_bytes(b"rewritten")
                        except OSError:
                            pass
                time.sleep(0.02)
            os._exit(0)
        ctx.file("seen", "seen.json", json.dumps(seen), description="What the code saw.")
""")


def test_researcher_code_runs_in_a_sandbox_of_its_own_and_cannot_touch_the_engines_evidence(
    cli, home, tmp_path: Path, sources
):
    import pwd

    import polars as pl

    from tests.e2e.test_hostile import _job_processes

    (tmp_path / "linger.py").write_text(LINGER)
    spec = write_spec(
        tmp_path,
        {
            "project": PROJECT,
            "title": "A declarative table beside code that lingers",
            "datasets": {"residents": ["local_authority"]},
            "steps": [
                {"kind": "python", "name": "linger", "function": "linger.py:linger"},
                {
                    "kind": "table",
                    "name": "by_area",
                    "dataset": "residents",
                    "rows": ["local_authority"],
                },
            ],
        },
        name="linger.yaml",
    )
    job_id = _run(cli, spec)
    job = _job(home, job_id)
    assert job.state is JobState.AWAITING_REVIEW, job.reason
    folder = home / "jobs" / f"{job_id:06d}"
    seen = json.loads((folder / "result" / "files" / "seen" / "seen.json").read_text())
    assert pwd.getpwuid(seen["uid"]).pw_name.startswith("tre-code-")  # not the engine's user
    # Its own folder (the files its own phase began with), not the engine's.
    assert set(seen["out"]) <= {"/job/out/progress.json", "/job/out/error.json.reserve"}
    assert not _job_processes(home)  # the grandchild ended with its sandbox
    report = json.loads((folder / "report" / "report.json").read_text())
    table = next(o for o in report["outputs"] if o["name"] == "by_area")
    assert "advisory" not in table  # the engine's own evidence
    counted = {c["keys"]["local_authority"]: c["n"] for c in table["cells"] if c["margin"] == ""}
    truth = pl.read_parquet(sources["residents"]).group_by("local_authority").len()
    assert counted == dict(truth.iter_rows())


PLANNED = textwrap.dedent("""
    import polars as pl

    def planned(ctx):
        residents = ctx.dataset("residents", ["local_authority"])
        ctx.table("by_area", residents, rows=["local_authority"])
        table = ctx.outputs[-1]
        table.cells = table.cells.with_columns(pl.lit(1).cast(table.cells.schema["n"]).alias("n"))
        # Each copy made to look different from the others: still one row each.
        copies = [residents.with_columns(pl.lit(k).alias("copy")) for k in range(10)]
        ctx.table("ten_copies", pl.concat(copies), rows=["local_authority"])
        people = ctx.dataset("residents", ["resident_id", "local_authority"])
        ctx.table("people_ten_times", pl.concat([people] * 10), rows=["local_authority"])
        referrals = ctx.dataset("early_help", ["local_authority"])
        ctx.table("referrals_twice", pl.concat([referrals] * 2), rows=["local_authority"])
        ctx.table("mixed", pl.concat([residents, referrals]), rows=["local_authority"])
""")


def test_in_plan_mode_the_engine_computes_the_evidence_and_the_codes_edits_are_lost(
    cli, home, tmp_path: Path, sources
):
    import polars as pl

    (tmp_path / "planned.py").write_text(PLANNED)
    spec = write_spec(
        tmp_path,
        {
            "project": PROJECT,
            "title": "Plan mode",
            "datasets": {
                "residents": ["resident_id", "local_authority"],
                "early_help": ["local_authority"],
            },
            "steps": [{"kind": "python", "name": "planned", "function": "planned.py:planned"}],
        },
        name="planned.yaml",
    )
    job_id = _run(cli, spec)
    job = _job(home, job_id)
    assert job.state is JobState.AWAITING_REVIEW, job.reason
    report = json.loads((home / "jobs" / f"{job_id:06d}" / "report" / "report.json").read_text())
    by_name = {o["name"]: o for o in report["outputs"]}

    def counted(name: str) -> dict[str, int]:
        cells = by_name[name]["cells"]
        return {c["keys"]["local_authority"]: c["n"] for c in cells if c["margin"] == ""}

    def truth(dataset: str) -> dict[str, int]:
        frame = pl.read_parquet(sources[dataset]).group_by("local_authority").len()
        return dict(frame.iter_rows())

    people = truth("residents")
    for name in ("by_area", "ten_copies", "people_ten_times"):
        assert "advisory" not in by_name[name], name
        assert counted(name) == people, name  # not the 1s the code wrote, nor ten times
    # residents declares its unit, and the job may read it: people are counted by it.
    assert by_name["people_ten_times"]["provenance"] == (
        "computed by tre's engine from the python step's plan (plan mode), "
        "each resident_id counted once"
    )
    # early_help's unit (resident_id) is not granted: its rows count, each once.
    assert counted("referrals_twice") == truth("early_help")
    assert "each row of the data counted once" in by_name["referrals_twice"]["provenance"]
    # By the unit, though the code never selected it.
    assert by_name["by_area"]["provenance"].endswith("each resident_id counted once")
    mixed = by_name["mixed"]  # two ways of counting in one table: free mode, in tre's words
    assert "count contributors differently" in mixed["advisory"]
    assert mixed["status"] != "pass"
    shown = cli("review", "show", job_id, who="carl")
    assert "Evidence computed by tre's engine" in shown.out


REGRESSED = textwrap.dedent("""
    import polars as pl

    def regressed(ctx):
        residents = ctx.dataset("residents", ["gp_visits_last_year", "ltc_count", "sex"])
        ctx.regression("visits", residents, outcome="gp_visits_last_year",
                       predictors=["ltc_count", "sex"], categorical=["sex"])
        fitted = ctx.outputs[-1]  # claim far more people, and big groups
        fitted.n_obs, fitted.df_resid = 10**6, 10**6
        fitted.level_counts = {"sex": {"F": 10**5, "M": 10**5}}
        ctx.regression("visits_twice", pl.concat([residents, residents]),
                       outcome="gp_visits_last_year", predictors=["ltc_count"])
""")


def test_a_regression_in_plan_mode_is_fitted_by_the_engine(cli, home, tmp_path: Path, sources):
    import polars as pl

    (tmp_path / "regressed.py").write_text(REGRESSED)
    spec = write_spec(
        tmp_path,
        {
            "project": PROJECT,
            "title": "A regression in plan mode",
            "datasets": {"residents": ["gp_visits_last_year", "ltc_count", "sex"]},
            "steps": [
                {"kind": "python", "name": "regressed", "function": "regressed.py:regressed"}
            ],
        },
        name="regressed.yaml",
    )
    job_id = _run(cli, spec)
    job = _job(home, job_id)
    assert job.state is JobState.AWAITING_REVIEW, job.reason
    report = json.loads((home / "jobs" / f"{job_id:06d}" / "report" / "report.json").read_text())
    by_name = {o["name"]: o for o in report["outputs"]}
    visits = by_name["visits"]
    assert "advisory" not in visits
    assert (
        visits["provenance"] == "computed by tre's engine from the python step's plan (plan mode)"
    )
    truth = pl.read_parquet(sources["residents"])
    assert visits["n_obs"] == truth.height  # not the million the code claimed
    sexes = dict(truth.group_by("sex").len().iter_rows())
    assert visits["level_counts"] == {"sex": sexes}
    twice = by_name["visits_twice"]  # fitted on rows: a repeated row is refused
    assert "its plan concatenates frames" in twice["advisory"]
    assert twice["status"] != "pass"
