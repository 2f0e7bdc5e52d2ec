"""Other nodes whose directories this node copies: finding them (FEP-2677, then their VoID),
following them, and the host's policy for each (trusted, limited, blocked; relayed or not)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Select, delete, func, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from federation.activity import host
from federation.errors import MalformedActivity
from federation.fetch import GuardedClient
from node import social
from node.config import Config
from node.convert.common import now_utc
from node.errors import BadRequest, NotFound
from node.provenance import meta_graph
from node.remote import Remote
from node.storage import repo
from node.storage.tables import origins, records, remote_actors
from vocab import OSC
from vocab.jsonld import JsonLdSyntaxError, expand
from vocab.loader import make_document_loader

APPLICATION_REL = "https://www.w3.org/ns/activitystreams#Application"
POLICIES = ("trusted", "limited", "blocked")
_VOID, _DCT, _PROV = "http://rdfs.org/ns/void#", "http://purl.org/dc/terms/", "http://www.w3.org/ns/prov#"


class NotANode(MalformedActivity):
    title = "Not a directory node"


@dataclass(frozen=True)
class Discovered:
    actor: str
    graph: str
    base_url: str
    changes: str
    license: str
    name: str


def dataset_of(actor_doc: Mapping[str, Any]) -> str:
    """The dataset an actor publishes (`osc:dataset`), or "" for any other actor."""
    for key in ("osc:dataset", "dataset", OSC + "dataset"):
        value = actor_doc.get(key)
        if isinstance(value, str):
            return value
    return ""


def read_void(doc: Mapping[str, Any], graph: str) -> tuple[str, str, str, str]:
    """(changes URL, base URL, licence, title) of a VoID description, read by predicate IRI."""
    try:
        nodes = expand(dict(doc), loader=make_document_loader({}))
    except JsonLdSyntaxError as exc:
        raise NotANode(f"{graph}: the dataset description is not JSON-LD ({exc})") from exc
    node = next((n for n in nodes if n.get("@id") == graph), None)
    if node is None:
        raise NotANode(f"{graph}: the dataset description does not describe {graph}")

    def first(key: str, part: str = "@id") -> str:
        values = node.get(key, [])
        value = values[0].get(part, "") if values and isinstance(values[0], Mapping) else ""
        return value if isinstance(value, str) else ""

    return (first(OSC + "changes"), first(_VOID + "uriSpace", "@value").rstrip("/"),
            first(_DCT + "license"), first(_DCT + "title", "@value"))  # fmt: skip


async def node_actor_of(client: GuardedClient, url: str) -> str:
    """A node's root URL leads to its actor through NodeInfo (FEP-2677); any other URL is
    taken as the actor itself."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadRequest(f"follow a node by its http(s) URL, not {url!r}")
    if parts.path not in ("", "/"):
        return url
    _, links = await client.get_json(f"{parts.scheme}://{parts.netloc}/.well-known/nodeinfo",
                                     accept="application/json")  # fmt: skip
    for link in links.get("links", []):
        if isinstance(link, Mapping) and link.get("rel") == APPLICATION_REL and isinstance(link.get("href"), str):
            return str(link["href"])
    raise NotANode(f"{url} does not name its node actor in /.well-known/nodeinfo (FEP-2677)")


async def discover(client: GuardedClient, remote: Remote, actor_iri: str) -> Discovered:
    actor = await remote.actor(actor_iri, refresh=True)
    async with remote.engine.connect() as conn:
        row = (await conn.execute(select(remote_actors.c.doc).where(remote_actors.c.iri == actor.iri))).first()
    graph = dataset_of(json.loads(row.doc) if row else {})
    if not graph:
        raise NotANode(f"{actor.iri} publishes no directory (no osc:dataset)")
    _, void = await client.get_json(graph, accept="application/ld+json, application/json", sign=remote.sign)
    changes, base_url, license_iri, name = read_void(void, graph)
    for what, iri in (("dataset", graph), ("change stream", changes), ("URI space", base_url)):
        if not iri or host(iri) != host(actor.iri):
            raise NotANode(f"{actor.iri}: its {what} {iri or '(none)'} is not on its own host")
    return Discovered(actor.iri, graph, base_url, changes, license_iri, name)


