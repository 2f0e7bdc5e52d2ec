"""A real node on loopback: its own data folder, database, RDF store and HTTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from node.app import create_app
from node.auth import create_token
from node.cli import _init
from node.config import Config, load_config
from node.storage.db import make_engine
from tests.conftest import free_port

AS2 = "application/activity+json"


@dataclass
class RunningNode:
    config: Config
    base: str
    http: aiohttp.ClientSession
    server: TestServer
    admin: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin}"}

    async def token(self, role: str, initiatives: list[str]) -> str:
        engine = make_engine(self.config.effective_database_url)
        async with engine.begin() as conn:
            token = await create_token(conn, role, initiatives)  # type: ignore[arg-type]
        await engine.dispose()
        return token

    async def post(self, collection: str, doc: dict[str, Any], token: str | None = None) -> aiohttp.ClientResponse:
        headers = {"Authorization": f"Bearer {token or self.admin}"}
        return await self.http.post(f"{self.base}/api/{collection}", json=doc, headers=headers)

    async def create(self, collection: str, doc: dict[str, Any]) -> dict[str, Any]:
        async with await self.post(collection, doc) as response:
            body: dict[str, Any] = await response.json(content_type=None)
            assert response.status == 201, body
            return body


async def start_node(data_dir: Path, database_url: str, host: str = "127.0.0.1", port: int = 0,
                     **env: str) -> RunningNode:  # fmt: skip
    port = port or free_port(host)
    config = load_config(data_dir, base_url=f"http://{host}:{port}", database_url=database_url or None,
                         env=env)  # fmt: skip
    await _init(config)
    server = TestServer(create_app(config), host=host, port=port)
    await server.start_server()
    engine = make_engine(config.effective_database_url)
    async with engine.begin() as conn:
        admin = await create_token(conn, "admin", [])
    await engine.dispose()
    http = aiohttp.ClientSession()
    return RunningNode(config, config.base_url, http, server, admin)


async def stop_node(node: RunningNode) -> None:
    await node.http.close()
    await node.server.close()


@pytest.fixture
async def node(data_dir: Path, database_url: str) -> AsyncIterator[RunningNode]:
    running = await start_node(data_dir, database_url)
    yield running
    await stop_node(running)
