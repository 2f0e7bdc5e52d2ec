"""Matches between needs and offers: JSON for any record the node holds, the list on a record's
page, and an Atom feed of new matches for an initiative's editors (docs/matching.md)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from node import matching
from node.convert import feeds
from node.convert.common import now_utc
from node.errors import BadRequest, Gone, NotFound
from node.keys import CONFIG, ENGINE
from node.records import COLLECTION_OF, KIND_LABELS, Stored
from node.routes import pages
from node.storage.tables import records

SLUG = "{slug:[a-z0-9_]{1,64}}"
KNOWN = ("for", "limit")
CACHE = "public, max-age=60"
FEED_LIMIT = 50


def _limit(request: web.Request) -> int:
    text = request.query.get("limit")
    if text is None:
        return matching.LIMIT_DEFAULT
    if not (text.isdigit() and 1 <= int(text) <= matching.LIMIT_MAX):
        raise BadRequest(f"limit: a whole number from 1 to {matching.LIMIT_MAX}, not {text!r}")
    return int(text)


def _check_params(request: web.Request, known: tuple[str, ...]) -> None:
    unknown = sorted(set(request.query) - set(known))
    if unknown:
        raise BadRequest(f"{unknown[0]}: unknown parameter; known: {', '.join(known) or 'none'}")


def _json(body: Any) -> web.Response:
    headers = {"Cache-Control": CACHE, "Access-Control-Allow-Origin": "*"}
    return web.Response(body=json.dumps(body, ensure_ascii=False).encode(), content_type="application/json",
                        charset="utf-8", headers=headers)  # fmt: skip


async def _matches(request: web.Request, iri: str) -> web.Response:
    async with request.app[ENGINE].connect() as conn:
        found = await matching.find(conn, iri, now_utc(), _limit(request))
    return _json(matching.matches_json(found))


async def api_handler(request: web.Request) -> web.Response:
    """GET /api/matches?for={IRI}: a need or offer of any origin the node holds."""
    _check_params(request, KNOWN)
    iri = request.query.get("for", "").strip()
    if not iri:
        raise BadRequest("for: give the IRI of a need or an offer (?for=https://...)")
    return await _matches(request, iri)


async def record_handler(request: web.Request) -> web.Response:
    """GET /needs/{slug}/matches, /offers/{slug}/matches: this node's own records."""
    _check_params(request, ("limit",))
    base = request.app[CONFIG].base_url
    return await _matches(request, f"{base}/{request.match_info['collection']}/{request.match_info['slug']}")


async def feed_handler(request: web.Request) -> web.Response:
    """GET /initiatives/{slug}/matches.atom: the matches of the initiative's open needs and offers."""
    _check_params(request, ())
    config = request.app[CONFIG]
    iri = f"{config.base_url}/initiatives/{request.match_info['slug']}"
    now = now_utc()
    async with request.app[ENGINE].connect() as conn:
        name, updated = await _initiative(conn, iri)
        pairs = await matching.for_initiative(conn, iri, now)
        summaries = await matching.descriptions(conn, [m.candidate.iri for _, m in pairs])
    items = matching.feed_items(pairs, summaries)[:FEED_LIMIT]
    self_url = f"{iri}/matches.atom"
    # With no entry the feed is as old as the initiative: a reader sees nothing new.
    body = feeds.atom(self_url, f"Correspondances — {name}", self_url, updated, items)
    response = web.Response(body=body, headers={"Cache-Control": "public, max-age=300",
                                                "Access-Control-Allow-Origin": "*"})  # fmt: skip
    response.content_type = "application/atom+xml"
    response.charset = "utf-8"
    return response


async def _initiative(conn: AsyncConnection, iri: str) -> tuple[str, datetime]:
    """The initiative's name and last update: 404 unknown, 410 deleted."""
    query = select(records.c.name, records.c.updated, records.c.deleted_at, records.c.kind).where(records.c.iri == iri)
    row = (await conn.execute(query)).first()
    if row is None or row.kind != "initiative":
        raise NotFound(f"no initiative at {iri}")
    if row.deleted_at is not None:
        raise Gone(f"{iri} was deleted")
    return row.name, row.updated


