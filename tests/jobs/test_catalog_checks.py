from jobs.catalog_checks import spec_catalog_problems
from jobs.spec import parse_spec
from policies.refusals import RefusalCode
from tre.models import ColumnInfo, Dataset

CATALOG = {
    "residents": Dataset(
        name="residents",
        version=1,
        row_count=10,
        files=[],
        checksum="x",
        columns=[
            ColumnInfo(name="age_band", type="string"),
            ColumnInfo(name="ltc_count", type="int64"),
        ],
    )
}


def spec(*steps):
    return parse_spec(
        {
            "project": "lcr-health",
            "title": "t",
            "datasets": {"residents": ["age_band", "ltc_count"]},
            "steps": list(steps),
        }
    )


def test_type_mistakes_are_refusals_with_the_code_of_their_kind():
    found = spec_catalog_problems(
        spec(
            {
                "kind": "table",
                "name": "t",
                "dataset": "residents",
                "rows": ["age_band"],
                "filter": ["ltc_count == 'two'"],
            },
            {
                "kind": "table",
                "name": "m",
                "dataset": "residents",
                "rows": ["ltc_count"],
                "value": "age_band",
                "statistic": "mean",
            },
            {
                "kind": "regression",
                "name": "r",
                "dataset": "residents",
                "outcome": "ltc_count",
                "predictors": ["age_band"],
            },
        ),
        CATALOG,
    )
    assert [(r.code, r.text) for r in found] == [
        (
            RefusalCode.FILTER_TYPE,
            "step 't': filter on 'ltc_count' (int64) compares it with 'two' (text); "
            "write a number value",
        ),
        (
            RefusalCode.NOT_NUMERIC,
            "step 'm': the mean of 'age_band' needs a numeric column, and it is string",
        ),
        (
            RefusalCode.NOT_NUMERIC,
            "step 'r': 'age_band' is string, not a number (list it under categorical)",
        ),
    ]


def test_a_binned_column_must_be_a_number():
    found = spec_catalog_problems(
        spec(
            {
                "kind": "table",
                "name": "h",
                "dataset": "residents",
                "rows": ["age_band"],
                "bins": {"age_band": [0, 16]},
            },
            {
                "kind": "table",
                "name": "ok",
                "dataset": "residents",
                "rows": ["ltc_count"],
                "bins": {"ltc_count": [0, 2, 4]},
            },
        ),
        CATALOG,
    )
    assert [(r.code, r.text) for r in found] == [
        (
            RefusalCode.NOT_NUMERIC,
            "step 'h': 'age_band' is binned, which needs a numeric column, and it is string",
        )
    ]


IDENTIFIED = {
    "residents": Dataset(
        name="residents",
        version=1,
        row_count=10,
        files=[],
        checksum="x",
        columns=[
            ColumnInfo(name="resident_id", type="string", sensitivity="identifier"),
            ColumnInfo(name="age_band", type="string", sensitivity="quasi_identifier"),
            ColumnInfo(name="ltc_count", type="int64"),
        ],
    ),
    "fire_incidents": Dataset(
        name="fire_incidents",
        version=1,
        row_count=10,
        files=[],
        checksum="x",
        columns=[
            ColumnInfo(name="incident_id", type="string", sensitivity="identifier"),
            ColumnInfo(name="resident_id", type="string", sensitivity="identifier"),
            ColumnInfo(name="casualties", type="int64"),
        ],
    ),
}


def identified_spec(*steps):
    return parse_spec(
        {
            "project": "lcr-health",
            "title": "t",
            "datasets": {
                "residents": ["resident_id", "age_band", "ltc_count"],
                "fire_incidents": ["incident_id", "resident_id", "casualties"],
            },
            "steps": list(steps),
        }
    )


def test_a_table_keyed_by_an_identifier_is_refused_naming_column_dataset_and_fix():
    found = spec_catalog_problems(
        identified_spec(
            {
                "kind": "table",
                "name": "each",
                "dataset": "residents",
                "rows": ["resident_id", "age_band"],
                "columns": ["ltc_count"],
            }
        ),
        IDENTIFIED,
    )
    assert [(r.code, r.text) for r in found] == [
        (
            RefusalCode.IDENTIFIER_KEY,
            "step 'each': resident_id (an identifier column of residents) is one of its "
            "keys, and a table keyed by an identifier publishes one row per person; key it "
            "by attributes or quasi-identifiers (an age band, a ward) and pass resident_id "
            "as unit: to count each person once",
        )
    ]


def test_every_identifier_among_columns_value_and_link_is_refused_by_its_own_dataset():
    found = spec_catalog_problems(
        identified_spec(
            {
                "kind": "table",
                "name": "fires",
                "dataset": "fire_incidents",
                "rows": ["casualties"],
                "columns": ["incident_id"],
                "value": "resident_id",
                "statistic": "max",
            },
            {
                "kind": "table",
                "name": "linked",
                "dataset": "fire_incidents",
                "rows": ["age_band"],
                "columns": ["resident_id"],
                "link": {"dataset": "residents", "on": "resident_id", "columns": ["age_band"]},
            },
        ),
        IDENTIFIED,
    )
    assert [(r.code, r.text.split(";")[0]) for r in found] == [
        (
            RefusalCode.IDENTIFIER_KEY,
            "step 'fires': incident_id (an identifier column of fire_incidents) is one of "
            "its keys, and a table keyed by an identifier publishes one row per person",
        ),
        (
            RefusalCode.IDENTIFIER_KEY,
            "step 'fires': resident_id (an identifier column of fire_incidents) is its "
            "value, and a statistic of identifiers is one person's identifier or means "
            "nothing",
        ),
        # the max of resident_id is not numeric either: every reason, at once
        (
            RefusalCode.NOT_NUMERIC,
            "step 'fires': the max of 'resident_id' needs a numeric column, and it is string",
        ),
        (
            RefusalCode.IDENTIFIER_KEY,
            "step 'linked': resident_id (an identifier column of fire_incidents) is one of "
            "its keys, and a table keyed by an identifier publishes one row per person",
        ),
    ]
    assert found[1].text.endswith(
        "; summarise an attribute instead, or count people with statistic count and "
        "unit: resident_id"
    )


def test_attributes_and_an_identifier_as_unit_are_not_refused():
    found = spec_catalog_problems(
        identified_spec(
            {
                "kind": "table",
                "name": "people",
                "dataset": "residents",
                "rows": ["age_band"],
                "columns": ["ltc_count"],
                "unit": "resident_id",
            },
            {
                "kind": "table",
                "name": "mean",
                "dataset": "residents",
                "rows": ["age_band"],
                "value": "ltc_count",
                "statistic": "mean",
            },
        ),
        IDENTIFIED,
    )
    assert found == []
