"""Every gate of the inbox, driven through the HTTP handler with forged or broken requests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from federation import signatures as sig
from node.storage.db import make_engine
from node.storage.tables import follows, inbox_items, reports
from tests import samples
from tests.eventually import eventually
from tests.fakeap import FakeActor, FakeFediverse
from tests.integration.conftest import AS2, RunningNode, start_node, stop_node


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[RunningNode, FakeFediverse]]:
    node = await start_node(tmp_path / "n", "", host="127.0.0.2", OSCARTES_ALLOW_PRIVATE_ADDRESSES="1",
                            OSCARTES_INBOX_RATE_PER_MINUTE="60")  # fmt: skip
    fake = await FakeFediverse("127.0.0.4").start()
    await node.create("initiatives", samples.initiative())
    yield node, fake
    await fake.stop()
    await stop_node(node)


def follow(actor: FakeActor, target: str, n: int = 1) -> dict[str, Any]:
    return {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{actor.iri}/follows/{n}",
            "type": "Follow", "actor": actor.iri, "object": target}  # fmt: skip


async def table(node: RunningNode, tbl: Any) -> list[Any]:
    engine = make_engine(node.config.effective_database_url)
    async with engine.connect() as conn:
        found = (await conn.execute(select(tbl))).all()
    await engine.dispose()
    return list(found)


def inbox_of(node: RunningNode) -> str:
    return f"{node.base}/initiatives/repair_cafe_massy/inbox"


def target(node: RunningNode) -> str:
    return f"{node.base}/initiatives/repair_cafe_massy"


async def test_signed_follow_is_stored_and_accepted(world: tuple[RunningNode, FakeFediverse]) -> None:
    node, fake = world
    alice = fake.actor("alice")
    status, _ = await fake.post(inbox_of(node), follow(alice, target(node)), alice)
    assert status == 202
    accepts = await eventually(lambda: _async(fake.received("Accept")), what="Accept at the follower")
    assert accepts[0]["actor"] == target(node) and accepts[0]["object"]["id"] == f"{alice.iri}/follows/1"
    arrival = next(a for a in fake.arrivals if a.body["type"] == "Accept")
    assert f'keyId="{target(node)}#main-key"' in arrival.headers["Signature"]
    assert arrival.headers["Digest"].startswith("SHA-256=")
    async with node.http.get(accepts[0]["id"], headers={"Accept": AS2}) as r:
        assert r.status == 200, "the Accept dereferences"
    # the same Follow again (same id) changes nothing; a new id for the same pair is accepted again
    assert (await fake.post(inbox_of(node), follow(alice, target(node)), alice))[0] == 202
    assert len(await table(node, inbox_items)) == 1
    assert (await fake.post(inbox_of(node), follow(alice, target(node), 2), alice))[0] == 202
    await eventually(lambda: _async(len(fake.received("Accept")) == 2), what="a second Accept")
    assert [r.state for r in await table(node, follows)] == ["accepted"]


async def test_rfc9421_signature_is_accepted(world: tuple[RunningNode, FakeFediverse]) -> None:
    node, fake = world
    bob = fake.actor("bob")
    status, text = await fake.post(inbox_of(node), follow(bob, target(node)), bob, rfc9421=True)
    assert status == 202, text


async def _async(value: Any) -> Any:
    return value


async def expect_401(fake: FakeFediverse, node: RunningNode, activity: dict[str, Any], actor: FakeActor,
                     reason: str, **options: Any) -> None:  # fmt: skip
    status, text = await fake.post(inbox_of(node), activity, actor, **options)
    assert status == 401, text
    problem = json.loads(text)
    assert reason in problem["detail"], problem["detail"]
    assert await table(node, inbox_items) == []


async def test_unsigned_is_refused(world: tuple[RunningNode, FakeFediverse]) -> None:
    node, fake = world
    eve = fake.actor("eve")
    await expect_401(fake, node, follow(eve, target(node)), eve, "not signed", headers={"Content-Type": AS2})


async def test_wrong_key_is_refused(world: tuple[RunningNode, FakeFediverse]) -> None:
    node, fake = world
    eve = fake.actor("eve")
    await expect_401(fake, node, follow(eve, target(node)), eve, "does not verify", key=sig.generate_key())


async def test_stale_date_is_refused(world: tuple[RunningNode, FakeFediverse]) -> None:
    node, fake = world
    eve = fake.actor("eve")
    stale = datetime.now(UTC) - timedelta(hours=3)
    await expect_401(fake, node, follow(eve, target(node)), eve, "old", now=stale)


async def test_changed_body_is_refused(world: tuple[RunningNode, FakeFediverse]) -> None:
    node, fake = world
    eve = fake.actor("eve")
    activity = follow(eve, target(node))
    headers = fake.sign(eve, inbox_of(node), json.dumps(activity).encode())
    tampered = json.dumps({**activity, "id": f"{eve.iri}/follows/9"}).encode()
    await expect_401(fake, node, activity, eve, "digest", headers=headers, body=tampered)


async def test_key_of_another_actor_is_refused(world: tuple[RunningNode, FakeFediverse]) -> None:
    node, fake = world
    eve, mallory = fake.actor("eve"), fake.actor("mallory")
    activity = follow(eve, target(node))  # says eve...
    raw = json.dumps(activity).encode()
    headers = fake.sign(mallory, inbox_of(node), raw)  # ...signed by mallory
    await expect_401(fake, node, activity, mallory, "actor", headers=headers)


async def test_forged_authority_is_refused(world: tuple[RunningNode, FakeFediverse]) -> None:
    node, fake = world
    eve = fake.actor("eve")
    note = {"id": f"{node.base}/events/not_yours", "type": "Note", "attributedTo": eve.iri}
    create = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{eve.iri}/c/1", "type": "Create",
              "actor": eve.iri, "object": note}  # fmt: skip
    status, text = await fake.post(inbox_of(node), create, eve)
    assert status == 403 and "another host owns it" in text
    foreign_id = {**follow(eve, target(node)), "id": "http://127.0.0.9/follows/1"}
    status, text = await fake.post(inbox_of(node), foreign_id, eve)
    assert status == 403 and "not on its actor's host" in text
    assert await table(node, inbox_items) == []


async def test_malformed_requests(world: tuple[RunningNode, FakeFediverse]) -> None:
    node, fake = world
    eve = fake.actor("eve")
    url = inbox_of(node)
    async with fake.http.post(url, data=b"{oops", headers={"Content-Type": AS2}) as r:
        assert r.status == 400
    async with fake.http.post(url, data=b"hello", headers={"Content-Type": "text/plain"}) as r:
        assert r.status == 415
    async with fake.http.post(url, data=b"x" * 1_100_000, headers={"Content-Type": AS2}) as r:
        assert r.status == 413
    no_actor = {"type": "Follow", "object": target(node)}
    assert (await fake.post(url, no_actor, eve))[0] == 400


async def test_blocked_domain_and_rate_limit(world: tuple[RunningNode, FakeFediverse]) -> None:
    node, fake = world
    eve = fake.actor("eve")
    async with node.http.post(f"{node.base}/api/domain-blocks", json={"domain": "127.0.0.4", "reason": "spam"},
                              headers=node.auth) as r:  # fmt: skip
        assert r.status == 201
    status, text = await fake.post(inbox_of(node), follow(eve, target(node)), eve)
    assert status == 403 and "blocked" in text
    async with node.http.delete(f"{node.base}/api/domain-blocks", json={"domain": "127.0.0.4"},
                                headers=node.auth) as r:  # fmt: skip
        assert r.status == 200
    statuses = []
    for n in range(60):  # the bucket holds half a minute of the rate: 30
        statuses.append((await fake.post(inbox_of(node), follow(eve, target(node), n + 10), eve))[0])
    assert 429 in statuses and statuses[0] == 202


async def test_delete_of_unknown_actor_fetches_nothing(world: tuple[RunningNode, FakeFediverse]) -> None:
    node, fake = world
    ghost = fake.actor("ghost")
    delete = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{ghost.iri}#delete",
              "type": "Delete", "actor": ghost.iri, "object": ghost.iri}  # fmt: skip
    assert (await fake.post(inbox_of(node), delete, ghost))[0] == 202
    assert fake.gets == [] and await table(node, inbox_items) == []


async def test_key_rotation_refetches_once(world: tuple[RunningNode, FakeFediverse]) -> None:
    node, fake = world
    alice = fake.actor("alice")
    assert (await fake.post(inbox_of(node), follow(alice, target(node)), alice))[0] == 202
    alice.key = sig.generate_key()  # the actor document now serves the new key
    assert (await fake.post(inbox_of(node), follow(alice, target(node), 2), alice))[0] == 202
    assert len(fake.gets) == 2


async def test_flag_block_undo(world: tuple[RunningNode, FakeFediverse]) -> None:
    node, fake = world
    alice = fake.actor("alice")
    ctx = "https://www.w3.org/ns/activitystreams"
    assert (await fake.post(inbox_of(node), follow(alice, target(node)), alice))[0] == 202
    await eventually(lambda: _async(fake.received("Accept")), what="Accept")
    flag = {"@context": ctx, "id": f"{alice.iri}/flag/1", "type": "Flag", "actor": alice.iri,
            "object": [target(node)], "content": "Spam"}  # fmt: skip
    assert (await fake.post(f"{node.base}/inbox", flag, alice))[0] == 202
    reported = await eventually(lambda: table(node, reports), what="a moderation report")
    assert reported[0].content == "Spam" and target(node) in reported[0].objects
    undo = {"@context": ctx, "id": f"{alice.iri}/undo/1", "type": "Undo", "actor": alice.iri,
            "object": follow(alice, target(node))}  # fmt: skip
    assert (await fake.post(inbox_of(node), undo, alice))[0] == 202

    async def no_follows() -> bool:
        return not await table(node, follows)

    await eventually(no_follows, what="Undo removes the follow")
    assert (await fake.post(inbox_of(node), follow(alice, target(node), 3), alice))[0] == 202
    await eventually(lambda: table(node, follows), what="followed again")
    block = {"@context": ctx, "id": f"{alice.iri}/block/1", "type": "Block", "actor": alice.iri,
             "object": target(node)}  # fmt: skip
    assert (await fake.post(inbox_of(node), block, alice))[0] == 202
    await eventually(no_follows, what="Block removes the follow")
    like = {"@context": ctx, "id": f"{alice.iri}/like/1", "type": "Like", "actor": alice.iri, "object": target(node)}
    assert (await fake.post(inbox_of(node), like, alice))[0] == 202

    async def ignored() -> bool:
        return any(r.activity_type == "Like" and r.state == "ignored" for r in await table(node, inbox_items))

    await eventually(ignored, what="anything else is stored and ignored")


async def test_inbox_stores_each_activity_once_on_every_database(tmp_path: Path, database_url: str) -> None:
    """The group commit's insert-or-skip, on SQLite and on PostgreSQL."""
    node = await start_node(tmp_path / "db", database_url, host="127.0.0.2", OSCARTES_ALLOW_PRIVATE_ADDRESSES="1")
    fake = await FakeFediverse("127.0.0.4").start()
    try:
        await node.create("initiatives", samples.initiative())
        alice = fake.actor("alice")
        statuses = await asyncio.gather(*(fake.post(inbox_of(node), follow(alice, target(node), n % 3), alice)
                                          for n in range(12)))  # fmt: skip
        assert [s for s, _ in statuses] == [202] * 12
        assert len(await table(node, inbox_items)) == 3
    finally:
        await fake.stop()
        await stop_node(node)
