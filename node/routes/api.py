"""The authoring API: the same JSON-LD in and out, Bearer tokens, problem+json errors."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from node.auth import Principal, authenticate
from node.convert.as2 import linked_data_view, tombstone_to_as2
from node.errors import BadRequest, UnsupportedMediaType
from node.keys import CONFIG, DIRECTORY, ENGINE
from node.records import COLLECTION_OF, COLLECTIONS, Stored

JSON_TYPES = ("application/json", "application/ld+json", "application/activity+json")


async def principal(request: web.Request) -> Principal:
    async with request.app[ENGINE].begin() as conn:
        return await authenticate(conn, request.headers.get("Authorization"))


async def read_json(request: web.Request) -> Any:
    if request.content_type not in JSON_TYPES:
        raise UnsupportedMediaType(
            f"send the record as {' or '.join(JSON_TYPES)}, not {request.content_type or 'nothing'}"
        )
    raw = await request.read()  # aiohttp refuses bodies over client_max_size with 413 first
    try:
        return json.loads(raw)
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the body is not UTF-8: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc


def api_url(request: web.Request, stored: Stored) -> str:
    record = stored.record
    return f"{request.app[CONFIG].base_url}/api/{COLLECTION_OF[record.kind]}/{record.slug}"


def api_view(stored: Stored) -> dict[str, Any]:
    """The public document (its linked-data view, the same shape as API input) plus what only
    the initiative's editors see."""
    doc: dict[str, Any] = linked_data_view(json.loads(stored.doc))
    record = stored.record
    if record.kind == "initiative" and record.email:
        doc["pair:e-mail"] = record.email
        doc["osc:emailPublic"] = record.email_public
    return doc


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=json.dumps(body, ensure_ascii=False).encode(),
        content_type="application/ld+json", charset="utf-8", headers=headers,
    )  # fmt: skip


async def create_handler(request: web.Request) -> web.Response:
    who = await principal(request)
    kind = COLLECTIONS[request.match_info["collection"]]
    stored = await request.app[DIRECTORY].create(kind, await read_json(request), who)
    headers = {"Location": stored.record.iri, "Content-Location": api_url(request, stored)}
    return _json(api_view(stored), 201, headers)


async def read_handler(request: web.Request) -> web.Response:
    who = await principal(request)
    kind = COLLECTIONS[request.match_info["collection"]]
    stored = await request.app[DIRECTORY].get(kind, request.match_info["slug"])
    who.may_change(stored.record)
    return _json(api_view(stored), headers={"Content-Location": api_url(request, stored)})


async def update_handler(request: web.Request) -> web.Response:
    who = await principal(request)
    kind = COLLECTIONS[request.match_info["collection"]]
    doc = await read_json(request)
    stored = await request.app[DIRECTORY].update(kind, request.match_info["slug"], doc, who)
    return _json(api_view(stored), headers={"Content-Location": api_url(request, stored)})


async def delete_handler(request: web.Request) -> web.Response:
    who = await principal(request)
    kind = COLLECTIONS[request.match_info["collection"]]
    tombstone = await request.app[DIRECTORY].delete(kind, request.match_info["slug"], who)
    return _json(tombstone_to_as2(tombstone, request.app[CONFIG].context_url))


def add_routes(app: web.Application) -> None:
    pattern = "{collection:" + "|".join(COLLECTIONS) + "}"
    item = f"/api/{pattern}/{{slug:[a-z0-9_]{{1,64}}}}"
    app.router.add_post(f"/api/{pattern}", create_handler)
    app.router.add_get(item, read_handler)
    app.router.add_put(item, update_handler)
    app.router.add_delete(item, delete_handler)
