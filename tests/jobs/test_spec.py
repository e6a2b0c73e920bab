import textwrap

import pytest

from jobs.errors import SpecError
from jobs.spec import load_spec, parse_spec


def base(**overrides):
    spec = {
        "project": "lcr-health",
        "title": "Conditions by authority",
        "datasets": {
            "residents": ["local_authority", "age_band", "ltc_count", "resident_id"],
            "fire_incidents": ["resident_id", "incident_type"],
        },
        "steps": [
            {
                "kind": "table",
                "name": "by_la",
                "dataset": "residents",
                "rows": ["local_authority"],
                "columns": ["age_band"],
            }
        ],
    }
    spec.update(overrides)
    return spec


def test_a_valid_spec_parses_with_defaults():
    spec = parse_spec(base())
    assert spec.resources.workers == 1
    assert spec.steps[0].statistic == "count"


def test_filters_in_the_compact_string_form():
    spec = parse_spec(
        base(
            steps=[
                {
                    "kind": "table",
                    "name": "t",
                    "dataset": "residents",
                    "rows": ["local_authority"],
                    "filter": [
                        "age_band in ['65-74', '75-84']",
                        "ltc_count >= 2",
                        "age_band not null",
                    ],
                }
            ]
        )
    )
    ops = [(f.column, f.op, f.value) for f in spec.steps[0].filter]
    assert ops == [
        ("age_band", "in", ["65-74", "75-84"]),
        ("ltc_count", ">=", 2),
        ("age_band", "not null", None),
    ]


def test_every_problem_is_listed_at_once_with_where_it_is():
    with pytest.raises(SpecError) as info:
        parse_spec(
            base(
                colour="blue",
                steps=[
                    {
                        "kind": "table",
                        "name": "t",
                        "dataset": "residents",
                        "rows": ["x"],
                        "statistic": "average",
                    },
                    {"kind": "histogram", "name": "h"},
                ],
                resources={"memory": "lots"},
            )
        )
    text = info.value.render()
    assert "colour: unknown field" in text
    assert "steps.0.statistic" in text
    assert "steps.1: unknown step kind" in text
    assert "resources.memory" in text and "GiB" in text


def test_a_column_not_declared_under_datasets_is_refused_before_anything_runs():
    with pytest.raises(SpecError, match="ward"):
        parse_spec(
            base(steps=[{"kind": "table", "name": "t", "dataset": "residents", "rows": ["ward"]}])
        )


def test_a_step_on_an_undeclared_dataset_is_refused():
    with pytest.raises(SpecError, match="early_help"):
        parse_spec(
            base(steps=[{"kind": "table", "name": "t", "dataset": "early_help", "rows": ["ward"]}])
        )


def test_link_columns_must_be_declared_for_the_linked_dataset():
    with pytest.raises(SpecError, match="casualties"):
        parse_spec(
            base(
                steps=[
                    {
                        "kind": "table",
                        "name": "t",
                        "dataset": "residents",
                        "rows": ["age_band"],
                        "link": {
                            "dataset": "fire_incidents",
                            "on": "resident_id",
                            "columns": ["casualties"],
                        },
                    }
                ]
            )
        )


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"statistic": "mean"}, "needs a 'value'"),
        ({"statistic": "quantile", "value": "ltc_count"}, "quantile"),
        ({"columns": ["local_authority"]}, "once among rows and columns"),
        ({"bins": {"ltc_count": [0, 2]}}, "not among the table's rows or columns"),
        ({"bins": {"local_authority": [2, 2]}}, "the edges must increase"),
        ({"bins": {"local_authority": []}}, "give between 1 and 200 edges, not 0"),
        ({"bins": {"local_authority": [0, "inf"]}}, "every edge must be a finite number"),
    ],
)
def test_table_statistics_need_what_they_need(step, message):
    full = {
        "kind": "table",
        "name": "t",
        "dataset": "residents",
        "rows": ["local_authority"],
        **step,
    }
    with pytest.raises(SpecError, match=message):
        parse_spec(base(steps=[full]))


def test_duplicate_step_names_are_refused():
    step = base()["steps"][0]
    with pytest.raises(SpecError, match="unique"):
        parse_spec(base(steps=[step, step]))


