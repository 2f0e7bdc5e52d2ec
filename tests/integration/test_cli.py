"""The `oscartes` command as operators run it: real processes, real files, a real server."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pyoxigraph as ox
import pytest

from tests.conftest import free_port

COMMANDS = ["init", "serve", "demo", "token", "reindex", "export", "validate"]


def oscartes(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node.cli", *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


@pytest.mark.parametrize("command", [[], *[[c] for c in COMMANDS], ["token", "create"]])
def test_help_everywhere(command: list[str]) -> None:
    result = oscartes(*command, "--help")
    assert result.returncode == 0
    assert "usage: oscartes" in result.stdout


def test_clear_errors_and_exit_codes(tmp_path: Path) -> None:
    env = {"OSCARTES_DATA": ""}
    result = oscartes("demo", env=env)
    assert result.returncode == 2 and "no data folder" in result.stderr
    result = oscartes("demo", "--data", str(tmp_path / "empty"))
    assert result.returncode == 1 and "oscartes init" in result.stderr
    result = oscartes("init", "--data", str(tmp_path / "n"), "--base-url", "ftp://x")
    assert result.returncode == 2 and "base URL" in result.stderr
    assert oscartes("init", "--data", str(tmp_path / "n")).returncode == 0
    result = oscartes("token", "create", "--data", str(tmp_path / "n"), "--role", "editor")
    assert result.returncode == 1 and "--initiative" in result.stderr
    result = oscartes("token", "create", "--data", str(tmp_path / "n"), "--role", "editor", "--initiative", "nope")
    assert result.returncode == 1 and "no initiative" in result.stderr
    result = oscartes("export", "--data", str(tmp_path / "n"), "--format", "xml")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_init_demo_token_export(tmp_path: Path) -> None:
    data = str(tmp_path / "node")
    base = "http://127.0.0.1:8999"
    assert oscartes("init", "--data", data, "--base-url", base).returncode == 0
    first = oscartes("demo", "--data", data)
    assert first.returncode == 0, first.stderr
    assert "records created" in first.stdout
    again = oscartes("demo", "--data", data)
    assert " 0 records created" in again.stdout, "the demo loads once"
    token = oscartes("token", "create", "--data", data, "--role", "admin")
    assert token.returncode == 0 and token.stdout.startswith("osc_")
    editor = oscartes("token", "create", "--data", data, "--role", "editor", "--initiative",
                      f"{base}/initiatives/" + _first_initiative(data))  # fmt: skip
    assert editor.returncode == 0, editor.stderr

    nquads = oscartes("export", "--data", data, "--format", "nquads")
    quads = list(ox.parse(nquads.stdout.encode(), format=ox.RdfFormat.N_QUADS))
    assert len(quads) > 1000
    assert {q.graph_name.value for q in quads} == {f"{base}/dataset"}
    turtle = oscartes("export", "--data", data, "--format", "turtle")
    triples = list(ox.parse(turtle.stdout.encode(), format=ox.RdfFormat.TURTLE))
    assert len(triples) == len(quads)
    rows = list(csv.DictReader(io.StringIO(oscartes("export", "--data", data, "--format", "csv").stdout)))
    kinds = {row["kind"] for row in rows}
    assert {"initiative", "event", "need", "offer"} <= kinds
    assert all(row["id"].startswith(base) for row in rows)


def _first_initiative(data: str) -> str:
    rows = csv.DictReader(io.StringIO(oscartes("export", "--data", data, "--format", "csv").stdout))
    return next(r["id"] for r in rows if r["kind"] == "initiative").rsplit("/", 1)[1]


async def _wait_up(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(url)
            await asyncio.sleep(0.2)


async def test_read_commands_work_while_serve_runs(tmp_path: Path) -> None:
    data = str(tmp_path / "node")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    assert oscartes("init", "--data", data, "--base-url", base).returncode == 0
    server = subprocess.Popen(  # noqa: ASYNC220 - a long-lived server, not awaited here
        [sys.executable, "-m", "node.cli", "serve", "--data", data, "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        await _wait_up(base + "/")
        loaded = await asyncio.to_thread(oscartes, "demo", "--data", data)
        assert loaded.returncode == 0 and "the running server indexes them" in loaded.stdout, loaded.stderr
        token = await asyncio.to_thread(oscartes, "token", "create", "--data", data, "--role", "admin")
        assert token.returncode == 0
        export = await asyncio.to_thread(oscartes, "export", "--data", data, "--format", "nquads")
        assert export.returncode == 0 and export.stdout.count("\n") > 1000
        reindex = await asyncio.to_thread(oscartes, "reindex", "--data", data)
        assert reindex.returncode == 0 and "queued" in reindex.stdout
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "/initiatives", headers={"Accept": "application/activity+json"}) as r:
                assert (await r.json(content_type=None))["totalItems"] > 20
            auth = {"Authorization": f"Bearer {token.stdout.strip()}"}
            async with http.post(base + "/api/places", json={"name": "Salle"}, headers=auth) as r:
                assert r.status == 201
    finally:
        server.terminate()
        server.wait(timeout=30)
    # the server indexed what the CLI wrote: nothing is left pending
    done = await asyncio.to_thread(oscartes, "reindex", "--data", data)
    assert done.returncode == 0 and "reindexed" in done.stdout


def test_tokens_can_be_listed_and_revoked(tmp_path: Path) -> None:
    data = str(tmp_path / "node")
    assert oscartes("init", "--data", data).returncode == 0
    secret = oscartes("token", "create", "--data", data, "--role", "admin", "--label", "laptop").stdout.strip()
    listed = oscartes("token", "list", "--data", data).stdout
    assert '"label": "laptop"' in listed and secret not in listed and '"revoked": false' in listed
    assert oscartes("token", "revoke", "--data", data, "1").returncode == 0
    assert '"revoked": true' in oscartes("token", "list", "--data", data).stdout
    missing = oscartes("token", "revoke", "--data", data, "99")
    assert missing.returncode == 1 and "no token with id 99" in missing.stderr


def test_validate_reports_what_breaks_the_shapes(tmp_path: Path) -> None:
    data = str(tmp_path / "node")
    base = "http://127.0.0.1:8999"
    assert oscartes("init", "--data", data, "--base-url", base).returncode == 0
    assert oscartes("demo", "--data", data).returncode == 0
    ok = oscartes("validate", "--data", data)
    assert ok.returncode == 0 and "every record conforms" in ok.stdout, ok.stdout[-2000:]
    store = ox.Store(str(Path(data) / "rdf"))
    event = f"{base}/events/broken"
    store.update(
        "PREFIX as: <https://www.w3.org/ns/activitystreams#> PREFIX xsd: <http://www.w3.org/2001/XMLSchema#> "
        f"INSERT DATA {{ GRAPH <{base}/dataset> {{ <{event}> a as:Event ; "
        'as:startTime "2025-01-02T10:00:00Z"^^xsd:dateTime ; as:endTime "2025-01-01T10:00:00Z"^^xsd:dateTime . } }'
    )
    del store
    broken = oscartes("validate", "--data", data)
    assert broken.returncode == 1
    assert event in broken.stdout and "Conforms: False" in broken.stdout
