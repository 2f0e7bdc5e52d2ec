"""Domain blocks, read at every inbox POST and delivery: kept in memory, refreshed from SQL
every few seconds (a CLI may change them) and at once when this process changes them."""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from node.storage.tables import domain_blocks

REFRESH_SECONDS = 5.0


class DomainBlocks:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._domains: frozenset[str] = frozenset()
        self._loaded_at = float("-inf")

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")

    async def blocked(self, host: str) -> bool:
        """`host` may carry a port; a block on example.org covers its subdomains too."""
        if time.monotonic() - self._loaded_at > REFRESH_SECONDS:
            async with self.engine.connect() as conn:
                self._domains = frozenset((await conn.execute(select(domain_blocks.c.domain))).scalars())
            self._loaded_at = time.monotonic()
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        parts = name.lower().split(".")
        return any(".".join(parts[i:]) in self._domains for i in range(len(parts)))
