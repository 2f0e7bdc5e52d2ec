"""Authoring API for following and followers, and for the host's domain blocks."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from sqlalchemy import select

from node import social
from node.auth import Principal
from node.blocks import list_blocks, set_block
from node.errors import BadRequest, Forbidden
from node.keys import BLOCKS, CLIENT, CONFIG, DELIVERER, ENGINE, REMOTE
from node.routes.api import principal, read_json
from node.storage.tables import follows


def _may_act_as(who: Principal, request: web.Request) -> str:
    iri = f"{request.app[CONFIG].base_url}/initiatives/{request.match_info['slug']}"
    if who.role != "admin" and iri not in who.initiatives:
        raise Forbidden(f"this token may not act as {iri}")
    return iri


def body_field(body: Any, name: str) -> str:
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value:
        raise BadRequest(f"give {name!r} (a string) in the JSON body")
    return value


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json")


async def follow_handler(request: web.Request) -> web.Response:
    iri = _may_act_as(await principal(request), request)
    target = body_field(await read_json(request), "target")
    app = request.app
    unfollow = request.match_info["action"] == "unfollow"
    action = social.unfollow if unfollow else social.follow
    activity = await action(app[CONFIG], app[ENGINE], app[CLIENT], app[REMOTE], iri, target)
    app[DELIVERER].kick()
    return json_response({"activity": activity}, 202)


async def followers_handler(request: web.Request) -> web.Response:
    iri = _may_act_as(await principal(request), request)
    async with request.app[ENGINE].connect() as conn:
        rows = (await conn.execute(select(follows.c.follower, follows.c.state).where(follows.c.target == iri))).all()
    return json_response({state: [r.follower for r in rows if r.state == state] for state in ("accepted", "pending")})


async def decide_handler(request: web.Request) -> web.Response:
    iri = _may_act_as(await principal(request), request)
    body = await read_json(request)
    actor, decision = body_field(body, "actor"), body_field(body, "decision")
    if decision not in ("accept", "reject"):
        raise BadRequest("decision is 'accept' or 'reject'")
    app = request.app
    activity = await social.decide(app[CONFIG], app[ENGINE], app[REMOTE], iri, actor, decision == "accept")
    app[DELIVERER].kick()
    return json_response({"activity": activity}, 202)


async def blocks_handler(request: web.Request) -> web.Response:
    who = await principal(request)
    if who.role != "admin":
        raise Forbidden("domain blocks are for admin tokens")
    engine = request.app[ENGINE]
    if request.method == "GET":
        async with engine.connect() as conn:
            rows = await list_blocks(conn)
        shown = [{"domain": r.domain, "reason": r.reason, "created": r.created_at.isoformat()} for r in rows]
        return json_response(shown)
    body = await read_json(request)
    blocked = request.method == "POST"
    reason = body.get("reason", "") if isinstance(body.get("reason", ""), str) else ""
    async with engine.begin() as conn:
        domain = await set_block(conn, body_field(body, "domain"), blocked=blocked, reason=reason)
    request.app[BLOCKS].invalidate()
    return json_response({"domain": domain, "blocked": blocked}, 201 if blocked else 200)


def add_routes(app: web.Application) -> None:
    slug = "{slug:[a-z0-9_]{1,64}}"
    app.router.add_post(f"/api/initiatives/{slug}/{{action:follow|unfollow}}", follow_handler)
    app.router.add_get(f"/api/initiatives/{slug}/followers", followers_handler)
    app.router.add_post(f"/api/initiatives/{slug}/followers", decide_handler)
    app.router.add_get("/api/domain-blocks", blocks_handler)
    app.router.add_post("/api/domain-blocks", blocks_handler)
    app.router.add_delete("/api/domain-blocks", blocks_handler)

