"""The ACRO-compatible session: ACRO's nursery walkthrough, run on `disclosure.acro`.

The nursery data cannot be downloaded here, so `nursery()` builds a seeded stand-in
with its column names and categories, keeping its rare "recommend" level (2 records).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import disclosure
from disclosure.acro import ACRO
from disclosure.errors import DisclosureInputError

RECORD_FIELDS = {
    "uid",
    "status",
    "type",
    "properties",
    "files",
    "outcome",
    "command",
    "summary",
    "timestamp",
    "comments",
    "exception",
}
SDC_SUMMARY = {
    "suppressed",
    "negative",
    "missing",
    "threshold",
    "p-ratio",
    "nk-rule",
    "all-values-are-same",
}


def nursery(size=900, seed=14):
    """The nursery columns ACRO's notebook uses, with 2 records recommended (both of
    usual parents, so the other two cells of the level are empty)."""
    rng = np.random.default_rng(seed)
    recommend = rng.choice(
        ["not_recom", "priority", "spec_prior", "very_recom"], size, p=[0.33, 0.33, 0.24, 0.1]
    )
    recommend[:2] = "recommend"
    parents = rng.choice(["usual", "pretentious", "great_pret"], size)
    parents[:2] = "usual"
    return pd.DataFrame(
        {
            "parents": parents,
            "has_nurs": rng.choice(["proper", "less_proper", "improper", "critical"], size),
            "form": rng.choice(["complete", "completed", "incomplete", "foster"], size),
            "children": rng.choice(["1", "2", "3", "more"], size),
            "housing": rng.choice(["convenient", "less_conv", "critical"], size),
            "finance": rng.choice(["convenient", "inconv"], size),
            "social": rng.choice(["nonprob", "slightly_prob", "problematic"], size),
            "health": rng.choice(["recommended", "priority", "not_recom"], size),
            "recommend": recommend,
        }
    )


def numeric_children(df):
    """As the notebook does: 'more' children read as 4, so children can be averaged."""
    return df.assign(children=pd.to_numeric(df["children"].replace({"more": "4"})))


def failing_positions(counts, threshold=10):
    """[row, column] of every cell of a pandas crosstab below the threshold."""
    return sorted([int(r), int(c)] for r, c in np.argwhere(counts.to_numpy() < threshold))


def test_the_rare_level_fails_the_threshold_and_comes_back_nan_when_suppressing():
    df = nursery()
    acro = ACRO(suppress=True)
    table = acro.crosstab(df.recommend, df.parents)
    assert table.index.name == "recommend" and table.columns.name == "parents"
    assert list(table.index) == ["not_recom", "priority", "recommend", "spec_prior", "very_recom"]
    assert table.loc["recommend"].isna().all()
    # Every cell left is the true count.
    truth = pd.crosstab(df.recommend, df.parents)
    shown = table.notna().to_numpy()
    assert (table.to_numpy()[shown] == truth.to_numpy()[shown]).all()
    record = acro.get_output("output_0")
    assert record.status == "review"
    assert record.summary.startswith("review; threshold: 3 cells suppressed; ")


def test_without_suppression_the_table_is_pandas_own_and_the_output_fails():
    df = nursery()
    acro = ACRO(suppress=False)
    table = acro.crosstab(df.recommend, df.parents)
    pd.testing.assert_frame_equal(table, pd.crosstab(df.recommend, df.parents), check_dtype=False)
    record = acro.get_output("output_0")
    assert record.status == "fail"
    assert record.sdc["summary"]["suppressed"] is False
    assert record.summary.startswith("fail; threshold: 3 cells may need suppressing; ")


def test_the_cell_lists_name_exactly_the_cells_below_the_threshold():
    df = nursery(size=200, seed=3)  # very_recom is small too: several rows fail
    acro = ACRO(suppress=True)
    acro.crosstab(df.recommend, df.parents)
    acro.crosstab(df.recommend, df.parents, margins=True)
    truth = pd.crosstab(df.recommend, df.parents)
    with_totals = pd.crosstab(df.recommend, df.parents, margins=True)
    plain, totals = acro.get_output("output_0").sdc, acro.get_output("output_1").sdc
    assert plain["cells"]["threshold"] == failing_positions(truth)
    assert len(plain["cells"]["threshold"]) > 3
    assert plain["summary"]["threshold"] == len(failing_positions(truth))
    assert totals["cells"]["threshold"] == failing_positions(with_totals)
    outcome = acro.get_output("output_0").outcome
    assert outcome["usual"]["recommend"] == "threshold; "
    assert outcome["usual"]["priority"] == "ok"


def test_a_mean_with_values_and_aggfunc_is_pandas_mean_where_it_passes():
    df = numeric_children(nursery())
    acro = ACRO(suppress=True)
    table = acro.crosstab(df.recommend, df.parents, values=df.children, aggfunc="mean")
    truth = pd.crosstab(df.recommend, df.parents, values=df.children, aggfunc="mean")
    assert table.loc["recommend"].isna().all()
    shown = table.notna().to_numpy()
    assert np.allclose(table.to_numpy()[shown], truth.to_numpy()[shown])
    assert acro.get_output("output_0").properties == {"method": "crosstab"}


def test_a_pivot_table_of_several_aggfuncs_is_laid_out_as_pandas_does():
    df = numeric_children(nursery())
    acro = ACRO(suppress=True)
    table = acro.pivot_table(df, index=["parents"], values=["children"], aggfunc=["mean", "std"])
    truth = pd.pivot_table(df, index=["parents"], values=["children"], aggfunc=["mean", "std"])
    pd.testing.assert_frame_equal(table, truth, check_dtype=False)
    record = acro.get_output("output_0")
    assert (record.status, record.properties) == ("pass", {"method": "pivot_table"})


def test_a_regression_with_too_few_residual_degrees_of_freedom_fails():
    df = numeric_children(nursery()).head(13)
    acro = ACRO()
    fitted = acro.olsr("children ~ C(parents) + C(finance)", data=df)
    assert fitted.df_resid == 9  # what ACRO hands back: the statsmodels fit
    record = acro.get_output("output_0")
    assert record.status == "fail"
    assert record.summary.startswith("fail; dof=9 < 10")
    assert record.properties == {"method": "olsr", "dof": 9.0}


def test_finalise_refuses_a_folder_that_already_holds_files(tmp_path):
    acro = ACRO(suppress=True)
    acro.crosstab(nursery().recommend, nursery().parents)
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "old.csv").write_text("earlier session\n")
    with pytest.raises(DisclosureInputError) as refused:
        acro.finalise(tmp_path / "outputs")
    text = str(refused.value)
    assert "it already exists and is not an empty folder" in text
    assert "give finalise() a new folder name" in text
    assert sorted(p.name for p in (tmp_path / "outputs").iterdir()) == ["old.csv"]


def test_the_nursery_walkthrough_writes_results_json_the_viewer_reads(tmp_path):
    """ACRO's notebook: tables, regressions, comments, an exception, finalise."""
    df = numeric_children(nursery())
    acro = ACRO(suppress=True)
    acro.crosstab(df.recommend, df.parents)  # output_0
    acro.crosstab(df.recommend, df.parents, values=df.children, aggfunc="mean")  # output_1
    acro.pivot_table(df, index=["parents"], values=["children"], aggfunc=["mean", "std"])
    coded = df[["recommend", "children", "parents"]].assign(
        recommend=lambda d: d.recommend.astype("category").cat.codes,
        parents=lambda d: d.parents.astype("category").cat.codes,
    )
    acro.ols(coded.recommend, sm.add_constant(coded[["children", "parents"]]))  # output_3
    acro.olsr("recommend ~ children + parents", data=coded)  # output_4
    wanted = coded.assign(recommend=lambda d: (df.recommend == "priority").astype(int))
    acro.logit(wanted.recommend, sm.add_constant(wanted[["children", "parents"]]))  # output_5
    acro.logitr("recommend ~ children + parents", data=wanted)  # output_6
    figure = tmp_path / "XandY.png"
    figure.write_bytes(b"\x89PNG not really")
    acro.custom_output(figure, "a scatter plot")  # output_7
    acro.remove_output("output_4")
    acro.add_comments("output_0", "the recommend level is rare")
    acro.add_comments("output_0", "suppressed as ACRO would")
    acro.add_exception("output_1", "the rare level's mean is not shown")
    assert "uid: output_0" in acro.print_outputs()

    acro.finalise(tmp_path / "outputs", "json")
    results = json.loads((tmp_path / "outputs" / "results.json").read_text())
    outputs = results["results"]
    assert results["version"]
    assert list(outputs) == [f"output_{i}" for i in (0, 1, 2, 3, 5, 6, 7)]
    for uid, record in outputs.items():
        assert set(record) == RECORD_FIELDS, uid
        assert record["uid"] == uid
        for file in record["files"]:
            assert (tmp_path / "outputs" / file["name"]).is_file()
            assert (tmp_path / "outputs" / "checksums" / f"{file['name']}.txt").is_file()
    types = {uid: (r["type"], r["status"]) for uid, r in outputs.items()}
    assert types == {
        "output_0": ("table", "review"),
        "output_1": ("table", "review"),
        "output_2": ("table", "pass"),
        "output_3": ("regression", "pass"),
        "output_5": ("regression", "pass"),
        "output_6": ("regression", "pass"),
        "output_7": ("custom", "review"),
    }
    first = outputs["output_0"]
    assert first["comments"] == ["the recommend level is rare", "suppressed as ACRO would"]
    assert outputs["output_1"]["exception"] == "the rare level's mean is not shown"
    assert outputs["output_7"]["comments"] == ["a scatter plot"]
    assert outputs["output_3"]["properties"]["method"] == "ols"
    [file] = first["files"]
    assert file["name"] == "output_0_0.csv"
    assert set(file["sdc"]["summary"]) == SDC_SUMMARY
    assert file["sdc"]["cells"]["threshold"] == [[2, 0], [2, 1], [2, 2]]
    assert file["sdc"]["cells"]["p-ratio"] == []
    # The CSV is the table the researcher was handed.
    written = pd.read_csv(tmp_path / "outputs" / "output_0_0.csv", index_col=0)
    assert written.loc["recommend"].isna().all()
    assert (
        written.loc["priority", "usual"]
        == ((df.recommend == "priority") & (df.parents == "usual")).sum()
    )


