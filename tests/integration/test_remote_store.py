"""The index in a remote SPARQL 1.1 store: a real Oxigraph server (PyPI `oxigraph`) on loopback."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from node.graph import RemoteIndex, default_update_url
from node.keys import INDEX
from node.storage.db import make_engine
from node.storage.tables import index_jobs
from tests import samples
from tests.conftest import free_port
from tests.integration.conftest import start_node, stop_node


def oxigraph_binary() -> str:
    found = shutil.which("oxigraph") or str(Path(sys.executable).parent / "oxigraph")
    if not Path(found).exists():
        pytest.skip("the `oxigraph` server (PyPI package oxigraph, in the test extras) is not installed")
    return found


@pytest.fixture
def oxigraph_server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [oxigraph_binary(), "serve", "--location", str(tmp_path / "ox"), "--bind", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(url + "/query?query=ASK%7B%7D", timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.1)
    yield url + "/query"
    process.terminate()
    process.wait(timeout=10)


def test_update_url_defaults() -> None:
    assert default_update_url("http://h:7878/query") == "http://h:7878/update"
    assert default_update_url("http://h/ds/sparql") == "http://h/ds/update"
    assert default_update_url("http://h/ds") == "http://h/ds/update"
    with pytest.raises(ValueError, match="http"):
        RemoteIndex("file:///etc/passwd")


async def test_records_reach_a_remote_store(tmp_path: Path, oxigraph_server: str) -> None:
    node = await start_node(tmp_path / "node", "", OSCARTES_SPARQL_STORE=oxigraph_server)
    try:
        assert isinstance(node.server.app[INDEX], RemoteIndex)
        created = await node.create("initiatives", samples.initiative())
        await node.create("events", samples.event())
        remote = RemoteIndex(oxigraph_server)
        graph = node.config.graph_iri
        name = "<https://www.w3.org/ns/activitystreams#name>"
        query = f"SELECT ?n WHERE {{ GRAPH <{graph}> {{ <{created['id']}> {name} ?n }} }}"
        rows = await asyncio.to_thread(remote.select, query)
        assert [r["n"] for r in rows] == ["Repair Café de Massy"]
        async with node.http.delete(f"{node.base}/api/initiatives/repair_cafe_massy", headers=node.auth) as r:
            assert r.status == 200
        assert await asyncio.to_thread(remote.select, query) == []
        concepts = await asyncio.to_thread(
            remote.select, "SELECT (COUNT(*) AS ?n) WHERE { GRAPH <https://w3id.org/oscartes/vocab> { ?s ?p ?o } }"
        )
        assert int(concepts[0]["n"]) > 300
    finally:
        await stop_node(node)


async def test_unreachable_store_keeps_work_pending(tmp_path: Path) -> None:
    """SQL keeps the record and its index rows; nothing is lost while the store is down."""
    dead = f"http://127.0.0.1:{free_port()}/query"
    node = await start_node(tmp_path / "node", "", OSCARTES_SPARQL_STORE=dead)
    try:
        created = await node.create("initiatives", samples.initiative())
        async with node.http.get(created["id"], headers={"Accept": "text/turtle"}) as r:
            assert r.status == 200, "published from SQL even when the index is down"
        engine = make_engine(node.config.effective_database_url)
        async with engine.connect() as conn:
            rows = (await conn.execute(select(index_jobs).order_by(index_jobs.c.id))).all()
        await engine.dispose()
        assert [r.job for r in rows] == ["schemes", "provenance", "record"]
        assert all(r.state == "pending" and "unreachable" in r.last_error for r in rows)
    finally:
        await stop_node(node)
