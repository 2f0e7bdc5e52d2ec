"""A region of three nodes in one folder: the data of a node that follows two others.

100,000 initiatives, 20,000 events, 10,000 needs and 5,000 offers (at scale 1), made
deterministically and spread over real French communes (INSEE codes and coordinates from
the communes file, drawn by population). Each record belongs to the node of its commune's
region: this node (the north and the centre), `ouest` or `sudest`; the two others are held
as a node that followed them holds them: their records in the same `records` table with
their dataset IRI as `origin`, their triples in that named graph, an `origins` row each,
and the provenance graph. Records are rendered by the node's own `render`, stored with
`repo.insert_records` (the path a copy of another node takes) and their triples bulk-loaded
into Oxigraph. The node is then started once on the folder, so that it writes the concept
schemes and the provenance graph itself; after that, `Store.backup` keeps a checkpoint of the
RDF store for the bare-Oxigraph baseline and the quads are dumped for rdflib.

Dates are around a fixed day, ANCHOR (1 Nov 2026): events from 12 months before to 12 after,
needs expiring from 6 months before to 12 after (15 % never). Initiatives have 1-3 themes,
a third of them 1-3 partners (mostly in their département, some on another node).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import csv
import hashlib
import json
import random
import re
import shutil
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

import pyoxigraph as ox
from sqlalchemy.ext.asyncio import AsyncEngine

from bench import synth
from bench.common import OUT, free_port, node_server
from node.cli import _init
from node.config import Config, load_config
from node.convert.common import fold
from node.origins import Discovered, register
from node.records import Address, Links, Location, Record
from node.service import render
from node.storage import repo
from node.storage.db import make_engine
from node.storage.tables import origins
from vocab import schemes

GENERATOR_VERSION = 1  # bump when the generator changes: cached folders are then rebuilt
SEED = 20261101
ANCHOR = datetime(2026, 11, 1, tzinfo=UTC)
COMMUNES = Path(__file__).resolve().parents[2] / "shared" / "data" / "datasets" / "fr-communes-insee.csv"
SIZES = {"initiative": 100_000, "event": 20_000, "need": 10_000, "offer": 5_000}
BATCH = 2000
LICENSE = "https://creativecommons.org/licenses/by-sa/4.0/"


@dataclass(frozen=True)
class Node:
    name: str
    base_url: str
    title: str
    #: INSEE region codes whose communes' records this node publishes
    regions: frozenset[str]

    @property
    def graph(self) -> str:
        return f"{self.base_url}/dataset"


OWN = Node("own", synth.BASE_URL, "Oscartes (bench)", frozenset({"11", "24", "27", "28", "32", "44"}))
FOLLOWED = (
    Node("ouest", "https://ouest.bench.oscartes.example", "ESS de l'Ouest",
         frozenset({"52", "53", "75", "76", "01", "02", "03", "04", "06"})),
    Node("sudest", "https://sudest.bench.oscartes.example", "ESS du Sud-Est", frozenset({"84", "93", "94"})),
)  # fmt: skip
NODES = (OWN, *FOLLOWED)

EVENT_TITLES = ["Atelier", "Repas partagé", "Journée portes ouvertes", "Rencontre", "Chantier participatif",
                "Formation", "Marché", "Projection-débat", "Balade", "Assemblée générale", "Permanence",
                "Fête de quartier", "Conférence", "Troc"]  # fmt: skip


@dataclass(frozen=True)
class Commune:
    insee: str
    name: str
    region: str
    lat: float
    lon: float
    postal: str
    population: int
    #: spread of the places around the town hall, in degrees: wider for bigger towns
    spread: float


def communes() -> list[Commune]:
    """Inhabited communes with coordinates (not the arrondissements: Paris is 75056)."""
    found = []
    with COMMUNES.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            pop = int(row["population_municipale"] or 0)
            if row["type"] != "COM" or pop <= 0 or not row["latitude"] or not row["code_region"]:
                continue
            postal = (row["codes_postaux"].split(";")[0] or row["code_insee"][:2] + "000").strip()
            spread = min(0.06, 0.004 + 0.00004 * pop**0.5)
            found.append(Commune(row["code_insee"], row["nom"], row["code_region"], float(row["latitude"]),
                                 float(row["longitude"]), postal, pop, spread))  # fmt: skip
    return found


@dataclass
class Plan:
    """Who is where, decided before any record is made: links need every IRI in advance."""

    towns: list[Commune]
    node: list[int] = field(default_factory=list)  # per initiative: index in NODES
    town: list[int] = field(default_factory=list)  # per initiative: index in towns
    iri: list[str] = field(default_factory=list)
    themes: list[tuple[str, ...]] = field(default_factory=list)
    needs: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    offers: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    owner: dict[str, list[int]] = field(default_factory=dict)  # kind -> per record: initiative index


def node_of(region: str) -> int:
    return next((i for i, n in enumerate(NODES) if region in n.regions), 0)


def weighted_communes() -> tuple[list[Commune], list[float]]:
    """The communes and their cumulative populations, to draw a commune in proportion to it."""
    towns = communes()
    cumulative, total = [], 0.0
    for c in towns:
        total += c.population
        cumulative.append(total)
    return towns, cumulative


def plan(sizes: dict[str, int], seed: int = SEED) -> Plan:
    rng = random.Random(seed)
    towns, cumulative = weighted_communes()
    themes = sorted(iri for iri, c in schemes.concepts().items() if c.scheme == "themes")
    p = Plan(towns)
    for i in range(sizes["initiative"]):
        t = min(bisect.bisect(cumulative, rng.random() * cumulative[-1]), len(towns) - 1)
        n = node_of(towns[t].region)
        p.node.append(n)
        p.town.append(t)
        core = re.sub(r"[^a-z0-9]+", "_", fold(rng.choice(synth.NAME_CORES))).strip("_")[:18]
        p.iri.append(f"{NODES[n].base_url}/initiatives/{core}_{i}")
        p.themes.append(tuple(sorted(set(rng.sample(themes, rng.randint(1, 3))))))
    for kind in ("event", "need", "offer"):
        p.owner[kind] = [rng.randrange(sizes["initiative"]) for _ in range(sizes[kind])]
    for kind, links in (("need", p.needs), ("offer", p.offers)):
        for j, owner in enumerate(p.owner[kind]):
            links[owner].append(f"{NODES[p.node[owner]].base_url}/{kind}s/{kind}_{j}")
    return p


def _place(rng: random.Random, town: Commune, label: str = "") -> Location:
    street = f"{rng.randrange(1, 120)} {rng.choice(synth.STREETS)}"
    return Location(label or rng.choice(synth.PLACES), round(rng.gauss(town.lat, town.spread), 5),
                    round(rng.gauss(town.lon, town.spread * 1.4), 5), town.insee,
                    Address(street, town.postal, town.name, "FR"))  # fmt: skip


def _text(rng: random.Random) -> str:
    phrases, weights = [p for p, _ in synth.ACTIVITIES], [w for _, w in synth.ACTIVITIES]
    chosen = sorted(set(rng.choices(phrases, weights, k=3)))
    return f"{rng.choice(synth.OPENINGS)} {', '.join(chosen)} {rng.choice(synth.AUDIENCES)}. " + rng.choice(
        synth.CLOSINGS
    )


def records(p: Plan, sizes: dict[str, int], seed: int = SEED) -> Iterator[tuple[int, Record, Links]]:
    """(node index, record, its links) for every record of the region, the same every time."""
    rng = random.Random(seed + 1)
    legal = sorted(iri for iri, c in schemes.concepts().items() if c.scheme == "legal-forms")
    categories = sorted(iri for iri, c in schemes.concepts().items() if c.scheme == "needs")
    by_dep: dict[str, list[int]] = defaultdict(list)
    for i, t in enumerate(p.town):
        by_dep[p.towns[t].insee[:2]].append(i)
    start = datetime(2015, 1, 1, tzinfo=UTC)
    for i in range(sizes["initiative"]):
        town, iri = p.towns[p.town[i]], p.iri[i]
        partners: set[str] = set()
        if rng.random() < 0.33:
            for _ in range(rng.randint(1, 3)):
                pool = by_dep[town.insee[:2]] if rng.random() < 0.7 else range(sizes["initiative"])
                partners.add(p.iri[rng.choice(pool)])
        partners.discard(iri)
        core = rng.choice(synth.NAME_CORES)
        middle = rng.choice(synth.NAME_ACTIVITY) if rng.random() < 0.06 else rng.choice(synth.ORG_TYPES)
        published = start + timedelta(seconds=rng.randrange(11 * 365 * 86400))
        slug = iri.rsplit("/", 1)[1]
        yield p.node[i], Record(
            kind="initiative", iri=iri, slug=slug, name=f"{middle} {core} ({town.name})" if rng.random() < 0.3
            else f"{middle} {core}", published=published, updated=published + timedelta(days=rng.randrange(400)),
            description=_text(rng), subtype="organization" if rng.random() < 0.85 else "project",
            themes=p.themes[i], legal_form=rng.choice(legal) if rng.random() < 0.7 else "",
            homepage=f"https://{slug.replace('_', '-')}.example.org/" if rng.random() < 0.5 else "",
            location=_place(rng, town), email=f"contact@{slug.replace('_', '-')}.example.org",
            email_public=rng.random() < 0.5, partners=tuple(sorted(partners)), license=LICENSE,
        ), Links(needs=tuple(p.needs.get(i, ())), offers=tuple(p.offers.get(i, ())))  # fmt: skip
    for j, owner in enumerate(p.owner["event"]):
        town, organizer = p.towns[p.town[owner]], p.iri[owner]
        base = NODES[p.node[owner]].base_url
        begins = (ANCHOR + timedelta(days=rng.uniform(-365, 365))).replace(minute=0, second=0, microsecond=0)
        begins = begins.replace(hour=rng.randrange(9, 21))
        title = rng.choice(EVENT_TITLES)
        yield p.node[owner], Record(
            kind="event", iri=f"{base}/events/event_{j}", slug=f"event_{j}", name=f"{title} à {town.name}",
            published=begins - timedelta(days=rng.randrange(5, 90)), updated=begins - timedelta(days=rng.randrange(5)),
            description=_text(rng), themes=p.themes[owner][: rng.randint(1, 2)], location=_place(rng, town),
            start=begins, end=begins + timedelta(hours=rng.randint(1, 4)), timezone="Europe/Paris",
            event_status="EventScheduled" if rng.random() < 0.95 else "EventCancelled",
            attributed_to=organizer, organizers=(organizer,), license=LICENSE,
        ), Links()  # fmt: skip
    for kind in ("need", "offer"):
        for j, owner in enumerate(p.owner[kind]):
            town, base = p.towns[p.town[owner]], NODES[p.node[owner]].base_url
            category = rng.choice(categories)
            label = schemes.concepts()[category].label()
            published = ANCHOR - timedelta(days=rng.randrange(1, 500))
            expiry = ANCHOR + timedelta(days=rng.randrange(-180, 365)) if rng.random() < 0.85 else None
            yield p.node[owner], Record(
                kind=kind, iri=f"{base}/{kind}s/{kind}_{j}", slug=f"{kind}_{j}",
                name=f"{'Recherche' if kind == 'need' else 'Propose'} : {label.lower()}", published=published,
                updated=published, description=_text(rng), themes=p.themes[owner][:1], location=_place(rng, town),
                end=expiry, attributed_to=p.iri[owner], category=category, quantity=float(rng.randint(1, 5)),
                license=LICENSE,
            ), Links()  # fmt: skip


@dataclass(frozen=True)
class Region:
    config: Config
    sizes: dict[str, int]
    #: node name -> kind -> records
    counts: dict[str, dict[str, int]]
    quads: int
    seconds: float
    cached: bool

    @property
    def bare_store(self) -> Path:
        """A checkpoint of the node's RDF store: the bare-Oxigraph baseline opens it."""
        return self.config.data_dir / "rdf-bare"

    @property
    def nquads(self) -> Path:
        """Every quad of the store, for rdflib."""
        return self.config.data_dir / "dump.nq"


