"""The RDF index follows SQL: every write, crash replay, reindex, named graph per origin."""

from __future__ import annotations

from pathlib import Path

import pyoxigraph as ox
from sqlalchemy import select

from node.auth import Principal
from node.cli import _init
from node.config import load_config
from node.graph import EmbeddedIndex
from node.keys import INDEX
from node.service import Directory
from node.storage.db import make_engine
from node.storage.tables import index_jobs
from node.workers.indexer import Indexer
from tests import samples
from tests.integration.conftest import RunningNode, start_node, stop_node

AS = "https://www.w3.org/ns/activitystreams#"
ADMIN = Principal(0, "admin", frozenset())


def graph_subjects(index: object, graph: str) -> set[str]:
    rows = index.select(f"SELECT DISTINCT ?s WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}")  # type: ignore[attr-defined]
    return {row["s"] for row in rows}


async def test_each_write_reaches_the_index(node: RunningNode) -> None:
    index = node.server.app[INDEX]
    graph = node.config.graph_iri
    created = await node.create("initiatives", samples.initiative())
    iri = created["id"]
    assert {iri, f"{iri}#place", f"{iri}#address", f"{iri}#id-siren"} <= graph_subjects(index, graph)
    names_query = f"SELECT ?n WHERE {{ GRAPH <{graph}> {{ <{iri}> <{AS}name> ?n }} }}"
    assert [r["n"] for r in index.select(names_query)] == ["Repair Café de Massy"]

    changed = samples.initiative(name="Repair Café", location={"type": "Place", "name": "Ailleurs"})
    async with node.http.put(f"{node.base}/api/initiatives/repair_cafe_massy", json=changed, headers=node.auth) as r:
        assert r.status == 200
    assert [r["n"] for r in index.select(names_query)] == ["Repair Café"]
    assert f"{iri}#address" not in graph_subjects(index, graph), "old fragment nodes are removed"

    async with node.http.delete(f"{node.base}/api/initiatives/repair_cafe_massy", headers=node.auth) as r:
        assert r.status == 200
    assert not {s for s in graph_subjects(index, graph) if s.startswith(iri)}


async def test_schemes_are_in_their_own_graph(node: RunningNode) -> None:
    rows = node.server.app[INDEX].select(
        "SELECT (COUNT(*) AS ?n) WHERE { GRAPH <https://w3id.org/oscartes/vocab> "
        "{ ?c a <http://www.w3.org/2004/02/skos/core#Concept> } }"
    )
    assert int(rows[0]["n"]) > 50


async def test_pending_index_work_survives_a_crash(data_dir: Path, database_url: str) -> None:
    """SQL committed, process gone before indexing: the next start replays the work."""
    config = load_config(data_dir, base_url="http://127.0.0.1:9", database_url=database_url or None, env={})
    await _init(config)
    engine = make_engine(config.effective_database_url)
    crashed = Directory(config.with_(base_url=config.base_url), engine, indexer=None)
    await crashed.create("initiative", samples.initiative(), ADMIN)
    async with engine.connect() as conn:
        assert len((await conn.execute(select(index_jobs))).all()) == 1
    await engine.dispose()

    # the restarted node has another port; records keep their IRIs
    node = await start_node(data_dir, database_url)
    try:
        index = node.server.app[INDEX]
        assert "http://127.0.0.1:9/initiatives/repair_cafe_massy" in graph_subjects(index, config.graph_iri)
        engine = make_engine(config.effective_database_url)
        async with engine.connect() as conn:
            assert (await conn.execute(select(index_jobs))).all() == []
        await engine.dispose()
    finally:
        await stop_node(node)


async def test_failed_index_work_is_kept_and_retried(data_dir: Path, database_url: str) -> None:
    config = load_config(data_dir, base_url="http://127.0.0.1:9", database_url=database_url or None, env={})
    await _init(config)
    engine = make_engine(config.effective_database_url)

    class Broken:
        def update(self, sparql: str) -> None:
            raise OSError("disk full")

    indexer = Indexer(engine, Broken())  # type: ignore[arg-type]
    directory = Directory(config, engine, indexer)
    await directory.create("initiative", samples.initiative(), ADMIN)
    async with engine.connect() as conn:
        rows = (await conn.execute(select(index_jobs))).all()
    assert len(rows) == 1 and rows[0].attempts == 1 and "disk full" in rows[0].last_error
    assert rows[0].state == "pending" and rows[0].next_attempt_at > rows[0].created_at
    await engine.dispose()


async def test_reindex_rebuilds_from_sql(data_dir: Path, database_url: str) -> None:
    config = load_config(data_dir, base_url="http://127.0.0.1:9", database_url=database_url or None, env={})
    await _init(config)
    engine = make_engine(config.effective_database_url)
    index = EmbeddedIndex(config.store_path)
    directory = Directory(config, engine, Indexer(engine, index))
    await directory.create("initiative", samples.initiative(), ADMIN)
    await directory.create("event", samples.event(), ADMIN)
    before = set(index.store.quads_for_pattern(None, None, None, ox.NamedNode(config.graph_iri)))
    index.update(f"CLEAR GRAPH <{config.graph_iri}>")
    index.load(config.graph_iri, '<urn:stale> <urn:p> "left over" .\n')
    from node.convert.common import now_utc
    from node.storage import repo

    async with engine.begin() as conn:
        await repo.enqueue_index(conn, "reindex", config.graph_iri, config.graph_iri, now_utc())
    assert await Indexer(engine, index).run_once() == 1
    after = set(index.store.quads_for_pattern(None, None, None, ox.NamedNode(config.graph_iri)))
    assert after == before and len(after) > 30
    index.close()
    await engine.dispose()
