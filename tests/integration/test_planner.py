"""SQLite gets planner statistics and keeps them in step (their effect on search: bench/, docs/performance.md)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from node.storage.db import make_engine
from node.workers.planner import PlannerStatistics, stale
from tests import samples
from tests.integration.conftest import start_node, stop_node


def test_statistics_go_stale_with_a_tenth_more_or_fewer_records() -> None:
    assert stale(None, 0)
    assert not stale(1000, 1100) and stale(1000, 1101) and stale(1000, 899)
    assert stale(0, 1)


async def test_statistics_follow_the_records(data_dir: Path) -> None:
    node = await start_node(data_dir, "")
    engine = make_engine(node.config.effective_database_url)
    try:
        planner = PlannerStatistics(engine)
        await planner.run_once()  # whatever the start left, the statistics now match the records
        assert await planner.run_once() == 0, "nothing changed: nothing to gather"
        for n in range(3):
            await node.create("initiatives", samples.initiative(f"initiative_{n}", name=f"Initiative {n}"))
        assert await planner.run_once() == 1
        async with engine.connect() as conn:
            stat = (await conn.execute(text("SELECT stat FROM sqlite_stat1 WHERE tbl = 'records' LIMIT 1"))).scalar()
        assert stat is not None and int(str(stat).split()[0]) == 3
        # a new planner (a restart) reads how many records the last statistics saw
        assert await PlannerStatistics(engine).run_once() == 0
    finally:
        await engine.dispose()
        await stop_node(node)