async def register(conn: AsyncConnection, found: Discovered, now: datetime, *, followed: bool = False,
                   via: str | None = None) -> Any:  # fmt: skip
    """Create or refresh an origin's row; a new one is due for its bootstrap (at once when
    learned through a relay, on Accept when followed)."""
    described = {"actor": found.actor, "host": host(found.actor), "base_url": found.base_url,
                 "changes": found.changes, "license": found.license, "name": found.name}  # fmt: skip
    row = await get(conn, found.graph)
    if row is None:
        await conn.execute(insert(origins).values(
            graph=found.graph, **described, policy="trusted", relay=False, followed=followed, via=via,
            sync_state="bootstrap", state="waiting" if followed else "pending", attempts=0, next_attempt_at=now,
            created_at=now))  # fmt: skip
    else:
        values: dict[str, Any] = dict(described)
        if followed:
            values |= {"followed": True, "sync_state": "live" if row.cursor else "bootstrap"}
        await conn.execute(update(origins).where(origins.c.id == row.id).values(**values))
    return await get(conn, found.graph)


async def enqueue_provenance(conn: AsyncConnection, config: Config, now: datetime) -> None:
    """Rewrite the graph describing every named graph (node.provenance)."""
    await repo.enqueue_index(conn, "provenance", config.graph_iri, meta_graph(config.graph_iri), now)


def relayed_subsets(doc: Mapping[str, Any], graph: str) -> list[tuple[str, str]]:
    """(dataset, actor) of the other origins a node's VoID says it relays: a follower copies
    them from their origins themselves."""
    try:
        nodes = expand(dict(doc), loader=make_document_loader({}))
    except JsonLdSyntaxError:
        return []
    found: list[tuple[str, str]] = []
    for node in nodes:
        if node.get("@id") != graph:
            continue
        for subset in node.get(_VOID + "subset", []):
            relayed = [v.get("@value") for v in subset.get(OSC + "relayed", []) if isinstance(v, Mapping)]
            actor = [v.get("@id") for v in subset.get(_PROV + "wasAttributedTo", []) if isinstance(v, Mapping)]
            if True in relayed and actor and isinstance(subset.get("@id"), str) and isinstance(actor[0], str):
                found.append((subset["@id"], actor[0]))
    return found


async def get(conn: AsyncConnection, graph: str) -> Any:
    return (await conn.execute(select(origins).where(origins.c.graph == graph))).first()


async def find(conn: AsyncConnection, what: str) -> Any:
    """An origin by its dataset IRI, its actor IRI, its base URL or its host."""
    what = what.rstrip("/")
    c = origins.c
    query = select(origins).where(or_(c.graph == what, c.actor == what, c.base_url == what, c.host == host(what),
                                      c.host == what))  # fmt: skip
    return (await conn.execute(query)).first()


async def for_actor(conn: AsyncConnection, actor: str) -> Any:
    """The origin an activity's actor speaks for: any actor on the origin's host."""
    return (await conn.execute(select(origins).where(origins.c.host == host(actor)))).first()


async def due_now(conn: AsyncConnection, graph: str, now: datetime) -> None:
    await conn.execute(update(origins).where(origins.c.graph == graph, origins.c.policy != "blocked")
                       .values(state="pending", next_attempt_at=now, locked_until=None))  # fmt: skip


async def purge(conn: AsyncConnection, graph: str, now: datetime) -> int:
    """Forget an origin's records (rows, search text, then its named graph)."""
    ids = select(records.c.id).where(records.c.origin == graph)
    if conn.dialect.name == "postgresql":
        await conn.execute(text("DELETE FROM record_text WHERE record_id IN "
                                "(SELECT id FROM records WHERE origin = :g)"), {"g": graph})  # fmt: skip
    else:
        await conn.execute(text("DELETE FROM record_fts WHERE rowid IN (SELECT id FROM records WHERE origin = :g)"),
                           {"g": graph})  # fmt: skip
    removed = int((await conn.execute(delete(records).where(records.c.id.in_(ids)))).rowcount)
    await repo.enqueue_index(conn, "reindex", graph, graph, now)  # rebuilt from SQL: empty
    return removed


# -- the host's commands --------------------------------------------------------------


async def follow(config: Config, engine: AsyncEngine, client: GuardedClient, remote: Remote, url: str) -> Any:
    """The node actor follows another node; its directory is copied once it accepts."""
    found = await discover(client, remote, await node_actor_of(client, url))
    if found.graph == config.graph_iri:
        raise BadRequest("a node does not follow itself")
    async with engine.begin() as conn:
        await register(conn, found, now_utc(), followed=True)
        await enqueue_provenance(conn, config, now_utc())
    await social.follow(config, engine, client, remote, "node", found.actor)
    async with engine.connect() as conn:
        return await get(conn, found.graph)


