"""GET /search (JSON or a web page) and the same query as /search.ics, .atom, .geojson and .csv.

Answered from the SQL search indexes (node.storage.search); an item's `id` is the record's IRI,
the same as SPARQL returns. Parameters and limits: docs/search.md.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDict, MultiMapping

from node import origins
from node.communes import REGIONS, commune, communes
from node.convert import feeds
from node.convert.as2 import record_types
from node.convert.common import fmt_datetime, now_utc
from node.errors import NotAcceptable
from node.keys import CONFIG, ENGINE
from node.negotiate import choose
from node.places import DEPARTEMENTS
from node.records import KIND_LABELS
from node.routes import pages
from node.routes.publish import render_page
from node.routes.search_params import (
    KINDS,
    RADIUS_DEFAULT_KM,
    SORTS,
    BadParameter,
    Origins,
    calendar_window,
    digest,
    parse,
)
from node.storage import search as store
from node.storage.codec import record_from_json
from vocab import schemes

FEED_MEDIA = {"ics": "text/calendar", "atom": "application/atom+xml", "geojson": "application/geo+json",
              "csv": "text/csv"}  # fmt: skip
FEED_LIMIT = 50
SUMMARY_MAX = 300
CACHE = "public, max-age=60"
FEED_CACHE = "public, max-age=300"


async def _origins(request: web.Request) -> Origins:
    """This node's graph, and every origin it holds records of, by each name one may give it."""
    config = request.app[CONFIG]
    async with request.app[ENGINE].connect() as conn:
        return Origins(config.graph_iri, await origins.graphs_by_name(conn, config))


async def _query(request: web.Request, query: MultiMapping[str], default_limit: int) -> store.SearchQuery:
    await asyncio.to_thread(communes)  # read once, off the loop (a few hundred ms)
    return parse(query, await _origins(request), now_utc(), default_limit, digest(request.query))


def _place_line(record: Any, insee: str | None) -> str:
    place = commune(insee) if insee else None
    if place is not None:
        return f"{place.name} ({place.code})"
    loc = record.location
    if loc is not None and loc.address is not None and loc.address.locality:
        return str(loc.address.locality)
    return str(loc.name) if loc is not None else ""


def _summary(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1].rstrip() + "…"


def _item(hit: store.Hit) -> dict[str, Any]:
    record = record_from_json(hit.data)
    item: dict[str, Any] = {
        "id": hit.iri, "type": record_types(record)[0], "kind": hit.kind, "name": hit.name,
        "summary": _summary(record.description), "url": hit.iri, "origin": hit.origin,
        "themes": list(record.themes), "lat": hit.lat, "lon": hit.lon, "place": _place_line(record, hit.insee),
    }  # fmt: skip
    if hit.distance_km is not None:
        item["distance_km"] = round(hit.distance_km, 3)
    if hit.start is not None:
        item["start"] = fmt_datetime(hit.start)
    if hit.end is not None:
        item["end"] = fmt_datetime(hit.end)
    return item


def _feed_item(item: dict[str, Any], hit: store.Hit) -> feeds.FeedItem:
    published = hit.published or now_utc()
    return feeds.FeedItem(
        iri=hit.iri, kind=hit.kind, name=hit.name, summary=item["summary"], published=published,
        updated=hit.updated or published, start=hit.start, end=hit.end, lat=hit.lat, lon=hit.lon,
        place=item["place"], themes=tuple(item["themes"]), origin=hit.origin,
    )  # fmt: skip


def _url(request: web.Request, query: MultiMapping[str], path: str | None = None, **changes: str | None) -> str:
    """This query at `path` (default: the request's), with parameters set or removed."""
    pairs = [(k, v) for k, v in query.items() if k not in changes]
    pairs += [(k, v) for k, v in changes.items() if v is not None]
    encoded = urlencode(pairs)
    return f"{request.app[CONFIG].base_url}{path or request.path}" + (f"?{encoded}" if encoded else "")


