"""The Liverpool City Region as the demo data sees it: six authorities and their wards.

Ward names are public geography (Liverpool's 2004–2023 wards; the other authorities'
wards as they stood before their most recent boundary reviews). Populations are ONS
mid-2022 estimates, rounded. Each ward carries a typical deprivation decile of the
English Indices of Deprivation kind (1 = most deprived 10% of England): a rough
impression for a realistic demo, not official statistics.

Some ward names occur in two authorities ("Church", "Riverside"), as they do in real
data; a ward is identified by (local_authority, ward).
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["AUTHORITIES", "Authority", "WardTable", "ward_table"]


@dataclass(frozen=True)
class Authority:
    """One local authority: its population and its wards with a typical decile each."""

    name: str
    population: int
    wards: tuple[tuple[str, int], ...]


# Ordered by name; the populations give Liverpool > Wirral > Sefton > St Helens >
# Knowsley > Halton, as in the real region.
AUTHORITIES: tuple[Authority, ...] = (
    Authority(
        "Halton",
        128_500,
        (
            ("Appleton", 2),
            ("Beechwood", 8),
            ("Birchfield", 8),
            ("Broadheath", 4),
            ("Daresbury", 9),
            ("Ditton", 3),
            ("Farnworth", 6),
            ("Grange", 2),
            ("Hale", 7),
            ("Halton Brook", 3),
            ("Halton Castle", 1),
            ("Halton Lea", 2),
            ("Halton View", 3),
            ("Heath", 7),
            ("Hough Green", 3),
            ("Kingsway", 1),
            ("Mersey", 3),
            ("Norton North", 4),
            ("Norton South", 2),
            ("Riverside", 2),
            ("Windmill Hill", 1),
        ),
    ),
    Authority(
        "Knowsley",
        155_900,
        (
            ("Cherryfield", 1),
            ("Halewood North", 3),
            ("Halewood South", 5),
            ("Northwood", 1),
            ("Page Moss", 1),
            ("Prescot North", 3),
            ("Prescot South", 3),
            ("Roby", 7),
            ("St Gabriels", 1),
            ("St Michaels", 2),
            ("Shevington", 4),
            ("Stockbridge", 1),
            ("Swanside", 3),
            ("Whiston and Cronton", 4),
            ("Whitefield", 1),
        ),
    ),
    Authority(
        "Liverpool",
        490_200,
        (
            ("Allerton and Hunts Cross", 7),
            ("Anfield", 1),
            ("Belle Vale", 2),
            ("Central", 3),
            ("Childwall", 8),
            ("Church", 9),
            ("Clubmoor", 2),
            ("County", 1),
            ("Cressington", 6),
            ("Croxteth", 2),
            ("Everton", 1),
            ("Fazakerley", 3),
            ("Greenbank", 5),
            ("Kensington and Fairfield", 1),
            ("Kirkdale", 1),
            ("Knotty Ash", 3),
            ("Mossley Hill", 7),
            ("Norris Green", 1),
            ("Old Swan", 2),
            ("Picton", 2),
            ("Princes Park", 1),
            ("Riverside", 2),
            ("St Michael's", 5),
            ("Speke-Garston", 1),
            ("Tuebrook and Stoneycroft", 2),
            ("Warbreck", 3),
            ("Wavertree", 5),
            ("West Derby", 5),
            ("Woolton", 9),
            ("Yew Tree", 2),
        ),
    ),
    Authority(
        "Sefton",
        279_800,
        (
            ("Ainsdale", 8),
            ("Birkdale", 7),
            ("Blundellsands", 8),
            ("Cambridge", 7),
            ("Church", 3),
            ("Derby", 2),
            ("Dukes", 5),
            ("Ford", 2),
            ("Harington", 10),
            ("Kew", 4),
            ("Linacre", 1),
            ("Litherland", 2),
            ("Manor", 8),
            ("Meols", 7),
            ("Molyneux", 6),
            ("Netherton and Orrell", 2),
            ("Norwood", 4),
            ("Park", 8),
            ("Ravenmeols", 7),
            ("St Oswald", 2),
            ("Sudell", 6),
            ("Victoria", 7),
        ),
    ),
    Authority(
        "St Helens",
        183_700,
        (
            ("Billinge and Seneley Green", 5),
            ("Blackbrook", 3),
            ("Bold", 3),
            ("Earlestown", 3),
            ("Eccleston", 8),
            ("Haydock", 4),
            ("Moss Bank", 4),
            ("Newton", 5),
            ("Parr", 1),
            ("Rainford", 9),
            ("Rainhill", 8),
            ("Sutton", 3),
            ("Thatto Heath", 3),
            ("Town Centre", 1),
            ("West Park", 4),
            ("Windle", 6),
        ),
    ),
    Authority(
        "Wirral",
        320_900,
        (
            ("Bebington", 7),
            ("Bidston and St James", 1),
            ("Birkenhead and Tranmere", 1),
            ("Bromborough", 4),
            ("Clatterbridge", 8),
            ("Claughton", 4),
            ("Eastham", 7),
            ("Greasby, Frankby and Irby", 9),
            ("Heswall", 10),
            ("Hoylake and Meols", 8),
            ("Leasowe and Moreton East", 2),
            ("Liscard", 2),
            ("Moreton West and Saughall Massie", 6),
            ("New Brighton", 3),
            ("Oxton", 6),
            ("Pensby and Thingwall", 8),
            ("Prenton", 6),
            ("Rock Ferry", 1),
            ("Seacombe", 1),
            ("Upton", 4),
            ("Wallasey", 7),
            ("West Kirby and Thurstaston", 9),
        ),
    ),
)


@dataclass(frozen=True)
class WardTable:
    """Every ward of the region as parallel arrays, indexed by a ward code."""

    authority_names: tuple[str, ...]
    ward_names: tuple[str, ...]
    ward_authority: npt.NDArray[np.int64]  # index into authority_names
    ward_share: npt.NDArray[np.float64]  # share of the region's residents; sums to 1
    ward_decile: npt.NDArray[np.int64]  # typical deprivation decile, 1 = most deprived

    @property
    def size(self) -> int:
        """How many wards the region has."""
        return len(self.ward_names)


@functools.cache
def ward_table() -> WardTable:
    """The region's wards, with population shares that are the same for every seed."""
    names: list[str] = []
    authority: list[int] = []
    share: list[float] = []
    decile: list[int] = []
    total = sum(a.population for a in AUTHORITIES)
    for code, auth in enumerate(AUTHORITIES):
        # Real wards differ in size; a jitter of ±20% keyed on the name (not the seed)
        # keeps that variety while every run sees the same geography.
        jitter = [0.8 + 0.4 * (zlib.crc32(w.encode()) % 1000) / 1000 for w, _ in auth.wards]
        for (ward, typical), j in zip(auth.wards, jitter, strict=True):
            names.append(ward)
            authority.append(code)
            share.append(auth.population / total * j / sum(jitter))
            decile.append(typical)
    return WardTable(
        authority_names=tuple(a.name for a in AUTHORITIES),
        ward_names=tuple(names),
        ward_authority=np.array(authority, dtype=np.int64),
        ward_share=np.array(share, dtype=np.float64),
        ward_decile=np.array(decile, dtype=np.int64),
    )