def _view(match: matching.Match, local_graph: str) -> dict[str, Any]:
    """One line of the "Correspondances" list of a page."""
    c = match.candidate
    view = matching.item_json(match)
    view["kind_label"] = KIND_LABELS.get(c.kind, c.kind)
    view["category_label"] = pages.label(c.category) if c.category else ""
    view["distance"] = f"{match.distance_km:.1f}".replace(".", ",") if match.distance_km is not None else ""
    view["elsewhere"] = "" if c.origin == local_graph else (urlsplit(c.iri).netloc or c.origin)
    return view


async def page_matches(request: web.Request, stored: Stored) -> tuple[dict[str, Any], str]:
    """What a need's or offer's page lists, and a digest of it for the page's ETag."""
    config = request.app[CONFIG]
    async with request.app[ENGINE].connect() as conn:
        found = await matching.find(conn, stored.record.iri, now_utc(), 20)
    view = {"items": [_view(m, config.graph_iri) for m in found.items],
            "initiatives": [_view(m, config.graph_iri) for m in found.initiatives],
            "open": found.open,
            "api": f"{config.base_url}/{COLLECTION_OF[stored.record.kind]}/{stored.record.slug}/matches"}  # fmt: skip
    return view, found.digest()


def feed_url(iri: str) -> str:
    """Where an initiative's editors subscribe to its new matches."""
    return f"{iri}/matches.atom"


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/matches", api_handler)
    app.router.add_get(f"/{{collection:needs|offers}}/{SLUG}/matches", record_handler)
    app.router.add_get(f"/initiatives/{SLUG}/matches.atom", feed_handler)


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI entries of the matches (node.routes.openapi adds them)."""
    text = {"type": "string"}
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    item = {"type": "object", "required": ["id", "type", "kind", "name", "url", "origin", "category"],
            "properties": {"id": text, "type": text, "kind": text, "name": text, "url": text, "origin": text,
                           "category": text, "distance_km": {"type": "number"}, "owner": text,
                           "via": {"type": "array", "items": text}}}  # fmt: skip
    body = {"type": "object", "required": ["for", "kind", "category", "open", "items", "initiatives"],
            "properties": {"for": text, "kind": text, "category": text, "open": {"type": "boolean"},
                           "items": {"type": "array", "items": item},
                           "initiatives": {"type": "array", "items": item}}}  # fmt: skip
    limit = {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": matching.LIMIT_MAX},
             "description": f"items at most (default {matching.LIMIT_DEFAULT})"}  # fmt: skip
    slug = {"name": "slug", "in": "path", "required": True,
            "schema": {"type": "string", "pattern": "^[a-z0-9_]{1,64}$"}}  # fmt: skip

    def errors(*codes: str) -> dict[str, Any]:
        said = {"400": "A bad parameter, or a record that is neither a need nor an offer", "404": "No such record",
                "410": "The record was deleted"}  # fmt: skip
        return {code: {"description": said[code], "content": problem} for code in codes}

    def answer(summary: str, operation: str, params: list[dict[str, Any]]) -> dict[str, Any]:
        return {"get": {"summary": summary, "operationId": operation, "parameters": params,
                        "responses": {"200": {"description": "The matches, nearest first",
                                              "content": {"application/json": {"schema": body}}},
                                      **errors("400", "404", "410")}}}  # fmt: skip

    paths = {"/api/matches": answer("Offers meeting a need, or needs meeting an offer, of any origin", "matches", [
        {"name": "for", "in": "query", "required": True, "schema": text, "description": "a need's or offer's IRI"},
        limit])}  # fmt: skip
    for collection in ("needs", "offers"):
        paths[f"/{collection}/{{slug}}/matches"] = answer(f"The matches of one of this node's {collection}",
                                                          f"matches_{collection}", [slug, limit])  # fmt: skip
    paths["/initiatives/{slug}/matches.atom"] = {"get": {
        "summary": "Atom feed of the matches of an initiative's open needs and offers", "operationId": "matches_feed",
        "parameters": [slug],
        "responses": {"200": {"description": "Atom 1.0, newest first", "content": {"application/atom+xml": {}}},
                      **errors("404", "410")}}}  # fmt: skip
    return paths
