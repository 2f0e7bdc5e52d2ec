"""Signed activities whose @context this node cannot load are still processed, on a machine
with no network: a Mobilizon Create (litepub context, vendored) is read offline; a Follow naming
a context no one vendors, or one that cannot be processed, is read as compact AS2, accepted,
and the ingest report says so."""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from node.storage.tables import inbox_items, ingest_reports
from tests import samples
from tests.eventually import eventually
from tests.fakeap import FakeActor, FakeFediverse
from tests.integration.conftest import RunningNode, start_node, stop_node
from tests.integration.test_inbox_security import follow, inbox_of, table, target

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fediverse"
AS = "https://www.w3.org/ns/activitystreams"
UNKNOWN = "https://contexts.example/ns/unknown.jsonld"


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every host name fails to resolve, as on a machine with no network; the names asked for
    are kept. Loopback addresses (the tests' own servers) still work."""
    asked: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            ipaddress.ip_address(host.decode() if isinstance(host, bytes) else host)
        except (ValueError, TypeError):
            asked.append(str(host))
            raise socket.gaierror(socket.EAI_NONAME, "no network on this machine") from None
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


@pytest.fixture
async def world(tmp_path: Path, no_network: list[str]) -> AsyncIterator[tuple[RunningNode, FakeFediverse]]:
    node = await start_node(tmp_path / "n", "", host="127.0.0.2", OSCARTES_ALLOW_PRIVATE_ADDRESSES="1")
    fake = await FakeFediverse("127.0.0.4").start()
    await node.create("initiatives", samples.initiative())
    yield node, fake
    await fake.stop()
    await stop_node(node)


def mobilizon_create(fake: FakeFediverse, actor: FakeActor) -> dict[str, Any]:
    """Mobilizon's own test payload, moved to the peer's host so that the peer can sign it."""
    text = (FIXTURES / "mobilizon-create-event.json").read_text(encoding="utf-8")
    text = text.replace("https://test.mobilizon.org/@Alicia", actor.iri)
    text = text.replace("https://test.mobilizon.org", fake.base)
    activity: dict[str, Any] = json.loads(text)
    assert "https://litepub.social/litepub/context.jsonld" in activity["@context"]
    return activity


async def settled(node: RunningNode) -> list[Any]:
    async def done() -> list[Any] | None:
        rows = await table(node, inbox_items)
        return rows if rows and all(r.state != "pending" for r in rows) else None

    found: list[Any] = await eventually(done, what="the inbox item processed")
    return found


async def accepted(fake: FakeFediverse, follow_id: str) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        return next((a for a in fake.received("Accept") if a["object"]["id"] == follow_id), None)

    accept: dict[str, Any] = await eventually(found, what=f"the Accept of {follow_id}")
    return accept


async def reports(node: RunningNode) -> list[Any]:
    """The ingest report, written with the item's outcome (the Accept may leave before)."""

    async def found() -> list[Any]:
        return await table(node, ingest_reports)

    rows: list[Any] = await eventually(found, what="an ingest report")
    return rows


async def test_a_mobilizon_create_is_processed_offline(world: tuple[RunningNode, FakeFediverse],
                                                       no_network: list[str]) -> None:  # fmt: skip
    node, fake = world
    alicia = fake.actor("alicia")
    status, text = await fake.post(f"{node.base}/inbox", mobilizon_create(fake, alicia), alicia)
    assert status == 202, text
    [row] = await settled(node)
    # An event from an account that is no node of the directory: read, and kept out of it.
    assert (row.state, row.last_error) == ("ignored", None)
    assert no_network == [], "every context Mobilizon names is vendored: nothing to fetch"
    assert await table(node, ingest_reports) == []


async def test_a_context_no_one_vendors_is_set_aside_and_reported(world: tuple[RunningNode, FakeFediverse],
                                                                  no_network: list[str]) -> None:  # fmt: skip
    node, fake = world
    bob = fake.actor("bob")
    activity = {**follow(bob, target(node)), "@context": [AS, UNKNOWN]}
    assert (await fake.post(inbox_of(node), activity, bob))[0] == 202
    await accepted(fake, activity["id"])
    assert no_network == ["contexts.example"], "asked once, through the guarded client"
    [report] = await reports(node)
    assert (report.origin, report.iri) == (bob.iri, activity["id"])
    assert report.reason.startswith("Follow read as compact AS2, its @context set aside")
    assert UNKNOWN in report.reason
    async with node.http.get(f"{node.base}/api/ingest-reports", headers=node.auth) as response:
        assert [r["iri"] for r in await response.json()] == [activity["id"]]

    # The next activity naming it is read the same way, without asking again.
    again = {**follow(bob, target(node), 2), "@context": [AS, UNKNOWN]}
    assert (await fake.post(inbox_of(node), again, bob))[0] == 202
    await accepted(fake, again["id"])
    assert no_network == ["contexts.example"]


async def test_a_context_that_cannot_be_processed_is_set_aside(world: tuple[RunningNode, FakeFediverse]) -> None:
    node, fake = world
    carol = fake.actor("carol")
    # Served by the sender, but it names a context no one vendors: pyld cannot finish with it.
    fake.documents["ns.jsonld"] = {"@context": [UNKNOWN, {"carol": "https://carol.example/ns#"}]}
    activity = {**follow(carol, target(node)), "@context": [AS, f"{fake.base}/docs/ns.jsonld"]}
    assert (await fake.post(inbox_of(node), activity, carol))[0] == 202
    await accepted(fake, activity["id"])
    [report] = await reports(node)
    assert report.iri == activity["id"] and UNKNOWN in report.reason