def sizes_for(scale: float) -> dict[str, int]:
    return {kind: max(1, round(n * scale)) for kind, n in SIZES.items()}


def folder(sizes: dict[str, int]) -> Path:
    digest = hashlib.sha256(f"{GENERATOR_VERSION} {synth.code_key()} {json.dumps(sizes, sort_keys=True)}".encode())
    digest.update(Path(__file__).read_bytes())
    tag = "full" if sizes == SIZES else f"i{sizes['initiative']}"
    return OUT / f"region-{tag}-{digest.hexdigest()[:10]}"


def region(scale: float = 1.0) -> Region:
    """The region's node folder at this scale: from the cache, else built now (about 6 min
    at scale 1), then served once by the node."""
    sizes = sizes_for(scale)
    data = folder(sizes)
    meta = data / "bench-region.json"
    if meta.exists():
        saved = json.loads(meta.read_text(encoding="utf-8"))
        return Region(load_config(data), sizes, saved["counts"], saved["quads"], saved["seconds"], True)
    prefix = data.name[: -len("0123456789")]
    for stale in OUT.glob(f"{prefix}*"):  # an older generator's folder of this size, or a half-built one
        shutil.rmtree(stale)
    started = time.perf_counter()
    config = load_config(data, base_url=OWN.base_url)
    asyncio.run(_init(config))
    counts = asyncio.run(_load(config, sizes))
    _serve_once(config)
    store = ox.Store(str(config.store_path))
    try:
        store.backup(str(data / "rdf-bare"))
        store.dump(output=str(data / "dump.nq"), format=ox.RdfFormat.N_QUADS)
        quads = len(store)
    finally:
        del store
    seconds = time.perf_counter() - started
    meta.write_text(json.dumps({"sizes": sizes, "counts": counts, "quads": quads, "seconds": seconds}, indent=1),
                    encoding="utf-8")  # fmt: skip
    return Region(config, sizes, counts, quads, seconds, False)


