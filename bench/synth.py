"""Synthetic initiatives (deterministic) and a bulk loader into a real node folder.

Records are rendered by the node's own `render`, so the stored document, N-Triples and
full-text fields are exactly what the node would have written; rows go in by batches
(SQLAlchemy Core executemany) and the triples into the embedded Oxigraph store with
`bulk_load`. The folder is cached under bench/out/ keyed by N.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import re
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

import pyoxigraph as ox
from sqlalchemy import Connection, create_engine, insert, text

import node
from bench.common import OUT
from node.cli import _init
from node.config import Config, load_config
from node.convert.common import fold
from node.convert.parse import luhn_ok
from node.records import Address, Identifier, Links, Location, Record
from node.service import render
from node.storage import repo
from node.storage.tables import record_themes, records
from vocab import schemes

GENERATOR_VERSION = 2  # bump when the generator changes: cached folders are then rebuilt
SEED = 20240501
BASE_URL = "https://bench.oscartes.example"
BATCH = 2000

#: (locality, INSEE code, lat, lon, spread in degrees, share of the records)
CLUSTERS = [
    ("Paris", "75056", 48.8566, 2.3522, 0.06, 0.14), ("Montreuil", "93048", 48.8638, 2.4485, 0.03, 0.03),
    ("Saint-Denis", "93066", 48.9362, 2.3574, 0.03, 0.03), ("Nanterre", "92050", 48.8924, 2.2069, 0.03, 0.02),
    ("Versailles", "78646", 48.8049, 2.1204, 0.04, 0.02), ("Lyon", "69123", 45.7640, 4.8357, 0.06, 0.06),
    ("Villeurbanne", "69266", 45.7719, 4.8902, 0.02, 0.02), ("Marseille", "13055", 43.2965, 5.3698, 0.07, 0.05),
    ("Toulouse", "31555", 43.6047, 1.4442, 0.06, 0.05), ("Lille", "59350", 50.6292, 3.0573, 0.05, 0.04),
    ("Bordeaux", "33063", 44.8378, -0.5792, 0.05, 0.04), ("Nantes", "44109", 47.2184, -1.5536, 0.05, 0.04),
    ("Strasbourg", "67482", 48.5734, 7.7521, 0.04, 0.03), ("Montpellier", "34172", 43.6108, 3.8767, 0.04, 0.03),
    ("Rennes", "35238", 48.1173, -1.6778, 0.04, 0.03), ("Grenoble", "38185", 45.1885, 5.7245, 0.03, 0.02),
    ("Nice", "06088", 43.7102, 7.2620, 0.03, 0.02),
]  # fmt: skip
#: the rest is spread over metropolitan France: (min_lon, min_lat, max_lon, max_lat)
FRANCE = (-4.5, 42.5, 7.8, 51.0)
SMALL_TOWNS = ["Saint-Martin", "Villeneuve", "Beaumont", "Montfort", "Belleville", "Fontaine", "Champagne",
               "Rochefort", "Châteauneuf", "Bourg-Neuf", "Vauclair", "Mirebeau", "Lanvollon", "Plouaret",
               "Saint-Jean-du-Gard", "Pont-l'Évêque", "Aurillac", "Millau", "Figeac", "Die", "Briançon"]  # fmt: skip

#: words the text queries use: accent-free everywhere they appear (so SPARQL's LCASE sees the
#: same text as the folded full-text index), absent from theme labels, towns and place names.
QUERY_WORDS = ["atelier", "cuisine", "couture", "ressourcerie", "amap", "potager", "recyclerie", "fablab",
               "apiculture", "insertion", "entraide", "permaculture", "conserverie", "brasserie", "tricot",
               "chorale", "yoga", "bricolage"]  # fmt: skip
#: activity phrases with weights: the query words land at roughly 0.5-5% of the records
ACTIVITIES = [
    ("un atelier de quartier", 5), ("de la cuisine partagée", 4), ("de la couture", 3), ("une ressourcerie", 2),
    ("une amap", 4), ("un potager collectif", 3), ("une recyclerie", 2), ("un fablab", 1),
    ("de l'apiculture", 2), ("un chantier d'insertion", 4), ("de l'entraide entre voisins", 5),
    ("de la permaculture", 3), ("une conserverie", 1), ("une brasserie coopérative", 1), ("du tricot", 1),
    ("une chorale", 2), ("du yoga", 2), ("du bricolage", 4),
    ("des repas partagés", 20), ("de l'accompagnement de projets", 20), ("des formations", 20),
    ("des rencontres", 20), ("des permanences", 20), ("des sorties nature", 15), ("de l'aide aux devoirs", 15),
    ("des conférences", 15), ("des expositions", 15), ("un marché de producteurs", 12), ("des visites", 15),
    ("un soutien administratif", 12), ("des balades", 12), ("une épicerie", 10), ("un café associatif", 10),
    ("une ludothèque", 8), ("des projections", 10), ("des chantiers participatifs", 10), ("du maraîchage", 8),
    ("des jeux", 10), ("une friperie", 6), ("des cours de langue", 8),
]  # fmt: skip
ORG_TYPES = ["Association", "Collectif", "Coopérative", "Réseau", "Maison", "Espace", "Compagnie", "Union",
             "Amicale", "Comité", "Société coopérative", "Groupement", "Foyer", "Fédération"]  # fmt: skip
NAME_CORES = ["des Lilas", "du Partage", "Les Colibris", "La Fabrique", "Le Relais", "Les Communs", "La Ruche",
              "Le Grenier", "La Source", "Les Possibles", "Terre Vive", "L'Escale", "Le Maillon", "La Clef",
              "Les Voisins", "Horizon", "La Passerelle", "Le Chaudron", "Les Semeurs", "La Trame"]  # fmt: skip
NAME_ACTIVITY = ["Atelier", "Cuisine", "Couture", "Ressourcerie", "Amap", "Potager", "Recyclerie", "Fablab"]
AUDIENCES = ["pour tous les habitants", "pour les familles", "avec les jeunes du quartier", "pour les seniors",
             "avec les personnes éloignées de l'emploi", "ouvert à toutes et tous", "pour les étudiants"]  # fmt: skip
OPENINGS = ["Nous proposons", "L'association organise", "Le collectif anime", "Venez découvrir",
            "Depuis dix ans, nous développons", "Chaque semaine, retrouvez"]  # fmt: skip
CLOSINGS = ["Adhésion à prix libre.", "Bénévoles bienvenus.", "Ouvert du mardi au samedi.",
            "Nous cherchons des partenaires.", "Entrée libre.", ""]  # fmt: skip
PLACES = ["Maison des associations", "Salle des fêtes", "Local associatif", "Tiers-lieu municipal", ""]
STREETS = ["rue de la République", "avenue Jean Jaurès", "rue Victor Hugo", "place de la Mairie",
           "boulevard Gambetta", "rue des Écoles", "chemin du Moulin", "rue Pasteur"]  # fmt: skip


def _themes() -> list[str]:
    return sorted(iri for iri, c in schemes.concepts().items() if c.scheme == "themes")


def _legal_forms() -> list[str]:
    return sorted(iri for iri, c in schemes.concepts().items() if c.scheme == "legal-forms")


def _place(rng: random.Random) -> tuple[str, str, float, float]:
    """(locality, INSEE code or "", lat, lon): clusters around cities, the rest spread out."""
    pick = rng.random()
    for town, insee, lat, lon, spread, share in CLUSTERS:
        if pick < share:
            return town, insee, round(rng.gauss(lat, spread), 5), round(rng.gauss(lon, spread * 1.4), 5)
        pick -= share
    min_lon, min_lat, max_lon, max_lat = FRANCE
    return (rng.choice(SMALL_TOWNS), "", round(rng.uniform(min_lat, max_lat), 5),
            round(rng.uniform(min_lon, max_lon), 5))  # fmt: skip


def _check_digit(payload: str) -> str:
    """The digit that makes `payload + digit` pass the Luhn check."""
    return next(d for d in "0123456789" if luhn_ok(payload + d))


def siret(draw: int) -> str:
    """A well-formed SIRET from one random draw: its SIREN (8 digits + Luhn digit) then the
    establishment's NIC (4 digits + the digit that makes all 14 pass Luhn), as INSEE's are."""
    digits = f"{draw:014d}"
    siren = digits[:8] + _check_digit(digits[:8])
    return siren + digits[9:13] + _check_digit(siren + digits[9:13])


def initiatives(n: int, license_iri: str, base_url: str = BASE_URL, seed: int = SEED) -> Iterator[Record]:
    """N French-looking initiatives, the same for the same (n, seed)."""
    rng = random.Random(seed)
    themes, legal = _themes(), _legal_forms()
    phrases, weights = [p for p, _ in ACTIVITIES], [w for _, w in ACTIVITIES]
    start = datetime(2015, 1, 1, tzinfo=UTC)
    for i in range(1, n + 1):
        town, insee, lat, lon = _place(rng)
        core = rng.choice(NAME_CORES)
        middle = rng.choice(NAME_ACTIVITY) if rng.random() < 0.06 else rng.choice(ORG_TYPES)
        name = f"{middle} {core} ({town})" if rng.random() < 0.3 else f"{middle} {core}"
        chosen = set(rng.choices(phrases, weights, k=3))
        description = f"{rng.choice(OPENINGS)} {', '.join(sorted(chosen))} {rng.choice(AUDIENCES)}. "
        description = (description + rng.choice(CLOSINGS)).strip()
        slug = f"{fold(core).replace(' ', '_').replace(chr(39), '_')[:20]}_{i}"
        published = start + timedelta(seconds=rng.randrange(10 * 365 * 86400))
        department = insee[:2] if insee else f"{rng.randrange(1, 95):02d}"
        postal = f"{department}{rng.randrange(100, 999)}"
        address = Address(f"{rng.randrange(1, 120)} {rng.choice(STREETS)}", postal, town, "FR")
        identifier = siret(rng.randrange(10**13, 10**14))
        yield Record(
            kind="initiative", iri=f"{base_url}/initiatives/{slug}", slug=slug, name=name,
            published=published, updated=published + timedelta(days=rng.randrange(0, 400)),
            description=description, subtype="organization" if rng.random() < 0.85 else "project",
            themes=tuple(sorted(set(rng.sample(themes, rng.randint(1, 3))))),
            homepage=f"https://{slug.replace('_', '-')}.example.org/" if rng.random() < 0.6 else "",
            legal_form=rng.choice(legal) if rng.random() < 0.7 else "",
            identifiers=(Identifier("SIRET", identifier),) if rng.random() < 0.5 else (),
            location=Location(rng.choice(PLACES), lat, lon, insee, address),
            opening_hours="Mo-Fr 09:00-18:00" if rng.random() < 0.3 else "",
            email=f"contact@{slug.replace('_', '-')}.example.org", email_public=rng.random() < 0.5,
            phone=f"+33 1 {rng.randrange(10, 99)} {rng.randrange(10, 99)} {rng.randrange(10, 99)} 00"
            if rng.random() < 0.4 else "",
            license=license_iri,
        )  # fmt: skip


@dataclass(frozen=True)
class Dataset:
    config: Config
    n: int
    seconds: float
    #: query word -> share of the records whose name or description holds it
    selectivity: dict[str, float]
    cached: bool


def _meta_file(data: Path) -> Path:
    return data / "bench-dataset.json"


def code_key() -> str:
    """A digest of the code that shapes a folder (rendering, schema, this generator): the cache
    key, so that a change there rebuilds the data instead of measuring stale documents."""
    root = Path(node.__file__).parent
    files = [*sorted((root / "convert").glob("*.py")), root / "service.py", root / "records.py",
             root / "storage" / "repo.py", root / "storage" / "tables.py",
             *sorted((root / "storage" / "migrations" / "versions").glob("*.py")), Path(__file__)]  # fmt: skip
    digest = hashlib.sha256(f"{GENERATOR_VERSION}".encode())
    for file in files:
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:10]


def folder(n: int, base_url: str = BASE_URL) -> Path:
    """The cache folder of N records under `base_url`: the default base keeps the historical
    name; any other (a loopback URL a benchmark serves at) adds its host and port."""
    tag = "" if base_url == BASE_URL else re.sub(r"[^a-z0-9]+", "_", base_url.split("://", 1)[-1].lower()) + "-"
    return OUT / f"data-n{n}-{tag}{code_key()}"


def dataset(n: int, base_url: str = BASE_URL) -> Dataset:
    """The node folder holding N synthetic initiatives under `base_url` (records' IRIs, the
    node's graph): from the cache, else built now. A node serving it must be reached at that
    URL, since other nodes take only records under their origin's base URL."""
    data = folder(n, base_url)
    meta = _meta_file(data)
    if meta.exists():
        saved = json.loads(meta.read_text(encoding="utf-8"))
        return Dataset(load_config(data), n, saved["seconds"], saved["selectivity"], True)
    prefix = data.name[: -len(code_key())]
    for stale in OUT.glob(f"{prefix}*"):  # older code's folders of this N and base, or a half-built one
        if re.fullmatch(r"[0-9a-f]{10}", stale.name[len(prefix):]):
            shutil.rmtree(stale)
    started = time.perf_counter()
    config = load_config(data, base_url=base_url)
    asyncio.run(_init(config))
    counts = bulk_load(config, initiatives(n, config.license, config.base_url))
    seconds = time.perf_counter() - started
    selectivity = {w: counts.get(w, 0) / n for w in QUERY_WORDS}
    meta.write_text(json.dumps({"n": n, "seconds": seconds, "selectivity": selectivity}, indent=1), encoding="utf-8")
    return Dataset(config, n, seconds, selectivity, False)


def bulk_load(config: Config, source: Iterator[Record]) -> dict[str, int]:
    """Insert rendered records by batches, then bulk-load their triples; counts of query words."""
    counts: dict[str, int] = {}
    nt_file = config.data_dir / "bulk.nt"
    engine = create_engine(f"sqlite:///{config.data_dir / 'oscartes.sqlite3'}")
    try:
        with engine.connect() as conn, nt_file.open("w", encoding="utf-8") as nt:
            next_id = int(conn.execute(text("SELECT COALESCE(MAX(id), 0) + 1 FROM records")).scalar_one())
            conn.commit()
            batch: list[Record] = []
            for record in source:
                batch.append(record)
                if len(batch) >= BATCH:
                    next_id = _insert_batch(conn, config, batch, next_id, nt, counts)
                    batch = []
            if batch:
                _insert_batch(conn, config, batch, next_id, nt, counts)
    finally:
        engine.dispose()
    store = ox.Store(str(config.store_path))
    try:
        store.bulk_load(path=str(nt_file), format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(config.graph_iri))
        store.flush()
    finally:
        del store
    nt_file.unlink()
    return counts


def _insert_batch(conn: Connection, config: Config, batch: list[Record], first_id: int, nt: TextIO,
                  counts: dict[str, int]) -> int:  # fmt: skip
    rows, theme_rows, fts_rows = [], [], []
    for offset, record in enumerate(batch):
        record_id = first_id + offset
        rendering = render(record, Links(), config)
        rows.append(repo._columns(record, rendering, config.graph_iri) | {"id": record_id, "version": 1})
        theme_rows += [{"record_id": record_id, "theme": t} for t in sorted(set(record.themes))]
        fts_rows.append({"id": record_id, "name": rendering.text_name, "body": rendering.text_body})
        nt.write(rendering.ntriples)
        words = f"{fold(record.name)} {fold(record.description)}"
        for word in QUERY_WORDS:
            if word in words:
                counts[word] = counts.get(word, 0) + 1
    with conn.begin():
        conn.execute(insert(records), rows)
        conn.execute(insert(record_themes), theme_rows)
        conn.execute(text("INSERT INTO record_fts (rowid, name, body) VALUES (:id, :name, :body)"), fts_rows)
    return first_id + len(batch)


def sample_slugs(database: Path, count: int, seed: int = 11) -> list[str]:
    """Slugs of `count` records picked at random (read-only, before the server starts)."""
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
        top = int(conn.execute("SELECT MAX(id) FROM records").fetchone()[0])
        ids = random.Random(seed).sample(range(1, top + 1), min(count, top))
        marks = ",".join("?" * len(ids))
        return [r[0] for r in conn.execute(f"SELECT slug FROM records WHERE id IN ({marks})", ids)]
