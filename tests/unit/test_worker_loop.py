"""The loop every worker runs stops when its task is cancelled, whatever it was doing."""

from __future__ import annotations

import asyncio

import pytest

from node.workers import Worker


class Idle(Worker):
    poll_seconds = 3600.0  # only a kick or a cancel wakes it

    def __init__(self) -> None:
        super().__init__()
        self.passed = asyncio.Event()

    async def run_once(self) -> int:
        self.passed.set()
        return 0


@pytest.mark.parametrize("ticks", range(6))
async def test_a_kick_racing_the_cancel_does_not_keep_the_worker_alive(ticks: int) -> None:
    """The shutdown cancels workers while other workers kick them (a delivery queued by the
    last inbox pass): however many loop turns apart the two land, the task ends."""
    worker = Idle()
    task = asyncio.create_task(worker.run_forever())
    await worker.passed.wait()
    await asyncio.sleep(0)  # now napping
    worker.kick()
    for _ in range(ticks):
        await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=2)
    assert task in done, f"the worker outlived its cancellation (cancel {ticks} turns after the kick)"
    assert task.cancelled()


async def test_a_cancel_during_the_nap_ends_the_worker() -> None:
    worker = Idle()
    task = asyncio.create_task(worker.run_forever())
    await worker.passed.wait()
    await asyncio.sleep(0.01)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=2)
    assert task in done and task.cancelled()
