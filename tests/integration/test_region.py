"""Three nodes of ours on 127.0.0.2 (A), 127.0.0.3 (B) and 127.0.0.4 (C), over real HTTP.

A follows B; B follows C and relays it. A ends with B's and C's records, each in its own
graph with its provenance; C's changes reach A; A catches up after being down; a cycle
settles; a forged change is refused; unfollowing with purge removes the copy.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from federation import signatures as sig
from node import actors
from node.cli import main
from node.keys import INDEX
from node.storage.db import make_engine
from node.storage.tables import activities, records, relayed
from node.storage.tables import reports as reports_table
from tests import samples
from tests.eventually import eventually
from tests.integration.conftest import AS2, RunningNode, start_node, stop_node

ENV = {"OSCARTES_ALLOW_PRIVATE_ADDRESSES": "1"}


async def sql(node: RunningNode, query: Any) -> list[Any]:
    engine = make_engine(node.config.effective_database_url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(query)).all())
    finally:
        await engine.dispose()


async def held(node: RunningNode, origin: RunningNode) -> dict[str, str]:
    """IRI -> name of the live records `node` holds from `origin`."""
    rows = await sql(node, select(records.c.iri, records.c.name).where(
        records.c.origin == origin.config.graph_iri, records.c.deleted_at.is_(None)))  # fmt: skip
    return {r.iri: r.name for r in rows}


def sparql(node: RunningNode, query: str) -> list[dict[str, str]]:
    return node.server.app[INDEX].select(query)


async def indexed(node: RunningNode, query: str) -> list[dict[str, str]]:
    return sparql(node, query)


async def api(node: RunningNode, method: str, path: str, body: Any = None) -> Any:
    async with node.http.request(method, f"{node.base}{path}", json=body, headers=node.auth) as response:
        data = await response.json(content_type=None)
        assert response.status < 300, (response.status, data)
        return data


@pytest.fixture
async def region(tmp_path: Path) -> AsyncIterator[dict[str, RunningNode]]:
    nodes: dict[str, RunningNode] = {}
    try:
        for name, ip in (("a", "127.0.0.2"), ("b", "127.0.0.3"), ("c", "127.0.0.4")):
            nodes[name] = await start_node(tmp_path / name, "", host=ip, **ENV)
    except OSError as exc:
        pytest.skip(f"cannot bind 127.0.0.2-4 on this machine: {exc}")
    yield nodes
    for running in nodes.values():
        await stop_node(running)


async def seed(node: RunningNode, slug: str, name: str) -> str:
    await node.create("initiatives", samples.initiative(slug, name=name))
    need = samples.proposal("needs", f"{slug}_besoin", owner=f"initiatives/{slug}", name=f"Besoin de {name}")
    await node.create("needs", need)
    return f"{node.base}/needs/{slug}_besoin"


async def test_a_region_of_three_nodes(region: dict[str, RunningNode], tmp_path: Path) -> None:
    a, b, c = region["a"], region["b"], region["c"]
    await seed(a, "epicerie_a", "Épicerie A")
    await seed(b, "atelier_b", "Atelier B")
    c_need = await seed(c, "jardin_c", "Jardin C")

    # B follows C (API) and relays it; A follows B (CLI, while A serves).
    await api(b, "POST", "/api/follows", {"target": c.base + "/"})
    await eventually(lambda: _count(b, c, 2), 20, what="B copies C")
    relayed_c = await api(b, "PATCH", "/api/origins", {"origin": c.base, "relay": True})
    assert relayed_c["relay"] is True and relayed_c["followed"] is True
    code = await asyncio.to_thread(main, ["follow", "--data", str(a.config.data_dir), "--allow-private-addresses",
                                          b.base])  # fmt: skip
    assert code == 0
    await eventually(lambda: _count(a, b, 2), 20, what="A copies B")
    await eventually(lambda: _count(a, c, 2), 20, what="A copies C, learned from B's VoID, from C itself")

    # Provenance: each origin in its own graph, described in A's provenance graph and VoID.
    three = {a.config.graph_iri, b.config.graph_iri, c.config.graph_iri}

    async def graphs() -> bool:
        return three <= {r["g"] for r in sparql(a, "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }")}

    await eventually(graphs, 10, what="three graphs at A")
    meta = sparql(a, "SELECT ?g ?l ?who ?t WHERE { GRAPH ?m { ?g <http://purl.org/dc/terms/license> ?l ;"
                     " <http://www.w3.org/ns/prov#wasAttributedTo> ?who . OPTIONAL { ?g "
                     "<http://www.w3.org/ns/prov#generatedAtTime> ?t } } }")  # fmt: skip
    by_graph = {m["g"]: m for m in meta}
    assert by_graph[c.config.graph_iri]["who"] == f"{c.base}/actor"
    assert by_graph[c.config.graph_iri]["l"] == "https://creativecommons.org/licenses/by-sa/4.0/"
    assert "t" in by_graph[b.config.graph_iri]
    await eventually(lambda: indexed(a, f"SELECT ?p WHERE {{ GRAPH <{c.config.graph_iri}> {{ <{c_need}> ?p ?o }} }}"),
                     10, what="C's need in C's graph at A, under its own IRI")  # fmt: skip
    async with a.http.get(f"{a.base}/dataset", headers={"Accept": "application/ld+json"}) as r:
        void = await r.json(content_type=None)
    assert {s["@id"] for s in void["void:subset"]} == {b.config.graph_iri, c.config.graph_iri}
    async with a.http.get(f"{a.base}/", headers={"Accept": "text/html"}) as r:
        home = await r.text()
    assert f'href="{b.base}/"' in home and f'href="{c.base}/"' in home, "the home page links to the origins"

    # An update and a delete at C reach A (through B's relay, checked at C).
    await _put_need(c, c_need, "Besoin de compost")
    await eventually(lambda: _named(a, c, c_need, "Besoin de compost"), 20, what="C's update reaches A")
    async with c.http.delete(f"{c.base}/api/needs/jardin_c_besoin", headers=c.auth) as r:
        assert r.status == 200, await r.text()
    await eventually(lambda: _gone(a, c_need), 20, what="C's delete reaches A")

    # A forged update: B claims to change C's record. Refused at A's door, copy unchanged.
    c_org = f"{c.base}/initiatives/jardin_c"
    forged = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{b.base}/activities/forged",
              "type": "Update", "actor": f"{b.base}/actor",
              "object": {"id": c_org, "type": "Organization", "name": "Volé"}}  # fmt: skip
    assert await _signed_post(b, f"{a.base}/inbox", forged) == 403
    forged_announce = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{b.base}/activities/forged2",
                       "type": "Announce", "actor": f"{b.base}/actor",
                       "object": {"id": f"{c.base}/activities/fake", "type": "Update", "actor": f"{c.base}/actor",
                                  "object": {"id": c_org, "type": "Organization", "name": "Volé"}}}  # fmt: skip
    assert await _signed_post(b, f"{a.base}/inbox", forged_announce) == 202
    await eventually(lambda: _relay_handled(a, f"{c.base}/activities/fake"), 20, what="A handles the relayed Update")
    assert (await held(a, c))[c_org] == "Jardin C", "what C says, not what B claimed"

    # A goes down while C changes; A catches up when it comes back.
    port = int(a.base.rsplit(":", 1)[1])
    await stop_node(a)
    await c.create("initiatives", samples.initiative("rucher_c", name="Rucher C"))
    await eventually(lambda: _count(b, c, 2), 20, what="B has C's new initiative")
    a = region["a"] = await start_node(a.config.data_dir, "", host="127.0.0.2", port=port, **ENV)
    await eventually(lambda: _named(a, c, f"{c.base}/initiatives/rucher_c", "Rucher C"), 30, what="A catches up")

    # A cycle: C follows A, everyone relays. A write at C settles: relayed at most once per node.
    await api(c, "POST", "/api/follows", {"target": a.base})
    await eventually(lambda: _following(c, a), 20, what="C copies A")
    await api(c, "PATCH", "/api/origins", {"origin": a.base, "relay": True})
    await api(a, "PATCH", "/api/origins", {"origin": b.base, "relay": True})
    created = await c.create("initiatives", samples.initiative("moulin_c", name="Moulin C"))
    await eventually(lambda: _named(a, c, created["id"], "Moulin C"), 20, what="the new record reaches A")
    await asyncio.sleep(3)  # let any echo travel
    for running in (a, b, c):
        counts = await sql(running, select(relayed.c.activity, func.count()).group_by(relayed.c.activity))
        assert all(n == 1 for _, n in counts)
        announces = await sql(running, select(func.count()).select_from(activities).where(
            activities.c.type == "Announce", activities.c.doc.contains(created["id"])))  # fmt: skip
        assert announces[0][0] <= 1, f"{running.base} relayed the new record {announces[0][0]} times"
    assert await held(c, c) != {}  # C still holds its own records, untouched by the echo

    # Unfollow with purge: B's graph leaves A.
    await api(a, "DELETE", "/api/follows", {"target": b.base, "purge": True})
    await eventually(lambda: _count(a, b, 0, exact=True), 10, what="B's records purged from A")
    async def emptied() -> bool:
        return not sparql(a, f"SELECT ?s WHERE {{ GRAPH <{b.config.graph_iri}> {{ ?s ?p ?o }} }}")

    await eventually(emptied, 10, what="B's graph emptied at A")


async def test_a_refused_record_is_reported_and_its_origin_told(region: dict[str, RunningNode]) -> None:
    a, c = region["a"], region["c"]
    await seed(c, "jardin_c", "Jardin C")
    await api(a, "POST", "/api/follows", {"target": c.base})
    await eventually(lambda: _count(a, c, 2), 20, what="A copies C")
    bad_event = {"id": f"{c.base}/events/a_l_envers", "type": "Event", "name": "À l'envers",
                 "attributedTo": f"{c.base}/initiatives/jardin_c",
                 "startTime": "2026-12-02T18:00:00Z", "endTime": "2026-12-02T10:00:00Z"}  # fmt: skip
    create = {"@context": ["https://www.w3.org/ns/activitystreams", c.config.context_url],
              "id": f"{c.base}/activities/bad", "type": "Create", "actor": f"{c.base}/actor", "object": bad_event}
    assert await _signed_post(c, f"{a.base}/inbox", create) == 202
    reports = await eventually(lambda: api(a, "GET", "/api/ingest-reports"), 20, what="A reports the refusal")
    assert reports[0]["iri"] == bad_event["id"] and "end" in reports[0]["reason"]
    assert bad_event["id"] not in await held(a, c)
    flags = await eventually(lambda: sql(c, select(reports_table)), 20, what="C hears why (a Flag)")
    assert bad_event["id"] in flags[0].objects and "end" in flags[0].content


async def _count(node: RunningNode, origin: RunningNode, n: int, exact: bool = False) -> bool:
    found = len(await held(node, origin))
    return found == n if exact else found >= n


async def _named(node: RunningNode, origin: RunningNode, iri: str, name: str) -> bool:
    return (await held(node, origin)).get(iri) == name


async def _gone(node: RunningNode, iri: str) -> bool:
    rows = await sql(node, select(records.c.deleted_at).where(records.c.iri == iri))
    return bool(rows) and rows[0].deleted_at is not None


async def _following(node: RunningNode, origin: RunningNode) -> bool:
    listing = await api(node, "GET", "/api/follows")
    return any(o["graph"] == origin.config.graph_iri and o["sync"] == "live" for o in listing)


async def _relay_handled(node: RunningNode, inner: str) -> bool:
    return bool(await sql(node, select(relayed.c.activity).where(relayed.c.activity == inner)))


async def _put_need(node: RunningNode, iri: str, name: str) -> None:
    async with node.http.get(iri, headers={"Accept": AS2}) as r:
        doc = await r.json(content_type=None)
    doc["name"] = name
    slug = iri.rsplit("/", 1)[-1]
    async with node.http.put(f"{node.base}/api/needs/{slug}", json=doc, headers=node.auth) as r:
        assert r.status == 200, await r.text()


async def _signed_post(sender: RunningNode, inbox: str, doc: dict[str, Any]) -> int:
    """A POST signed with the sender node's real key: what a misbehaving peer could send."""
    engine = make_engine(sender.config.effective_database_url)
    async with engine.connect() as conn:
        actor = await actors.get(conn, f"{sender.base}/actor")
    await engine.dispose()
    assert actor is not None
    body = json.dumps(doc).encode()
    headers = {"Content-Type": AS2, "Host": inbox.split("/")[2]}
    headers |= sig.sign_request("POST", inbox, headers, body, actor.key_id, actors.private_key(sender.config, actor))
    async with sender.http.post(inbox, data=body, headers=headers) as response:
        return response.status
