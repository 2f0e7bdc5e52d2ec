"""Storing other nodes' records: newer wins, a tombstone is final, an IRI has one origin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from node.cli import _init
from node.config import load_config
from node.convert.common import now_utc
from node.ingest import Origin, read_page, store
from node.storage.db import make_engine
from node.storage.tables import index_jobs, ingest_reports, records
from tests import samples

B = Origin("https://b.example/dataset", "https://b.example/actor", "https://b.example", "")
C = Origin("https://c.example/dataset", "https://c.example/actor", "https://c.example", "")
CONTEXT = ["https://www.w3.org/ns/activitystreams", "https://b.example/ns/context.jsonld"]


@pytest.fixture
async def engine(tmp_path: Path, database_url: str) -> AsyncIterator[AsyncEngine]:
    config = load_config(tmp_path / "n", base_url="https://a.example", database_url=database_url or None, env={})
    await _init(config)
    made = make_engine(config.effective_database_url)
    yield made
    await made.dispose()


def doc(name: str, updated: str, slug: str = "ressourcerie", base: str = "https://b.example") -> dict[str, Any]:
    return {**samples.initiative(slug, name=name), "id": f"{base}/initiatives/{slug}", "updated": updated}


async def apply(engine: AsyncEngine, origin: Origin, *items: dict[str, Any]) -> Any:
    config = load_config("/tmp", base_url="https://a.example", env={})
    incoming, refused = read_page(list(items), CONTEXT, origin, config, now_utc() + timedelta(days=3650))
    async with engine.begin() as conn:
        return await store(conn, origin, incoming, now_utc(), refused)


async def names(engine: AsyncEngine) -> dict[str, tuple[str, bool]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(records.c.iri, records.c.name, records.c.deleted_at))).all()
    return {r.iri: (r.name, r.deleted_at is not None) for r in rows}


async def test_newer_wins_and_older_is_ignored(engine: AsyncEngine) -> None:
    iri = "https://b.example/initiatives/ressourcerie"
    assert len((await apply(engine, B, doc("v2", "2026-05-02T00:00:00Z"))).written) == 1
    assert (await apply(engine, B, doc("v1", "2026-05-01T00:00:00Z"))).unchanged == 1
    assert (await names(engine))[iri] == ("v2", False)
    assert len((await apply(engine, B, doc("v3", "2026-05-03T00:00:00Z"))).written) == 1
    assert (await names(engine))[iri] == ("v3", False)
    assert (await apply(engine, B, doc("v3", "2026-05-03T00:00:00Z"))).unchanged == 1  # the same twice
    async with engine.connect() as conn:
        jobs = (await conn.execute(select(index_jobs.c.graph).where(index_jobs.c.iri == iri))).all()
    assert {j.graph for j in jobs} == {B.graph}, "indexed in the origin's own graph"


async def test_a_tombstone_is_final(engine: AsyncEngine) -> None:
    iri = "https://b.example/initiatives/ressourcerie"
    await apply(engine, B, doc("v1", "2026-05-01T00:00:00Z"))
    tombstone = {"id": iri, "type": "Tombstone", "deleted": "2026-05-02T00:00:00Z"}
    assert (await apply(engine, B, tombstone)).deleted == [iri]
    late = await apply(engine, B, doc("resurrected", "2026-06-01T00:00:00Z"))
    assert late.written == [] and (await names(engine))[iri] == ("v1", True)


async def test_a_delete_before_the_create_keeps_the_record_dead(engine: AsyncEngine) -> None:
    iri = "https://b.example/initiatives/fantome"
    await apply(engine, B, {"id": iri, "type": "Tombstone", "deleted": "2026-05-02T00:00:00Z"})
    await apply(engine, B, doc("Fantôme", "2026-05-01T00:00:00Z", slug="fantome"))
    assert (await names(engine))[iri][1] is True


async def test_an_iri_has_one_origin(engine: AsyncEngine) -> None:
    await apply(engine, B, doc("from B", "2026-05-01T00:00:00Z"))
    # C cannot speak for B's IRI: refused by read_page (not under C's base), and reported.
    outcome = await apply(engine, C, doc("from C", "2026-05-02T00:00:00Z"))
    assert outcome.written == [] and "not a record IRI under its origin" in outcome.refused[0][1]
    async with engine.connect() as conn:
        reports = (await conn.execute(select(ingest_reports))).all()
    assert [r.origin for r in reports] == [C.graph]
    assert (await names(engine))["https://b.example/initiatives/ressourcerie"] == ("from B", False)


async def test_a_context_no_one_vendors_is_set_aside_and_reported(engine: AsyncEngine) -> None:
    """A newer node may name a context this one lacks: its records still read as what nodes
    publish (compact AS2 with the node context), and the host is told."""
    unknown = "https://w3id.org/fep/future"
    config = load_config("/tmp", base_url="https://a.example", env={})
    incoming, refused = read_page([doc("Ressourcerie", "2026-05-01T00:00:00Z")], [*CONTEXT, unknown], B, config,
                                  now_utc())  # fmt: skip
    assert refused == []
    async with engine.begin() as conn:
        outcome = await store(conn, B, incoming, now_utc(), refused)
    assert [r.name for r in outcome.written] == ["Ressourcerie"] and outcome.refused == []
    async with engine.connect() as conn:
        [report] = (await conn.execute(select(ingest_reports))).all()
    assert (report.origin, report.iri) == (B.graph, "https://b.example/initiatives/ressourcerie")
    assert report.reason.startswith("read as compact AS2 with the node context") and unknown in report.reason
