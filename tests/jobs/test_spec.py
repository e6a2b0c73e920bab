import json
import textwrap

import pytest

from jobs.errors import SpecError
from jobs.spec import json_schema, load_spec, parse_spec


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
        ({"statistic": "count", "value": "ltc_count"}, "takes no 'value'"),
        ({"statistic": "mean"}, "needs a 'value'"),
        ({"statistic": "quantile", "value": "ltc_count"}, "quantile"),
        ({"columns": ["local_authority"]}, "once among rows and columns"),
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


def test_json_schema_is_exported_for_editors():
    schema = json_schema()
    json.dumps(schema)
    assert {"project", "datasets", "steps"} <= set(schema["required"])
    assert "TableStep" in json.dumps(schema)
