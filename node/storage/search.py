"""Search over the SQL indexes (place, theme, kind, text, date): what people search by.

Text goes through SQLite FTS5 or PostgreSQL full-text search on accent-folded text; places
through the (lat, lon) index; themes through record_themes. No SPARQL scan is involved.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Float, Integer, MetaData, Select, Table, Text, and_, exists, func, or_, select
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.ext.asyncio import AsyncConnection

from node.convert.common import fold
from node.storage.tables import record_themes, records

# The full-text tables are dialect-specific (created by the migration); these mirror them for queries.
_fts_meta = MetaData()
#: SQLite FTS5: the hidden column named like the table takes MATCH; `rank` is bm25.
record_fts = Table("record_fts", _fts_meta, Column("rowid", Integer), Column("name", Text), Column("body", Text),
                   Column("record_fts", Text), Column("rank", Float))  # fmt: skip
record_text = Table("record_text", _fts_meta, Column("record_id", Integer), Column("tsv", TSVECTOR))


@dataclass(frozen=True)
class SearchQuery:
    kinds: Sequence[str] = ()
    #: concept IRIs; callers pass a theme with its narrower concepts
    themes: Sequence[str] = ()
    #: (min_lon, min_lat, max_lon, max_lat)
    bbox: tuple[float, float, float, float] | None = None
    text: str = ""
    insee: Sequence[str] = ()
    departements: Sequence[str] = ()
    starts_after: datetime | None = None
    starts_before: datetime | None = None
    origin: str | None = None
    limit: int = 20
    offset: int = 0


@dataclass(frozen=True)
class Hit:
    id: int
    iri: str
    kind: str
    name: str
    lat: float | None
    lon: float | None
    start: datetime | None


def fts5_query(words: str) -> str:
    """Folded words, each quoted (no FTS syntax injection), all required, the last as a prefix."""
    tokens = re.findall(r"[a-z0-9]+", fold(words))
    if not tokens:
        return ""
    quoted = [f'"{t}"' for t in tokens]
    quoted[-1] += "*"
    return " ".join(quoted)


def _filters(query: Select[Any], q: SearchQuery) -> Select[Any]:
    query = query.where(records.c.deleted_at.is_(None))
    if q.kinds:
        query = query.where(records.c.kind.in_(q.kinds))
    if q.bbox:
        min_lon, min_lat, max_lon, max_lat = q.bbox
        query = query.where(records.c.lat.between(min_lat, max_lat), records.c.lon.between(min_lon, max_lon))
    if q.themes:
        query = query.where(
            exists().where(and_(record_themes.c.record_id == records.c.id, record_themes.c.theme.in_(q.themes)))
        )
    if q.insee or q.departements:
        query = query.where(or_(records.c.insee.in_(q.insee), records.c.departement.in_(q.departements)))
    if q.starts_after:
        query = query.where(records.c.start_at >= q.starts_after)
    if q.starts_before:
        query = query.where(records.c.start_at < q.starts_before)
    if q.origin:
        query = query.where(records.c.origin == q.origin)
    return query


async def search(conn: AsyncConnection, q: SearchQuery) -> list[Hit]:
    columns = (records.c.id, records.c.iri, records.c.kind, records.c.name, records.c.lat, records.c.lon,
               records.c.start_at)  # fmt: skip
    query = select(*columns)
    words = fts5_query(q.text) if q.text else ""
    if q.text and not words:
        return []
    order: list[Any] = [records.c.published.desc()]
    if words and conn.dialect.name == "postgresql":
        # Tokens are [a-z0-9]+ only, so the tsquery syntax cannot be injected; the last is a prefix.
        tsquery = func.to_tsquery("french", " & ".join(re.findall(r"[a-z0-9]+", fold(q.text))) + ":*")
        query = query.select_from(records.join(record_text, record_text.c.record_id == records.c.id))
        query = query.where(record_text.c.tsv.op("@@")(tsquery))
        order = [func.ts_rank(record_text.c.tsv, tsquery).desc()]
    elif words:
        query = query.select_from(records.join(record_fts, record_fts.c.rowid == records.c.id))
        query = query.where(record_fts.c.record_fts.op("MATCH")(words))
        order = [record_fts.c.rank]
    query = _filters(query, q).order_by(*order, records.c.id.desc()).limit(q.limit).offset(q.offset)
    return [Hit(r.id, r.iri, r.kind, r.name, r.lat, r.lon, r.start_at) for r in await conn.execute(query)]
