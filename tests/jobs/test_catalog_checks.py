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
