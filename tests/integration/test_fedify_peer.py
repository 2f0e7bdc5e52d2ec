"""Self-tests of the Fedify peer harness (tests/peers): two real Fedify peers on
127.0.0.2 and 127.0.0.3 follow, accept, post, unfollow and look each other up.
No Oscartes server is involved: these prove the harness before it is used
against ours."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
import pytest_asyncio

from tests.peers.fedify_peer import (
    FedifyPeer,
    PeerFactory,
    bind_problem,
    fedify_peer,  # noqa: F401 - a fixture
    fedify_peer_factory,  # noqa: F401 - a fixture
    match,
)

HOST_A = "127.0.0.2"
HOST_B = "127.0.0.3"


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> bool:
    """Poll ``check`` until it is true or ``within`` seconds passed."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.1)
    return await check()


@pytest_asyncio.fixture
async def two_peers(fedify_peer_factory: PeerFactory) -> tuple[FedifyPeer, FedifyPeer]:  # noqa: F811
    for host in (HOST_A, HOST_B):
        problem = bind_problem(host)
        if problem:
            pytest.skip(f"loopback alias unavailable: {problem}")
    a = await fedify_peer_factory(HOST_A)
    b = await fedify_peer_factory(HOST_B)
    return a, b


async def test_single_peer_fixture(fedify_peer: FedifyPeer) -> None:  # noqa: F811
    health = await fedify_peer.health()
    assert health["fedify"] == "2.3.6"
    assert health["node"].startswith("v22.")
    assert health["actor"] == fedify_peer.actor_id
    assert fedify_peer.actor_id.startswith("http://127.0.0.1:")


async def test_follow_accept_post_unfollow(two_peers: tuple[FedifyPeer, FedifyPeer]) -> None:
    a, b = two_peers

    follow_id = await a.follow(b.actor_id)
    assert follow_id.startswith(a.base_url + "/")

    follow = await b.wait_for(match("Follow", id=follow_id))
    assert follow["actor"] == a.actor_id
    assert follow["object_id"] == b.actor_id

    accept = await a.wait_for(match("Accept", actor=b.actor_id, object_id=follow_id))
    # Fedify's Accept embeds the whole Follow it received (with its proof).
    assert isinstance(accept["object"], dict)
    assert accept["object"]["id"] == follow_id
    assert accept["object"]["type"] == "Follow"

    async def accepted() -> bool:
        return [(f["target"], f["state"]) for f in await a.following()] == [(b.actor_id, "accepted")]

    assert await eventually(accepted)
    assert await b.followers() == [a.actor_id]

    create_id = await b.post("<p>Hello from B</p>")
    create = await a.wait_for(match("Create", id=create_id, actor=b.actor_id, object_type="Note"))
    assert create["object"]["id"] == b.last_note_id
    assert create["object"]["content"] == "<p>Hello from B</p>"
    assert create["raw"]["to"] == "as:Public" or "https://www.w3.org/ns/activitystreams#Public" in str(
        create["raw"]["to"]
    )

    undo_id = await a.unfollow(b.actor_id)
    undo = await b.wait_for(match("Undo", id=undo_id, actor=a.actor_id, object_id=follow_id))
    assert undo["object"]["type"] == "Follow"

    async def no_followers() -> bool:
        return await b.followers() == []

    assert await eventually(no_followers)

    # Every POST between two Fedify peers is RFC 9421-signed and accepted first time.
    for peer in (a, b):
        deliveries = await peer.deliveries()
        assert deliveries
        assert {(d["scheme"], d["status"]) for d in deliveries} == {("rfc9421", 202)}
        assert await peer.errors() == []


async def test_lookup(two_peers: tuple[FedifyPeer, FedifyPeer]) -> None:
    a, b = two_peers

    found = await a.lookup(b.actor_id)
    assert found["found"] is True, found
    assert found["type"] == "Person"
    assert found["id"] == b.actor_id
    assert found["is_actor"] is True
    assert found["preferred_username"] == "alice"
    assert found["inbox"] == b.actor_id + "/inbox"
    assert found["shared_inbox"] == b.base_url + "/inbox"
    assert {k["id"] for k in found["public_keys"]} == {b.actor_id + "#main-key"}

    signed = await a.lookup(b.actor_id, signed=True)
    assert signed["found"] is True
    outgoing = await a.outgoing()
    assert [o["scheme"] for o in outgoing if o["url"] == b.actor_id] == ["none", "rfc9421"]

    missing = await a.lookup(b.base_url + "/users/nobody")
    assert missing["found"] is False
    assert any("404" in line["message"] for line in missing["logs"]), missing


async def test_webfinger(two_peers: tuple[FedifyPeer, FedifyPeer]) -> None:
    _, b = two_peers
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{b.base_url}/.well-known/webfinger", params={"resource": f"acct:{b.handle}"}) as resp,
    ):
        assert resp.status == 200
        jrd = await resp.json(content_type=None)
    assert jrd["subject"] == f"acct:{b.handle}"
    selfs = [link for link in jrd["links"] if link["rel"] == "self"]
    assert selfs == [{"rel": "self", "href": b.actor_id, "type": "application/activity+json"}]


async def test_unsigned_delivery_is_rejected_and_reported(two_peers: tuple[FedifyPeer, FedifyPeer]) -> None:
    a, b = two_peers
    activity = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": a.actor_id + "#forged-follow",
        "type": "Follow",
        "actor": a.actor_id,
        "object": b.actor_id,
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(b.actor_id + "/inbox", json=activity, headers={"content-type": "application/activity+json"}) as resp,
    ):
        assert resp.status == 401
    assert await b.inbox() == []
    errors = await b.errors()
    assert any(e["kind"] == "inbox.unverified" and e.get("activity_id") == activity["id"] for e in errors), errors
    [delivery] = await b.deliveries()
    assert (delivery["scheme"], delivery["status"]) == ("none", 401)
