"""Synthetic fire and rescue incidents in 2025, some linked to the resident at the dwelling.

Dwelling incidents pick their resident from the same chunk of residents, weighted
towards deprived households and older occupants (the real risk factors), and take that
resident's ward. Other incidents pick a ward, weighted towards deprived wards.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from tre.demo.geography import WardTable
from tre.demo.pseudonyms import Keyring, key_strings
from tre.demo.residents import RESIDENT_PREFIX, Residents
from tre.demo.sampling import FloatArray, IntArray, draw, draw_by_group, labels, month_labels

__all__ = ["INCIDENT_PREFIX", "INCIDENT_TYPES", "make_fire_incidents"]

INCIDENT_PREFIX = "F"
INCIDENT_TYPES = (
    "accidental dwelling fire",
    "deliberate fire",
    "false alarm",
    "road traffic collision",
    "secondary fire",
    "flooding",
)
_TYPE_SHARE = [0.11, 0.11, 0.40, 0.09, 0.24, 0.05]
# Chance that an incident of each type is at a home (and so linked to a resident).
_AT_HOME = np.array([1.0, 0.2, 0.35, 0.0, 0.0, 0.5])
# Seasons: winter house fires, spring grass fires and Bonfire Night, winter floods.
_MONTHS = [
    [1.2, 1.1, 1.0, 0.9, 0.9, 0.85, 0.85, 0.85, 0.9, 1.0, 1.1, 1.3],
    [0.8, 0.8, 1.0, 1.3, 1.2, 1.0, 1.0, 1.0, 0.9, 1.1, 1.6, 0.8],
    [1.0] * 12,
    [1.1, 1.0, 1.0, 0.9, 0.95, 0.95, 1.0, 1.0, 1.0, 1.05, 1.1, 1.15],
    [0.6, 0.7, 1.2, 1.8, 1.5, 1.2, 1.1, 1.0, 0.8, 1.0, 2.2, 0.6],
    [1.6, 1.4, 1.1, 0.8, 0.6, 0.7, 0.9, 0.9, 0.9, 1.2, 1.4, 1.6],
]
_RESPONSE_MEAN = np.array([6.0, 7.0, 6.5, 8.5, 8.0, 11.0])
# Dense Liverpool is reached fastest; Halton, Sefton and Wirral have longer runs.
_AUTHORITY_DELAY = np.array([0.4, -0.2, -0.6, 0.5, 0.3, 0.6])
_CASUALTIES = np.array([0.12, 0.03, 0.0, 0.7, 0.002, 0.01])
# Property damage: chance of any, and the lognormal of its size.
_DAMAGE_ANY = np.array([0.9, 0.85, 0.0, 0.95, 0.3, 0.9])
_DAMAGE_MU = np.array([7.8, 7.0, 0.0, 8.3, 4.5, 8.0])
_DAMAGE_SIGMA = np.array([1.4, 1.8, 1.0, 1.0, 1.2, 1.3])
_MAJOR_FIRE = np.array([True, True, False, False, False, False])  # buildings, not grass
# Who lives in a home that has a fire: adults, more often older ones.
_OCCUPANT_AGE = np.array([0.0, 0.6, 1.0, 1.0, 1.0, 1.0, 1.3, 1.8, 2.4])


def make_fire_incidents(
    rng: np.random.Generator,
    start: int,
    n: int,
    residents: Residents,
    wards: WardTable,
    keys: Keyring,
    resident_keys: Keyring,
) -> dict[str, pa.Array]:
    """`n` incidents numbered from `start`, linked into this chunk's `residents`."""
    kind = draw(rng, n, _TYPE_SHARE)
    at_home = rng.random(n) < _AT_HOME[kind]
    n_home = int(at_home.sum())

    weight = _OCCUPANT_AGE[residents.age] * (11.0 - residents.decile) ** 1.2
    if weight.sum() == 0:  # a tiny chunk of children only: any resident will do
        weight = np.ones(len(weight))
    occupant = rng.choice(len(weight), size=n_home, p=weight / weight.sum())
    ward = np.empty(n, dtype=np.int64)
    ward[at_home] = residents.ward[occupant]
    outdoor = wards.ward_share * (11.0 - wards.ward_decile) ** 1.5
    ward[~at_home] = rng.choice(wards.size, size=n - n_home, p=outdoor / outdoor.sum())
    resident_index = np.zeros(n, dtype=np.int64)
    resident_index[at_home] = residents.index[occupant]
    older = np.zeros(n, dtype=bool)
    older[at_home] = residents.age[occupant] >= 6  # 65 and over

    month = draw_by_group(rng, kind, _MONTHS)
    authority = wards.ward_authority[ward]
    mean = _RESPONSE_MEAN[kind] + _AUTHORITY_DELAY[authority]
    response = np.round(np.maximum(rng.gamma(5.0, mean / 5.0), 1.0), 2)
    casualties = np.minimum(rng.poisson(_CASUALTIES[kind] * np.where(older, 2.0, 1.0)), 30)

    return {
        "incident_id": key_strings(INCIDENT_PREFIX, np.arange(start, start + n), keys),
        "resident_id": key_strings(RESIDENT_PREFIX, resident_index, resident_keys, at_home),
        "local_authority": labels(wards.authority_names, authority),
        "ward": labels(wards.ward_names, ward),
        "incident_type": labels(INCIDENT_TYPES, kind),
        "incident_month": labels(month_labels(2025), month),
        "response_minutes": pa.array(response),
        "casualties": pa.array(casualties.astype(np.int8)),
        "property_damage_gbp": pa.array(_damage(rng, kind)),
    }


def _damage(rng: np.random.Generator, kind: IntArray) -> FloatArray:
    """Heavy-tailed: most incidents cost little; a few fires destroy a business."""
    n = len(kind)
    damage = rng.lognormal(_DAMAGE_MU[kind], _DAMAGE_SIGMA[kind])
    major = _MAJOR_FIRE[kind] & (rng.random(n) < 0.01)
    damage[major] = 100_000.0 * (1.0 + rng.pareto(1.1, int(major.sum())))
    damage[rng.random(n) >= _DAMAGE_ANY[kind]] = 0.0
    return np.round(np.minimum(damage, 5_000_000.0), 2).astype(np.float64, copy=False)
