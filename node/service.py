"""The directory: creating, changing and deleting records, SQL and index kept together."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from node.auth import Principal
from node.config import Config
from node.convert.as2 import record_to_as2
from node.convert.common import fold, now_utc, slugify
from node.convert.parse import ParseContext, record_from_jsonld
from node.convert.rdf import doc_to_triples, to_ntriples
from node.errors import Conflict, FieldError, Gone, NotFound, ValidationFailed
from node.records import COLLECTION_OF, Kind, Links, Record, Stored, Tombstone
from node.storage import repo
from node.workers.indexer import Indexer
from vocab import schemes

log = logging.getLogger(__name__)
LINKED_KINDS: tuple[Kind, ...] = ("need", "offer")


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
    def __init__(self, config: Config, engine: AsyncEngine, indexer: Indexer | None) -> None:
        self.config, self.engine, self.indexer = config, engine, indexer

    def parse_context(self, now: datetime) -> ParseContext:
        return ParseContext(
            base_url=self.config.base_url,
            context_url=self.config.context_url,
            license=self.config.license,
            now=now,
        )

    async def get(self, kind: Kind, slug: str) -> Stored:
        iri = f"{self.config.base_url}/{COLLECTION_OF[kind]}/{slug}"
        async with self.engine.connect() as conn:
            stored = await repo.get(conn, iri)
        if stored is None or stored.record.kind != kind:
            raise NotFound(f"no {kind} at {iri}")
        return stored

    async def create(self, kind: Kind, doc: Any, who: Principal) -> Stored:
        now = now_utc()
        draft = record_from_jsonld(doc, kind, self.parse_context(now))
        who.may_create(kind, draft.record)
        async with self.engine.begin() as conn:
            await self._check_references(conn, draft.record)
            slug = draft.requested_slug or await self._free_slug(conn, kind, draft.record.name)
            if draft.requested_slug and await repo.slug_taken(conn, kind, slug):
                raise Conflict(f"{self.config.base_url}/{COLLECTION_OF[kind]}/{slug} already exists")
            record = replace(draft.record, slug=slug, iri=f"{self.config.base_url}/{COLLECTION_OF[kind]}/{slug}")
            links = await self._links(conn, record)
            try:
                await repo.insert_record(conn, record, render(record, links, self.config), self.config.graph_iri)
            except IntegrityError as exc:
                raise Conflict(f"{record.iri} already exists") from exc
            await self._after_write(conn, record, None, now)
        await self._index_now()
        return await self.get(kind, slug)

    async def update(self, kind: Kind, slug: str, doc: Any, who: Principal) -> Stored:
        now = now_utc()
        current = await self.get(kind, slug)
        if current.deleted is not None:
            raise Gone(f"{current.record.iri} was deleted")
        draft = record_from_jsonld(doc, kind, self.parse_context(now), existing=current.record)
        who.may_change(current.record, draft.record)
        record = draft.record
        async with self.engine.begin() as conn:
            await self._check_references(conn, record)
            links = await self._links(conn, record)
            rendering = render(record, links, self.config)
            await repo.update_record(conn, current.id, record, rendering, self.config.graph_iri)
            await self._after_write(conn, record, current.record, now)
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
        await self._index_now()
        return Tombstone(current.record.iri, kind, now)

    async def _after_write(self, conn: AsyncConnection, new: Record | None, old: Record | None, now: datetime) -> None:
        """Queue index work for the record and re-render the initiatives whose links changed."""
        iri = (new or old).iri  # type: ignore[union-attr]
        graph = self.config.graph_iri
        await repo.enqueue_index(conn, "record", iri, graph, now)
        owners = {r.attributed_to for r in (new, old) if r is not None and r.kind in LINKED_KINDS}
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
        return Links(
            needs=tuple(iri for kind, iri in owned if kind == "need"),
            offers=tuple(iri for kind, iri in owned if kind == "offer"),
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
        while await repo.slug_taken(conn, kind, slug):
            n += 1
            suffix = f"_{n}"
            slug = base[: limit - len(suffix)] + suffix
        return slug

    async def _index_now(self) -> None:
        if self.indexer is not None:
            await self.indexer.run_once()
