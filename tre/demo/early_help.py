"""Synthetic early-help referrals in 2025, almost all for children, as of 31 January 2026.

Referrals pick a child (or, less often, a young person of 16-24) from the same chunk of
residents, weighted heavily towards deprived households. The need follows the source
(police refer domestic abuse, schools refer attendance); episodes still open at the
extract date are "ongoing" and their days_open is the time so far.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from tre.demo.geography import WardTable
from tre.demo.pseudonyms import Keyring, key_strings
from tre.demo.residents import RESIDENT_PREFIX, Residents
from tre.demo.sampling import draw, draw_by_group, labels, month_labels

__all__ = ["EXTRACT_DATE", "NEEDS", "OUTCOMES", "REFERRAL_PREFIX", "SOURCES", "make_early_help"]

REFERRAL_PREFIX = "E"
EXTRACT_DATE = np.datetime64("2026-01-31", "D")
SOURCES = ("school", "police", "health visitor", "self", "social care", "voluntary sector")
NEEDS = (
    "domestic abuse",
    "parental mental health",
    "neglect",
    "school attendance",
    "housing",
    "substance misuse",
)
OUTCOMES = ("closed - needs met", "stepped up to social care", "closed - disengaged", "ongoing")

_SOURCE_SHARE = [0.30, 0.18, 0.15, 0.10, 0.15, 0.12]
# Rows: source; columns: need, in the order of NEEDS.
_NEED_BY_SOURCE = [
    [0.12, 0.15, 0.13, 0.45, 0.07, 0.08],
    [0.55, 0.08, 0.12, 0.03, 0.05, 0.17],
    [0.18, 0.35, 0.25, 0.02, 0.12, 0.08],
    [0.15, 0.30, 0.05, 0.10, 0.30, 0.10],
    [0.25, 0.15, 0.30, 0.05, 0.10, 0.15],
    [0.15, 0.20, 0.10, 0.10, 0.30, 0.15],
]
# Schools refer little in the summer holidays; everyone else is steady.
_SCHOOL_MONTHS = [1.1, 1.1, 1.1, 0.9, 1.1, 1.1, 0.7, 0.15, 1.1, 1.2, 1.2, 0.9]
_MONTHS_BY_SOURCE = [_SCHOOL_MONTHS] + [[1.0] * 12] * (len(SOURCES) - 1)
_MEAN_DAYS = np.array([120.0, 140.0, 150.0, 100.0, 110.0, 160.0])
# Rows: need; columns: the three closed outcomes, in the order of OUTCOMES.
_CLOSED_BY_NEED = [
    [0.60, 0.22, 0.18],
    [0.70, 0.12, 0.18],
    [0.58, 0.24, 0.18],
    [0.72, 0.06, 0.22],
    [0.75, 0.08, 0.17],
    [0.52, 0.18, 0.30],
]
_ONGOING = 3
# Relative chance of a referral by age band: children, then young people to 24.
_REFERRED_AGE = np.array([1.0, 0.18, 0, 0, 0, 0, 0, 0, 0])
_MONTH_STARTS = np.arange("2025-01", "2026-02", dtype="datetime64[M]").astype("datetime64[D]")


def make_early_help(
    rng: np.random.Generator,
    start: int,
    n: int,
    residents: Residents,
    wards: WardTable,
    keys: Keyring,
    resident_keys: Keyring,
) -> dict[str, pa.Array]:
    """`n` referrals numbered from `start`, each linked to one of this chunk's `residents`."""
    weight = _REFERRED_AGE[residents.age] * (11.0 - residents.decile) ** 1.4
    if weight.sum() == 0:  # a tiny chunk without children: any resident will do
        weight = np.ones(len(weight))
    child = rng.choice(len(weight), size=n, p=weight / weight.sum())
    ward = residents.ward[child]

    source = draw(rng, n, _SOURCE_SHARE)
    need = draw_by_group(rng, source, _NEED_BY_SOURCE)
    month = draw_by_group(rng, source, _MONTHS_BY_SOURCE)
    days_in_month = (_MONTH_STARTS[month + 1] - _MONTH_STARTS[month]).astype(np.int64)
    referred = _MONTH_STARTS[month] + rng.integers(0, days_in_month)
    days_so_far = (EXTRACT_DATE - referred).astype(np.int64)

    planned = 1 + np.floor(rng.gamma(1.6, _MEAN_DAYS[need] / 1.6)).astype(np.int64)
    outcome = draw_by_group(rng, need, _CLOSED_BY_NEED)
    still_open = planned > days_so_far
    outcome[still_open] = _ONGOING

    return {
        "referral_id": key_strings(REFERRAL_PREFIX, np.arange(start, start + n), keys),
        "resident_id": key_strings(RESIDENT_PREFIX, residents.index[child], resident_keys),
        "local_authority": labels(wards.authority_names, wards.ward_authority[ward]),
        "ward": labels(wards.ward_names, ward),
        "referral_source": labels(SOURCES, source),
        "primary_need": labels(NEEDS, need),
        "referral_month": labels(month_labels(2025), month),
        "days_open": pa.array(np.minimum(planned, days_so_far)),
        "outcome": labels(OUTCOMES, outcome),
    }
