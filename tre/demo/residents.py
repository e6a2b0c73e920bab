"""Synthetic residents: where they live, age, sex, deprivation, health and social care.

The causal chain is ward -> deprivation decile -> age band -> conditions -> GP visits
and social care, so the correlations a demo analysis looks for (more long-term
conditions with age and with deprivation) are there, with realistic noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from tre.demo.geography import WardTable
from tre.demo.pseudonyms import Keyring, key_strings
from tre.demo.sampling import IntArray, allocate, dep_factor, draw_by_group, labels

__all__ = ["AGE_BANDS", "RESIDENT_PREFIX", "Residents", "make_residents"]

AGE_BANDS = ("0-15", "16-24", "25-34", "35-44", "45-54", "55-64", "65-74", "75-84", "85+")
SEXES = ("F", "M")
RESIDENT_PREFIX = "R"

# England-like age structure; deprived areas are younger, affluent ones older.
_AGE_SHARE = np.array([18.5, 10.5, 13.5, 12.5, 13.0, 13.0, 10.0, 6.5, 2.5])
_AGE_TILT = np.array([0.15, 0.12, 0.10, 0.0, -0.05, -0.10, -0.20, -0.25, -0.30])
_FEMALE = np.array([0.488, 0.49, 0.50, 0.505, 0.508, 0.51, 0.52, 0.56, 0.65])
# Prevalence by age band, before the deprivation factor.
_DIABETES = np.array([0.002, 0.005, 0.015, 0.035, 0.07, 0.12, 0.17, 0.20, 0.18])
_COPD = np.array([0.0, 0.001, 0.003, 0.008, 0.02, 0.045, 0.08, 0.11, 0.12])
_DEPRESSION = np.array([0.01, 0.10, 0.13, 0.14, 0.14, 0.12, 0.09, 0.08, 0.08])
# Mean count of the other long-term conditions (hypertension, asthma, arthritis...).
_OTHER_LTC = np.array([0.05, 0.12, 0.22, 0.38, 0.62, 0.95, 1.4, 2.0, 2.6])
_GP_BASE = np.array([2.5, 1.5, 2.0, 2.2, 2.5, 3.0, 3.5, 4.5, 5.5])
# Chance of receiving any social care in the year (children's or adults').
_CARE = np.array([0.012, 0.008, 0.006, 0.007, 0.009, 0.012, 0.03, 0.08, 0.22])
_MAX_LTC = 8


@dataclass(frozen=True)
class Residents:
    """One chunk of residents as numpy columns; `index` is the global row number."""

    index: IntArray
    ward: IntArray
    decile: IntArray
    age: IntArray  # index into AGE_BANDS
    female: npt.NDArray[np.bool_]
    ltc: IntArray
    diabetes: npt.NDArray[np.bool_]
    copd: npt.NDArray[np.bool_]
    depression: npt.NDArray[np.bool_]
    gp_visits: IntArray
    care_cost: npt.NDArray[np.float64]

    def columns(self, wards: WardTable, keys: Keyring) -> dict[str, pa.Array]:
        """The chunk as Arrow columns named as in residents.yaml."""
        return {
            "resident_id": key_strings(RESIDENT_PREFIX, self.index, keys),
            "local_authority": labels(wards.authority_names, wards.ward_authority[self.ward]),
            "ward": labels(wards.ward_names, self.ward),
            "age_band": labels(AGE_BANDS, self.age),
            "sex": labels(SEXES, np.where(self.female, 0, 1)),
            "deprivation_decile": pa.array(self.decile.astype(np.int8)),
            "ltc_count": pa.array(self.ltc.astype(np.int8)),
            "has_diabetes": pa.array(self.diabetes),
            "has_copd": pa.array(self.copd),
            "has_depression": pa.array(self.depression),
            "gp_visits_last_year": pa.array(self.gp_visits),
            "social_care_cost_gbp": pa.array(self.care_cost),
        }


def _chance(rng: np.random.Generator, p: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    return rng.random(len(p)) < np.clip(p, 0.0, 0.95)


def make_residents(rng: np.random.Generator, start: int, n: int, wards: WardTable) -> Residents:
    """`n` residents numbered from `start`, drawn from `rng` alone (so chunks are independent)."""
    # Wards get their exact population share in every chunk; only the order is random.
    ward = rng.permutation(np.repeat(np.arange(wards.size), allocate(n, wards.ward_share)))
    # Small areas within a ward differ from the ward's typical decile.
    spread = np.rint(rng.normal(0.0, 1.4, n)).astype(np.int64)
    decile = np.clip(wards.ward_decile[ward] + spread, 1, 10)

    tilt = np.exp(np.outer((5.5 - np.arange(1, 11)) / 4.5, _AGE_TILT))
    age = draw_by_group(rng, decile - 1, _AGE_SHARE * tilt)
    female = rng.random(n) < _FEMALE[age]

    diabetes = _chance(rng, _DIABETES[age] * dep_factor(decile, 0.35))
    copd = _chance(rng, _COPD[age] * dep_factor(decile, 0.6))
    depression = _chance(
        rng, _DEPRESSION[age] * dep_factor(decile, 0.3) * np.where(female, 1.25, 0.8)
    )
    other = rng.poisson(_OTHER_LTC[age] * dep_factor(decile, 0.3))
    named = diabetes.astype(np.int64) + copd.astype(np.int64) + depression.astype(np.int64)
    ltc = np.minimum(named + other, _MAX_LTC)

    # Negative binomial: a few frequent attenders, as in real GP data.
    mean_visits = _GP_BASE[age] + 1.8 * ltc + 0.6 * female
    shape = 1.2
    gp_visits = np.minimum(rng.negative_binomial(shape, shape / (shape + mean_visits)), 150)

    return Residents(
        index=np.arange(start, start + n, dtype=np.int64),
        ward=ward,
        decile=decile,
        age=age,
        female=female,
        ltc=ltc.astype(np.int64),
        diabetes=diabetes,
        copd=copd,
        depression=depression,
        gp_visits=gp_visits.astype(np.int64),
        care_cost=_care_cost(rng, age, decile, ltc),
    )


def _care_cost(
    rng: np.random.Generator, age: IntArray, decile: IntArray, ltc: IntArray
) -> npt.NDArray[np.float64]:
    """Mostly zero; a home-care-sized lognormal for most recipients; a Pareto tail of
    residential and out-of-area placements, so one person can dominate a small cell."""
    n = len(age)
    receives = _chance(rng, _CARE[age] * dep_factor(decile, 0.4) * (1.0 + 0.15 * ltc))
    cost = np.zeros(n)
    k = int(receives.sum())
    amount = rng.lognormal(8.0, 1.1, k)
    placement = rng.random(k) < 0.04
    amount[placement] = 30_000.0 * (1.0 + rng.pareto(1.3, int(placement.sum())))
    cost[receives] = np.round(np.minimum(amount, 3_000_000.0), 2)
    return cost
