"""`serve` with OSCARTES_SEPARATE_WORKERS=1 and an `oscartes worker` process beside it."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from tests import samples
from tests.eventually import eventually
from tests.fakeap import FakeFediverse
from tests.integration.conftest import start_node, stop_node
from tests.integration.test_inbox_security import follow


async def _true(value: Any) -> Any:
    return value


async def test_worker_process_accepts_and_delivers(tmp_path: Path) -> None:
    env = {"OSCARTES_ALLOW_PRIVATE_ADDRESSES": "1", "OSCARTES_SEPARATE_WORKERS": "1"}
    node = await start_node(tmp_path / "n", "", host="127.0.0.2", **env)
    fake = await FakeFediverse("127.0.0.4").start()
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "node.cli", "worker", "--data", str(node.config.data_dir),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, env={**os.environ, **env},
    )  # fmt: skip
    try:
        await node.create("initiatives", samples.initiative())
        target = f"{node.base}/initiatives/repair_cafe_massy"
        alice = fake.actor("alice")
        assert (await fake.post(f"{target}/inbox", follow(alice, target), alice))[0] == 202
        await eventually(lambda: _true(fake.received("Accept")), what="the worker process sends the Accept")
        await node.create("events", samples.event())
        await eventually(lambda: _true(fake.received("Create")), what="the worker process delivers the Create")
    finally:
        worker.terminate()
        await worker.wait()
        await fake.stop()
        await stop_node(node)