async def _load(config: Config, sizes: dict[str, int]) -> dict[str, dict[str, int]]:
    """Rows through `repo.insert_records` by batches of one node, triples into one N-Triples
    file per node, then one bulk load per named graph; then the followed nodes' rows."""
    p = plan(sizes)
    counts: dict[str, dict[str, int]] = {n.name: defaultdict(int) for n in NODES}
    engine = make_engine(config.effective_database_url)
    files = [config.data_dir / f"bulk-{n.name}.nt" for n in NODES]
    try:
        with contextlib.ExitStack() as stack:
            sinks = [stack.enter_context(f.open("w", encoding="utf-8")) for f in files]
            buffers: list[list[tuple[Record, repo.Rendering]]] = [[] for _ in NODES]
            for index, record, links in records(p, sizes):
                buffers[index].append((record, render(record, links, config)))
                counts[NODES[index].name][record.kind] += 1
                if len(buffers[index]) >= BATCH:
                    await _flush(engine, NODES[index], buffers[index], sinks[index])
                    buffers[index] = []
            for index, buffer in enumerate(buffers):
                await _flush(engine, NODES[index], buffer, sinks[index])
        now = datetime.now(UTC)
        async with engine.begin() as conn:
            for n in FOLLOWED:
                found = Discovered(f"{n.base_url}/actor", n.graph, n.base_url, f"{n.base_url}/dataset/changes",
                                   LICENSE, n.title)  # fmt: skip
                await register(conn, found, now, followed=True)
                modified = await repo.last_modified(conn, n.graph)
                # Copied and live, but not polled: no sync against hosts that do not exist.
                await conn.execute(origins.update().where(origins.c.graph == n.graph).values(
                    sync_state="live", state="waiting", retrieved_at=now, modified_at=modified))  # fmt: skip
    finally:
        await engine.dispose()
    store = ox.Store(str(config.store_path))
    try:
        for n, f in zip(NODES, files, strict=True):
            store.bulk_load(path=str(f), format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(n.graph))
        store.flush()
    finally:
        del store
    for f in files:
        f.unlink()
    return {name: dict(kinds) for name, kinds in counts.items()}


