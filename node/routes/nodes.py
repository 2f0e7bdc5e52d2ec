"""Authoring API for node-to-node federation (admin tokens): the nodes this node follows and
their policies, the node's own followers, and the records refused from other nodes."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select

from node import actors, federate, origins, social
from node.errors import BadRequest, Forbidden
from node.keys import CLIENT, CONFIG, DELIVERER, ENGINE, REMOTE, SYNCER
from node.routes.api import principal, read_json
from node.routes.social import body_field, json_response
from node.storage.tables import ingest_reports


async def _admin(request: web.Request) -> None:
    if (await principal(request)).role != "admin":
        raise Forbidden("following other nodes is for admin tokens")


async def follows_handler(request: web.Request) -> web.Response:
    """GET: the origins this node holds. POST {"target"}: follow a node. DELETE {"target",
    "purge"}: unfollow it, keeping a frozen copy unless purge is true."""
    await _admin(request)
    app = request.app
    config, engine = app[CONFIG], app[ENGINE]
    if request.method == "GET":
        async with engine.connect() as conn:
            return json_response(await origins.listing(conn))
    body = await read_json(request)
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


async def origin_handler(request: web.Request) -> web.Response:
    """PATCH {"origin", "policy"?, "relay"?}: trusted, limited or blocked (purged); relayed or not."""
    await _admin(request)
    body = await read_json(request)
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
    await _admin(request)
    app = request.app
    config = app[CONFIG]
    node = actors.node_actor_iri(config)
    if request.method == "GET":
        async with app[ENGINE].connect() as conn:
            shown = {state: await federate.followers(conn, node, state) for state in ("accepted", "pending")}
        return json_response(shown)
    body = await read_json(request)
    actor, decision = body_field(body, "actor"), body_field(body, "decision")
    if decision not in ("accept", "reject"):
        raise BadRequest("decision is 'accept' or 'reject'")
    activity = await social.decide(config, app[ENGINE], app[REMOTE], actors.NODE_USERNAME, actor, decision == "accept")
    app[DELIVERER].kick()
    return json_response({"activity": activity}, 202)


async def reports_handler(request: web.Request) -> web.Response:
    await _admin(request)
    query = select(ingest_reports).order_by(ingest_reports.c.id.desc()).limit(200)
    if "origin" in request.query:
        query = query.where(ingest_reports.c.origin == request.query["origin"])
    async with request.app[ENGINE].connect() as conn:
        rows: list[Any] = list((await conn.execute(query)).all())
    return json_response([{"origin": r.origin, "iri": r.iri, "reason": r.reason, "received": r.received_at.isoformat()}
                for r in rows])  # fmt: skip


def add_routes(app: web.Application) -> None:
    for method in ("GET", "POST", "DELETE"):
        app.router.add_route(method, "/api/follows", follows_handler)
    app.router.add_patch("/api/origins", origin_handler)
    app.router.add_get("/api/followers", node_followers_handler)
    app.router.add_post("/api/followers", node_followers_handler)
    app.router.add_get("/api/ingest-reports", reports_handler)
