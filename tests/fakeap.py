"""A minimal ActivityPub server for tests: actors with keys we hold, an inbox that records
what arrives (and can answer errors or slowly), and signed POSTs built as we like, so every
security gate of our inbox can be driven with a forged or broken request."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from federation import signatures as sig
from tests.conftest import free_port

AS2 = "application/activity+json"


@dataclass
class FakeActor:
    iri: str
    name: str
    key: RSAPrivateKey
    key_id: str
    doc_extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Arrival:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeFediverse:
    def __init__(self, host: str = "127.0.0.4") -> None:
        self.host = host
        self.port = free_port(host)
        self.base = f"http://{host}:{self.port}"
        self.actors: dict[str, FakeActor] = {}
        self.arrivals: list[Arrival] = []
        self.gets: list[str] = []
        #: answers the inbox gives, in order, before it settles on 202
        self.plan: list[tuple[int, dict[str, str]]] = []
        self.delay = 0.0
        #: documents served at /docs/{name}, as a sender serves the JSON-LD contexts it names
        self.documents: dict[str, dict[str, Any]] = {}
        self._server: TestServer | None = None
        self.http = aiohttp.ClientSession()

    async def start(self) -> FakeFediverse:
        app = web.Application()
        app.router.add_get("/users/{name}", self._actor)
        app.router.add_get("/.well-known/webfinger", self._webfinger)
        app.router.add_get("/docs/{name}", self._document)
        app.router.add_post("/inbox", self._inbox)
        app.router.add_post("/users/{name}/inbox", self._inbox)
        self._server = TestServer(app, host=self.host, port=self.port)
        await self._server.start_server()
        return self

    async def stop(self) -> None:
        await self.http.close()
        if self._server is not None:
            await self._server.close()

    def actor(self, name: str, **doc_extra: Any) -> FakeActor:
        iri = f"{self.base}/users/{name}"
        actor = FakeActor(iri, name, sig.generate_key(), f"{iri}#main-key", dict(doc_extra))
        self.actors[name] = actor
        return actor

    def actor_doc(self, actor: FakeActor) -> dict[str, Any]:
        return {
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": actor.iri, "type": "Person", "preferredUsername": actor.name,
            "inbox": f"{actor.iri}/inbox", "outbox": f"{actor.iri}/outbox",
            "endpoints": {"sharedInbox": f"{self.base}/inbox"},
            "publicKey": {"id": actor.key_id, "owner": actor.iri, "publicKeyPem": sig.public_pem(actor.key)},
            **actor.doc_extra,
        }  # fmt: skip

    async def _actor(self, request: web.Request) -> web.Response:
        self.gets.append(str(request.url))
        actor = self.actors.get(request.match_info["name"])
        if actor is None:
            return web.Response(status=410)
        return web.Response(body=json.dumps(self.actor_doc(actor)).encode(), content_type=AS2)

    async def _document(self, request: web.Request) -> web.Response:
        self.gets.append(str(request.url))
        document = self.documents.get(request.match_info["name"])
        if document is None:
            return web.Response(status=404)
        return web.Response(body=json.dumps(document).encode(), content_type="application/ld+json")

    async def _webfinger(self, request: web.Request) -> web.Response:
        name = request.query.get("resource", "").removeprefix("acct:").split("@")[0]
        if name not in self.actors:
            return web.Response(status=404)
        links = [{"rel": "self", "type": AS2, "href": self.actors[name].iri}]
        return web.json_response({"subject": request.query["resource"], "links": links})

    async def _inbox(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        self.arrivals.append(Arrival(request.path, dict(request.headers), body))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.plan:
            status, headers = self.plan.pop(0)
            return web.Response(status=status, headers=headers)
        return web.Response(status=202)

    def received(self, kind: str) -> list[dict[str, Any]]:
        return [a.body for a in self.arrivals if a.body.get("type") == kind]

    def sign(self, actor: FakeActor, url: str, body: bytes, *, key: RSAPrivateKey | None = None,
             now: datetime | None = None, rfc9421: bool = False) -> dict[str, str]:  # fmt: skip
        signer = sig.sign_request_rfc9421 if rfc9421 else sig.sign_request
        return signer("POST", url, {"Content-Type": AS2}, body, actor.key_id, key or actor.key, now)

    async def post(self, url: str, activity: dict[str, Any], actor: FakeActor, *, headers: dict[str, str] | None
                   = None, body: bytes | None = None, **sign_options: Any) -> tuple[int, str]:  # fmt: skip
        raw = json.dumps(activity).encode()
        sent_headers = headers if headers is not None else self.sign(actor, url, raw, **sign_options)
        async with self.http.post(url, data=body if body is not None else raw, headers=sent_headers) as response:
            return response.status, await response.text()
