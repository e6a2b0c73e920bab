"""The parameters a disclosure policy file may set: the rules' and the protection's.

One table each, here rather than beside `Rules` and `Protection`, because each of those
checks a policy file against both tables (a name of the other is not unknown), and
neither module should need the other.
"""

from __future__ import annotations

from disclosure.parameters import Parameter
from disclosure.validate import MAX_FEW_VALUES, MAX_TOP_K

__all__ = ["PROTECTION_PARAMETERS", "RULE_PARAMETERS"]

RULE_PARAMETERS: dict[str, Parameter] = {
    "threshold": Parameter(int, "a whole number of at least 1", lambda v: v >= 1),  # type: ignore[operator]
    "dominance_n": Parameter(
        int,
        f"a whole number from 1 to {MAX_TOP_K}",
        lambda v: 1 <= v <= MAX_TOP_K,  # type: ignore[operator]
    ),
    "dominance_k": Parameter(
        float,
        "a number greater than 0 and less than 1, e.g. 0.9",
        lambda v: 0 < v < 1,  # type: ignore[operator]
    ),
    "p_ratio": Parameter(
        float,
        "a number from 0 to less than 1, e.g. 0.1 (0 turns the p% rule off)",
        lambda v: 0 <= v < 1,  # type: ignore[operator]
    ),
    "min_dof": Parameter(int, "a whole number of at least 1", lambda v: v >= 1),  # type: ignore[operator]
    "zeros_disclosive": Parameter(bool, "true or false"),
    "same_value": Parameter(str, "'review' or 'fail'", lambda v: v in ("review", "fail")),
    "quantile_side": Parameter(
        int,
        "a whole number of at least 1",
        lambda v: v >= 1,  # type: ignore[operator]
    ),
    # At least 2: a 0/1 predictor is always checked (it is the case that discloses exactly).
    "few_values": Parameter(
        int,
        f"a whole number from 2 to {MAX_FEW_VALUES}",
        lambda v: 2 <= v <= MAX_FEW_VALUES,  # type: ignore[operator]
    ),
}


PROTECTION_PARAMETERS: dict[str, Parameter] = {
    "suppress": Parameter(bool, "true or false"),
    "secondary": Parameter(bool, "true or false"),
    "round_to": Parameter(
        int,
        "0 (no rounding) or a whole number of at least 2, e.g. 5",
        lambda v: v == 0 or 2 <= v <= 1_000_000,  # type: ignore[operator]
    ),
    "redact_at_or_below": Parameter(
        int,
        "0 (off) or a whole number of at least 1, e.g. 7",
        lambda v: 0 <= v <= 1_000_000,  # type: ignore[operator]
    ),
    "totals": Parameter(bool, "true or false"),
    "protection_level": Parameter(
        float,
        "a percentage from 0 (off) to 100, e.g. 10",
        lambda v: 0 <= v <= 100,  # type: ignore[operator]
    ),
    "cell_key": Parameter(bool, "true or false"),
    "cell_key_max_noise": Parameter(
        int,
        "a whole number from 1 to 50, e.g. 3",
        lambda v: 1 <= v <= 50,  # type: ignore[operator]
    ),
    "cell_key_variance": Parameter(
        float,
        "a number above 0 and at most 1000, e.g. 2",
        lambda v: 0 < v <= 1000,  # type: ignore[operator]
    ),
    "cell_key_smallest": Parameter(
        int,
        "a whole number from 0 to 50, e.g. 4",
        lambda v: 0 <= v <= 50,  # type: ignore[operator]
    ),
    "cell_key_p_stay": Parameter(
        float,
        "a number from 0 to less than 1, e.g. 0.5",
        lambda v: 0 <= v < 1,  # type: ignore[operator]
    ),
}
