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
from node.routes import admin
from node.routes.api import principal
from node.storage.tables import follows

STATES = ("accepted", "pending")
DOMAIN_MAX = 255  # the column's length


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


async def followers_page(request: web.Request, target: str) -> tuple[dict[str, list[str]], int | None]:
    """A page of `target`'s followers, oldest first, split by state; and where the next starts."""
    page = admin.page_of(request, int)
    c = follows.c
    query = select(c.id, c.follower, c.state).where(c.target == target, c.state.in_(STATES))
    if page.after is not None:
        query = query.where(c.id > page.after)
    async with request.app[ENGINE].connect() as conn:
        rows = (await conn.execute(query.order_by(c.id).limit(page.limit + 1))).all()
    shown, after = admin.split(page, rows, lambda r: int(r.id))
    return {state: [r.follower for r in shown if r.state == state] for state in STATES}, after


async def follow_handler(request: web.Request) -> web.Response:
    iri = _may_act_as(await principal(request), request)
    target = body_field(await admin.read_object(request), "target")
    app = request.app
    unfollow = request.match_info["action"] == "unfollow"
    action = social.unfollow if unfollow else social.follow
    activity = await action(app[CONFIG], app[ENGINE], app[CLIENT], app[REMOTE], iri, target)
    app[DELIVERER].kick()
    return json_response({"activity": activity}, 202)


async def followers_handler(request: web.Request) -> web.Response:
    iri = _may_act_as(await principal(request), request)
    shown, more = await followers_page(request, iri)
    return admin.paged(request, shown, more)


async def decide_handler(request: web.Request) -> web.Response:
    iri = _may_act_as(await principal(request), request)
    body = await admin.read_object(request)
    actor, decision = body_field(body, "actor"), body_field(body, "decision")
    if decision not in ("accept", "reject"):
        raise BadRequest("decision is 'accept' or 'reject'")
    app = request.app
    activity = await social.decide(app[CONFIG], app[ENGINE], app[REMOTE], iri, actor, decision == "accept")
    app[DELIVERER].kick()
    return json_response({"activity": activity}, 202)


async def blocks_handler(request: web.Request) -> web.Response:
    await admin.require_admin(request, "domain blocks")
    engine = request.app[ENGINE]
    if request.method == "GET":
        page = admin.page_of(request, str)
        async with engine.connect() as conn:
            rows = await list_blocks(conn, after=page.after, limit=page.limit + 1)
        shown, after = admin.split(page, rows, lambda r: str(r.domain))
        return admin.paged(request, [{"domain": r.domain, "reason": r.reason, "created": r.created_at.isoformat()}
                                     for r in shown], after)  # fmt: skip
    body = await admin.read_object(request)
    blocked = request.method == "POST"
    reason = body.get("reason", "") if isinstance(body.get("reason", ""), str) else ""
    name = body_field(body, "domain")
    if len(name) > DOMAIN_MAX:
        raise BadRequest(f"domain: at most {DOMAIN_MAX} characters")
    async with engine.begin() as conn:
        domain = await set_block(conn, name, blocked=blocked, reason=reason)
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


FOLLOWERS = {"type": "object", "required": list(STATES),
             "properties": {state: {"type": "array", "items": admin.TEXT} for state in STATES}}  # fmt: skip
DECISION = admin.json_body({"actor": admin.GIVEN | {"description": "the follower's actor IRI"},
                            "decision": {"enum": ["accept", "reject"]}}, ["actor", "decision"])  # fmt: skip
ACTIVITY = admin.answer("Sent (delivered by the node's queue)", {
    "type": "object", "required": ["activity"], "properties": {"activity": admin.TEXT}})  # fmt: skip


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI entries of these routes (node.routes.openapi adds them)."""
    text = admin.TEXT
    target = admin.json_body({"target": admin.GIVEN | {"description": "an actor's URL or @user@host"}}, ["target"])
    block = {"type": "object", "required": ["domain", "reason", "created"],
             "properties": {"domain": text, "reason": text, "created": text}}  # fmt: skip
    blocked = admin.answer("The domain as it now is", {"type": "object", "required": ["domain", "blocked"],
                           "properties": {"domain": text, "blocked": {"type": "boolean"}}})  # fmt: skip
    domain = {"type": "string", "minLength": 1, "maxLength": DOMAIN_MAX,
              "description": "a block covers its subdomains"}  # fmt: skip
    paths: dict[str, Any] = {
        f"/api/initiatives/{{slug}}/{action}": {"post": admin.change(
            f"The initiative {action}s an actor anywhere (editors of the initiative, or admin)", f"{action}_actor",
            target, "202", ACTIVITY, ["404", "502"], [admin.SLUG])}
        for action in ("follow", "unfollow")
    }  # fmt: skip
    paths["/api/initiatives/{slug}/followers"] = {
        "parameters": [admin.SLUG],
        "get": admin.listing("Who follows the initiative (its editors, or admin)", "list_initiative_followers",
                             "Followers, oldest first", FOLLOWERS, codes=["404"]),
        "post": admin.change("Accept or reject a pending follower of the initiative", "decide_initiative_follower",
                             DECISION, "202", ACTIVITY, ["404", "502"]),
    }  # fmt: skip
    paths["/api/domain-blocks"] = {
        "get": admin.listing("The domains this node refuses to hear from and deliver to", "list_domain_blocks",
                             "Blocks, by domain", {"type": "array", "items": block}),
        "post": admin.change("Block a domain", "block_domain",
                             admin.json_body({"domain": domain, "reason": text}, ["domain"]), "201", blocked, ()),
        "delete": admin.change("Lift a domain's block", "unblock_domain",
                               admin.json_body({"domain": domain}, ["domain"]), "200", blocked, ()),
    }  # fmt: skip
    return paths
