"""Following from this node: an initiative (or the node) follows an actor anywhere, by URL or
@user@host. The Follow is written as durable rows; the deliverer sends it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from federation.errors import MalformedActivity
from federation.fetch import GuardedClient
from federation.webfinger import resolve_handle
from node import actors, federate
from node.config import Config
from node.convert.common import now_utc
from node.errors import NotFound
from node.remote import Remote


def local_actor_iri(config: Config, who: str) -> str:
    """An initiative's slug, the node's own username, or a full IRI."""
    if who.startswith(("http://", "https://")):
        return who
    return actors.node_actor_iri(config) if who == actors.NODE_USERNAME else f"{config.base_url}/initiatives/{who}"


async def resolve_target(config: Config, client: GuardedClient, target: str) -> str:
    if target.startswith(("http://", "https://")):
        return target
    if "@" not in target:
        raise MalformedActivity(f"follow a URL or @user@host, not {target!r}")
    # Handles go through https; a node allowed private addresses runs among test peers on http.
    return await resolve_handle(client, target, scheme="http" if config.allow_private else "https")


async def follow(config: Config, engine: AsyncEngine, client: GuardedClient, remote: Remote, who: str,
                 target: str) -> str:  # fmt: skip
    """Returns the Follow's id (it dereferences, as Fedify checks)."""
    follower = local_actor_iri(config, who)
    async with engine.connect() as conn:
        if await actors.get(conn, follower) is None:
            raise NotFound(f"{follower} is not an actor of this node")
    target_actor = await remote.actor(await resolve_target(config, client, target))
    now = now_utc()
    follow_id = federate.activity_iri(config)
    async with engine.begin() as conn:
        await federate.set_follow(conn, follower, target_actor.iri, follow_id, "pending", now)
        await federate.send(conn, config, follower, "Follow", target_actor.iri, target_actor.inbox, now, follow_id)
    return follow_id


async def unfollow(config: Config, engine: AsyncEngine, client: GuardedClient, remote: Remote, who: str,
                   target: str) -> str:  # fmt: skip
    follower = local_actor_iri(config, who)
    target_actor = await remote.actor(await resolve_target(config, client, target))
    now = now_utc()
    async with engine.begin() as conn:
        row = await federate.follow_row(conn, follower, target_actor.iri)
        if row is None:
            raise NotFound(f"{follower} does not follow {target_actor.iri}")
        follow = {"id": row.activity_id, "type": "Follow", "actor": follower, "object": target_actor.iri}
        await federate.remove_follow(conn, follower, target_actor.iri)
        return await federate.send(conn, config, follower, "Undo", follow, target_actor.inbox, now)


async def decide(config: Config, engine: AsyncEngine, remote: Remote, who: str, follower: str, accept: bool) -> str:
    """The host approves (or refuses) a pending follower of an actor that approves manually."""
    target = local_actor_iri(config, who)
    now = now_utc()
    requester = await remote.actor(follower)
    async with engine.begin() as conn:
        row = await federate.follow_row(conn, requester.iri, target)
        if row is None:
            raise NotFound(f"{follower} has not asked to follow {target}")
        follow = {"id": row.activity_id, "type": "Follow", "actor": requester.iri, "object": target}
        if accept:
            await federate.set_follow(conn, requester.iri, target, row.activity_id, "accepted", now)
        else:
            await federate.remove_follow(conn, requester.iri, target)
        return await federate.send(conn, config, target, "Accept" if accept else "Reject", follow,
                                   requester.inbox, now)  # fmt: skip
