"""Records from other nodes: read, checked and stored in their origin's named graph.

Every path that brings another node's records (the bootstrap and reconciliation pages, live
activities, records fetched from their origin after a relay) ends here. A record is kept
only if its IRI is under its origin's base URL (authority), it parses like a record written
here, and its triples pass the SHACL shapes; otherwise the reason is stored for the host.
A page whose @context cannot be used is read as what Oscartes nodes publish, compact AS2 with
the node context, and the report says so: records are not refused for their @context alone.
A change is applied only if it is newer than the copy held, and a tombstone is final: a late
Create never brings a deleted record back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from federation.activity import first_type
from node.config import Config
from node.convert.common import parse_datetime_or_none
from node.convert.parse import Node, ParseContext, node_loader, record_from_node
from node.convert.rdf import PAIR
from node.errors import ValidationFailed
from node.records import COLLECTIONS, Kind, Links, Record
from node.service import render
from node.storage import repo
from node.storage.codec import record_to_json
from node.storage.tables import ingest_reports, records
from vocab import AS2_CONTEXT, fastld, shapes
from vocab.jsonld import JsonLdSyntaxError, expand, without_contexts
from vocab.loader import UnknownContextError

log = logging.getLogger(__name__)
Doc = Mapping[str, Any]


@dataclass(frozen=True)
class Origin:
    """The parts of an origins row ingestion needs."""

    graph: str
    actor: str
    base_url: str
    license: str
    policy: str = "trusted"
    relay: bool = False

    @classmethod
    def of(cls, row: Any) -> Origin:
        return cls(row.graph, row.actor, row.base_url, row.license, row.policy, row.relay)


@dataclass(frozen=True)
class Incoming:
    """A record read and rendered here, or a deletion (record is None)."""

    iri: str
    kind: Kind
    updated: datetime
    record: Record | None = None
    rendering: repo.Rendering | None = None
    #: For the ingest report: how the record was read when its @context could not be used.
    note: str = ""


@dataclass
class Outcome:
    written: list[Record] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)


def kind_of(iri: str, base_url: str) -> Kind | None:
    """A record's kind from its IRI: `{base}/{collection}/{slug}` on its origin, else None."""
    prefix = base_url.rstrip("/") + "/"
    if not iri.startswith(prefix) or urlsplit(iri).fragment or urlsplit(iri).query:
        return None
    collection, _, slug = iri[len(prefix):].partition("/")
    return COLLECTIONS.get(collection) if slug and "/" not in slug else None


def read_page(items: Sequence[Doc], context: Any, origin: Origin, config: Config,
              now: datetime) -> tuple[list[Incoming], list[tuple[str, str]]]:  # fmt: skip
    """Blocking (pyld, rudof): run it off the event loop. The page is expanded once, which
    costs half of expanding its documents one by one; then each node is read and checked."""
    refused: list[tuple[str, str]] = []
    incoming: list[Incoming] = []
    wanted: dict[str, Kind] = {}
    for item in items:
        iri = item.get("id") if isinstance(item, Mapping) else None
        if not isinstance(iri, str):
            refused.append(("", "an item without an id"))
            continue
        kind = kind_of(iri, origin.base_url)
        if kind is None:
            refused.append((iri, f"not a record IRI under its origin {origin.base_url}/"))
            continue
        if first_type(item.get("type")) == "Tombstone":
            when = parse_datetime_or_none(item.get("deleted")) or parse_datetime_or_none(item.get("updated")) or now
            incoming.append(Incoming(iri, kind, when))
        else:
            wanted[iri] = kind
    if not wanted:
        return incoming, refused
    ctx = ParseContext(origin.base_url, f"{origin.base_url}/ns/context.jsonld", origin.license, now)
    page, note = [i for i in items if i.get("id") in wanted], ""
    try:
        nodes = expand_records(page, context, list(wanted), ctx)
    except (JsonLdSyntaxError, UnknownContextError) as exc:
        fallback = [AS2_CONTEXT, ctx.context_url]
        try:
            nodes = expand_records([without_contexts(i) for i in page], fallback, list(wanted), ctx)
        except (JsonLdSyntaxError, UnknownContextError):
            return incoming, refused + [(iri, f"not valid JSON-LD: {exc}") for iri in wanted]
        note = f"read as compact AS2 with the node context {ctx.context_url}, its @context set aside: {exc}"
    read: list[Incoming] = []
    for node in nodes:
        iri = str(node.get("@id", ""))
        kind = wanted.pop(iri, None)
        if kind is None:
            continue
        try:
            record = record_from_node(node, kind, ctx).record
        except ValidationFailed as exc:
            refused.append((iri, exc.detail))
            continue
        owner = record.attributed_to
        if owner and not owner.startswith(origin.base_url + "/"):
            refused.append((iri, f"attributed to {owner}, which is not on its origin {origin.base_url}"))
            continue
        links = Links(needs=_ids(node, PAIR + "needs"), offers=_ids(node, PAIR + "offers"))
        read.append(Incoming(iri, kind, record.updated, record, render(record, links, config), note))
    refused += [(iri, "missing from the expanded page") for iri in wanted]
    failing = shapes.violations("".join(i.rendering.ntriples for i in read if i.rendering))
    for entry in read:
        reasons = [m for focus, ms in failing.items() if _owned(focus, entry.iri) for m in ms]
        if reasons:
            refused.append((entry.iri, "SHACL: " + "; ".join(sorted(set(reasons)))))
        else:
            incoming.append(entry)
    return incoming, refused


