"""The arguments of the ACRO-compatible session (`disclosure.acro`): ACRO's config and
aggfunc names mapped onto the engine's, pandas Series and column names checked, and
every argument the facade cannot reproduce refused with what to do instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from disclosure.errors import DisclosureInputError
from disclosure.rules import Rules

__all__ = [
    "AGGFUNCS",
    "CONFIG_KEYS",
    "column_names",
    "command_text",
    "free_name",
    "function_name",
    "refuse_unsupported",
    "rules_from_config",
    "series_list",
    "statistic_of",
]

#: ACRO's config keys, and the `Rules` parameter each one sets.
CONFIG_KEYS = {
    "safe_threshold": "threshold",
    "safe_dof_threshold": "min_dof",
    "safe_nk_n": "dominance_n",
    "safe_nk_k": "dominance_k",
    "safe_pratio_p": "p_ratio",
    "zeros_are_disclosive": "zeros_disclosive",
}

#: ACRO's aggfunc names (or numpy/pandas function names), and the engine's statistic.
AGGFUNCS = {
    "count": "count",
    "size": "count",
    "len": "count",
    "mean": "mean",
    "average": "mean",
    "nanmean": "mean",
    "sum": "sum",
    "nansum": "sum",
    "median": "median",
    "nanmedian": "median",
    "std": "std",
    "nanstd": "std",
    "min": "min",
    "amin": "min",
    "max": "max",
    "amax": "max",
    "mode": "mode",
}


def rules_from_config(config: str | Mapping[str, Any]) -> Rules:
    """`Rules` for an ACRO config: "default" (ACRO's default.yaml, which is `Rules()`), or
    a mapping of ACRO's keys (safe_threshold, safe_dof_threshold, safe_nk_n, ...)."""
    if isinstance(config, str):
        if config != "default":
            raise DisclosureInputError(
                f"unknown ACRO config {config!r}",
                fix="use config='default', or pass the settings as a dict, e.g. "
                "ACRO(config={'safe_threshold': 10, 'safe_dof_threshold': 10})",
            )
        return Rules()
    unknown = sorted(set(config) - set(CONFIG_KEYS) - {"check_missing_values"})
    if unknown or config.get("check_missing_values"):
        raise DisclosureInputError(
            "the ACRO config has settings this facade does not support",
            reasons=[f"unknown setting {key!r}" for key in unknown]
            + (
                ["check_missing_values: missing values are reported per cell, not checked"]
                if config.get("check_missing_values")
                else []
            ),
            fix=f"use only: {', '.join(CONFIG_KEYS)} (and check_missing_values: false)",
        )
    return Rules(**{CONFIG_KEYS[key]: value for key, value in config.items() if key in CONFIG_KEYS})


def refuse_unsupported(**arguments: tuple[Any, Any]) -> None:
    # Refuse an argument whose effect the facade does not reproduce, rather than
    # silently return a table other than the one the researcher asked for.
    changed = [
        name
        for name, (given, default) in arguments.items()
        if given is not default and given != default
    ]
    if changed:
        raise DisclosureInputError(
            "arguments not supported by the disclosure ACRO facade yet: " + ", ".join(changed),
            fix="leave them at their defaults; docs/disclosure.md ('Switching from "
            "ACRO') lists what is supported",
        )


def series_list(found: Any) -> list[Any]:
    if isinstance(found, (list, tuple)):
        items = list(found)
    elif hasattr(found, "columns"):  # a DataFrame: one key per column
        items = [found[column] for column in found.columns]
    else:
        items = [found]
    if not items or not all(hasattr(item, "name") and hasattr(item, "dtype") for item in items):
        raise DisclosureInputError(
            "crosstab's index and columns are pandas Series (or lists of them)",
            fix="e.g. acro.crosstab(df.recommend, df.parents) or "
            "acro.crosstab([df.recommend, df.finance], df.parents)",
        )
    return [
        item.rename(str(item.name)) if item.name is not None else item.rename(f"key_{i}")
        for i, item in enumerate(items)
    ]


def column_names(found: Any, what: str) -> list[str]:
    if found is None:
        raise DisclosureInputError(
            f"pivot_table needs {what}: the column(s) to group by",
            fix=f"e.g. {what}=['parents']",
        )
    names = [found] if isinstance(found, str) else list(found)
    if not names or not all(isinstance(name, str) for name in names):
        raise DisclosureInputError(
            f"pivot_table's {what} are column names, not {found!r}",
            fix=f"e.g. {what}=['parents']",
        )
    return names


def free_name(name: Any, taken: list[str]) -> str:
    # The values Series may share a name with a key (or have none): name it apart.
    candidate = str(name) if name is not None else "values"
    while candidate in taken:
        candidate = f"{candidate}_values"
    return candidate


def function_name(aggfunc: Any) -> str:
    return aggfunc if isinstance(aggfunc, str) else str(getattr(aggfunc, "__name__", aggfunc))


def statistic_of(aggfunc: Any) -> str:
    name = function_name(aggfunc)
    if name not in AGGFUNCS:
        raise DisclosureInputError(
            f"aggfunc {aggfunc!r} is not supported",
            fix=f"use one of: {', '.join(sorted(set(AGGFUNCS.values())))} (a name or the "
            "numpy function), or a list of them for pivot_table",
        )
    return AGGFUNCS[name]


def command_text(
    method: str,
    rows: list[str],
    columns: list[str],
    value: str | None,
    aggfunc: Any,
    margins: bool,
) -> str:
    # ACRO records the line of the researcher's script; the facade rebuilds the call.
    parts = [f"index={rows}", f"columns={columns}"]
    if value is not None:
        functions = aggfunc if isinstance(aggfunc, list) else [aggfunc]
        named = [function_name(function) for function in functions]
        parts += [
            f"values={value!r}",
            f"aggfunc={named if isinstance(aggfunc, list) else named[0]!r}",
        ]
    if margins:
        parts.append("margins=True")
    return f"acro.{method}({', '.join(parts)})"
