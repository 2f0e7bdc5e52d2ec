"""Needs meet offers: for an open need, the open offers of a related category, nearest first,
across every origin the node holds, and the initiatives behind them; the reverse for an offer.

The rules (docs/matching.md):
- categories match when they are the same concept of the `needs` scheme, or one is below the
  other (`skos:narrower`, any depth): a need for `skills` meets an offer of `skills_legal` and
  the reverse; siblings (`skills_legal`, `skills_digital`) do not meet;
- a candidate is open: not deleted, no `endTime` or one still ahead; records of a blocked origin
  never appear;
- an initiative's own offers never answer its own needs (nor its needs its offers);
- "initiatives that declare the resource" are the initiatives that publish a matching record:
  their document lists it under `pair:offers` (or `pair:needs`), which is how the data model lets an
  initiative declare what it offers or seeks (resources carry themes, not need categories);
- order: by equirectangular distance from the record's location (the projection is centred on the
  record, which at a region's scale is within a fraction of a percent of the great circle), records
  without a location after those with one, then newest first, then IRI.

Queries take the caller's connection; ranking and the JSON shape are pure functions.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from node.convert.as2 import KIND_TYPES
from node.convert.feeds import FeedItem
from node.errors import BadRequest, Gone, NotFound
from node.origins import blocked_graphs
from node.storage.codec import record_from_json
from node.storage.search import KM_PER_DEGREE, squared_km
from node.storage.tables import records
from vocab import schemes

COUNTERPART = {"need": "offer", "offer": "need"}
LIMIT_DEFAULT = 50
LIMIT_MAX = 200
#: Candidates read per record before ranking: the SQL order already puts the nearest first.
CANDIDATES_MAX = 2000
Point = tuple[float, float]


@dataclass(frozen=True)
class Candidate:
    iri: str
    kind: str
    name: str
    origin: str
    category: str
    owner: str
    lat: float | None
    lon: float | None
    published: datetime
    updated: datetime


@dataclass(frozen=True)
class Match:
    candidate: Candidate
    distance_km: float | None
    #: for an initiative: the matching records it publishes
    via: tuple[str, ...] = ()


@dataclass(frozen=True)
class Matches:
    subject: Candidate
    open: bool
    items: tuple[Match, ...]
    initiatives: tuple[Match, ...]

    def digest(self) -> str:
        """Changes when the list does: pages that show it put it in their ETag."""
        text = "|".join(f"{m.candidate.iri}@{m.candidate.updated.isoformat()}"
                        for m in (*self.items, *self.initiatives))  # fmt: skip
        return hashlib.sha256(text.encode()).hexdigest()[:12]


# --- pure rules --------------------------------------------------------------------------------


def related_categories(category: str) -> frozenset[str]:
    """The category, every concept below it and every concept above it (not its siblings).

    A category the node's scheme does not know (a newer scheme elsewhere) matches only itself.
    """
    index = schemes.concepts()
    if not category:
        return frozenset()
    if category not in index:
        return frozenset({category})
    found = set(schemes.narrower_closure(category))
    pending = [category]
    while pending:
        for parent in index[pending.pop()].broader:
            if parent not in found:
                found.add(parent)
                pending.append(parent)
    return frozenset(found)


def categories_match(a: str, b: str) -> bool:
    return b in related_categories(a)


def distance_km(origin: Point, lat: float, lon: float) -> float:
    """Equirectangular distance, the projection centred on `origin` (what SQL orders by too)."""
    lat0, lon0 = origin
    dx = (lon - lon0) * math.cos(math.radians(lat0))
    return KM_PER_DEGREE * math.hypot(dx, lat - lat0)


def located(lat: float | None, lon: float | None) -> Point | None:
    return (lat, lon) if lat is not None and lon is not None else None


def rank(origin: Point | None, candidates: Iterable[Candidate]) -> list[Match]:
    """Nearest first; candidates without a location (or all, if `origin` has none) after, newest
    first; the IRI breaks ties so the order never depends on the database."""
    near: list[tuple[float, float, str, Match]] = []
    rest: list[tuple[float, str, Match]] = []
    for c in candidates:
        point = located(c.lat, c.lon)
        if origin is not None and point is not None:
            d = distance_km(origin, *point)
            near.append((d, -c.published.timestamp(), c.iri, Match(c, d)))
        else:
            rest.append((-c.published.timestamp(), c.iri, Match(c, None)))
    near.sort(key=lambda t: t[:3])
    rest.sort(key=lambda t: t[:2])
    return [t[-1] for t in near] + [t[-1] for t in rest]


def is_open(end: datetime | None, now: datetime) -> bool:
    return end is None or end > now


def item_json(match: Match) -> dict[str, Any]:
    """`{id, type, kind, name, url, origin, category, distance_km?, owner?}` (and `via` for an
    initiative): the shape of /api/matches items."""
    c = match.candidate
    item: dict[str, Any] = {"id": c.iri, "type": "Organization" if c.kind == "initiative" else KIND_TYPES[c.kind][0],
                            "kind": c.kind, "name": c.name, "url": c.iri, "origin": c.origin,
                            "category": c.category}  # fmt: skip
    if match.distance_km is not None:
        item["distance_km"] = round(match.distance_km, 3)
    if c.owner:
        item["owner"] = c.owner
    if match.via:
        item["via"] = list(match.via)
    return item


def matches_json(found: Matches) -> dict[str, Any]:
    s = found.subject
    return {"for": s.iri, "kind": s.kind, "category": s.category, "open": found.open,
            "items": [item_json(m) for m in found.items],
            "initiatives": [item_json(m) for m in found.initiatives]}  # fmt: skip


def _km(value: float) -> str:
    return f"{value:.1f}".replace(".", ",")


def feed_items(pairs: Sequence[tuple[Candidate, Match]], summaries: Mapping[str, str] | None = None
               ) -> list[FeedItem]:  # fmt: skip
    """One Atom entry per matching record (its IRI is the entry id, so it stays stable), saying which
    of the initiative's records it answers; dated by the later of the two sides (when the match
    became possible), newest first."""
    by_match: dict[str, list[tuple[Candidate, Match]]] = {}
    for subject, match in pairs:
        by_match.setdefault(match.candidate.iri, []).append((subject, match))
    items = []
    for found in by_match.values():
        m = found[0][1].candidate
        lines = []
        for subject, match in found:
            label = _category_label(m.category)
            where = f", à {_km(match.distance_km)} km" if match.distance_km is not None else ""
            what = "votre besoin" if subject.kind == "need" else "votre offre"
            lines.append(f"Correspond à {what} « {subject.name} » ({label}{where}).")
        if summaries and summaries.get(m.iri):
            lines.append(summaries[m.iri])
        published = max([m.published, *(s.published for s, _ in found)])
        updated = max([m.updated, published, *(s.updated for s, _ in found)])
        items.append(FeedItem(iri=m.iri, kind=m.kind, name=m.name, summary=" ".join(lines), published=published,
                              updated=updated, lat=m.lat, lon=m.lon, origin=m.origin))  # fmt: skip
    items.sort(key=lambda i: (-i.updated.timestamp(), i.iri))
    return items


def _category_label(iri: str) -> str:
    concept = schemes.concepts().get(iri)
    return concept.label() if concept else iri


# --- queries -----------------------------------------------------------------------------------

_COLUMNS = (records.c.id, records.c.iri, records.c.kind, records.c.name, records.c.origin, records.c.category,
            records.c.owner, records.c.lat, records.c.lon, records.c.published, records.c.updated,
            records.c.end_at, records.c.deleted_at)  # fmt: skip


def _candidate(row: Any) -> Candidate:
    return Candidate(iri=row.iri, kind=row.kind, name=row.name, origin=row.origin, category=row.category or "",
                     owner=row.owner or "", lat=row.lat, lon=row.lon, published=row.published,
                     updated=row.updated)  # fmt: skip


def _not_blocked() -> Any:
    return records.c.origin.notin_(blocked_graphs())


def _nearest_first(query: Select[Any], origin: Point | None) -> Select[Any]:
    if origin is None:
        return query.order_by(records.c.published.desc(), records.c.id)
    return query.order_by(records.c.lat.is_(None), squared_km(*origin), records.c.published.desc(), records.c.id)


async def subject(conn: AsyncConnection, iri: str) -> tuple[Candidate, datetime | None]:
    """The need or offer matches are asked for: 404 unknown, 410 deleted, 400 another kind."""
    row = (await conn.execute(select(*_COLUMNS).where(records.c.iri == iri, _not_blocked()))).first()
    if row is None:
        raise NotFound(f"this node holds no record {iri}")
    if row.deleted_at is not None:
        raise Gone(f"{iri} was deleted")
    if row.kind not in COUNTERPART:
        raise BadRequest(f"{iri} is an {row.kind}: matches are for needs and offers")
    return _candidate(row), row.end_at


async def find(conn: AsyncConnection, iri: str, now: datetime, limit: int = LIMIT_DEFAULT) -> Matches:
    """The open counterparts of the need or offer `iri`, ranked, and the initiatives behind them."""
    me, end = await subject(conn, iri)
    return await find_for(conn, me, is_open(end, now), now, limit)


async def find_for(conn: AsyncConnection, me: Candidate, opened: bool, now: datetime, limit: int) -> Matches:
    origin = located(me.lat, me.lon)
    wanted = sorted(related_categories(me.category))
    query = select(*_COLUMNS).where(
        records.c.kind == COUNTERPART[me.kind], records.c.category.in_(wanted), records.c.deleted_at.is_(None),
        or_(records.c.end_at.is_(None), records.c.end_at > now), _not_blocked(),
    )  # fmt: skip
    if me.owner:
        query = query.where(or_(records.c.owner.is_(None), records.c.owner != me.owner))
    rows = (await conn.execute(_nearest_first(query, origin).limit(CANDIDATES_MAX))).all() if wanted else []
    ranked = rank(origin, (_candidate(r) for r in rows))
    initiatives = await _initiatives(conn, origin, ranked, limit)
    return Matches(me, opened, tuple(ranked[:limit]), tuple(initiatives))


async def _initiatives(conn: AsyncConnection, origin: Point | None, ranked: Sequence[Match], limit: int
                       ) -> list[Match]:  # fmt: skip
    """The initiatives publishing the matching records, at their own location, with what they publish."""
    via: dict[str, list[Match]] = {}
    for m in ranked:
        if m.candidate.owner:
            via.setdefault(m.candidate.owner, []).append(m)
    if not via:
        return []
    rows: list[Any] = []
    owners = sorted(via)
    for start in range(0, len(owners), 500):  # bounded IN lists
        query = select(*_COLUMNS).where(records.c.iri.in_(owners[start:start + 500]),
                                        records.c.kind == "initiative", records.c.deleted_at.is_(None),
                                        _not_blocked())  # fmt: skip
        rows += (await conn.execute(query)).all()
    out = []
    for m in rank(origin, (_candidate(r) for r in rows)):
        mine = via[m.candidate.iri]
        # An initiative's category is that of its nearest matching record.
        out.append(replace(m, candidate=replace(m.candidate, category=mine[0].candidate.category),
                           via=tuple(x.candidate.iri for x in mine)))  # fmt: skip
    return out[:limit]


#: How many of an initiative's open needs and offers its feed follows, newest first.
FEED_SUBJECTS_MAX = 100


async def for_initiative(conn: AsyncConnection, initiative: str, now: datetime, per_record: int = 20
                         ) -> list[tuple[Candidate, Match]]:  # fmt: skip
    """(the initiative's open need or offer, one of its matches) for every such pair."""
    query = select(*_COLUMNS).where(
        records.c.owner == initiative, records.c.kind.in_(tuple(COUNTERPART)), records.c.deleted_at.is_(None),
        or_(records.c.end_at.is_(None), records.c.end_at > now),
    ).order_by(records.c.published.desc(), records.c.id).limit(FEED_SUBJECTS_MAX)  # fmt: skip
    pairs: list[tuple[Candidate, Match]] = []
    for row in (await conn.execute(query)).all():
        me = _candidate(row)
        found = await find_for(conn, me, True, now, per_record)
        pairs += [(me, m) for m in found.items]
    return pairs


async def descriptions(conn: AsyncConnection, iris: Sequence[str]) -> dict[str, str]:
    """The text of the records (their `content`), for feed summaries."""
    out: dict[str, str] = {}
    unique = sorted(set(iris))
    for start in range(0, len(unique), 500):
        query = select(records.c.iri, records.c.data).where(records.c.iri.in_(unique[start:start + 500]))
        for row in await conn.execute(query):
            out[row.iri] = " ".join(record_from_json(row.data).description.split())[:300]
    return out