def expand_records(items: Sequence[Doc], context: Any, iris: list[str], ctx: ParseContext) -> Sequence[Node]:
    """The records' expanded nodes: through Oxigraph's parser, or pyld when it cannot say."""
    loader, base = node_loader(ctx.context_url), ctx.base_url + "/"
    try:
        by_iri = fastld.expand_page(items, context, iris, loader=loader, base=base)
        if len(by_iri) == len(iris):
            return [by_iri[iri] for iri in iris]
    except fastld.FastPathUnavailable as exc:
        log.info("page read by pyld: %s", exc)
    return expand({"@context": context, "@graph": [dict(i) for i in items]}, loader=loader, base=base)


def _owned(focus: str, iri: str) -> bool:
    return focus == iri or focus.startswith(iri + "#")


def _ids(node: Node, key: str) -> tuple[str, ...]:
    return tuple(v["@id"] for v in node.get(key, []) if isinstance(v, Mapping) and "@id" in v)


async def store(conn: AsyncConnection, origin: Origin, incoming: Sequence[Incoming], now: datetime,
                refused: Sequence[tuple[str, str]] = ()) -> Outcome:  # fmt: skip
    """Write what is newer than the copies held, in the caller's transaction."""
    outcome = Outcome(refused=list(refused))
    iris = [i.iri for i in incoming]
    held: dict[str, Any] = {}
    for start in range(0, len(iris), 500):
        query = select(records.c.id, records.c.iri, records.c.origin, records.c.updated, records.c.deleted_at,
                       records.c.ntriples)  # fmt: skip
        for found in await conn.execute(query.where(records.c.iri.in_(iris[start:start + 500]))):
            held[found.iri] = found
    new: dict[str, tuple[Record, repo.Rendering]] = {}
    for item in incoming:
        row: Any = held.get(item.iri)
        if row is not None and row.origin != origin.graph:
            outcome.refused.append((item.iri, f"already held in the graph of {row.origin}"))
        elif row is not None and row.deleted_at is not None:
            outcome.unchanged += 1  # a tombstone is final
        elif item.record is None:
            await _delete(conn, origin, item, row, now)
            outcome.deleted.append(item.iri)
        elif row is not None and (item.updated < row.updated or (
                item.updated == row.updated and item.rendering is not None
                and item.rendering.ntriples == row.ntriples)):  # fmt: skip
            outcome.unchanged += 1  # older, or the same: a change is applied only if newer
        else:
            assert item.rendering is not None
            if row is None:
                new[item.iri] = (item.record, item.rendering)  # the same IRI twice: the last wins
            else:
                await repo.update_record(conn, row.id, item.record, item.rendering, origin.graph)
            outcome.written.append(item.record)
    await repo.insert_records(conn, list(new.values()), origin.graph)
    await repo.enqueue_index_many(conn, "record", [r.iri for r in outcome.written], origin.graph, now)
    noted = [(item.iri, item.note) for item in incoming if item.note]
    if outcome.refused or noted:
        await conn.execute(insert(ingest_reports), [
            {"origin": origin.graph, "iri": iri, "reason": reason[:4000], "received_at": now}
            for iri, reason in [*outcome.refused, *noted]])  # fmt: skip
        for iri, reason in outcome.refused:
            log.warning("refused %s from %s: %s", iri or "an item", origin.graph, reason)
        for iri, reason in noted:
            log.info("%s from %s: %s", iri, origin.graph, reason)
    return outcome


async def _delete(conn: AsyncConnection, origin: Origin, item: Incoming, row: Any, now: datetime) -> None:
    if row is not None:
        await repo.mark_deleted(conn, row.id, item.updated)
    else:  # deleted before we saw it: keep the tombstone so that a late Create stays dead
        slug = item.iri.rsplit("/", 1)[-1]
        stub = Record(kind=item.kind, iri=item.iri, slug=slug, name="", published=item.updated,
                      updated=item.updated)  # fmt: skip
        await conn.execute(insert(records).values(
            iri=item.iri, kind=item.kind, slug=slug, origin=origin.graph, name="", data=record_to_json(stub),
            doc="{}", ntriples="", version=1, published=item.updated, updated=item.updated,
            deleted_at=item.updated, changed_at=now))  # fmt: skip
    await repo.enqueue_index(conn, "record", item.iri, origin.graph, now)


async def ingest(engine: AsyncEngine, config: Config, origin: Origin, items: Sequence[Doc], context: Any,
                 now: datetime) -> Outcome:  # fmt: skip
    """Read (off the loop), then store in one transaction."""
    incoming, refused = await asyncio.to_thread(read_page, items, context, origin, config, now)
    async with engine.begin() as conn:
        return await store(conn, origin, incoming, now, refused)
