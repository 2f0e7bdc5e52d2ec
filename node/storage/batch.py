"""Group commit for the inbox: concurrent POSTs wait a moment and share one transaction.

Each request still gets its answer only after its row is committed (durable before 202), but
SQLite commits once per batch instead of once per request, which is what bounds throughput.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)


class GroupInsert:
    def __init__(self, engine: AsyncEngine, table: Table, unique: str, max_batch: int = 500) -> None:
        self.engine, self.table, self.unique, self.max_batch = engine, table, unique, max_batch
        self._queue: asyncio.Queue[tuple[dict[str, Any], asyncio.Future[None]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def insert(self, row: dict[str, Any]) -> None:
        """Returns once the row is committed (a row whose unique key exists is skipped)."""
        if self._task is None:  # not started (CLI, tests): a transaction of its own
            await self._write([row])
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put((row, done))
        await done

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write([row for row, _ in batch])
            except Exception as exc:  # every waiter learns it; the next batch is tried afresh
                log.exception("group insert of %d rows failed", len(batch))
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for _, done in batch:
                if not done.done():
                    done.set_result(None)

    async def _write(self, rows: list[dict[str, Any]]) -> None:
        async with self.engine.begin() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            statement = dialect.insert(self.table).on_conflict_do_nothing(index_elements=[self.unique])
            await conn.execute(statement, rows)