async def _flush(engine: AsyncEngine, n: Node, items: list[tuple[Record, repo.Rendering]], sink: TextIO) -> None:
    if not items:
        return
    async with engine.begin() as conn:
        await repo.insert_records(conn, items, n.graph)
    sink.writelines(rendering.ntriples for _, rendering in items)


def pending_index_jobs(database: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
        return int(conn.execute("SELECT count(*) FROM index_jobs WHERE state = 'pending'").fetchone()[0])


def _serve_once(config: Config, timeout: float = 600.0) -> None:
    """Start the node on the folder until its indexer is idle: it writes the concept schemes
    and the provenance graph (of its own graph and both origins) as it does at every start."""
    database = config.data_dir / "oscartes.sqlite3"
    with node_server(config.data_dir, free_port(), name="region-first-start"):
        deadline = time.monotonic() + timeout
        while pending_index_jobs(database) and time.monotonic() < deadline:
            time.sleep(0.5)
        if pending_index_jobs(database):
            raise TimeoutError(f"the node's index jobs still pending after {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full sizes (default 1)")
    args = parser.parse_args()
    built = region(args.scale)
    print(f"{built.config.data_dir}: {built.quads:,} quads, {built.seconds:.0f} s"
          f" ({'cached' if built.cached else 'built now'})")  # fmt: skip
    for name, kinds in built.counts.items():
        print(f"  {name:<7} " + ", ".join(f"{k} {v:,}" for k, v in sorted(kinds.items())))


if __name__ == "__main__":
    main()
