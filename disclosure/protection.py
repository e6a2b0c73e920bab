"""How a table that fails a rule is made safe to release: the protection parameters.

    suppress            primary suppression of every failing cell, then secondary
                        suppression (`secondary`) so none can be worked out from totals
    secondary           secondary suppression (needs a reason to turn off: see below)
    round_to            round every published count to this base (0: no rounding)
    redact_at_or_below  suppress every count at or below this (0: off); with round_to 5
                        it is the "redact <= 7, round to 5" rule of OpenSAFELY
    totals              publish row, column and grand totals with the table
    protection_level    percent (0: off): the range the published table leaves for a
                        cell suppressed because it fails a rule must be at least this
                        share of its value wide (`disclosure.intervals`), or the
                        table's protection is incomplete

With rounding, published totals are the sums of the published (rounded) cells, so they
say nothing the cells do not. Without rounding they are the true totals, and secondary
suppression is what stops a suppressed cell being recovered from them: turning
`secondary` off is refused unless counts are rounded or totals are not published.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

from disclosure.cellkey import PTable
from disclosure.errors import DisclosureInputError
from disclosure.parameters import parameter_problem, problems
from disclosure.policy_parameters import PROTECTION_PARAMETERS, RULE_PARAMETERS

__all__ = ["PROTECTION_PARAMETERS", "Protection"]


@dataclass(frozen=True)
class Protection:
    """What is done to a table before release (the defaults: suppress, no rounding)."""

    suppress: bool = True
    secondary: bool = True
    round_to: int = 0
    redact_at_or_below: int = 0
    totals: bool = True
    protection_level: float = 0.0
    # The cell key method (disclosure.cellkey), for count tables whose data has record keys.
    cell_key: bool = False
    cell_key_max_noise: int = 3
    cell_key_variance: float = 2.0
    cell_key_smallest: int = 0
    cell_key_p_stay: float = 0.5

    def __post_init__(self) -> None:
        found = [
            problem
            for name, value in asdict(self).items()
            if (problem := parameter_problem(name, PROTECTION_PARAMETERS[name], value))
        ]
        if not found and self.cell_key and (self.round_to or self.redact_at_or_below):
            found.append(
                "cell_key is true with rounding or redaction: one protection of counts at a "
                "time (the cell key method's own `cell_key_smallest` redacts small counts)"
            )
        if not found and self.cell_key:
            self.perturbation()  # parameters no perturbation table satisfies are refused
        if not found and not self.secondary and not self.round_to and self.totals:
            found.append(
                "secondary is false while totals are published unrounded: a suppressed "
                "cell could be worked out from its row or column total"
            )
        if found:
            raise DisclosureInputError(
                "the protection parameters are not valid",
                reasons=found,
                fix="correct them in the disclosure policy file (to turn off secondary "
                "suppression, also set round_to, or totals: false)",
            )

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> Protection:
        """Protection from a policy file's mapping; absent parameters keep their defaults
        and rule parameters are left to `Rules.from_mapping`."""

        found = problems(data, PROTECTION_PARAMETERS, RULE_PARAMETERS)
        if found:
            raise DisclosureInputError(
                "the disclosure policy is not valid",
                reasons=found,
                fix="correct them in the disclosure policy file",
            )
        known = [f.name for f in fields(cls)]
        return cls(**{name: data[name] for name in known if name in data})  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, object]:
        """The parameters, as written in a policy file and recorded in a report."""
        return dict(asdict(self))

    def perturbation(self) -> PTable:
        """The perturbation table of the cell key method, from the parameters."""
        return PTable.design(
            self.cell_key_max_noise,
            float(self.cell_key_variance),
            self.cell_key_smallest,
            float(self.cell_key_p_stay),
        )

    @property
    def rounds(self) -> bool:
        """True when published counts are rounded (and totals recomputed from them)."""
        return self.round_to > 0

    def describe(self) -> list[str]:
        """One line per setting, in words a checker and a researcher read."""
        lines = []
        if self.suppress:
            lines.append(
                "cells that fail a rule are suppressed"
                + (
                    ", and further cells so that none can be worked out from the totals"
                    if self.secondary
                    else " (no secondary suppression)"
                )
            )
        else:
            lines.append("no suppression: a table with a failing cell cannot be released")
        if self.redact_at_or_below:
            lines.append(f"counts at or below {self.redact_at_or_below} are suppressed")
        if self.round_to:
            lines.append(
                f"counts are rounded to the nearest {self.round_to}; totals are the sums "
                "of the published (rounded) cells"
            )
        if self.protection_level:
            lines.append(
                f"a suppressed cell that fails a rule must stay uncertain: the range of "
                f"values the published table allows for it is at least "
                f"{self.protection_level:g}% of its value wide"
            )
        if self.cell_key:
            lines.append(
                "count tables whose data carries record keys are published with noise (the "
                f"cell key method): at most {self.cell_key_max_noise} either way, the same "
                "for the same records every time"
                + (
                    f", and no count from 1 to {self.cell_key_smallest} is published"
                    if self.cell_key_smallest
                    else ""
                )
            )
        lines.append(
            "row, column and grand totals are published"
            if self.totals
            else "totals are not published"
        )
        return lines