async def search_handler(request: web.Request) -> web.StreamResponse:
    by_name = request.query.get("format")
    fmt = {"json": "json", "html": "html", None: None}.get(by_name)
    if by_name is not None and fmt is None:
        raise BadParameter("format", "json or html (feeds are /search.ics, .atom, .geojson, .csv)")
    fmt = fmt or choose(request.headers.get("Accept"), ("html", "json"), default="json")
    if fmt is None:
        raise NotAcceptable("/search answers application/json or text/html; feeds are /search.ics, .atom, "
                            ".geojson and .csv")  # fmt: skip
    q = await _query(request, request.query, request.app[CONFIG].page_size)
    async with request.app[ENGINE].connect() as conn:
        page = await store.search_page(conn, q, digest(request.query))
        counts = await store.facets(conn, q)
    items = [_item(hit) for hit in page.hits]
    next_url = _url(request, request.query, cursor=page.next.encode()) if page.next else None
    headers = {"Cache-Control": CACHE, "Vary": "Accept"}
    if fmt == "html":
        response = _page(request, q, items, counts, next_url)
        response.headers.update(headers)
        return response
    body = {"items": items, "next": next_url, "facets": {"kind": counts.kind, "theme": counts.theme}}
    return web.json_response(body, headers=headers, dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _page(request: web.Request, q: store.SearchQuery, items: list[dict[str, Any]], counts: store.Facets,
          next_url: str | None) -> web.Response:  # fmt: skip
    query = request.query
    base = MultiDict((k, v) for k, v in query.items() if k not in ("cursor", "format"))
    kind_links = [(KIND_LABELS[k], n, _url(request, base, kind=k)) for k, n in counts.kind.items()
                  if k in KIND_LABELS]  # fmt: skip
    theme_links = [(pages.label(t), n, _url(request, base, theme=t.rsplit("/", 1)[-1]))
                   for t, n in counts.theme.items()]  # fmt: skip
    for item in items:
        item["kind_label"] = KIND_LABELS.get(item["kind"], item["kind"])
    top_themes = sorted(((c.notation, c.label()) for c in schemes.concepts().values()
                         if c.scheme == "themes" and not c.broader), key=lambda t: t[1])  # fmt: skip
    return render_page(
        request, "search.html", title="Recherche", items=items, next=next_url, kind_links=kind_links,
        theme_links=theme_links, form=query, kinds=[(k, KIND_LABELS[k]) for k in KINDS],
        chosen_kinds=set(q.kinds), themes=top_themes, departements=sorted(DEPARTEMENTS.items()),
        regions=sorted(REGIONS.items(), key=lambda r: r[1]), sorts=SORTS, radius_default=RADIUS_DEFAULT_KM,
        feeds=[(ext.upper() if ext != "ics" else "Agenda (iCalendar)", _url(request, base, f"/search.{ext}"))
               for ext in ("ics", "atom", "geojson", "csv")],
    )  # fmt: skip


async def feed_handler(request: web.Request) -> web.Response:
    ext = request.match_info["ext"]
    config = request.app[CONFIG]
    query: MultiMapping[str] = request.query
    if ext == "ics":
        kinds = [k for v in query.getall("kind", []) for k in v.split(",") if k.strip()]
        if any(k.strip() != "event" for k in kinds):
            raise BadParameter("kind", ".ics lists events: leave kind out or give kind=event")
        fixed = MultiDict(query)
        fixed.popall("kind", None)
        fixed["kind"] = "event"
        if "from" not in fixed:
            fixed["from"] = fmt_datetime(calendar_window(now_utc()))
        query = fixed
    q = await _query(request, query, FEED_LIMIT)
    async with request.app[ENGINE].connect() as conn:
        # The digest of the query as asked: the .ics default `from` moves with the clock.
        page = await store.search_page(conn, q, digest(request.query))
    items = [_feed_item(_item(hit), hit) for hit in page.hits]
    title = f"{config.node_name} — recherche" + (f" « {q.text} »" if q.text else "")
    if ext == "ics":
        body = feeds.ics(title, items)
    elif ext == "atom":
        self_url = _url(request, request.query)
        feed_id = _url(request, request.query, cursor=None, limit=None)
        newest = max((i.updated for i in items), default=datetime(2000, 1, 1, tzinfo=now_utc().tzinfo))
        body = feeds.atom(feed_id, title, self_url, newest, items)
    elif ext == "geojson":
        body = feeds.geojson(items)
    else:
        body = feeds.csv_table(items)
    headers = {"Cache-Control": FEED_CACHE, "Access-Control-Allow-Origin": "*"}
    if page.next:
        headers["Link"] = f'<{_url(request, request.query, cursor=page.next.encode())}>; rel="next"'
    if ext == "csv":
        headers["Content-Disposition"] = 'inline; filename="recherche.csv"'
    response = web.Response(body=body, headers=headers)
    response.content_type = FEED_MEDIA[ext]
    response.charset = "utf-8"
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/search", search_handler)
    app.router.add_get("/search.{ext:ics|atom|geojson|csv}", feed_handler)