def test_malformed_yaml_says_where(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("project: x\nsteps:\n  - kind: table\n   name: bad-indent\n")
    with pytest.raises(SpecError, match=r"line \d+"):
        load_spec(path)


def test_yaml_that_is_not_a_mapping(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(SpecError, match="mapping"):
        load_spec(path)


def test_yaml_file_round_trip(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(
        textwrap.dedent("""
        project: lcr-health
        title: t
        datasets: {residents: [age_band, ltc_count]}
        resources: {workers: 2, memory: 1GiB, walltime: 10m}
        steps:
          - {kind: regression, name: r, dataset: residents, outcome: ltc_count,
             predictors: [age_band], categorical: [age_band]}
    """)
    )
    spec = load_spec(path)
    assert spec.resources.memory == 1024**3
    assert spec.resources.walltime == 600


# --- resources: units required, one reading of a clock, whole numbers -----------------


def _write(tmp_path, resources: str):
    path = tmp_path / "job.yaml"
    path.write_text(
        "project: lcr-health\ntitle: t\ndatasets: {residents: [age_band]}\n"
        f"resources: {resources}\n"
        "steps: [{kind: table, name: t, dataset: residents, rows: [age_band]}]\n"
    )
    return path


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        (
            "{memory: 4}",
            "resources.memory: memory 4 has no unit (a bare number would mean 4 bytes)",
        ),
        ("{walltime: 30}", "resources.walltime: duration 30 has no unit"),
        ("{walltime: 2:00}", "resources.walltime: duration '2:00' is ambiguous"),
        ("{walltime: '2:00'}", "resources.walltime: duration '2:00' is ambiguous"),
        ("{walltime: '00:99'}", "run from 00 to 59, and 99 is more"),
        ("{cores: true}", "resources.cores: cores must be a whole number such as 2, not true"),
        ("{workers: '2'}", "resources.workers: workers must be a whole number"),
    ],
)
def test_resources_a_person_cannot_mean_are_refused_saying_what_to_write(
    tmp_path, resources, expected
):
    with pytest.raises(SpecError) as info:
        load_spec(_write(tmp_path, resources))
    text = info.value.render()
    assert expected in text
    assert "Value error" not in text


def test_resources_from_python_need_units_too():
    with pytest.raises(SpecError, match="memory 4 has no unit"):
        parse_spec(base(resources={"memory": 4}))


def test_a_spec_round_trips_through_its_json_form_with_units():
    spec = parse_spec(base(resources={"memory": "4GiB", "walltime": "90m"}))
    dumped = spec.model_dump(mode="json")
    assert dumped["resources"] == {
        "workers": 1,
        "cores": 1,
        "memory": "4GiB",
        "walltime": "01:30:00",
    }
    assert parse_spec(dumped).resources == spec.resources


@pytest.mark.parametrize("memory", ["255MiB", "100MB", "1KiB"])
def test_worker_memory_below_what_a_dask_worker_starts_with_is_refused_at_submission(memory):
    with pytest.raises(SpecError) as info:
        parse_spec(base(resources={"memory": memory}))
    text = info.value.render()
    assert f"resources.memory: memory {memory!r} per worker is below the 256MiB" in text
    assert "ask for at least 256MiB" in text


def test_worker_memory_at_the_floor_is_accepted_and_old_records_below_it_still_load():
    assert parse_spec(base(resources={"memory": "256MiB"})).resources.memory == 256 * 1024**2
    stored = parse_spec(base(resources={"memory": 512}), as_written=False)  # before the floor
    assert stored.resources.memory == 512


def test_a_spec_read_back_from_an_old_job_record_keeps_bare_bytes_and_seconds():
    stored = base(resources={"memory": 2 * 1024**3, "walltime": 600})
    spec = parse_spec(stored, as_written=False)
    assert (spec.resources.memory, spec.resources.walltime) == (2 * 1024**3, 600)


# --- duplicates and free text ------------------------------------------------------------


def _regression(**fields):
    return {
        "kind": "regression",
        "name": "r",
        "dataset": "residents",
        "outcome": "ltc_count",
        "predictors": ["age_band", "local_authority"],
        **fields,
    }


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"predictors": ["age_band", "local_authority", "age_band"]},
            "each of predictors may be listed once; repeated: age_band",
        ),
        (
            {"categorical": ["age_band", "age_band"]},
            "each of categorical may be listed once; repeated: age_band",
        ),
    ],
)
def test_a_regression_listing_a_column_twice_is_refused_before_it_runs(fields, expected):
    with pytest.raises(SpecError) as info:
        parse_spec(base(steps=[_regression(**fields)]))
    assert f"steps.0: {expected}" in info.value.render()


def test_a_table_key_listed_twice_is_named():
    step = {"kind": "table", "name": "t", "dataset": "residents", "rows": ["age_band"]}
    with pytest.raises(SpecError) as info:
        parse_spec(base(steps=[{**step, "columns": ["ltc_count", "age_band"]}]))
    assert "once among rows and columns; repeated: age_band" in info.value.render()


@pytest.mark.parametrize(
    ("field", "text", "expected"),
    [
        ("title", "Conditions\0 by area", "title: it contains a NUL byte at character 11"),
        ("title", "two\nlines", "title: it contains control character U+000A at character 4"),
        ("title", "   ", "title: a title needs some words"),
        ("description", "bell\a", "description: it contains control character U+0007"),
    ],
)
def test_control_characters_in_free_text_are_refused(field, text, expected):
    with pytest.raises(SpecError) as info:
        parse_spec(base(**{field: text}))
    assert expected in info.value.render()


def test_a_description_may_have_lines_and_tabs():
    spec = parse_spec(base(description="First line\n\tindented"))
    assert spec.description == "First line\n\tindented"


# --- messages ------------------------------------------------------------------------


def test_a_value_of_no_allowed_type_is_one_line_naming_the_types():
    step = {"kind": "table", "name": "t", "dataset": "residents", "rows": ["age_band"]}
    bad = {**step, "filter": [{"column": "ltc_count", "op": "==", "value": {"x": 1}}]}
    with pytest.raises(SpecError) as info:
        parse_spec(base(steps=[bad]))
    assert info.value.reasons == [
        "steps.0.filter.0.value: should be text, a number, true/false, or a list of those, "
        "not a mapping"
    ]


def test_a_bad_member_of_a_list_value_is_named_by_its_place():
    step = {"kind": "table", "name": "t", "dataset": "residents", "rows": ["age_band"]}
    bad = {**step, "filter": [{"column": "ltc_count", "op": "in", "value": [1, [2]]}]}
    with pytest.raises(SpecError) as info:
        parse_spec(base(steps=[bad]))
    assert info.value.reasons == [
        "steps.0.filter.0.value.1: should be text, a number, or true/false, not a list"
    ]
