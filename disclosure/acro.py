"""An ACRO-compatible session, so a TRE whose researchers use ACRO (the SACRO project's
`acro` package) can switch to `disclosure` without rewriting their scripts:

    from disclosure.acro import ACRO

    acro = ACRO(suppress=True)
    table = acro.crosstab(df.recommend, df.parents)        # a pandas DataFrame
    model = acro.olsr("score ~ children + parents", data=df)  # a statsmodels fit
    acro.add_comments("output_0", "rare level suppressed")
    acro.finalise("outputs")                               # results.json + CSV files

Every call is checked by the engine (`check_table`, `check_fitted`) with ACRO's default
rules (threshold 10, nk (2, 0.9), p-ratio 0.1, 10 residual degrees of freedom) mapped
onto `Rules`, and recorded as ACRO records it (`acro_results`). pandas and statsmodels
are imported when a method needs them, never by ``import disclosure``. What differs
from ACRO, and what is not supported yet: docs/disclosure.md, "Switching from ACRO".
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from disclosure.acro_arguments import (
    column_names,
    command_text,
    free_name,
    function_name,
    refuse_unsupported,
    rules_from_config,
    series_list,
    statistic_of,
)
from disclosure.acro_results import Record, Records
from disclosure.acro_survival import survival_table
from disclosure.acro_tables import acro_layout, combine
from disclosure.check import check_table, worst
from disclosure.errors import DisclosureInputError
from disclosure.fitted import check_fitted
from disclosure.protection import Protection

__all__ = ["ACRO", "rules_from_config"]


class ACRO:
    """A session of checked outputs, with ACRO's methods and return values."""

    def __init__(self, config: str | Mapping[str, Any] = "default", suppress: bool = False):
        self.rules = rules_from_config(config)
        self.suppress = suppress
        self.results = Records()

    # --- tables -----------------------------------------------------------------------

    def crosstab(
        self,
        index: Any,
        columns: Any,
        values: Any = None,
        rownames: Any = None,
        colnames: Any = None,
        aggfunc: Any = None,
        margins: bool = False,
        margins_name: str = "All",
        dropna: bool = True,
        normalize: bool = False,
        show_suppressed: bool = False,
    ) -> Any:
        """pandas.crosstab, checked: counts of `index` x `columns`, or `aggfunc` of
        `values`; failing cells are NaN when the session suppresses."""
        refuse_unsupported(
            rownames=(rownames, None),
            colnames=(colnames, None),
            margins_name=(margins_name, "All"),
            dropna=(dropna, True),
            normalize=(normalize, False),
            show_suppressed=(show_suppressed, False),
        )
        if (values is None) != (aggfunc is None):
            raise DisclosureInputError(
                "crosstab needs values and aggfunc together, or neither",
                fix="e.g. acro.crosstab(df.a, df.b, values=df.x, aggfunc='mean')",
            )
        pd = importlib.import_module("pandas")
        row_series, column_series = series_list(index), series_list(columns)
        frame = pd.concat([*row_series, *column_series], axis=1)
        keys = [str(name) for name in frame.columns]
        if len(set(keys)) < len(keys):
            raise DisclosureInputError(
                f"crosstab's index and columns share a name ({', '.join(keys)})",
                fix="give each Series its own name, e.g. series.rename('age_band')",
            )
        value = None
        if values is not None:
            value = free_name(getattr(values, "name", None), keys)
            frame[value] = values
        rows, cols = keys[: len(row_series)], keys[len(row_series) :]
        command = command_text("crosstab", rows, cols, value, aggfunc, margins)
        return self._table(pd, frame, "crosstab", command, rows, cols, value, aggfunc, margins)

    def pivot_table(
        self,
        data: Any,
        values: Any = None,
        index: Any = None,
        columns: Any = None,
        aggfunc: Any = "mean",
        fill_value: Any = None,
        margins: bool = False,
        dropna: bool = True,
        margins_name: str = "All",
        observed: bool = False,
        sort: bool = True,
    ) -> Any:
        """pandas.pivot_table, checked: `aggfunc` of the `values` column of `data` by
        the `index` and `columns` columns."""
        refuse_unsupported(
            fill_value=(fill_value, None),
            dropna=(dropna, True),
            margins_name=(margins_name, "All"),
            sort=(sort, True),
        )
        pd = importlib.import_module("pandas")
        rows = column_names(index, "index")
        cols = [] if columns is None else column_names(columns, "columns")
        if isinstance(values, list) and len(values) == 1:
            values = values[0]
        if not isinstance(values, str):
            raise DisclosureInputError(
                f"pivot_table takes one values column by name, not {values!r}",
                fix="e.g. acro.pivot_table(df, values='children', index=['parents'], "
                "aggfunc='mean'); one call per values column",
            )
        frame = data[[*rows, *cols, values]]
        command = command_text("pivot_table", rows, cols, values, aggfunc, margins)
        return self._table(pd, frame, "pivot_table", command, rows, cols, values, aggfunc, margins)

    def _table(
        self,
        pd: Any,
        frame: Any,
        method: str,
        command: str,
        rows: list[str],
        columns: list[str],
        value: str | None,
        aggfunc: Any,
        margins: bool,
    ) -> Any:
        keys = [*rows, *columns]
        # pandas drops records with a missing key from a crosstab; so does the facade.
        frame = frame.dropna(subset=keys)
        for key in keys:
            if frame[key].dtype == object or str(frame[key].dtype) == "category":
                frame = frame.assign(**{key: frame[key].astype("string")})
        microdata = pl.from_pandas(frame)
        uid = self.results.next_uid
        # A list of aggfuncs gives one block of columns per function, as in pandas.
        functions = aggfunc if isinstance(aggfunc, list) else [aggfunc]
        results, tables = [], []
        for function in functions:
            statistic = "count" if function is None else statistic_of(function)
            result = check_table(
                microdata,
                name=uid if len(functions) == 1 else f"{uid} {statistic}",
                rows=rows,
                columns=columns,
                value=value,
                statistic=statistic,
                rules=self.rules,
                protection=Protection(suppress=self.suppress, totals=margins),
            )
            results.append(result)
            tables.append(
                acro_layout(pd, result, suppress=self.suppress, margins=margins, label=value or "")
            )
        table = (
            tables[0]
            if not isinstance(aggfunc, list)
            else combine(pd, tables, [function_name(f) for f in functions])
        )
        status = worst(result.status for result in results)
        done = "suppressed" if self.suppress else "may need suppressing"
        summary = f"{status}; " + "".join(
            f"{rule}: {count} cells {done}; " for rule, count in table.failing.items() if count
        )
        self.results.add(
            status=status,
            output_type="table",
            properties={"method": method},
            sdc=table.sdc,
            command=command,
            summary=summary + "; ".join(result.summary for result in results),
            outcome=table.outcome,
            csv=table.frame.to_csv(),
            result=results[0] if len(results) == 1 else results,
        )
        return table.frame

    # --- regressions ------------------------------------------------------------------

    def ols(
        self,
        endog: Any,
        exog: Any = None,
        missing: str = "none",
        hasconst: Any = None,
        **kwargs: Any,
    ) -> Any:
        """statsmodels OLS, fitted and checked (residual degrees of freedom, small
        groups behind a predictor)."""
        sm = importlib.import_module("statsmodels.api")
        model = sm.OLS(endog, exog, missing=missing, hasconst=hasconst, **kwargs)
        return self._regression("ols", "acro.ols(endog, exog)", model.fit())

    def olsr(
        self, formula: str, data: Any, subset: Any = None, drop_cols: Any = None, **kwargs: Any
    ) -> Any:
        """statsmodels' formula OLS (``smf.ols(formula, data)``), fitted and checked."""
        smf = importlib.import_module("statsmodels.formula.api")
        model = smf.ols(formula, data, subset=subset, drop_cols=drop_cols, **kwargs)
        return self._regression("olsr", f"acro.olsr({formula!r}, data)", model.fit())

    def logit(
        self,
        endog: Any,
        exog: Any = None,
        missing: str = "none",
        check_rank: bool = True,
        **kwargs: Any,
    ) -> Any:
        """statsmodels Logit, fitted and checked."""
        sm = importlib.import_module("statsmodels.api")
        model = sm.Logit(endog, exog, missing=missing, check_rank=check_rank, **kwargs)
        return self._regression("logit", "acro.logit(endog, exog)", model.fit(disp=0))

    def logitr(
        self, formula: str, data: Any, subset: Any = None, drop_cols: Any = None, **kwargs: Any
    ) -> Any:
        """statsmodels' formula Logit (``smf.logit(formula, data)``), fitted and checked."""
        smf = importlib.import_module("statsmodels.formula.api")
        model = smf.logit(formula, data, subset=subset, drop_cols=drop_cols, **kwargs)
        return self._regression("logitr", f"acro.logitr({formula!r}, data)", model.fit(disp=0))

    def probit(
        self,
        endog: Any,
        exog: Any = None,
        missing: str = "none",
        check_rank: bool = True,
        **kwargs: Any,
    ) -> Any:
        """statsmodels Probit, fitted and checked."""
        sm = importlib.import_module("statsmodels.api")
        model = sm.Probit(endog, exog, missing=missing, check_rank=check_rank, **kwargs)
        return self._regression("probit", "acro.probit(endog, exog)", model.fit(disp=0))

    def probitr(
        self, formula: str, data: Any, subset: Any = None, drop_cols: Any = None, **kwargs: Any
    ) -> Any:
        """statsmodels' formula Probit (``smf.probit(formula, data)``), fitted and checked."""
        smf = importlib.import_module("statsmodels.formula.api")
        model = smf.probit(formula, data, subset=subset, drop_cols=drop_cols, **kwargs)
        return self._regression("probitr", f"acro.probitr({formula!r}, data)", model.fit(disp=0))

    def _regression(self, method: str, command: str, fitted: Any) -> Any:
        uid = self.results.next_uid
        result = check_fitted(uid, fitted, rules=self.rules)
        sign = "<" if result.df_resid < result.min_dof else ">="
        summary = f"{result.status}; dof={result.df_resid} {sign} {result.min_dof}"
        self.results.add(
            status=result.status,
            output_type="regression",
            properties={"method": method, "dof": float(result.df_resid)},
            # ACRO records no sdc for a regression; the engine's reasons are in summary.
            sdc={},
            command=command,
            summary="; ".join([summary, *result.reasons]),
            outcome={},
            csv=result.coefficients.write_csv(),
            result=result,
        )
        return fitted

    # --- survival -----------------------------------------------------------------------

    def surv_func(
        self,
        time: Any,
        status: Any,
        output: str,
        entry: Any = None,
        title: Any = None,
        freq_weights: Any = None,
        exog: Any = None,
        bw_factor: float = 1.0,
        filename: str = "kaplan-meier.png",
    ) -> Any:
        """A Kaplan–Meier table (statsmodels' SurvfuncRight), each step checked for
        enough people leaving the risk set; only output="table" is supported yet."""
        refuse_unsupported(
            output=(output, "table"),
            entry=(entry, None),
            freq_weights=(freq_weights, None),
            exog=(exog, None),
            bw_factor=(bw_factor, 1.0),
        )
        sm = importlib.import_module("statsmodels.api")
        uid = self.results.next_uid
        table = survival_table(sm, time, status, name=uid, rules=self.rules, suppress=self.suppress)
        done = "suppressed" if self.suppress else "may need suppressing"
        cells = table.sdc["summary"]["threshold"]
        self.results.add(
            status=table.result.status,
            output_type="table",
            properties={"method": "surv_func"},
            sdc=table.sdc,
            command=f"acro.surv_func(time, status, output={output!r})",
            summary=f"{table.result.status}; "
            + (f"threshold: {cells} cells {done}; " if cells else "")
            + table.result.summary,
            outcome=table.outcome,
            csv=table.frame.to_csv(),
            result=table.result,
        )
        return table.frame

    # --- the session's outputs --------------------------------------------------------

    def custom_output(self, filename: str | Path, comment: str | None = None) -> None:
        """Add a file the facade cannot check (a figure, say): a person reviews it."""
        source = Path(filename)
        if not source.is_file():
            raise DisclosureInputError(
                f"cannot add custom output {str(source)!r}: there is no such file",
                fix="save the output first, then pass its path to custom_output()",
            )
        self.results.add(
            status="review",
            output_type="custom",
            properties={},
            sdc={},
            command="custom",
            summary="review",
            outcome={},
            source=source,
            comments=[] if comment is None else [comment],
        )

    def add_comments(self, output: str, comment: str) -> None:
        """Add a comment for the output checker to the output named `output`."""
        self.results.get(output).comments.append(comment)

    def add_exception(self, output: str, reason: str) -> None:
        """Ask for the output named `output` to be released although it did not pass."""
        self.results.get(output).exception = reason

    def remove_output(self, key: str) -> None:
        """Drop an output from the session: `finalise` does not write it."""
        self.results.remove(key)

    def rename_output(self, old: str, new: str) -> None:
        """Give an output a new name (its uid in results.json)."""
        record = self.results.get(old)
        if new in self.results.results:
            raise DisclosureInputError(
                f"cannot rename {old!r} to {new!r}: that name is taken",
                fix="choose a name print_outputs() does not list",
            )
        record.uid = new
        self.results.results = {
            (new if uid == old else uid): rec for uid, rec in self.results.results.items()
        }

    def print_outputs(self) -> str:
        """Print every output of the session, as ACRO does, and return the text."""
        text = "".join(f"{record}\n" for record in self.results.results.values())
        print(text)
        return text

    def get_output(self, key: str) -> Record:
        """The record of one output (status, summary, sdc, comments, ...)."""
        return self.results.get(key)

    def finalise(
        self, path: str | Path = "outputs", ext: str = "json", interactive: bool = False
    ) -> Records:
        """Write results.json and the outputs into the new folder `path`, for checking."""
        if ext != "json" or interactive:
            raise DisclosureInputError(
                f"finalise(ext={ext!r}, interactive={interactive}) is not supported",
                fix="use finalise(path) (results.json); add exceptions with "
                "add_exception() before finalising",
            )
        self.results.finalise(Path(path))
        return self.results
