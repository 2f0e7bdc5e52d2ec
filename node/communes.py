"""French communes and régions: where a commune is (its centroid) and which région it is in.

Read once, on first use, from `node/geodata/communes.tsv.gz` (INSEE COG and IGN, Licence Ouverte
Etalab 2.0; see `node/geodata/ATTRIBUTION.md`): about 37,000 rows, a few MB in memory.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Final

DATA = Path(__file__).parent / "geodata" / "communes.tsv.gz"

#: INSEE région codes (since 2016) -> name.
REGIONS: Final[Mapping[str, str]] = MappingProxyType({
    "01": "Guadeloupe", "02": "Martinique", "03": "Guyane", "04": "La Réunion", "06": "Mayotte",
    "11": "Île-de-France", "24": "Centre-Val de Loire", "27": "Bourgogne-Franche-Comté", "28": "Normandie",
    "32": "Hauts-de-France", "44": "Grand Est", "52": "Pays de la Loire", "53": "Bretagne",
    "75": "Nouvelle-Aquitaine", "76": "Occitanie", "84": "Auvergne-Rhône-Alpes",
    "93": "Provence-Alpes-Côte d'Azur", "94": "Corse",
})  # fmt: skip


@dataclass(frozen=True)
class Commune:
    code: str
    name: str
    departement: str
    region: str
    lat: float
    lon: float


@cache
def communes() -> Mapping[str, Commune]:
    """INSEE code -> commune, for every commune with a centroid."""
    text = gzip.decompress(DATA.read_bytes()).decode("utf-8")
    rows = csv.DictReader(io.StringIO(text), delimiter="\t")
    return MappingProxyType({r["code"]: Commune(r["code"], r["nom"], r["departement"], r["region"],
                                                float(r["lat"]), float(r["lon"])) for r in rows})  # fmt: skip


def commune(code: str) -> Commune | None:
    return communes().get(code.upper())


@cache
def departements_of_region(region: str) -> tuple[str, ...]:
    """The département codes of a région ("11" -> 75, 77, 78, 91, 92, 93, 94, 95), sorted."""
    return tuple(sorted({c.departement for c in communes().values() if c.region == region}))
