"""ActivityPub and discovery routes: WebFinger, host-meta, NodeInfo, actors' inboxes,
outboxes and collections, and every activity this node sent, at its own id."""

from __future__ import annotations

import json
from datetime import timedelta
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from aiohttp import web
from sqlalchemy import func, select

from federation import signatures as sig
from federation.activity import check_authority, envelope, host
from federation.errors import MalformedActivity, Refused, SignatureError
from federation.webfinger import host_meta_xml, parse_handle, webfinger_document
from node import actors, federate, groups
from node.config import Config
from node.convert.common import now_utc
from node.errors import NodeError, NotFound, UnsupportedMediaType
from node.keys import BLOCKS, CONFIG, ENGINE, INBOX_WORKER, INBOX_WRITER, LIMITER, REMOTE
from node.remote import known
from node.storage import repo
from node.storage.tables import activities
from vocab import AS2_CONTEXT, SECURITY_CONTEXT

AS2_JSON = "application/activity+json"
INBOX_TYPES = ("application/activity+json", "application/ld+json", "application/json")
PAGE = 20


CORS = {"Access-Control-Allow-Origin": "*"}


def _json(body: Any, media: str = AS2_JSON, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=json.dumps(body, ensure_ascii=False).encode(), content_type=media,
                        headers={"Vary": "Accept", **(headers or {})})  # fmt: skip


def software_version() -> str:
    try:
        return version("oscartes")
    except PackageNotFoundError:
        return "0"


# -- discovery ------------------------------------------------------------------------