async def unfollow(config: Config, engine: AsyncEngine, client: GuardedClient, remote: Remote, url: str,
                   purge_copy: bool) -> Any:  # fmt: skip
    """Undo the follow; the copy stays as a frozen snapshot, or is purged."""
    async with engine.connect() as conn:
        row = await find(conn, url)
    if row is None or not row.followed:
        raise NotFound(f"this node does not follow {url}")
    with contextlib.suppress(NotFound):  # a follow never recorded (refused): still stop copying
        await social.unfollow(config, engine, client, remote, "node", row.actor)
    now = now_utc()
    async with engine.begin() as conn:
        if purge_copy:
            await purge(conn, row.graph, now)
            await conn.execute(delete(origins).where(origins.c.id == row.id))
        else:
            await conn.execute(update(origins).where(origins.c.id == row.id).values(
                followed=False, sync_state="frozen", state="waiting", locked_until=None))  # fmt: skip
        await enqueue_provenance(conn, config, now)
        return row


async def set_policy(config: Config, engine: AsyncEngine, what: str, policy: str | None,
                     relay: bool | None) -> Any:  # fmt: skip
    if policy is not None and policy not in POLICIES:
        raise BadRequest(f"policy is one of {', '.join(POLICIES)}, not {policy!r}")
    now = now_utc()
    async with engine.begin() as conn:
        row = await find(conn, what)
        if row is None:
            raise NotFound(f"no origin {what} is known to this node")
        values: dict[str, Any] = {} if relay is None else {"relay": relay}
        if policy is not None and policy != row.policy:
            values["policy"] = policy
            if policy == "blocked":
                await purge(conn, row.graph, now)
                values |= {"state": "waiting", "cursor": None, "sync_state": "bootstrap"}
            elif row.policy == "blocked":  # unblocked: copied again from the start
                values |= {"state": "pending", "next_attempt_at": now, "cursor": None, "sync_state": "bootstrap"}
        if values:
            await conn.execute(update(origins).where(origins.c.id == row.id).values(**values))
            await enqueue_provenance(conn, config, now)
        return await get(conn, row.graph)


async def listing(conn: AsyncConnection, *, followed_only: bool = False, after: str | None = None,
                  limit: int | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """The origins by dataset IRI, each with its count of live records; a page of them when
    `after` (the last IRI of the previous page) or `limit` is given."""
    query = select(origins).order_by(origins.c.graph).limit(limit)
    if followed_only:
        query = query.where(origins.c.followed.is_(True))
    if after is not None:
        query = query.where(origins.c.graph > after)
    rows = (await conn.execute(query)).all()
    counts: dict[str, int] = dict((await conn.execute(
        select(records.c.origin, func.count())
        .where(records.c.deleted_at.is_(None), records.c.origin.in_([row.graph for row in rows]))
        .group_by(records.c.origin)
    )).all())  # fmt: skip
    return [describe(row, int(counts.get(row.graph, 0))) for row in rows]


def describe(row: Any, count: int | None = None) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "graph": row.graph, "actor": row.actor, "name": row.name, "license": row.license, "policy": row.policy,
        "relay": row.relay, "followed": row.followed, "via": row.via, "sync": row.sync_state,
        "retrieved": row.retrieved_at.isoformat() if row.retrieved_at else None, "error": row.last_error,
    }  # fmt: skip
    if count is not None:
        shown["records"] = count
    return shown


def blocked_graphs() -> Select[tuple[str]]:
    """The graphs of blocked origins, as a subquery (what answers over every origin leave out)."""
    return select(origins.c.graph).where(origins.c.policy == "blocked")


async def graphs_by_name(conn: AsyncConnection, config: Config) -> dict[str, str]:
    """Every name one may give an origin in a query (its dataset IRI, base URL, host, actor;
    without a trailing slash) -> its graph. Blocked origins are left out; this node is included."""
    names: dict[str, str] = {}
    rows = (await conn.execute(select(origins).where(origins.c.policy != "blocked"))).all()
    for row in rows:
        for key in (row.graph, row.base_url, row.host, row.actor):
            if key:
                names[key.rstrip("/")] = row.graph
    for key in (config.base_url, config.host, config.graph_iri):
        names[key.rstrip("/")] = config.graph_iri
    return names