def test_config_maps_acro_settings_onto_the_rules():
    df = nursery()
    lenient = ACRO(config={"safe_threshold": 2, "safe_dof_threshold": 5}, suppress=True)
    lenient.crosstab(df.recommend, df.parents)
    # Only the two empty cells of "recommend" fail now (zeros are disclosive).
    assert lenient.get_output("output_0").sdc["cells"]["threshold"] == [[2, 0], [2, 1]]
    with pytest.raises(DisclosureInputError, match="unknown setting 'safe_thresold'"):
        ACRO(config={"safe_thresold": 5})
    with pytest.raises(DisclosureInputError, match="unknown ACRO config 'strict'"):
        ACRO(config="strict")


def test_arguments_the_facade_does_not_reproduce_are_refused():
    df = nursery()
    acro = ACRO()
    with pytest.raises(DisclosureInputError, match=r"not supported .*: normalize"):
        acro.crosstab(df.recommend, df.parents, normalize=True)
    with pytest.raises(DisclosureInputError, match="aggfunc 'var' is not supported"):
        acro.crosstab(df.recommend, df.parents, values=df.has_nurs, aggfunc="var")
    with pytest.raises(DisclosureInputError, match="there is no output named 'output_9'"):
        acro.add_comments("output_9", "typo")
    with pytest.raises(DisclosureInputError, match="there is no such file"):
        acro.custom_output("no-such-figure.png")
    assert acro.results.results == {}


