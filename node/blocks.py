"""Domain blocks, read at every inbox POST and delivery: kept in memory, refreshed from SQL
every few seconds (a CLI may change them) and at once when this process changes them."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from node.convert.common import now_utc
from node.storage.tables import domain_blocks, origins

REFRESH_SECONDS = 5.0


async def set_block(conn: AsyncConnection, domain: str, *, blocked: bool, reason: str = "") -> str:
    """Block or unblock a domain (the CLI and the API); returns the normalised domain."""
    domain = domain.lower().strip()
    await conn.execute(delete(domain_blocks).where(domain_blocks.c.domain == domain))
    if blocked:
        await conn.execute(insert(domain_blocks).values(domain=domain, reason=reason, created_at=now_utc()))
    return domain


async def list_blocks(conn: AsyncConnection, *, after: str | None = None, limit: int | None = None) -> list[Any]:
    """By domain; from the one after `after`, `limit` of them, when given (the API pages)."""
    query = select(domain_blocks).order_by(domain_blocks.c.domain).limit(limit)
    if after is not None:
        query = query.where(domain_blocks.c.domain > after)
    return list((await conn.execute(query)).all())


class DomainBlocks:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._domains: frozenset[str] = frozenset()
        self._copied: frozenset[str] = frozenset()
        self._loaded_at = float("-inf")

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")

    async def copied(self, host: str) -> bool:
        """A host this node copies (a followed node, or one learned through its relay): its
        news is the directory itself, so the per-host inbox rate limit does not apply."""
        await self._refresh()
        return host.lower() in self._copied

    async def _refresh(self) -> None:
        if time.monotonic() - self._loaded_at > REFRESH_SECONDS:
            async with self.engine.connect() as conn:
                self._domains = frozenset((await conn.execute(select(domain_blocks.c.domain))).scalars())
                held = select(origins.c.host).where(origins.c.policy != "blocked", origins.c.sync_state != "frozen")
                self._copied = frozenset(h.lower() for h in (await conn.execute(held)).scalars())
            self._loaded_at = time.monotonic()

    async def blocked(self, host: str) -> bool:
        """`host` may carry a port; a block on example.org covers its subdomains too."""
        await self._refresh()
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        parts = name.lower().split(".")
        return any(".".join(parts[i:]) in self._domains for i in range(len(parts)))
