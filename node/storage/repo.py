"""SQL reads and writes of records. Every function takes the caller's connection, so a
service can put several writes (record, themes, text, index job) in one transaction."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from node.records import Kind, Record, Stored
from node.storage.codec import record_from_json, record_to_json
from node.storage.tables import index_jobs, record_themes, records
from node.workers import claim


@dataclass(frozen=True)
class Rendering:
    doc: str
    ntriples: str
    text_name: str
    text_body: str


def _row_to_stored(row: Any) -> Stored:
    return Stored(
        id=row.id,
        record=record_from_json(row.data),
        doc=row.doc,
        ntriples=row.ntriples,
        version=row.version,
        deleted=row.deleted_at,
    )


def _columns(record: Record, rendering: Rendering, origin: str) -> dict[str, Any]:
    loc = record.location
    insee = loc.insee if loc and loc.insee else None
    return {
        "iri": record.iri,
        "kind": record.kind,
        "slug": record.slug,
        "origin": origin,
        "name": record.name,
        "data": record_to_json(record),
        "doc": rendering.doc,
        "ntriples": rendering.ntriples,
        "lat": loc.latitude if loc else None,
        "lon": loc.longitude if loc else None,
        "insee": insee,
        "departement": departement_of(insee) if insee else None,
        "start_at": record.start,
        "end_at": record.end,
        "owner": record.attributed_to or None,
        "category": record.category or None,
        "published": record.published,
        "updated": record.updated,
        "changed_at": datetime.now(UTC),
    }


def departement_of(insee: str) -> str:
    """97x overseas départements have three-digit codes; Corsica is 2A/2B."""
    return insee[:3] if insee.startswith("97") else insee[:2]


async def get(conn: AsyncConnection, iri: str) -> Stored | None:
    row = (await conn.execute(select(records).where(records.c.iri == iri))).first()
    return _row_to_stored(row) if row else None


async def slug_taken(conn: AsyncConnection, kind: Kind, slug: str, origin: str) -> bool:
    """Among this origin's records: other origins' copies have slugs of their own."""
    query = select(records.c.id).where(records.c.kind == kind, records.c.slug == slug, records.c.origin == origin)
    return (await conn.execute(query)).first() is not None


async def insert_record(conn: AsyncConnection, record: Record, rendering: Rendering, origin: str) -> int:
    values = _columns(record, rendering, origin) | {"version": 1}
    result = await conn.execute(insert(records).values(**values).returning(records.c.id))
    record_id = int(result.scalar_one())
    await _write_side_tables(conn, record_id, record, rendering)
    return record_id


async def insert_records(conn: AsyncConnection, items: Sequence[tuple[Record, Rendering]], origin: str) -> None:
    """Many new records at once (a copy of another node): a few statements for the lot."""
    if not items:
        return
    values = [_columns(record, rendering, origin) | {"version": 1} for record, rendering in items]
    result = await conn.execute(insert(records).returning(records.c.id, records.c.iri, sort_by_parameter_order=True),
                                values)  # fmt: skip
    ids = [row.id for row in result]
    themes = [{"record_id": i, "theme": t} for i, (r, _) in zip(ids, items, strict=True) for t in sorted(set(r.themes))]
    if themes:
        await conn.execute(insert(record_themes), themes)
    texts = [{"id": i, "name": rendering.text_name, "body": rendering.text_body}
             for i, (_, rendering) in zip(ids, items, strict=True)]  # fmt: skip
    await conn.execute(text(_TEXT_INSERT[conn.dialect.name == "postgresql"]), texts)


_TEXT_INSERT = {
    True: "INSERT INTO record_text (record_id, tsv) VALUES (:id, "
          "setweight(to_tsvector('french', :name), 'A') || to_tsvector('french', :body))",
    False: "INSERT INTO record_fts (rowid, name, body) VALUES (:id, :name, :body)",
}  # fmt: skip


async def enqueue_index_many(conn: AsyncConnection, job: str, iris: Sequence[str], graph: str, now: datetime) -> None:
    if iris:
        await conn.execute(insert(index_jobs), [
            {"job": job, "iri": iri, "graph": graph, "state": "pending", "attempts": 0, "next_attempt_at": now,
             "created_at": now} for iri in iris])  # fmt: skip


async def update_record(conn: AsyncConnection, record_id: int, record: Record, rendering: Rendering,
                        origin: str) -> None:  # fmt: skip
    values = _columns(record, rendering, origin) | {"version": records.c.version + 1, "deleted_at": None}
    await conn.execute(update(records).where(records.c.id == record_id).values(**values))
    await _write_side_tables(conn, record_id, record, rendering)


async def rerender(conn: AsyncConnection, record_id: int, rendering: Rendering) -> None:
    """New renderings of an unchanged record (another record now links to it)."""
    await conn.execute(
        update(records)
        .where(records.c.id == record_id)
        .values(doc=rendering.doc, ntriples=rendering.ntriples, version=records.c.version + 1,
                changed_at=datetime.now(UTC))
    )


async def mark_deleted(conn: AsyncConnection, record_id: int, when: datetime) -> None:
    await conn.execute(
        update(records)
        .where(records.c.id == record_id)
        .values(deleted_at=when, ntriples="", version=records.c.version + 1, updated=when,
                changed_at=datetime.now(UTC))
    )
    await conn.execute(delete(record_themes).where(record_themes.c.record_id == record_id))
    await _delete_text(conn, record_id)


async def _write_side_tables(conn: AsyncConnection, record_id: int, record: Record, rendering: Rendering) -> None:
    await conn.execute(delete(record_themes).where(record_themes.c.record_id == record_id))
    if record.themes:
        await conn.execute(
            insert(record_themes), [{"record_id": record_id, "theme": t} for t in sorted(set(record.themes))]
        )
    await _delete_text(conn, record_id)
    if conn.dialect.name == "postgresql":
        await conn.execute(
            text(
                "INSERT INTO record_text (record_id, tsv) VALUES (:id, "
                "setweight(to_tsvector('french', :name), 'A') || to_tsvector('french', :body))"
            ),
            {"id": record_id, "name": rendering.text_name, "body": rendering.text_body},
        )
    else:
        await conn.execute(
            text("INSERT INTO record_fts (rowid, name, body) VALUES (:id, :name, :body)"),
            {"id": record_id, "name": rendering.text_name, "body": rendering.text_body},
        )


async def _delete_text(conn: AsyncConnection, record_id: int) -> None:
    table = "record_text WHERE record_id" if conn.dialect.name == "postgresql" else "record_fts WHERE rowid"
    await conn.execute(text(f"DELETE FROM {table} = :id"), {"id": record_id})  # noqa: S608


async def owned(conn: AsyncConnection, owner: str, kinds: Sequence[Kind]) -> list[tuple[str, str]]:
    """(kind, iri) of the live records attributed to an initiative, oldest first."""
    query = (
        select(records.c.kind, records.c.iri)
        .where(records.c.owner == owner, records.c.kind.in_(kinds), records.c.deleted_at.is_(None))
        .order_by(records.c.published, records.c.id)
    )
    return [(row.kind, row.iri) for row in await conn.execute(query)]


# -- paging -------------------------------------------------------------------------------


def encode_cursor(published: datetime, record_id: int) -> str:
    raw = f"{published.isoformat()}|{record_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    when, _, ident = raw.partition("|")
    return datetime.fromisoformat(when), int(ident)


async def page(conn: AsyncConnection, kind: Kind, limit: int, before: str | None,
               origin: str | None = None) -> tuple[list[Stored], str | None]:  # fmt: skip
    """Newest first; `before` is an opaque cursor from the previous page (keyset paging)."""
    query = select(records).where(records.c.kind == kind, records.c.deleted_at.is_(None))
    if origin is not None:
        query = query.where(records.c.origin == origin)
    if before:
        when, ident = decode_cursor(before)
        query = query.where(
            or_(records.c.published < when, and_(records.c.published == when, records.c.id < ident))
        )
    rows = (await conn.execute(query.order_by(records.c.published.desc(), records.c.id.desc()).limit(limit + 1))).all()
    items = [_row_to_stored(r) for r in rows[:limit]]
    more = len(rows) > limit
    last = items[-1] if items else None
    return items, encode_cursor(last.record.published, last.id) if more and last else None


async def changed(conn: AsyncConnection, origin: str, after: tuple[datetime, int] | None,
                  limit: int) -> list[Any]:  # fmt: skip
    """One origin's records (deleted ones too) in the order they last changed here, oldest
    first, strictly after the (changed_at, id) position: the stream followers page through."""
    query = select(records.c.id, records.c.iri, records.c.kind, records.c.doc, records.c.updated,
                   records.c.deleted_at, records.c.changed_at).where(records.c.origin == origin)  # fmt: skip
    if after is not None:
        when, ident = after
        c = records.c
        query = query.where(or_(c.changed_at > when, and_(c.changed_at == when, c.id > ident)))
    query = query.order_by(records.c.changed_at, records.c.id).limit(limit)
    return list((await conn.execute(query)).all())


async def last_modified(conn: AsyncConnection, origin: str) -> datetime | None:
    query = select(func.max(records.c.changed_at)).where(records.c.origin == origin)
    value: datetime | None = (await conn.execute(query)).scalar_one()
    return value


async def count(conn: AsyncConnection, kind: Kind, origin: str | None = None) -> int:
    query = select(func.count()).select_from(records).where(records.c.kind == kind, records.c.deleted_at.is_(None))
    if origin is not None:
        query = query.where(records.c.origin == origin)
    return int((await conn.execute(query)).scalar_one())


async def all_live(conn: AsyncConnection, origin: str | None = None, batch: int = 500) -> Any:
    """Stream every live record (export, reindex) in id order, a batch at a time."""
    last = 0
    while True:
        query = select(records).where(records.c.id > last, records.c.deleted_at.is_(None))
        if origin is not None:
            query = query.where(records.c.origin == origin)
        rows = (await conn.execute(query.order_by(records.c.id).limit(batch))).all()
        if not rows:
            return
        for row in rows:
            yield _row_to_stored(row), row.origin
        last = rows[-1].id


# -- index work rows -------------------------------------------------------------------


async def enqueue_index(conn: AsyncConnection, job: str, iri: str, graph: str, now: datetime) -> None:
    await conn.execute(
        insert(index_jobs).values(job=job, iri=iri, graph=graph, state="pending", attempts=0,
                                  next_attempt_at=now, created_at=now)  # fmt: skip
    )


@dataclass(frozen=True)
class IndexJob:
    id: int
    job: str
    iri: str
    graph: str
    attempts: int


async def claim_index_jobs(conn: AsyncConnection, now: datetime, limit: int, lease: timedelta) -> list[IndexJob]:
    """Claim due rows atomically: a crashed claimer's lease runs out and the rows come back."""
    rows = await claim(conn, index_jobs, now, limit, lease, ("id", "job", "iri", "graph", "attempts"))
    return [IndexJob(r.id, r.job, r.iri, r.graph, r.attempts) for r in rows]


