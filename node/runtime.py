"""The pieces that talk to other servers, built the same way for `serve` and for the CLI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

from sqlalchemy.ext.asyncio import AsyncEngine

from federation import signatures as sig
from federation.fetch import FetchPolicy, GuardedClient, Signer
from node import actors
from node.config import Config
from node.remote import Remote
from node.workers.delivery import Deliverer


@dataclass(frozen=True)
class Outside:
    client: GuardedClient
    remote: Remote
    deliverer: Deliverer


def signer(config: Config, actor: actors.LocalActor) -> Signer:
    """Signed GETs by the node's actor: what authorized-fetch servers ask of us."""
    key = actors.private_key(config, actor)

    def sign(method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> Mapping[str, str]:
        return sig.sign_request(method, url, headers, body, actor.key_id, key)

    return sign


@asynccontextmanager
async def outside(config: Config, engine: AsyncEngine, user_agent: str) -> AsyncIterator[Outside]:
    policy = FetchPolicy.allowing_private() if config.allow_private else FetchPolicy()
    client = GuardedClient(replace(policy, user_agent=user_agent))
    await client.start()
    try:
        async with engine.begin() as conn:
            node_actor = await actors.ensure(conn, config, actors.node_actor_iri(config), actors.NODE_USERNAME,
                                             "application")  # fmt: skip
        remote = Remote(engine, client, signer(config, node_actor))
        yield Outside(client, remote, Deliverer(config, engine, client))
    finally:
        await client.close()
