"""The JSON Schema of a job spec (`jobs.spec.json_schema`, printed by `tre schema job`)
describes what people write: every example spec in jobs/examples and the docs fits it.

The `jsonschema` library is not among tre's dependencies, so no full validator runs
here. Each example is parsed as tre parses it (`parse_spec`), and `misfits` checks that
the JSON types the schema declares (with its consts, required and unknown fields) allow
the values written: where the schema once said integer for `memory: 2GiB`, or object
for a filter written as text, an editor flagged the docs' own examples.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from jobs.spec import json_schema, parse_spec
from tests.conftest import EXAMPLES, ROOT
from tre import yamlfile

#: A ```yaml block of the docs that is a whole job spec, not a fragment of one.
YAML_BLOCK = re.compile(r"```yaml\n(.*?)```", re.S)
WHOLE_SPEC = re.compile(r"^project:.*^steps:", re.S | re.M)
JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "array": list,
    "object": dict,
    "null": type(None),
}


def written_specs() -> list[tuple[str, Any]]:
    """Every example job spec: jobs/examples (but the project requests) and the docs."""
    found = [
        (str(path.relative_to(ROOT)), yamlfile.load(path.read_text(), str(path)))
        for path in sorted(EXAMPLES.rglob("*.yaml"))
        if not path.name.startswith("project")  # project requests, not jobs
    ]
    for path in sorted((ROOT / "docs").glob("*.md")):
        for number, block in enumerate(YAML_BLOCK.findall(path.read_text()), 1):
            if WHOLE_SPEC.search(block):
                where = f"{path.relative_to(ROOT)}, yaml block {number}"
                found.append((where, yamlfile.load(block, where)))
    return found


def misfits(schema: dict, value: Any, defs: dict, at: str = "") -> list[str]:
    """Where `value` does not fit the types, consts and fields `schema` declares (its
    patterns, bounds and cross-field rules are parse_spec's to check)."""
    where = at or "the spec"
    if "$ref" in schema:
        return misfits(defs[schema["$ref"].rsplit("/", 1)[1]], value, defs, at)
    if options := schema.get("anyOf") or schema.get("oneOf"):
        tried = [misfits(option, value, defs, at) for option in options]
        return [] if [] in tried else min(tried, key=len)
    kind = schema.get("type")
    if kind is not None and (
        not isinstance(value, JSON_TYPES[kind])
        or (kind in ("integer", "number") and isinstance(value, bool))
    ):
        return [f"{where}: the schema says {kind}, the spec has {value!r}"]
    if "const" in schema and value != schema["const"]:
        return [f"{where}: the schema says {schema['const']!r}, the spec has {value!r}"]
    problems = []
    if isinstance(value, dict):
        problems += [f"{where}.{k}: required" for k in schema.get("required", []) if k not in value]
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            sub = schema.get("properties", {}).get(key, extra)
            if sub is False:
                problems.append(f"{where}.{key}: not in the schema")
            elif isinstance(sub, dict):
                problems += misfits(sub, item, defs, f"{at}.{key}" if at else str(key))
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            problems += misfits(schema["items"], item, defs, f"{where}.{index}")
    return problems


SPECS = written_specs()


def test_the_examples_are_found():
    assert len(SPECS) >= 7
    assert any(where.startswith("docs/job-spec.md") for where, _ in SPECS)


@pytest.mark.parametrize(("where", "data"), SPECS, ids=[where for where, _ in SPECS])
def test_every_example_spec_is_valid_and_fits_the_schema_tre_prints(where, data):
    parse_spec(data, source=where)
    schema = json_schema()
    assert misfits(schema, data, schema["$defs"]) == []


def test_the_schema_says_what_people_write_and_flags_what_tre_refuses():
    schema = json_schema()
    resources = schema["$defs"]["Resources"]["properties"]
    assert resources["memory"]["type"] == resources["walltime"]["type"] == "string"
    assert (resources["memory"]["default"], resources["walltime"]["default"]) == (
        "2GiB",
        "01:00:00",
    )
    step = {"kind": "table", "name": "t", "dataset": "residents", "rows": ["age_band"]}
    spec = {"project": "p", "title": "t", "datasets": {"residents": ["age_band"]}}
    written = {
        **spec,
        "resources": {"memory": "2GiB", "walltime": "10m"},
        "steps": [{**step, "filter": "has_copd == true"}],
    }
    assert misfits(schema, written, schema["$defs"]) == []
    bare = {**written, "resources": {"memory": 2}}  # 2 bytes: tre refuses it, so does an editor
    assert misfits(schema, bare, schema["$defs"]) == [
        "resources.memory: the schema says string, the spec has 2"
    ]


def test_json_schema_is_exported_for_editors():
    schema = json_schema()
    json.dumps(schema)
    assert {"project", "datasets", "steps"} <= set(schema["required"])
    assert "TableStep" in json.dumps(schema)
