"""Search over the SQL indexes (place, theme, kind, text, date, origin): what people search by.

Text goes through SQLite FTS5 or PostgreSQL full-text search on accent-folded text; places
through the (lat, lon) index; themes through record_themes. No SPARQL scan is involved.
Distances are equirectangular: a bounding box through the (lat, lon) index first, then
dx² + dy² in plain SQL arithmetic with cos(lat0) computed here, so both databases run it
without trigonometric functions (under 1 % off at 200 km in mainland France).
Pages are keyset pages on (sort key, id): see `Cursor`.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    Column,
    ColumnElement,
    Float,
    Integer,
    MetaData,
    Select,
    Table,
    Text,
    and_,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.ext.asyncio import AsyncConnection

from node.convert.common import fold, parse_datetime
from node.storage.tables import record_themes, records

# The full-text tables are dialect-specific (created by the migration); these mirror them for queries.
_fts_meta = MetaData()
#: SQLite FTS5: the hidden column named like the table takes MATCH; `rank` is bm25.
record_fts = Table("record_fts", _fts_meta, Column("rowid", Integer), Column("name", Text), Column("body", Text),
                   Column("record_fts", Text), Column("rank", Float))  # fmt: skip
record_text = Table("record_text", _fts_meta, Column("record_id", Integer), Column("tsv", TSVECTOR))

KM_PER_DEGREE = 111.195  # of latitude (mean Earth radius 6371.0 km)
Sort = Literal["relevance", "distance", "start", "newest"]
FACET_THEMES_MAX = 50


@dataclass(frozen=True)
class SearchQuery:
    kinds: Sequence[str] = ()
    #: concept IRIs, any of them; callers pass a theme with its narrower concepts
    themes: Sequence[str] = ()
    #: (min_lon, min_lat, max_lon, max_lat)
    bbox: tuple[float, float, float, float] | None = None
    text: str = ""
    #: commune codes and département codes: a record in any of them
    insee: Sequence[str] = ()
    departements: Sequence[str] = ()
    starts_after: datetime | None = None
    starts_before: datetime | None = None
    origin: str | None = None
    limit: int = 20
    offset: int = 0
    #: (lat, lon) and a radius: records within, with their distance
    near: tuple[float, float] | None = None
    radius_km: float = 50.0
    #: records with a start (events) whose [start, end) overlaps [date_from, date_to)
    date_from: datetime | None = None
    date_to: datetime | None = None
    #: needs and offers whose end is unset or after this instant (other kinds pass)
    open_at: datetime | None = None
    #: named graphs, any of them (with `origin`)
    origins: Sequence[str] = ()
    #: None: relevance with text, else distance with near, else start for events alone, else newest
    sort: Sort | None = None
    after: Cursor | None = None


@dataclass(frozen=True)
class Hit:
    id: int
    iri: str
    kind: str
    name: str
    lat: float | None
    lon: float | None
    start: datetime | None
    end: datetime | None = None
    origin: str = ""
    published: datetime | None = None
    updated: datetime | None = None
    insee: str | None = None
    distance_km: float | None = None
    #: the record as stored (storage.codec JSON), for what a list shows of it
    data: str = ""


@dataclass(frozen=True)
class Cursor:
    """A keyset position: the last item's sort key and id, and a digest of the query it pages.

    Opaque to clients (base64url JSON). A cursor from another query, or edited, is refused
    (`ValueError`): it could only jump about the list, but saying so beats a silent odd page.
    """

    sort: Sort
    key: float | str  # a float score or distance², or an ISO date-time
    id: int
    query: str

    def encode(self) -> str:
        raw = json.dumps([self.sort, self.key, self.id, self.query], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, query: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            sort, key, ident, digest = json.loads(raw)
        except (ValueError, TypeError) as exc:
            raise ValueError("not a cursor this node made") from exc
        if digest != query:
            raise ValueError("the cursor belongs to another query: start again without it")
        if sort not in ("relevance", "distance", "start", "newest") or not isinstance(ident, int):
            raise ValueError("not a cursor this node made")
        if sort in ("start", "newest"):
            if not isinstance(key, str):
                raise ValueError("not a cursor this node made")
            parse_datetime(key)  # ValueError if edited
        elif not isinstance(key, int | float) or isinstance(key, bool) or not math.isfinite(key):
            raise ValueError("not a cursor this node made")
        return cls(sort, key, ident, digest)


@dataclass(frozen=True)
class Page:
    hits: list[Hit]
    next: Cursor | None


@dataclass(frozen=True)
class Facets:
    kind: dict[str, int]
    theme: dict[str, int]


def fts5_query(words: str) -> str:
    """Folded words, each quoted (no FTS syntax injection), all required, the last as a prefix."""
    tokens = re.findall(r"[a-z0-9]+", fold(words))
    if not tokens:
        return ""
    quoted = [f'"{t}"' for t in tokens]
    quoted[-1] += "*"
    return " ".join(quoted)


def effective_sort(q: SearchQuery) -> Sort:
    if q.sort:
        return q.sort
    if q.text:
        return "relevance"
    if q.near:
        return "distance"
    return "start" if list(q.kinds) == ["event"] else "newest"


@dataclass(frozen=True)
class _Scored:
    query: Select[Any]
    rank: ColumnElement[Any] | None  # lower is better
    dist2: ColumnElement[Any] | None  # km²


def _text_join(query: Select[Any], q: SearchQuery, dialect: str) -> tuple[Select[Any], ColumnElement[Any] | None]:
    if not q.text:
        return query, None
    if dialect == "postgresql":
        # Tokens are [a-z0-9]+ only, so the tsquery syntax cannot be injected; the last is a prefix.
        tsquery = func.to_tsquery("french", " & ".join(re.findall(r"[a-z0-9]+", fold(q.text))) + ":*")
        query = query.select_from(records.join(record_text, record_text.c.record_id == records.c.id))
        # ts_rank depends on the document only (not on the corpus), so relevance pages stay stable.
        return query.where(record_text.c.tsv.op("@@")(tsquery)), -func.ts_rank(record_text.c.tsv, tsquery)
    query = query.select_from(records.join(record_fts, record_fts.c.rowid == records.c.id))
    return query.where(record_fts.c.record_fts.op("MATCH")(fts5_query(q.text))), record_fts.c.rank


def _cos(lat0: float) -> float:
    return max(math.cos(math.radians(lat0)), 0.01)


def squared_km(lat0: float, lon0: float) -> ColumnElement[Any]:
    """A record's squared distance in km² from (lat0, lon0), equirectangular as the projection
    centred there: what searches and matches order by."""
    dy = (records.c.lat - lat0) * KM_PER_DEGREE
    dx = (records.c.lon - lon0) * (KM_PER_DEGREE * _cos(lat0))
    return dx * dx + dy * dy


def _near(q: SearchQuery) -> tuple[ColumnElement[bool], ColumnElement[Any]]:
    assert q.near is not None
    lat0, lon0 = q.near
    dlat = q.radius_km / KM_PER_DEGREE
    dlon = q.radius_km / (KM_PER_DEGREE * _cos(lat0))
    dist2 = squared_km(lat0, lon0)
    box = and_(records.c.lat.between(lat0 - dlat, lat0 + dlat), records.c.lon.between(lon0 - dlon, lon0 + dlon),
               dist2 <= q.radius_km * q.radius_km)  # fmt: skip
    return box, dist2


def _scored(q: SearchQuery, dialect: str, columns: Sequence[Any], skip: str = "") -> _Scored:
    """The query with every filter, except the `skip` dimension ("kind" or "theme": facets)."""
    query, rank = _text_join(select(*columns), q, dialect)
    c = records.c
    query = query.where(c.deleted_at.is_(None))
    if q.kinds and skip != "kind":
        query = query.where(c.kind.in_(q.kinds))
    if q.themes and skip != "theme":
        query = query.where(exists().where(and_(record_themes.c.record_id == c.id,
                                                record_themes.c.theme.in_(q.themes))))  # fmt: skip
    if q.bbox:
        min_lon, min_lat, max_lon, max_lat = q.bbox
        query = query.where(c.lat.between(min_lat, max_lat), c.lon.between(min_lon, max_lon))
    dist2 = None
    if q.near:
        box, dist2 = _near(q)
        query = query.where(box)
    # Only the lists given: an empty IN beside the other would keep SQLite off both indexes.
    places = [column.in_(codes) for column, codes in ((c.insee, q.insee), (c.departement, q.departements)) if codes]
    if places:
        query = query.where(or_(*places))
    if q.starts_after:
        query = query.where(c.start_at >= q.starts_after)
    if q.starts_before:
        query = query.where(c.start_at < q.starts_before)
    if q.date_from or q.date_to:
        query = query.where(c.start_at.is_not(None))
    if q.date_to:
        query = query.where(c.start_at < q.date_to)
    if q.date_from:  # an event without an end is an instant
        query = query.where(or_(c.end_at > q.date_from, and_(c.end_at.is_(None), c.start_at >= q.date_from)))
    if q.open_at and (not q.kinds or skip == "kind" or {"need", "offer"} & set(q.kinds)):
        query = query.where(or_(c.kind.not_in(("need", "offer")), c.end_at.is_(None), c.end_at > q.open_at))
    wanted = [*q.origins, *([q.origin] if q.origin else [])]
    if wanted:
        query = query.where(c.origin.in_(wanted))
    return _Scored(query, rank, dist2)


def _sort_key(sort: Sort, scored: _Scored) -> tuple[ColumnElement[Any], bool]:
    """The sort expression and whether it runs descending."""
    if sort == "relevance":
        assert scored.rank is not None, "relevance needs text"
        return scored.rank, False
    if sort == "distance":
        assert scored.dist2 is not None, "distance needs near"
        return scored.dist2, False
    return (records.c.start_at, False) if sort == "start" else (records.c.published, True)


def _key_value(sort: Sort, cursor: Cursor) -> Any:
    return parse_datetime(str(cursor.key)) if sort in ("start", "newest") else float(cursor.key)


_COLUMNS = (records.c.id, records.c.iri, records.c.kind, records.c.name, records.c.lat, records.c.lon,
            records.c.start_at, records.c.end_at, records.c.origin, records.c.published, records.c.updated,
            records.c.insee)  # fmt: skip


def _hit(row: Any, dist2: float | None, data: str = "") -> Hit:
    distance = math.sqrt(max(dist2, 0.0)) if dist2 is not None else None
    return Hit(row.id, row.iri, row.kind, row.name, row.lat, row.lon, row.start_at, row.end_at, row.origin,
               row.published, row.updated, row.insee, distance, data)  # fmt: skip


def _by_place_first(key: ColumnElement[Any], q: SearchQuery, dialect: str) -> ColumnElement[Any]:
    """On SQLite, a place search sorted by date must not walk the date index: SQLite would read
    rows in date order until a page of them falls in the box, which is slow when the box is
    small. `+column` (SQLite's "no index for this term") makes it take the place index."""
    if dialect != "sqlite" or q.text or not (q.bbox or q.near) or not isinstance(key, Column):
        return key
    return literal_column(f"+{records.name}.{key.name}", key.type)


async def search_page(conn: AsyncConnection, q: SearchQuery, digest: str = "", with_data: bool = True) -> Page:
    """One page in the query's order, and the cursor of the next one (None on the last page)."""
    if q.text and not fts5_query(q.text):
        return Page([], None)
    sort = effective_sort(q)
    probe = _scored(q, conn.dialect.name, [])
    key, descending = _sort_key(sort, probe)
    dist2 = probe.dist2 if probe.dist2 is not None else literal(None)
    # The page's ids first, from the indexes alone, then their rows: on SQLite the filtered
    # columns sit after the documents, and reading them from every candidate row is slow.
    scored = _scored(q, conn.dialect.name, [records.c.id.label("hit_id"), key.label("sort_key"),
                                            dist2.label("dist2")])  # fmt: skip
    key, descending = _sort_key(sort, scored)
    query = scored.query
    if sort == "start":
        query = query.where(records.c.start_at.is_not(None))
    if q.after is not None:
        if q.after.sort != sort:
            raise ValueError(f"the cursor pages a {q.after.sort} sort, not {sort}")
        value = _key_value(sort, q.after)
        if descending:
            query = query.where(or_(key < value, and_(key == value, records.c.id < q.after.id)))
        else:
            query = query.where(or_(key > value, and_(key == value, records.c.id > q.after.id)))
    order_key = _by_place_first(key, q, conn.dialect.name)
    order = [order_key.desc(), records.c.id.desc()] if descending else [order_key.asc(), records.c.id.asc()]
    page = query.order_by(*order).limit(q.limit + 1).subquery()
    columns = [*_COLUMNS, page.c.sort_key, page.c.dist2, *([records.c.data] if with_data else [])]
    outer = [page.c.sort_key.desc(), records.c.id.desc()] if descending else [page.c.sort_key.asc(),
                                                                               records.c.id.asc()]  # fmt: skip
    rows = (await conn.execute(select(*columns).join_from(records, page, page.c.hit_id == records.c.id)
                               .order_by(*outer))).all()  # fmt: skip
    hits = [_hit(r, r.dist2, r.data if with_data else "") for r in rows[: q.limit]]
    more = len(rows) > q.limit
    if not (more and hits):
        return Page(hits, None)
    last = rows[q.limit - 1]
    value = last.sort_key
    if isinstance(value, datetime):
        value = (last.start_at if sort == "start" else last.published).isoformat()
    return Page(hits, Cursor(sort, value if isinstance(value, str) else float(value), last.id, digest))


async def facets(conn: AsyncConnection, q: SearchQuery) -> Facets:
    """Counts by kind and by theme, each with every filter except its own dimension, so the
    counts say what choosing another kind or theme would give. Themes are the concepts
    records carry (not rolled up to broader ones), the most frequent first."""
    if q.text and not fts5_query(q.text):
        return Facets({}, {})
    dialect = conn.dialect.name
    by_kind = _scored(q, dialect, [records.c.kind, func.count().label("n")], skip="kind").query
    by_kind = by_kind.group_by(records.c.kind).order_by(func.count().desc(), records.c.kind)
    kinds = {r.kind: int(r.n) for r in await conn.execute(by_kind)}
    n = func.count()  # (record, theme) is record_themes' key: one row per record in each group
    by_theme = _scored(q, dialect, [record_themes.c.theme, n.label("n")], skip="theme").query
    by_theme = by_theme.join_from(records, record_themes, record_themes.c.record_id == records.c.id)
    by_theme = by_theme.group_by(record_themes.c.theme).order_by(n.desc(), record_themes.c.theme)
    themes = {r.theme: int(r.n) for r in await conn.execute(by_theme.limit(FACET_THEMES_MAX))}
    return Facets(kinds, themes)


async def search(conn: AsyncConnection, q: SearchQuery) -> list[Hit]:
    """The first `limit` hits after `offset` (no cursor, no stored document): for benchmarks and tools."""
    if q.text and not fts5_query(q.text):
        return []
    sort = effective_sort(q)
    probe = _scored(q, conn.dialect.name, [])
    key, descending = _sort_key(sort, probe)
    dist = probe.dist2 if probe.dist2 is not None else literal(None)
    scored = _scored(replace(q, after=None), conn.dialect.name, [*_COLUMNS, dist.label("dist2")])
    key, descending = _sort_key(sort, scored)
    order = [key.desc(), records.c.id.desc()] if descending else [key.asc(), records.c.id.asc()]
    rows = await conn.execute(scored.query.order_by(*order).limit(q.limit).offset(q.offset))
    return [_hit(r, r.dist2) for r in rows]