def test_importing_the_facade_loads_neither_pandas_nor_statsmodels():
    probe = (
        "import sys, disclosure.acro; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'statsmodels', 'pandas'}))"
    )
    root = Path(disclosure.__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert done.stdout.strip() == "[]"


def test_a_kaplan_meier_step_with_few_leaving_the_risk_set_is_withheld():
    rng = np.random.default_rng(14)
    months = rng.integers(1, 7, 400)
    months[:4] = 7  # four records alone at month 7: the step from 7 to 8 shows them
    months[4:64] = 8
    died = (rng.random(400) < 0.7).astype(int)
    died[:4] = 1
    plain = ACRO(suppress=False).surv_func(months, died, output="table")
    acro = ACRO(suppress=True)
    table = acro.surv_func(months, died, output="table")
    # ACRO's rule: the drop in the number at risk since the previous row is below 10.
    drop = -plain["num at risk"].diff()
    small = [i for i, d in enumerate(drop) if d < 10]
    assert list(plain.index[small]) == [8]
    assert table.iloc[small].isna().all(axis=None)
    assert table.drop(index=table.index[small]).notna().all(axis=None)
    record = acro.get_output("output_0")
    assert (record.status, record.properties) == ("review", {"method": "surv_func"})
    assert record.sdc["cells"]["threshold"] == [[small[0], c] for c in range(4)]
    with pytest.raises(DisclosureInputError, match=r"not supported .*: output"):
        acro.surv_func(months, died, output="plot")


def test_records_with_a_missing_key_are_left_out_as_pandas_does():
    df = nursery()
    df.loc[df.index[10:40], "parents"] = None
    acro = ACRO(suppress=False)
    table = acro.crosstab(df.recommend, df.parents)
    pd.testing.assert_frame_equal(table, pd.crosstab(df.recommend, df.parents), check_dtype=False)


def test_an_output_renamed_is_written_under_its_new_name(tmp_path):
    df = nursery()
    acro = ACRO(suppress=True)
    acro.crosstab(df.recommend, df.parents)
    acro.crosstab(df.recommend, df.finance)
    acro.rename_output("output_0", "recommend_by_parents")
    with pytest.raises(DisclosureInputError, match="that name is taken"):
        acro.rename_output("output_1", "recommend_by_parents")
    acro.finalise(tmp_path / "outputs")
    results = json.loads((tmp_path / "outputs" / "results.json").read_text())["results"]
    assert list(results) == ["recommend_by_parents", "output_1"]
    assert results["recommend_by_parents"]["files"][0]["name"] == "recommend_by_parents_0.csv"
    assert (tmp_path / "outputs" / "recommend_by_parents_0.csv").is_file()


def test_the_kaplan_meier_estimates_agree_with_lifelines():
    # Issue 14: "Compare the estimates against lifelines", a third-party fitter, on the
    # same records: the survival probabilities, the numbers at risk and the events.
    from lifelines import KaplanMeierFitter

    rng = np.random.default_rng(3)
    months = rng.integers(1, 13, 500)
    died = (rng.random(500) < 0.6).astype(int)
    table = ACRO(suppress=False).surv_func(months, died, output="table")
    fitted = KaplanMeierFitter().fit(months, event_observed=died)
    times = table.index.to_numpy()
    expected = fitted.survival_function_at_times(times).to_numpy()
    np.testing.assert_allclose(table["Surv prob"].to_numpy(), expected, rtol=1e-12)
    events = fitted.event_table.loc[times]
    assert table["num at risk"].tolist() == events["at_risk"].tolist()
    assert table["num events"].tolist() == events["observed"].astype(float).tolist()
