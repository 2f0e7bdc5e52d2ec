"""The directory: creating, changing and deleting records, SQL and index kept together."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from node import actors, federate, groups
from node.auth import Principal
from node.config import Config
from node.convert.as2 import record_to_as2, tombstone_to_as2
from node.convert.common import fold, now_utc, slugify
from node.convert.parse import ParseContext, record_from_jsonld
from node.convert.rdf import doc_to_triples, to_ntriples
from node.errors import Conflict, FieldError, Gone, NotFound, ValidationFailed
from node.records import COLLECTION_OF, ActorView, Kind, Links, Record, Stored, Tombstone
from node.storage import repo
from node.workers.indexer import Indexer
from vocab import schemes

log = logging.getLogger(__name__)
LINKED_KINDS: tuple[Kind, ...] = ("need", "offer")
CACHE_SECONDS = 2.0
CACHE_SIZE = 5000


def render(record: Record, links: Links, config: Config) -> repo.Rendering:
    """The public document, its triples and its full-text fields, all from the record."""
    concept = schemes.concepts().get(record.category) if record.category else None
    action = (concept.default_action if concept else None) or "deliverService"
    doc = record_to_as2(record, links, config.context_url, action)
    ntriples = to_ntriples(doc_to_triples(doc))
    labels = [label for t in record.themes if (c := schemes.concepts().get(t)) for label in c.labels.values()]
    place = record.location
    where = [place.name, place.address.locality if place.address else ""] if place else []
    body = " ".join([record.description, *labels, *where])
    return repo.Rendering(json.dumps(doc, ensure_ascii=False), ntriples, fold(record.name), fold(body))


class Directory:
    def __init__(self, config: Config, engine: AsyncEngine, indexer: Indexer | None,
                 on_outgoing: Callable[[], None] | None = None) -> None:  # fmt: skip
        self.config, self.engine, self.indexer = config, engine, indexer
        self.on_outgoing = on_outgoing
        #: Published reads by IRI. This process's writes evict what they change at once; a write
        #: by another process (a CLI import) shows after at most CACHE_SECONDS.
        self._cache: OrderedDict[str, tuple[float, Stored]] = OrderedDict()

    def parse_context(self, now: datetime) -> ParseContext:
        return ParseContext(
            base_url=self.config.base_url,
            context_url=self.config.context_url,
            license=self.config.license,
            now=now,
        )

    async def get(self, kind: Kind, slug: str, *, cached: bool = False) -> Stored:
        iri = f"{self.config.base_url}/{COLLECTION_OF[kind]}/{slug}"
        hit = self._cache.get(iri) if cached else None
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            self._cache.move_to_end(iri)
            return hit[1]
        async with self.engine.connect() as conn:
            stored = await repo.get(conn, iri)
        if stored is None or stored.record.kind != kind:
            raise NotFound(f"no {kind} at {iri}")
        self._cache[iri] = (time.monotonic(), stored)
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return stored

    def _evict(self, *iris: str) -> None:
        for iri in iris:
            self._cache.pop(iri, None)

    async def create(self, kind: Kind, doc: Any, who: Principal, *, fanout: bool = True) -> Stored:
        now = now_utc()
        # JSON-LD expansion (pyld) takes milliseconds: off the event loop.
        draft = await asyncio.to_thread(record_from_jsonld, doc, kind, self.parse_context(now))
        who.may_create(kind, draft.record)
        async with self.engine.begin() as conn:
            await self._check_references(conn, draft.record)
            slug = draft.requested_slug or await self._free_slug(conn, kind, draft.record.name)
            if kind == "initiative" and slug in actors.RESERVED:
                raise ValidationFailed([FieldError("#/id", f"{slug!r} is reserved for the node's own accounts")])
            if draft.requested_slug and await repo.slug_taken(conn, kind, slug, self.config.graph_iri):
                raise Conflict(f"{self.config.base_url}/{COLLECTION_OF[kind]}/{slug} already exists")
            record = replace(draft.record, slug=slug, iri=f"{self.config.base_url}/{COLLECTION_OF[kind]}/{slug}")
            links = await self._links(conn, record)
            rendering = render(record, links, self.config)
            try:
                await repo.insert_record(conn, record, rendering, self.config.graph_iri)
            except IntegrityError as exc:
                raise Conflict(f"{record.iri} already exists") from exc
            await self._after_write(conn, record, None, now)
            await self._announce(conn, "Create", record, json.loads(rendering.doc), now, fanout)
        await self._index_now()
        return await self.get(kind, slug)

    async def update(self, kind: Kind, slug: str, doc: Any, who: Principal, *, fanout: bool = True) -> Stored:
        now = now_utc()
        current = await self.get(kind, slug)
        if current.deleted is not None:
            raise Gone(f"{current.record.iri} was deleted")
        draft = await asyncio.to_thread(record_from_jsonld, doc, kind, self.parse_context(now), current.record)
        who.may_change(current.record, draft.record)
        record = draft.record
        async with self.engine.begin() as conn:
            await self._check_references(conn, record)
            links = await self._links(conn, record)
            rendering = render(record, links, self.config)
            await repo.update_record(conn, current.id, record, rendering, self.config.graph_iri)
            await self._after_write(conn, record, current.record, now)
            await self._announce(conn, "Update", record, json.loads(rendering.doc), now, fanout)
        await self._index_now()
        return await self.get(kind, slug)

    async def delete(self, kind: Kind, slug: str, who: Principal) -> Tombstone:
        now = now_utc()
        current = await self.get(kind, slug)
        if current.deleted is not None:
            raise Gone(f"{current.record.iri} was already deleted")
        who.may_change(current.record)
        async with self.engine.begin() as conn:
            await repo.mark_deleted(conn, current.id, now)
            await self._after_write(conn, None, current.record, now)
            tombstone = Tombstone(current.record.iri, kind, now)
            await self._announce(conn, "Delete", current.record, tombstone_to_as2(tombstone, ""), now, True)
        await self._index_now()
        return tombstone

    async def _announce(self, conn: AsyncConnection, kind: str, record: Record, doc: dict[str, Any],
                        now: datetime, fanout: bool) -> None:  # fmt: skip
        """Tell the acting initiative's followers, and the nodes following this one, in the same
        transaction as the write."""
        if fanout:
            sent = await federate.publish_to_nodes(conn, self.config, kind, record.kind, doc, now)
            if kind in ("Create", "Update"):
                sent += await groups.announce_to_groups(conn, self.config, record, kind, now)
            if sent and self.on_outgoing is not None:
                self.on_outgoing()
        if record.kind == "initiative":
            if kind == "Create":
                return  # a new account has no followers yet
            actor, obj = record.iri, (doc if kind == "Update" else record.iri)
        elif record.attributed_to and record.kind != "place":
            actor, obj = record.attributed_to, doc
        else:
            return
        if isinstance(obj, dict):
            obj = {k: v for k, v in obj.items() if k != "@context"}
            obj.setdefault("attributedTo", actor)
        await federate.publish(conn, self.config, actor, kind, obj, now, fanout=fanout)
        if fanout and self.on_outgoing is not None:
            self.on_outgoing()

    async def _after_write(self, conn: AsyncConnection, new: Record | None, old: Record | None, now: datetime) -> None:
        """Queue index work for the record and re-render the initiatives whose links changed."""
        iri = (new or old).iri  # type: ignore[union-attr]
        graph = self.config.graph_iri
        await repo.enqueue_index(conn, "record", iri, graph, now)
        owners = {r.attributed_to for r in (new, old) if r is not None and r.kind in LINKED_KINDS}
        self._evict(iri, *owners)
        for owner in sorted(o for o in owners if o):
            stored = await repo.get(conn, owner)
            if stored is None or stored.deleted is not None:
                continue
            links = await self._links(conn, stored.record)
            await repo.rerender(conn, stored.id, render(stored.record, links, self.config))
            await repo.enqueue_index(conn, "record", owner, graph, now)

    async def _links(self, conn: AsyncConnection, record: Record) -> Links:
        if record.kind != "initiative" or not record.iri:
            return Links()
        owned = await repo.owned(conn, record.iri, LINKED_KINDS)
        actor = await actors.get(conn, record.iri)
        if actor is None:  # every initiative is an actor: its keys are made with it
            actor = await actors.ensure(conn, self.config, record.iri, record.slug, "initiative")
        if actor.manually_approves != record.manually_approves:
            await actors.set_manual_approval(conn, record.iri, record.manually_approves)
        view = ActorView(actor.public_pem, f"{self.config.base_url}/inbox", record.manually_approves)
        return Links(
            needs=tuple(iri for kind, iri in owned if kind == "need"),
            offers=tuple(iri for kind, iri in owned if kind == "offer"),
            actor=view,
        )

    async def _check_references(self, conn: AsyncConnection, record: Record) -> None:
        if not record.attributed_to:
            return
        owner = await repo.get(conn, record.attributed_to)
        if owner is None or owner.deleted is not None or owner.record.kind != "initiative":
            raise ValidationFailed(
                [FieldError("#/attributedTo", f"{record.attributed_to} is not an initiative of this node")]
            )

    async def _free_slug(self, conn: AsyncConnection, kind: Kind, name: str) -> str:
        limit = 30 if kind == "initiative" else 60
        base = slugify(name, limit)
        slug, n = base, 1
        graph = self.config.graph_iri
        while await repo.slug_taken(conn, kind, slug, graph) or (kind == "initiative" and slug in actors.RESERVED):
            n += 1
            suffix = f"_{n}"
            slug = base[: limit - len(suffix)] + suffix
        return slug

    async def _index_now(self) -> None:
        if self.indexer is not None:
            await self.indexer.run_once()
