"""Derive node/geodata/communes.tsv.gz from shared/data/datasets/fr-communes-insee.csv.

One row per INSEE commune code that has a centroid: code, name, département, région, latitude,
longitude (5 decimals, about 1 m). Where a commune déléguée shares its code with the commune
nouvelle, the commune (COM) row wins; a déléguée or associée without a région of its own takes
its département's (cut from its code when missing too). Usage: python scripts/derive_communes.py [SOURCE] [TARGET]
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT.parent / "shared/data/datasets/fr-communes-insee.csv"
TARGET = ROOT / "node/geodata/communes.tsv.gz"
PREFERENCE = {"COM": 0, "ARM": 1, "COMD": 2, "COMA": 3, "SRM": 4}


def derive(source: Path, target: Path) -> int:
    with source.open(encoding="utf-8", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["latitude"] and r["longitude"]]
    region_of = {r["code_departement"]: r["code_region"] for r in rows if r["type"] == "COM" and r["code_region"]}
    best: dict[str, dict[str, str]] = {}
    for row in rows:
        held = best.get(row["code_insee"])
        if held is None or PREFERENCE.get(row["type"], 9) < PREFERENCE.get(held["type"], 9):
            best[row["code_insee"]] = row
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t", lineterminator="\n")
    writer.writerow(["code", "nom", "departement", "region", "lat", "lon"])
    for code in sorted(best):
        row = best[code]
        # Former communes may lack both: the département is the code's head (97x overseas).
        departement = row["code_departement"] or (code[:3] if code.startswith("97") else code[:2])
        region = row["code_region"] or region_of.get(departement, "")
        writer.writerow([code, row["nom"], departement, region,
                         f"{float(row['latitude']):.5f}", f"{float(row['longitude']):.5f}"])
    # mtime=0: the same input gives the same bytes.
    target.write_bytes(gzip.compress(out.getvalue().encode("utf-8"), compresslevel=9, mtime=0))
    return len(best)


if __name__ == "__main__":
    args = [Path(a) for a in sys.argv[1:3]]
    count = derive(*(args + [SOURCE, TARGET][len(args):]))
    print(f"{count} communes written")
