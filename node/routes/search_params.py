"""The /search query string read into a `SearchQuery`: every bad parameter is a 400 that names it.

Pure but for the origins, which are looked up in the database by the handler (`Origins`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from multidict import MultiMapping

from node.communes import REGIONS, commune, departements_of_region
from node.errors import BadRequest
from node.places import DEPARTEMENTS
from node.storage.search import Cursor, SearchQuery, Sort
from vocab import schemes

KINDS = ("initiative", "event", "need", "offer", "resource")
SORTS = ("relevance", "distance", "date", "newest")
RADIUS_MAX_KM = 200.0
RADIUS_DEFAULT_KM = 10.0
LIMIT_MAX = 100
TEXT_MAX = 200
PARIS = ZoneInfo("Europe/Paris")
#: Parameters that do not change which records match, so a cursor survives them.
NOT_IN_DIGEST = ("cursor", "limit", "format")
_INSEE = re.compile(r"^(?:\d{5}|2[AB]\d{3})$")
KNOWN = ("q", "kind", "theme", "commune", "departement", "region", "near", "radius_km", "bbox", "from", "to",
         "open", "origin", "sort", "limit", "cursor", "format")  # fmt: skip


class BadParameter(BadRequest):
    def __init__(self, name: str, detail: str) -> None:
        super().__init__(f"{name}: {detail}")
        self.parameter = name


@dataclass(frozen=True)
class Origins:
    """What `origin=` may name: this node's graph; each known origin's base URL, host, actor and
    dataset IRI (without a trailing slash) -> its graph."""

    local: str
    followed: Mapping[str, str] = field(default_factory=dict)


def values(query: MultiMapping[str], name: str) -> list[str]:
    """A parameter given several times or as a comma list; empty parts are dropped."""
    return [part.strip() for value in query.getall(name, []) for part in value.split(",") if part.strip()]


def one(query: MultiMapping[str], name: str) -> str | None:
    given = query.getall(name, [])
    if len(given) > 1:
        raise BadParameter(name, "give it once")
    # An empty field of the web form means the parameter is not given.
    return given[0].strip() or None if given else None


def _float(name: str, text: str, low: float, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise BadParameter(name, f"{text!r} is not a number") from None
    if not low <= value <= high:  # also refuses nan
        raise BadParameter(name, f"{text} is outside [{low:g}, {high:g}]")
    return value


def themes_of(values: Sequence[str]) -> list[str]:
    """Concept IRIs or notations of the themes scheme, each with its narrower concepts."""
    found: set[str] = set()
    for value in values:
        concept = schemes.concepts().get(value) or schemes.concept("themes", value)
        if concept is None or concept.scheme != "themes":
            scheme = schemes.scheme_iri("themes")
            raise BadParameter("theme", f"{value!r} is not a theme: give a concept IRI of {scheme} "
                                        "or its notation (e.g. repair, food)")  # fmt: skip
        found |= schemes.narrower_closure(concept.iri)
    return sorted(found)


def _day_or_instant(name: str, text: str) -> datetime:
    """A date (midnight, Paris time: the directory's) or a date-time with its offset."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), PARIS)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadParameter(name, f"{text!r} is not an ISO date (2025-12-01) or date-time with offset") from None
    if value.tzinfo is None:
        raise BadParameter(name, f"{text!r} has no time zone offset (add Z or +01:00)")
    return value


def _place(query: MultiMapping[str]) -> dict[str, Any]:
    communes, departements = values(query, "commune"), values(query, "departement")
    for code in communes:
        if not _INSEE.match(code.upper()):
            raise BadParameter("commune", f"{code!r} is not an INSEE commune code (5 characters, e.g. 91377)")
    for code in departements:
        if code.upper() not in DEPARTEMENTS:
            raise BadParameter("departement", f"{code!r} is not a département code (e.g. 91, 2A, 974)")
    for code in values(query, "region"):
        if code not in REGIONS:
            raise BadParameter("region", f"{code!r} is not an INSEE région code; known: {', '.join(REGIONS)}")
        departements += departements_of_region(code)
    out: dict[str, Any] = {"departements": sorted({d.upper() for d in departements})}
    near, radius = one(query, "near"), one(query, "radius_km")
    if radius is not None and near is None:
        if len(communes) != 1:
            raise BadParameter("radius_km", "needs near=lat,lon, near=<commune code> or one commune=<code>")
        near, communes = communes[0], []
    out["insee"] = sorted({c.upper() for c in communes})
    if near is not None:
        out["near"] = _near(near)
        out["radius_km"] = RADIUS_DEFAULT_KM if radius is None else _float("radius_km", radius, 0.001, RADIUS_MAX_KM)
    bbox = one(query, "bbox")
    if bbox is not None:
        parts = bbox.split(",")
        if len(parts) != 4:
            raise BadParameter("bbox", "give minlon,minlat,maxlon,maxlat (four numbers)")
        min_lon, max_lon = (_float("bbox", parts[i], -180, 180) for i in (0, 2))
        min_lat, max_lat = (_float("bbox", parts[i], -90, 90) for i in (1, 3))
        if min_lon >= max_lon or min_lat >= max_lat:
            raise BadParameter("bbox", "minlon must be below maxlon and minlat below maxlat")
        out["bbox"] = (min_lon, min_lat, max_lon, max_lat)
    return out


def _near(text: str) -> tuple[float, float]:
    if "," not in text:
        place = commune(text)
        if place is None:
            raise BadParameter("near", f"{text!r} is neither lat,lon nor a known INSEE commune code")
        return place.lat, place.lon
    lat, _, lon = text.partition(",")
    return _float("near", lat, -90, 90), _float("near", lon, -180, 180)


def digest(query: MultiMapping[str]) -> str:
    """What the matching records depend on, so a cursor is only taken back with its own query."""
    items = sorted((k, v) for k, v in query.items() if k not in NOT_IN_DIGEST)
    return hashlib.sha256(repr(items).encode()).hexdigest()[:16]


def parse(query: MultiMapping[str], origins: Origins, now: datetime, default_limit: int,
          cursor_digest: str | None = None) -> SearchQuery:  # fmt: skip
    """Every parameter checked, or BadParameter naming the first bad one. A cursor must carry
    `cursor_digest` (default: the digest of `query`)."""
    unknown = sorted(set(query) - set(KNOWN))
    if unknown:
        raise BadParameter(unknown[0], f"unknown parameter; known: {', '.join(KNOWN)}")
    text = one(query, "q") or ""
    if len(text) > TEXT_MAX:
        raise BadParameter("q", f"at most {TEXT_MAX} characters")
    kinds = values(query, "kind")
    for kind in kinds:
        if kind not in KINDS:
            raise BadParameter("kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    fields: dict[str, Any] = {"text": text, "kinds": sorted(set(kinds)), "themes": themes_of(values(query, "theme"))}
    fields |= _place(query)
    date_from = date_to = None
    if (value := one(query, "from")) is not None:
        date_from = _day_or_instant("from", value)
    if (value := one(query, "to")) is not None:
        date_to = _day_or_instant("to", value)
    if date_from and date_to and date_from >= date_to:
        raise BadParameter("to", "must be after from")
    fields |= {"date_from": date_from, "date_to": date_to}
    opened = (one(query, "open") or "true").lower()
    if opened not in ("true", "false", "1", "0"):
        raise BadParameter("open", "true (needs and offers not expired, the default) or false (all)")
    fields["open_at"] = now if opened in ("true", "1") else None
    wanted = []
    for value in values(query, "origin"):
        if value == "all":
            continue
        graph = origins.local if value == "local" else origins.followed.get(value.rstrip("/"))
        if graph is None:
            raise BadParameter("origin", f"{value!r} is not followed by this node; give local, all, or a "
                                         "followed node's base URL, host or dataset IRI")  # fmt: skip
        wanted.append(graph)
    fields["origins"] = sorted(set(wanted))
    fields["sort"] = _sort(one(query, "sort"), fields)
    limit = one(query, "limit")
    if limit is not None and not (limit.isdigit() and 1 <= int(limit) <= LIMIT_MAX):
        raise BadParameter("limit", f"a whole number from 1 to {LIMIT_MAX}")
    fields["limit"] = default_limit if limit is None else int(limit)
    q = SearchQuery(**fields)
    cursor = one(query, "cursor")
    if cursor:
        try:
            return SearchQuery(**fields, after=Cursor.decode(cursor, cursor_digest or digest(query)))
        except ValueError as exc:
            raise BadParameter("cursor", str(exc)) from None
    return q


def _sort(value: str | None, fields: Mapping[str, Any]) -> Sort | None:
    if value is None:
        return None
    if value not in SORTS:
        raise BadParameter("sort", f"{value!r} is not one of {', '.join(SORTS)}")
    if value == "relevance" and not fields["text"]:
        raise BadParameter("sort", "relevance needs q")
    if value == "distance" and "near" not in fields:
        raise BadParameter("sort", "distance needs near (or commune with radius_km)")
    sorts: dict[str, Sort] = {"relevance": "relevance", "distance": "distance", "newest": "newest",
                              "date": "start" if fields["kinds"] == ["event"] else "newest"}
    return sorts[value]


def calendar_window(now: datetime) -> datetime:
    """Where a calendar feed without `from` starts: a month back, so recent events stay visible."""
    return now - timedelta(days=30)


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI entries of /search and its feeds (node.routes.openapi adds them)."""

    def param(name: str, schema: dict[str, Any], description: str, explode: bool = False) -> dict[str, Any]:
        out = {"name": name, "in": "query", "schema": schema, "description": description}
        return out | ({"style": "form", "explode": True} if explode else {})

    text, number = {"type": "string"}, {"type": "number"}
    many = {"type": "array", "items": {"type": "string"}}
    params = [
        param("q", {"type": "string", "maxLength": TEXT_MAX}, "words, accent- and case-insensitive"),
        param("kind", {"type": "array", "items": {"type": "string", "enum": list(KINDS)}}, "any of", True),
        param("theme", many, "theme IRI or notation; includes narrower themes", True),
        param("commune", many, "INSEE commune codes", True),
        param("departement", many, "département codes", True),
        param("region", many, "INSEE région codes", True),
        param("near", text, "lat,lon or an INSEE commune code"),
        param("radius_km", {"type": "number", "exclusiveMinimum": 0, "maximum": RADIUS_MAX_KM},
              f"with near or one commune; default {RADIUS_DEFAULT_KM:g}"),
        param("bbox", text, "minlon,minlat,maxlon,maxlat"),
        param("from", text, "ISO date or date-time: events ending after"),
        param("to", text, "ISO date or date-time: events starting before"),
        param("open", {"type": "string", "enum": ["true", "false"]}, "hide expired needs and offers (default)"),
        param("origin", many, "local, all, or a followed node's base URL, host or dataset IRI", True),
        param("sort", {"type": "string", "enum": list(SORTS)}, "default: relevance, distance or date"),
        param("limit", {"type": "integer", "minimum": 1, "maximum": LIMIT_MAX}, "items per page"),
        param("cursor", text, "from the previous page's next link"),
    ]
    bad = {"description": "A bad parameter, named in detail",
           "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    item = {"type": "object", "required": ["id", "type", "kind", "name"],
            "properties": {"id": text, "type": text, "kind": text, "name": text, "summary": text, "url": text,
                           "origin": text, "themes": many, "lat": {"type": ["number", "null"]},
                           "lon": {"type": ["number", "null"]}, "distance_km": number, "start": text, "end": text,
                           "place": text}}  # fmt: skip
    found = {"type": "object", "required": ["items", "next", "facets"],
             "properties": {"items": {"type": "array", "items": item}, "next": {"type": ["string", "null"]},
                            "facets": {"type": "object"}}}  # fmt: skip
    paths: dict[str, Any] = {"/search": {"get": {
        "summary": "Search records of every origin", "operationId": "search", "parameters": params,
        "responses": {"200": {"description": "A page of results with facet counts",
                              "content": {"application/json": {"schema": found}, "text/html": {}}},
                      "400": bad}}}}  # fmt: skip
    for ext, media in (("ics", "text/calendar"), ("atom", "application/atom+xml"),
                       ("geojson", "application/geo+json"), ("csv", "text/csv")):  # fmt: skip
        paths[f"/search.{ext}"] = {"get": {
            "summary": f"The same search as {media}", "operationId": f"search_{ext}", "parameters": params,
            "responses": {"200": {"description": "A feed", "content": {media: {}}}, "400": bad}}}  # fmt: skip
    return paths
