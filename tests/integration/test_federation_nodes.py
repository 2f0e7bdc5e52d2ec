"""Two nodes of ours on 127.0.0.2 and 127.0.0.3: follow, receive, update, delete, unfollow."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from node.storage.db import make_engine
from node.storage.tables import follows, inbox_items
from tests import samples
from tests.eventually import eventually
from tests.integration.conftest import AS2, RunningNode, start_node, stop_node

PRIVATE = {"OSCARTES_ALLOW_PRIVATE_ADDRESSES": "1"}


async def rows(node: RunningNode, table: Any, *where: Any) -> list[Any]:
    engine = make_engine(node.config.effective_database_url)
    async with engine.connect() as conn:
        found = (await conn.execute(select(table).where(*where))).all()
    await engine.dispose()
    return list(found)


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[RunningNode, RunningNode]]:
    try:
        a = await start_node(tmp_path / "a", "", host="127.0.0.2", **PRIVATE)
    except OSError as exc:
        pytest.skip(f"cannot bind 127.0.0.2 on this machine: {exc}")
    b = await start_node(tmp_path / "b", "", host="127.0.0.3", **PRIVATE)
    yield a, b
    await stop_node(a)
    await stop_node(b)


async def received(node: RunningNode, kind: str, object_id: str) -> list[dict[str, Any]]:
    found = await rows(node, inbox_items, inbox_items.c.activity_type == kind)
    docs = [json.loads(r.body) for r in found if r.state == "ignored" or r.state == "done"]
    return [d for d in docs if (d["object"] if isinstance(d["object"], str) else d["object"]["id"]) == object_id]


async def test_follow_receive_update_delete_unfollow(pair: tuple[RunningNode, RunningNode]) -> None:
    a, b = pair
    await a.create("initiatives", samples.initiative())
    await b.create("initiatives", samples.initiative("ressourcerie", name="Ressourcerie"))
    a_actor = f"{a.base}/initiatives/repair_cafe_massy"
    b_actor = f"{b.base}/initiatives/ressourcerie"
    handle = f"@repair_cafe_massy@{a.config.host}"
    async with b.http.post(f"{b.base}/api/initiatives/ressourcerie/follow", json={"target": handle},
                           headers=b.auth) as r:  # fmt: skip
        assert r.status == 202, await r.text()
        follow_id = (await r.json())["activity"]
    async with b.http.get(follow_id, headers={"Accept": AS2}) as r:
        assert (await r.json(content_type=None))["type"] == "Follow", "our Follow ids dereference"

    async def accepted() -> bool:
        found = await rows(b, follows, follows.c.follower == b_actor, follows.c.target == a_actor)
        return bool(found) and found[0].state == "accepted"

    await eventually(accepted, what="B's follow accepted by A")
    async with a.http.get(f"{a_actor}/followers", headers={"Accept": AS2}) as r:
        assert (await r.json(content_type=None))["orderedItems"] == [b_actor]

    event = await a.create("events", samples.event())
    creates = await eventually(lambda: received(b, "Create", event["id"]), what="Create(Event) at B")
    activity = creates[0]
    assert activity["actor"] == a_actor and activity["to"] == ["https://www.w3.org/ns/activitystreams#Public"]
    assert activity["cc"] == [f"{a_actor}/followers"]
    assert activity["object"]["type"] == "Event" and activity["object"]["rdf:type"] == ["pair:Event"]
    assert activity["object"]["summary"].startswith("sam.")

    need = await a.create("needs", samples.proposal())
    note = (await eventually(lambda: received(b, "Create", need["id"]), what="Create(Note) at B"))[0]["object"]
    assert note["type"] == "Note" and note["rdf:type"] == ["Proposal"] and note["purpose"] == "request"

    changed = samples.event(name="Repair Café de décembre (complet)")
    async with a.http.put(f"{a.base}/api/events/repair_cafe_decembre", json=changed, headers=a.auth) as r:
        assert r.status == 200
    update = (await eventually(lambda: received(b, "Update", event["id"]), what="Update at B"))[0]
    assert update["object"]["name"].endswith("(complet)")
    assert update["object"]["updated"] > activity["object"]["updated"] or update["object"]["updated"] >= (
        activity["object"]["published"])  # fmt: skip

    async with a.http.delete(f"{a.base}/api/events/repair_cafe_decembre", headers=a.auth) as r:
        assert r.status == 200
    deleted = (await eventually(lambda: received(b, "Delete", event["id"]), what="Delete at B"))[0]
    assert deleted["object"]["type"] == "Tombstone"

    async with b.http.post(f"{b.base}/api/initiatives/ressourcerie/unfollow", json={"target": a_actor},
                           headers=b.auth) as r:  # fmt: skip
        assert r.status == 202

    async def gone() -> bool:
        return not await rows(a, follows, follows.c.target == a_actor)

    await eventually(gone, what="A forgets its follower after Undo")


async def test_manual_approval(pair: tuple[RunningNode, RunningNode]) -> None:
    a, b = pair
    await a.create("initiatives", samples.initiative(manuallyApprovesFollowers=True))
    await b.create("initiatives", samples.initiative("ressourcerie", name="Ressourcerie"))
    a_actor = f"{a.base}/initiatives/repair_cafe_massy"
    b_actor = f"{b.base}/initiatives/ressourcerie"
    async with a.http.get(a_actor, headers={"Accept": AS2}) as r:
        assert (await r.json(content_type=None))["manuallyApprovesFollowers"] is True
    async with b.http.post(f"{b.base}/api/initiatives/ressourcerie/follow", json={"target": a_actor},
                           headers=b.auth) as r:  # fmt: skip
        assert r.status == 202

    async def pending() -> Any:
        async with a.http.get(f"{a.base}/api/initiatives/repair_cafe_massy/followers", headers=a.auth) as r:
            return (await r.json())["pending"]

    assert await eventually(pending, what="a pending follower at A") == [b_actor]
    async with a.http.post(f"{a.base}/api/initiatives/repair_cafe_massy/followers", headers=a.auth,
                           json={"actor": b_actor, "decision": "accept"}) as r:  # fmt: skip
        assert r.status == 202

    async def accepted() -> bool:
        found = await rows(b, follows, follows.c.follower == b_actor)
        return bool(found) and found[0].state == "accepted"

    await eventually(accepted, what="B sees the approval")


async def _cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "node.cli", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **PRIVATE},
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode or 0, out.decode(), err.decode()


async def test_cli_follow_and_blocks(pair: tuple[RunningNode, RunningNode]) -> None:
    a, b = pair
    await a.create("initiatives", samples.initiative())
    await b.create("initiatives", samples.initiative("ressourcerie", name="Ressourcerie"))
    data = str(b.config.data_dir)
    code, out, err = await _cli("actor", "follow", "--data", data, "--as", "ressourcerie",
                                f"@repair_cafe_massy@{a.config.host}")  # fmt: skip
    assert code == 0, err
    assert "/activities/" in out and "(sent)" in out

    async def accepted() -> bool:
        found = await rows(b, follows, follows.c.target == f"{a.base}/initiatives/repair_cafe_massy")
        return bool(found) and found[0].state == "accepted"

    await eventually(accepted, what="the CLI's follow accepted")
    code, out, _ = await _cli("actor", "followers", "--data", str(a.config.data_dir), "--as", "repair_cafe_massy")
    assert json.loads(out)["accepted"] == [f"{b.base}/initiatives/ressourcerie"]
    code, out, err = await _cli("actor", "follow", "--data", data, "--as", "nobody", f"{a.base}/actor")
    assert code == 1 and "not an actor of this node" in err
    assert (await _cli("block", "add", "--data", data, "spam.example", "--reason", "spam"))[0] == 0
    assert "spam.example\tspam" in (await _cli("block", "list", "--data", data))[1]
    assert (await _cli("block", "remove", "--data", data, "spam.example"))[0] == 0
    assert "spam.example" not in (await _cli("block", "list", "--data", data))[1]


async def test_each_follows_the_other(pair: tuple[RunningNode, RunningNode]) -> None:
    """The same both ways: A's initiative follows B's and gets B's news too."""
    a, b = pair
    await a.create("initiatives", samples.initiative())
    await b.create("initiatives", samples.initiative("ressourcerie", name="Ressourcerie"))
    for follower, target in ((a, b), (b, a)):
        slug = "repair_cafe_massy" if follower is a else "ressourcerie"
        other = f"{target.base}/initiatives/{'ressourcerie' if target is b else 'repair_cafe_massy'}"
        async with follower.http.post(f"{follower.base}/api/initiatives/{slug}/follow", json={"target": other},
                                      headers=follower.auth) as r:  # fmt: skip
            assert r.status == 202

    async def both_accepted() -> bool:
        found = await rows(a, follows) + await rows(b, follows)
        return sum(1 for r in found if r.state == "accepted") == 4  # each side records both follows

    await eventually(both_accepted, what="mutual follows accepted")
    event = await b.create("events", samples.event(owner="initiatives/ressourcerie"))
    await eventually(lambda: received(a, "Create", event["id"]), what="B's event at A")
