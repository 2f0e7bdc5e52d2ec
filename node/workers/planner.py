"""Keeps SQLite's query-planner statistics in step with the records.

SQLite plans without statistics until ANALYZE runs: a search for one commune among 100,000
initiatives then walks the kind index instead of the commune's (about 100x slower, measured in
docs/performance.md). This worker runs ANALYZE at start when none were gathered, and again
when the number of records has changed by a tenth since. PostgreSQL's autovacuum does the
same there, so the worker only watches SQLite.
"""

from __future__ import annotations

import logging

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from node.storage.tables import records
from node.workers import Worker

log = logging.getLogger(__name__)

#: The relative change in the number of records that makes the statistics stale.
STALE_CHANGE = 0.1


def stale(analysed: int | None, now: int) -> bool:
    if analysed is None:
        return True
    return abs(now - analysed) > STALE_CHANGE * max(analysed, 1)


async def _analysed_rows(conn: AsyncConnection) -> int | None:
    """The number of records the last ANALYZE saw (its statistics start with it), if any ran."""
    held = await conn.execute(text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'"))
    if held.first() is None:
        return None
    stat = (await conn.execute(text("SELECT stat FROM sqlite_stat1 WHERE tbl = 'records' LIMIT 1"))).scalar()
    return int(str(stat).split()[0]) if stat else None


class PlannerStatistics(Worker):
    poll_seconds = 600.0

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__()
        self.engine = engine
        self.analysed: int | None = None

    async def run_once(self) -> int:
        if self.engine.dialect.name != "sqlite":
            return 0
        async with self.engine.connect() as conn:
            count = int((await conn.execute(select(func.count()).select_from(records))).scalar_one())
            if self.analysed is None:
                self.analysed = await _analysed_rows(conn)
            if not stale(self.analysed, count):
                return 0
            # A full pass (under a second for 130,000 records): sampled statistics (analysis_limit)
            # see a thousand rows per kind and send place searches down the kind index.
            await conn.execute(text("ANALYZE"))
            await conn.commit()
        log.info("planner statistics gathered over %d records", count)
        self.analysed = count
        return 1
