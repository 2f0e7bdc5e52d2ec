"""The child process a query runs in: its outcomes, its memory cap, and a stuck child seen as such."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from node.sparql import isolate
from node.sparql.errors import QueryRefused

pytestmark = pytest.mark.skipif(not isolate.AVAILABLE, reason="queries run in child processes on Linux only")


async def run(work: object, memory_bytes: int = 0, seconds: float = 10.0) -> tuple[str, bytes, int]:
    child = isolate.fork(work, memory_bytes)  # type: ignore[arg-type]
    try:
        how, data = await isolate.collect(child, time.monotonic() + seconds)
    finally:
        isolate.kill(child)
        status = await asyncio.to_thread(isolate.reap, child)
    return how, data, status


async def test_an_answer_and_an_error_come_back() -> None:
    import pickle

    how, data, _ = await run(lambda: {"rows": [1, 2, 3]})
    assert how == "done" and pickle.loads(data) == ("answer", {"rows": [1, 2, 3]})

    def refuse() -> None:
        raise QueryRefused("no")

    how, data, _ = await run(refuse)
    kind, error = pickle.loads(data)
    assert kind == "error" and isinstance(error, QueryRefused) and error.detail == "no"


async def test_the_memory_cap_stops_the_child() -> None:
    import pickle

    how, data, _ = await run(lambda: bytearray(512 * 2**20), memory_bytes=64 * 2**20)
    assert how == "done" and pickle.loads(data) == ("memory", None)


async def test_the_deadline_kills_the_child() -> None:
    how, data, status = await run(lambda: time.sleep(60), seconds=0.3)
    assert (how, data) == ("deadline", b"") and isolate.describe(status) == "signal SIGKILL"


async def test_a_child_waiting_on_a_lock_held_at_the_fork_is_seen_stuck() -> None:
    lock = threading.Lock()
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with lock:
            held.set()
            release.wait()

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait()
    try:
        how, _, _ = await run(lock.acquire, seconds=10)
    finally:
        release.set()
        thread.join()
    assert how == "stuck"
    # A busy child is not stuck.
    how, _, _ = await run(lambda: sum(range(3 * 10**7)), seconds=30)
    assert how == "done"
