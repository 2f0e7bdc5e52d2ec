"""/sparql under attack: a query past its limit is stopped, its memory and its slot come back,
the rest of the node keeps answering, and shutdown does not wait for it.

Each test bounds its own time (the queries below would run for hours if nothing stopped them).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from node.keys import SPARQL
from node.sparql import isolate
from node.sparql.endpoint import Endpoint
from tests.eventually import eventually
from tests.integration.conftest import RunningNode, start_node, stop_node
from tests.integration.test_sparql import RESULTS_JSON, sparql

pytestmark = pytest.mark.skipif(not isolate.AVAILABLE, reason="queries run in child processes on Linux only")

#: The two queries of a hostile visitor: a triple cross join, sorted (it allocates as it goes)
#: and counted (it evaluates for hours without yielding a row).
SORTED = "SELECT * WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i } ORDER BY ?i LIMIT 10"
COUNTED = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"


def endpoint(node: RunningNode) -> Endpoint:
    return node.server.app[SPARQL]


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def with_triples(node: RunningNode) -> None:
    """The shipped schemes: a few thousand triples, so the cross joins above never end."""

    async def indexed() -> bool:
        status, _, text = await sparql(node, "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", RESULTS_JSON)
        return status == 200 and int(json.loads(text)["results"]["bindings"][0]["n"]["value"]) > 500

    await eventually(indexed, what="the schemes in the RDF index")


async def children_seen(node: RunningNode, count: int) -> set[int]:
    async def running() -> set[int] | None:
        pids = set(endpoint(node).children)
        return pids if len(pids) >= count else None

    return await eventually(running, what=f"{count} queries running in their processes")


async def test_queries_past_their_deadline_are_stopped_and_free_their_slots(data_dir: Path,
                                                                           database_url: str) -> None:  # fmt: skip
    node = await start_node(data_dir, database_url, OSCARTES_SPARQL_TIMEOUT="1.5")
    try:
        async with asyncio.timeout(60):
            await with_triples(node)
            before = rss_mb()
            attack = [asyncio.create_task(sparql(node, q)) for q in (SORTED, COUNTED)]
            pids = await children_seen(node, 2)
            # Meanwhile the pages, the records and the API answer (both slots are taken).
            for path in ("/", "/initiatives", "/vocab/themes", "/healthz"):
                async with node.http.get(f"{node.base}{path}") as r:
                    assert r.status == 200, path
            for status, media, text in await asyncio.gather(*attack):
                assert (status, media.split(";")[0]) == (503, "application/problem+json")
                assert json.loads(text)["title"] == "Query took too long"
            # Both slots are free at once: a small query runs, it does not wait nor answer "busy".
            status, _, text = await sparql(node, "ASK { ?s ?p ?o }", RESULTS_JSON)
            assert status == 200 and json.loads(text)["boolean"] is True
            assert not endpoint(node).children
            assert not any(alive(pid) for pid in pids), "a stopped query's process lives on"
            # Nothing goes on allocating in the node itself (a thread would have: ~300 MB/s).
            await asyncio.sleep(2)
            assert rss_mb() - before < 200
    finally:
        await stop_node(node)


async def test_a_query_past_its_memory_cap_is_stopped(data_dir: Path, database_url: str) -> None:
    env = {"OSCARTES_SPARQL_TIMEOUT": "120", "OSCARTES_SPARQL_MEMORY_MB": "64"}
    node = await start_node(data_dir, database_url, **env)
    try:
        async with asyncio.timeout(90):  # its deadline is further away: the cap is what stops it
            await with_triples(node)
            status, media, text = await sparql(node, SORTED)
            problem = json.loads(text)
            assert (status, media.split(";")[0]) == (422, "application/problem+json")
            assert problem["title"] == "Query needs too much memory" and "64 MB" in problem["detail"]
            assert not endpoint(node).children
            assert (await sparql(node, "ASK { ?s ?p ?o }", RESULTS_JSON))[0] == 200
    finally:
        await stop_node(node)


async def test_shutdown_stops_running_queries_at_once(data_dir: Path, database_url: str) -> None:
    node = await start_node(data_dir, database_url, OSCARTES_SPARQL_TIMEOUT="600")
    stopped = False
    try:
        await with_triples(node)
        attack = [asyncio.create_task(sparql(node, q)) for q in (SORTED, COUNTED)]
        pids = await children_seen(node, 2)
        async with asyncio.timeout(30):  # the queries' own limit is 10 minutes away
            await stop_node(node)
            stopped = True
            answers = await asyncio.gather(*attack, return_exceptions=True)
        for answer in answers:  # a 503 "shutting down", or the connection closed under it
            assert isinstance(answer, Exception) or answer[0] == 503, answer
        assert not any(alive(pid) for pid in pids)
    finally:
        if not stopped:
            await stop_node(node)