async def webfinger_handler(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    resource = request.query.get("resource", "")
    if not resource:
        raise MalformedActivity("give ?resource=acct:name@host")
    async with request.app[ENGINE].connect() as conn:
        if resource.startswith(("http://", "https://")):
            actor = await actors.get(conn, resource)
        else:
            user, at_host = parse_handle(resource)
            if at_host.lower() != config.host.lower():
                raise NotFound(f"{resource} is not on this node ({config.host})")
            actor = await actors.by_username(conn, user)
    actor = await groups.webfinger_actor(request.app[ENGINE], config, resource, actor)
    if actor is None:
        raise NotFound(f"no account {resource} on this node")
    document = webfinger_document(
        f"acct:{actor.username}@{config.host}", actor.iri,
        actor.iri if actor.kind != "application" else config.base_url,
        f"{config.base_url}/authorize_interaction?uri={{uri}}", aliases=[actor.iri],
    )  # fmt: skip
    return _json(document, "application/jrd+json", headers=CORS)


async def host_meta_handler(request: web.Request) -> web.Response:
    return web.Response(text=host_meta_xml(request.app[CONFIG].base_url), content_type="application/xrd+xml")


async def nodeinfo_links_handler(request: web.Request) -> web.Response:
    base = request.app[CONFIG].base_url
    links = [{"rel": f"http://nodeinfo.diaspora.software/ns/schema/{v}", "href": f"{base}/nodeinfo/{v}"}
             for v in ("2.0", "2.1")]  # fmt: skip
    # FEP-2677: the node's own actor, for instance-level follows and signed fetches.
    links.append({"rel": "https://www.w3.org/ns/activitystreams#Application", "href": actors.node_actor_iri(
        request.app[CONFIG])})  # fmt: skip
    return _json({"links": links}, "application/json", headers=CORS)


async def nodeinfo_handler(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    schema = request.match_info["version"]
    async with request.app[ENGINE].connect() as conn:
        initiatives = await repo.count(conn, "initiative", config.graph_iri)
        posts = sum([await repo.count(conn, k, config.graph_iri) for k in ("event", "need", "offer", "resource")])
    software: dict[str, str] = {"name": "oscartes", "version": software_version()}
    if schema == "2.1":
        software["repository"] = "https://codeberg.org/oscartes/oscartes"
    body = {
        "version": schema, "software": software, "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": []}, "openRegistrations": False,
        "usage": {"users": {"total": initiatives, "activeMonth": initiatives, "activeHalfyear": initiatives},
                  "localPosts": posts},
        "metadata": {"nodeName": config.node_name, "license": config.license},
    }  # fmt: skip
    profile = f'application/json; profile="http://nodeinfo.diaspora.software/ns/schema/{schema}#"'
    response = _json(body, "application/json", headers=CORS)
    response.headers["Content-Type"] = profile
    return response


# -- actors ---------------------------------------------------------------------------


def node_actor_doc(config: Config, actor: actors.LocalActor) -> dict[str, Any]:
    iri = actor.iri
    return {
        "@context": [AS2_CONTEXT, SECURITY_CONTEXT, config.context_url, groups.FEATURED_COLLECTIONS_TERM],
        "id": iri, "type": "Application", "featuredCollections": f"{config.base_url}/actor/collections",
        "preferredUsername": actor.username, "name": config.node_name,
        "summary": "Le compte du nœud : il signe les requêtes du nœud et suit les autres nœuds.",
        "url": f"{config.base_url}/", "inbox": f"{iri}/inbox", "outbox": f"{iri}/outbox",
        "followers": f"{iri}/followers", "following": f"{iri}/following",
        "endpoints": {"sharedInbox": f"{config.base_url}/inbox"},
        "publicKey": {"id": actor.key_id, "owner": iri, "publicKeyPem": actor.public_pem},
        "manuallyApprovesFollowers": config.follow_policy != "open", "discoverable": False, "indexable": False,
        "osc:dataset": config.graph_iri,
    }  # fmt: skip


async def node_actor_handler(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    async with request.app[ENGINE].connect() as conn:
        actor = await actors.get(conn, actors.node_actor_iri(config))
    assert actor is not None  # made at start
    return _json(node_actor_doc(config, actor))


async def _actor_of(request: web.Request) -> actors.LocalActor:
    config = request.app[CONFIG]
    slug, group = request.match_info.get("slug"), request.match_info.get("group")
    iri = (f"{config.base_url}/groups/{group}" if group else f"{config.base_url}/initiatives/{slug}" if slug
           else actors.node_actor_iri(config))  # fmt: skip
    async with request.app[ENGINE].connect() as conn:
        actor = await actors.get(conn, iri)
    if actor is None:
        raise NotFound(f"no actor {iri}")
    return actor


async def collection_handler(request: web.Request) -> web.Response:
    actor = await _actor_of(request)
    what = request.match_info["what"]
    iri = f"{actor.iri}/{what}"
    async with request.app[ENGINE].connect() as conn:
        if what in ("followers", "following"):
            members = await (federate.followers if what == "followers" else federate.following)(conn, actor.iri)
            body: dict[str, Any] = {"@context": AS2_CONTEXT, "id": iri, "type": "OrderedCollection",
                                    "totalItems": len(members)}  # fmt: skip
            if request.app[CONFIG].follower_lists_public:
                body["orderedItems"] = members
            return _json(body)
        if what == "featured":
            owned = await repo.owned(conn, actor.iri, ("event", "need", "offer"))
            items = [iri_ for _, iri_ in reversed(owned)][:PAGE]
            return _json({"@context": AS2_CONTEXT, "id": iri, "type": "OrderedCollection",
                          "totalItems": len(items), "orderedItems": items})  # fmt: skip
        return await _outbox(request, conn, actor.iri, iri)


async def _outbox(request: web.Request, conn: Any, actor: str, iri: str) -> web.Response:
    public = (activities.c.actor == actor) & activities.c.public
    total = int((await conn.execute(select(func.count()).select_from(activities).where(public))).scalar_one())
    if "page" not in request.query:
        return _json({"@context": AS2_CONTEXT, "id": iri, "type": "OrderedCollection", "totalItems": total,
                      "first": f"{iri}?page=true"})  # fmt: skip
    query = select(activities.c.id, activities.c.doc).where(public)
    before = request.query.get("before", "")
    if before.isdigit():
        query = query.where(activities.c.id < int(before))
    rows = (await conn.execute(query.order_by(activities.c.id.desc()).limit(PAGE + 1))).all()
    items = [{k: v for k, v in json.loads(r.doc).items() if k != "@context"} for r in rows[:PAGE]]
    page_id = f"{iri}?page=true" + (f"&before={before}" if before else "")
    page: dict[str, Any] = {"@context": AS2_CONTEXT, "id": page_id, "type": "OrderedCollectionPage",
                            "partOf": iri, "totalItems": total, "orderedItems": items}  # fmt: skip
    if len(rows) > PAGE:
        page["next"] = f"{iri}?page=true&before={rows[PAGE - 1].id}"
    return _json(page)


async def activity_handler(request: web.Request) -> web.Response:
    iri = f"{request.app[CONFIG].base_url}/activities/{request.match_info['uuid']}"
    async with request.app[ENGINE].connect() as conn:
        row = (await conn.execute(select(activities.c.doc).where(activities.c.iri == iri))).first()
    if row is None:
        raise NotFound(f"no activity {iri}")
    return _json(json.loads(row.doc))


# -- inbox ----------------------------------------------------------------------------


async def inbox_handler(request: web.Request) -> web.Response:
    """Verify, store, answer 202; a worker does the rest."""
    config = request.app[CONFIG]
    shared = request.path == "/inbox"
    recipient = f"{config.base_url}/inbox" if shared else (await _actor_of(request)).iri
    if request.content_type not in INBOX_TYPES:
        raise UnsupportedMediaType(f"an inbox takes application/activity+json, not {request.content_type!r}")
    body = await request.read()
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedActivity(f"the body is not JSON: {exc}") from exc
    env = envelope(doc)
    check_authority(env)  # refused at the door too: nothing forged is stored
    remote_host = host(env.actor)
    if await request.app[BLOCKS].blocked(remote_host):
        raise Refused(f"{remote_host} is blocked by this node")
    wait = None if await request.app[BLOCKS].copied(remote_host) else request.app[LIMITER].take(remote_host)
    if wait is not None:
        raise TooManyRequests(f"too many activities from {remote_host}", wait)
    if env.type == "Delete" and env.object_id == env.actor:
        async with request.app[ENGINE].connect() as conn:
            if await known(conn, env.actor) is None:
                return web.Response(status=202)  # an account we never knew is gone: nothing to fetch
    verified = await sig.verify_request(
        request.method, config.base_url + request.raw_path, request.headers, body,
        request.app[REMOTE].resolve_key, window=timedelta(seconds=config.signature_window_seconds),
    )  # fmt: skip
    if verified.owner != env.actor:
        raise SignatureError(f"signed by {verified.owner}'s key, but the activity's actor is {env.actor}")
    now = now_utc()
    # Durable before the 202; the same activity id again is skipped: nothing changes.
    await request.app[INBOX_WRITER].insert({
        "activity_id": env.id or None, "activity_type": env.type, "actor": env.actor, "recipient": recipient,
        "key_id": verified.key_id, "body": body.decode("utf-8"), "state": "pending", "attempts": 0,
        "last_error": None, "locked_until": None, "next_attempt_at": now, "created_at": now})  # fmt: skip
    request.app[INBOX_WORKER].kick()
    return web.Response(status=202)


class TooManyRequests(NodeError):
    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, retry_after: float) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


def add_routes(app: web.Application) -> None:
    app.router.add_get("/.well-known/webfinger", webfinger_handler)
    app.router.add_get("/.well-known/host-meta", host_meta_handler)
    app.router.add_get("/.well-known/nodeinfo", nodeinfo_links_handler)
    app.router.add_get("/nodeinfo/{version:2\\.0|2\\.1}", nodeinfo_handler)
    app.router.add_get("/actor", node_actor_handler)
    app.router.add_post("/inbox", inbox_handler)
    app.router.add_post("/actor/inbox", inbox_handler)
    app.router.add_post("/initiatives/{slug:[a-z0-9_]{1,64}}/inbox", inbox_handler)
    collections = "{what:followers|following|outbox|featured}"
    app.router.add_get(f"/actor/{collections}", collection_handler)
    app.router.add_get(f"/initiatives/{{slug:[a-z0-9_]{{1,64}}}}/{collections}", collection_handler)
    app.router.add_get("/activities/{uuid:[0-9a-f-]{36}}", activity_handler)

