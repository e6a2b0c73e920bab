"""What protection did to one table, as counts of cells (no values): the record a
report keeps and the summary words (`disclosure.table_summary`)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ProtectionOutcome"]


@dataclass(frozen=True)
class ProtectionOutcome:
    """What protection did to one table (counts of cells, no values)."""

    primary: int  # cells and totals suppressed because they fail a rule (or are redacted)
    redacted: int  # of which: counts at or below the redaction limit that pass the rules
    secondary: int  # suppressed to protect the others
    rounded_to: int  # 0: no rounding
    totals: str  # "published" | "recomputed" (from rounded cells) | "not published"
    complete: bool  # every suppressed cell is protected from the totals
    published_cells: int  # inner cells released with a value
    cells: int  # inner cells in the table
    # The interval audit (disclosure.intervals): "audited", "not audited: <why>", or
    # "not needed: <why>" when no true totals are published (nothing bounds a cell).
    audit: str = ""
    narrow: int = 0  # primary cells whose interval is below the protection level
    # The cell key method (disclosure.perturbation): applied, and how many cells and
    # totals were published with noise (not 0).
    cell_key: bool = False
    perturbed: int = 0

    @property
    def suppressed(self) -> int:
        """Cells and totals suppressed, for any reason."""
        return self.primary + self.secondary

    def as_dict(self) -> dict[str, object]:
        """As recorded in a report."""
        return {
            "primary": self.primary,
            "redacted": self.redacted,
            "secondary": self.secondary,
            "rounded_to": self.rounded_to,
            "totals": self.totals,
            "complete": self.complete,
            "published_cells": self.published_cells,
            "cells": self.cells,
            "audit": self.audit,
            "narrow": self.narrow,
            "cell_key": self.cell_key,
            "perturbed": self.perturbed,
        }
