"""The parts of a job spec that say which rows a step reads: filters (written as text or
as a mapping) and links to another approved dataset. `jobs.spec` builds steps of them.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from tre import yamlfile
from tre.names import ColumnName, ObjectName

__all__ = ["FILTER_OPS", "Filter", "Filters", "Link", "Scalar", "Spec"]

Scalar = str | int | float | bool
FILTER_OPS = ("==", "!=", "<", "<=", ">", ">=", "in", "not in", "is null", "not null")
_FILTER_RE = re.compile(
    r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(==|!=|<=|>=|<|>|not in|in|is null|not null)\s*(.*?)\s*$"
)


class Spec(BaseModel):
    """A part of a job spec: no field it does not know."""

    model_config = ConfigDict(extra="forbid")


class Filter(Spec):
    """Keep rows where `column op value`. Also written as a string: "age_band != '0-15'"."""

    column: ColumnName
    op: Literal["==", "!=", "<", "<=", ">", ">=", "in", "not in", "is null", "not null"]
    value: Scalar | list[Scalar] | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        if not isinstance(data, str):
            return data
        match = _FILTER_RE.match(data)
        if match is None:
            raise ValueError(
                f"cannot read filter {data!r}: write 'column op value' with op one of "
                f'{", ".join(FILTER_OPS)}, e.g. "age_band != \'0-15\'" or "decile in [1, 2]"'
            )
        column, op, rest = match.groups()
        try:
            value = yamlfile.load(rest, "the value") if rest else None
        except yamlfile.YamlError as exc:
            raise ValueError(f"cannot read the value in filter {data!r}: {exc}") from None
        return {"column": column, "op": op, "value": value}

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """Text or the mapping, as people write filters: most write the text."""
        mapping = handler(core_schema)
        text = {
            "type": "string",
            "pattern": _FILTER_RE.pattern,
            "description": "column op value",
            "examples": ["age_band != '0-15'", "deprivation_decile in [1, 2]", "has_copd == true"],
        }
        return {"description": mapping.pop("description", ""), "anyOf": [text, mapping]}

    @field_validator("value")
    @classmethod
    def _finite(cls, value: Any) -> Any:
        # NaN compares false with everything and is stored as JSON null: a filter on it
        # would mean something other than what it says, so it is refused, as is infinity.
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            raise ValueError(
                "a filter value must be a finite number (not .nan or .inf): to keep rows "
                "with a missing value use 'is null', to drop them 'not null'"
            )
        return value

    @model_validator(mode="after")
    def _value_fits_op(self) -> Filter:
        if self.op in ("is null", "not null"):
            if self.value is not None:
                raise ValueError(f"filter '{self.op}' takes no value")
        elif self.op in ("in", "not in"):
            if not isinstance(self.value, list) or not self.value:
                raise ValueError(f"filter '{self.op}' needs a non-empty list, e.g. [1, 2]")
        elif self.value is None or isinstance(self.value, list):
            raise ValueError(f"filter '{self.op}' needs one value")
        return self


class Link(Spec):
    """Join another approved dataset on a pseudonymous key (e.g. resident_id)."""

    dataset: ObjectName
    on: ColumnName = Field(description="Key column, present in both datasets.")
    how: Literal["inner", "left"] = "inner"
    columns: list[ColumnName] = Field(
        default_factory=list, description="Columns of the linked dataset to bring in."
    )

    @model_validator(mode="before")
    @classmethod
    def _yaml_on(cls, data: Any) -> Any:
        # YAML 1.1 reads a bare `on:` key as the boolean true; people mean the field.
        if isinstance(data, dict) and True in data and "on" not in data:
            data = {("on" if k is True else k): v for k, v in data.items()}
        return data


class _OneOrMany:
    """JSON Schema of a list whose field also takes one item alone (`filter:` as one
    filter or a list of them), so an editor accepts both, as tre does."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        many = handler(core_schema)
        return {"anyOf": [many["items"], many]}


Filters = Annotated[list[Filter], _OneOrMany()]
