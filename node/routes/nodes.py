"""Authoring API for node-to-node federation (admin tokens): the nodes this node follows and
their policies, the node's own followers, and the records refused from other nodes."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select

from node import actors, origins, social
from node.errors import BadRequest
from node.keys import CLIENT, CONFIG, DELIVERER, ENGINE, REMOTE, SYNCER
from node.routes import admin
from node.routes.social import ACTIVITY, DECISION, FOLLOWERS, body_field, followers_page, json_response
from node.storage.tables import ingest_reports

WHAT = "following other nodes and their policies"


async def _origins_page(request: web.Request, followed_only: bool) -> web.Response:
    page = admin.page_of(request, str)
    async with request.app[ENGINE].connect() as conn:
        shown = await origins.listing(conn, followed_only=followed_only, after=page.after, limit=page.limit + 1)
    rows, after = admin.split(page, shown, lambda origin: str(origin["graph"]))
    return admin.paged(request, list(rows), after)


async def follows_handler(request: web.Request) -> web.Response:
    """GET: the nodes this node follows. POST {"target"}: follow a node. DELETE {"target",
    "purge"}: unfollow it, keeping a frozen copy unless purge is true."""
    await admin.require_admin(request, WHAT)
    app = request.app
    config, engine = app[CONFIG], app[ENGINE]
    if request.method == "GET":
        return await _origins_page(request, followed_only=True)
    body = await admin.read_object(request)
    target = body_field(body, "target")
    if request.method == "POST":
        row = await origins.follow(config, engine, app[CLIENT], app[REMOTE], target)
        app[DELIVERER].kick()
        return json_response(origins.describe(row), 202)
    purge = body.get("purge", False)
    if not isinstance(purge, bool):
        raise BadRequest("purge is true or false")
    row = await origins.unfollow(config, engine, app[CLIENT], app[REMOTE], target, purge)
    app[DELIVERER].kick()
    return json_response({"graph": row.graph, "purged": purge})


async def origins_handler(request: web.Request) -> web.Response:
    """GET: every origin this node holds records of (followed, learned through a relay, or a
    frozen copy), with its policy and relay setting, as `oscartes origins` lists them."""
    await admin.require_admin(request, WHAT)
    return await _origins_page(request, followed_only=False)


async def origin_handler(request: web.Request) -> web.Response:
    """PATCH {"origin", "policy"?, "relay"?}: trusted, limited or blocked (purged); relayed or not."""
    await admin.require_admin(request, WHAT)
    body = await admin.read_object(request)
    policy, relay = body.get("policy"), body.get("relay")
    if policy is not None and not isinstance(policy, str):
        raise BadRequest("policy is trusted, limited or blocked")
    if relay is not None and not isinstance(relay, bool):
        raise BadRequest("relay is true or false")
    row = await origins.set_policy(request.app[CONFIG], request.app[ENGINE], body_field(body, "origin"), policy, relay)
    request.app[SYNCER].kick()
    return json_response(origins.describe(row))


async def node_followers_handler(request: web.Request) -> web.Response:
    """GET: who follows this node. POST {"actor", "decision"}: accept or reject a pending one."""
    await admin.require_admin(request, WHAT)
    app = request.app
    config = app[CONFIG]
    if request.method == "GET":
        shown, more = await followers_page(request, actors.node_actor_iri(config))
        return admin.paged(request, shown, more)
    body = await admin.read_object(request)
    actor, decision = body_field(body, "actor"), body_field(body, "decision")
    if decision not in ("accept", "reject"):
        raise BadRequest("decision is 'accept' or 'reject'")
    activity = await social.decide(config, app[ENGINE], app[REMOTE], actors.NODE_USERNAME, actor, decision == "accept")
    app[DELIVERER].kick()
    return json_response({"activity": activity}, 202)


async def reports_handler(request: web.Request) -> web.Response:
    """GET: the records refused from other nodes, and why, newest first."""
    await admin.require_admin(request, "ingestion reports")
    page = admin.page_of(request, int, known=("origin",))
    c = ingest_reports.c
    query = select(ingest_reports).order_by(c.id.desc()).limit(page.limit + 1)
    if "origin" in request.query:
        query = query.where(c.origin == request.query["origin"])
    if page.after is not None:
        query = query.where(c.id < page.after)
    async with request.app[ENGINE].connect() as conn:
        rows: list[Any] = list((await conn.execute(query)).all())
    shown, after = admin.split(page, rows, lambda r: int(r.id))
    return admin.paged(request, [{"origin": r.origin, "iri": r.iri, "reason": r.reason,
                                  "received": r.received_at.isoformat()} for r in shown], after)  # fmt: skip


def add_routes(app: web.Application) -> None:
    for method in ("GET", "POST", "DELETE"):
        app.router.add_route(method, "/api/follows", follows_handler)
    app.router.add_get("/api/origins", origins_handler)
    app.router.add_patch("/api/origins", origin_handler)
    app.router.add_get("/api/followers", node_followers_handler)
    app.router.add_post("/api/followers", node_followers_handler)
    app.router.add_get("/api/ingest-reports", reports_handler)


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI entries of these routes (node.routes.openapi adds them)."""
    text, flag = admin.TEXT, {"type": "boolean"}
    maybe = {"type": ["string", "null"]}
    origin = {"type": "object", "required": ["graph", "actor", "policy", "relay", "followed", "sync"],
              "properties": {"graph": text | {"description": "the origin's dataset IRI"}, "actor": text,
                             "name": text, "license": text, "policy": {"enum": list(origins.POLICIES)},
                             "relay": flag, "followed": flag, "via": maybe,
                             "sync": {"enum": ["bootstrap", "live", "frozen"]}, "retrieved": maybe, "error": maybe,
                             "records": {"type": "integer", "description": "its live records here"}}}  # fmt: skip
    origins_list = {"type": "array", "items": origin}
    report = {"type": "object", "required": ["origin", "iri", "reason", "received"],
              "properties": {"origin": text, "iri": text, "reason": text, "received": text}}  # fmt: skip
    target = {"target": admin.GIVEN | {"description": "the node's root URL (NodeInfo names its actor), or its actor"}}
    setting = {"origin": admin.GIVEN | {"description": "its URL, host, actor or dataset IRI"},
               "policy": {"enum": list(origins.POLICIES)}, "relay": flag}  # fmt: skip
    return {
        "/api/follows": {
            "get": admin.listing("The nodes this node follows", "list_follows", "Followed origins, by dataset IRI",
                                 origins_list),
            "post": admin.change("Follow a node: its directory is copied once it accepts", "follow_node",
                                 admin.json_body(target, ["target"]), "202", admin.answer("Follow sent", origin),
                                 ["502"]),
            "delete": admin.change("Unfollow a node, keeping a frozen copy unless purge", "unfollow_node",
                                   admin.json_body(target | {"purge": flag}, ["target"]), "200",
                                   admin.answer("Unfollowed", {"type": "object", "required": ["graph", "purged"],
                                                               "properties": {"graph": text, "purged": flag}}),
                                   ["404"]),
        },
        "/api/origins": {
            "get": admin.listing("Every origin this node holds, with its policy and relay setting", "list_origins",
                                 "Origins, by dataset IRI", origins_list),
            "patch": admin.change("Set an origin's policy (blocked purges its copy) or relay setting", "set_origin",
                                  admin.json_body(setting, ["origin"]), "200",
                                  admin.answer("The origin as it now is", origin), ["404"]),
        },
        "/api/followers": {
            "get": admin.listing("Who follows this node", "list_node_followers", "Followers, oldest first",
                                 FOLLOWERS),
            "post": admin.change("Accept or reject a node asking to follow this one", "decide_node_follower",
                                 DECISION, "202", ACTIVITY, ["404", "502"]),
        },
        "/api/ingest-reports": {
            "get": admin.listing("Records refused from other nodes, and why", "list_ingest_reports",
                                 "Reports, newest first", {"type": "array", "items": report},
                                 [{"name": "origin", "in": "query", "schema": text,
                                   "description": "only this origin's (its dataset IRI)"}]),
        },
    }  # fmt: skip