async def finish_index_jobs(conn: AsyncConnection, job_ids: Sequence[int]) -> None:
    await conn.execute(delete(index_jobs).where(index_jobs.c.id.in_(list(job_ids))))


async def live_ntriples(conn: AsyncConnection, iris: Sequence[str]) -> dict[str, str]:
    """IRI -> N-Triples of the live records among `iris` (deleted or unknown ones are absent)."""
    found: dict[str, str] = {}
    for start in range(0, len(iris), 500):
        query = select(records.c.iri, records.c.ntriples).where(
            records.c.iri.in_(list(iris[start:start + 500])), records.c.deleted_at.is_(None))
        found |= {row.iri: row.ntriples for row in await conn.execute(query)}
    return found


async def finish_index_job(conn: AsyncConnection, job_id: int) -> None:
    await conn.execute(delete(index_jobs).where(index_jobs.c.id == job_id))


async def fail_index_job(conn: AsyncConnection, job_id: int, error: str, retry_at: datetime | None) -> None:
    values: dict[str, Any] = {"last_error": error[:2000], "locked_until": None}
    if retry_at is None:
        values["state"] = "failed"
    else:
        values["next_attempt_at"] = retry_at
    await conn.execute(update(index_jobs).where(index_jobs.c.id == job_id).values(**values))


async def pending_index_jobs(conn: AsyncConnection) -> int:
    query = select(func.count()).select_from(index_jobs).where(index_jobs.c.state == "pending")
    return int((await conn.execute(query)).scalar_one())
