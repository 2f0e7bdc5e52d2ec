"""Background workers: each advances durable rows and exposes run_once() for tests.

They share one shape: `claim()` takes due rows with a lease in one UPDATE ... RETURNING
(SKIP LOCKED on PostgreSQL), `work()` handles a batch, `run_forever()` loops, woken early
by `kick()` when this process wrote new rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Table, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

log = logging.getLogger(__name__)


async def claim(conn: AsyncConnection, table: Table, now: datetime, limit: int, lease: timedelta,
                returning: Sequence[str], *extra: ColumnElement[bool]) -> list[Any]:  # fmt: skip
    """Due rows of a work table, leased to the caller; a dead claimer's lease runs out."""
    c = table.c
    due = (
        select(c.id)
        .where(c.state == "pending", c.next_attempt_at <= now, or_(c.locked_until.is_(None), c.locked_until < now),
               *extra)  # fmt: skip
        .order_by(c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    result = await conn.execute(
        update(table).where(c.id.in_(due.scalar_subquery()))
        .values(locked_until=now + lease, attempts=c.attempts + 1)
        .returning(*(c[name] for name in returning))
    )  # fmt: skip
    return sorted(result.all(), key=lambda r: r.id)


class Worker:
    """The loop every worker runs: passes of `run_once()`, between them a nap or a kick."""

    poll_seconds = 2.0

    def __init__(self) -> None:
        self._wake = asyncio.Event()
        self.lock = asyncio.Lock()

    def kick(self) -> None:
        self._wake.set()

    async def run_once(self) -> int:
        raise NotImplementedError

    async def run_forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # a database hiccup must not kill the worker
                log.exception("%s pass failed", type(self).__name__)
            # Not asyncio.wait_for: on Python 3.11 it swallows a cancel that lands as a kick wakes
            # the nap, and the shutdown then waits forever for a worker that goes on looping.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
            self._wake.clear()
