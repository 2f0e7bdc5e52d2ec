"""The guarded client against real aiohttp servers on 127.0.0.2 and 127.0.0.3.

Every refusal of a non-loopback address must come from the guard itself: the suite's
conftest would otherwise turn the connect into an OSError (a RemoteError here, not Refused).
"""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from ipaddress import ip_network
from typing import Any

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer

from federation.errors import MalformedActivity, Refused, RemoteError
from federation.fetch import FetchPolicy, GuardedClient, Signer, parse_retry_after, raise_for_status
from federation.webfinger import resolve_handle, webfinger_document

AS2 = "application/activity+json"
ONLY_2 = FetchPolicy(allow_networks=(ip_network("127.0.0.2/32"),))
Start = Callable[[str], Awaitable[str]]


def make_app(release: asyncio.Event) -> web.Application:
    async def doc(request: web.Request) -> web.Response:
        return web.json_response({"id": str(request.url), "seen": request.headers.get("X-Signed-Url")},
                                 content_type=AS2)  # fmt: skip

    async def redirect(request: web.Request) -> web.Response:
        # Not HTTPFound: it would refuse to send the invalid locations some tests need.
        return web.Response(status=302, headers={"Location": request.query["to"]})

    async def countdown(request: web.Request) -> web.Response:
        left = int(request.match_info["n"])
        if left == 0:
            return await doc(request)
        raise web.HTTPFound(f"/countdown/{left - 1}")

    async def status(request: web.Request) -> web.Response:
        retry = request.query.get("retry_after")
        return web.Response(status=int(request.match_info["code"]), headers={"Retry-After": retry} if retry else {})

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 5000, content_type=AS2)

    async def bomb(request: web.Request) -> web.Response:
        body = gzip.compress(b"{" + b" " * 200_000 + b"}")
        return web.Response(body=body, headers={"Content-Encoding": "gzip", "Content-Type": AS2})

    async def slow(request: web.Request) -> web.Response:
        await asyncio.wait_for(release.wait(), 5)
        return web.json_response({})

    async def drip(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": AS2})
        await response.prepare(request)
        for _ in range(25):  # headers come at once, the body never completes in time
            await response.write(b" ")
            if release.is_set():
                break
            await asyncio.sleep(0.1)
        return response

    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<html></html>", content_type="text/html")

    async def array(request: web.Request) -> web.Response:
        return web.json_response([1, 2], content_type=AS2)

    async def broken(request: web.Request) -> web.Response:
        return web.Response(text="{not json", content_type=AS2)

    async def post_redirect(request: web.Request) -> web.Response:
        raise web.HTTPSeeOther("/doc")

    async def finger(request: web.Request) -> web.Response:
        resource, host = request.query.get("resource", ""), request.host
        self_link = {"rel": "self", "type": AS2, "href": f"http://{host}/actors/alice"}
        jrd = webfinger_document(resource, self_link["href"], f"http://{host}/@alice", f"http://{host}/s?uri={{uri}}")
        if resource == f"acct:alice@{host}":
            return web.json_response(jrd, content_type="application/jrd+json")
        if resource == f"acct:noself@{host}":
            jrd["links"] = [link for link in jrd["links"] if link["rel"] != "self"]
            return web.json_response(jrd, content_type="application/jrd+json")
        raise web.HTTPNotFound()

    app = web.Application()
    app.router.add_get("/doc", doc)
    app.router.add_get("/hop/{n}", doc)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/countdown/{n}", countdown)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/big", big)
    app.router.add_get("/bomb", bomb)
    app.router.add_get("/slow", slow)
    app.router.add_get("/drip", drip)
    app.router.add_get("/html", html)
    app.router.add_get("/array", array)
    app.router.add_get("/broken", broken)
    app.router.add_post("/inbox", post_redirect)
    app.router.add_get("/.well-known/webfinger", finger)
    return app


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """start(host) → base URL of a test server on that loopback address."""
    release, servers = asyncio.Event(), []

    async def _start(host: str) -> str:
        server = TestServer(make_app(release), host=host)
        await server.start_server()
        servers.append(server)
        return f"http://{host}:{server.port}"

    yield _start
    release.set()  # lets slow handlers end, so closing the servers does not wait on them
    for server in servers:
        await server.close()


@pytest.fixture
async def base(start: Start) -> str:
    return await start("127.0.0.2")


async def fetch(url: str, policy: FetchPolicy = ONLY_2, sign: Signer | None = None) -> tuple[str, dict[str, Any]]:
    async with GuardedClient(policy) as client:
        return await client.get_json(url, sign=sign)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("http://127.0.0.1:{port}/doc", "127.0.0.1 is a loopback address: refused"),
        ("http://10.0.0.1/doc", "10.0.0.1 is a private address: refused"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is the cloud metadata address"),
        ("http://[::1]:{port}/doc", "::1 is a loopback address"),
        ("http://[::ffff:10.0.0.1]/doc", "10.0.0.1 is a private address"),
        ("http://0.0.0.0:{port}/doc", "0.0.0.0 is an unspecified address"),
        ("http://100.64.1.1/doc", "a shared (CGNAT) address"),
        ("http://127.1:{port}/doc", "not a valid host name"),
        ("http://2130706433:{port}/doc", "not a valid host name"),
        ("file:///etc/passwd", "only http and https"),
        ("ftp://127.0.0.2/doc", "only http and https"),
        ("http://user:secret@127.0.0.2:{port}/doc", "credentials"),
        ("http://user@127.0.0.2:{port}/doc", "credentials"),
        ("/doc", "only http and https"),
    ],
)
async def test_default_policy_refuses_before_connecting(base: str, path: str, reason: str) -> None:
    url = path.format(port=base.rsplit(":", 1)[1])
    with pytest.raises(Refused) as refused:
        await fetch(url, FetchPolicy())
    assert reason in refused.value.detail
    assert "secret" not in refused.value.detail


async def test_a_name_resolving_to_loopback_is_refused(base: str) -> None:
    with pytest.raises(Refused, match=r"localhost resolves to (127\.0\.0\.1|::1), a loopback address: refused"):
        await fetch(base.replace("127.0.0.2", "localhost") + "/doc", FetchPolicy())


class FakeDNS(AbstractResolver):
    """Plays DNS: the address the guard checks must be the one connected to."""

    def __init__(self, table: Mapping[str, str]) -> None:
        self.table = table

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:  # fmt: skip
        return [{"hostname": host, "host": self.table[host], "port": port, "family": socket.AF_INET, "proto": 0,
                 "flags": 0}]  # fmt: skip

    async def close(self) -> None:
        pass


async def test_the_checked_address_is_the_connected_address(base: str) -> None:
    port = base.rsplit(":", 1)[1]
    dns = FakeDNS({"peer.example": "127.0.0.2", "rebind.example": "10.0.0.5"})
    async with GuardedClient(ONLY_2, resolver=dns) as client:
        url, doc = await client.get_json(f"http://peer.example:{port}/doc")
        assert doc["id"] == url == f"http://peer.example:{port}/doc"
        with pytest.raises(Refused, match=r"rebind\.example resolves to 10\.0\.0\.5, a private address: refused"):
            await client.get_json(f"http://rebind.example:{port}/doc")


async def test_allowed_network_is_fetched(base: str) -> None:
    url, doc = await fetch(f"{base}/doc")
    assert url == doc["id"] == f"{base}/doc"


async def test_allowing_private_fetches_loopback_but_not_metadata(base: str) -> None:
    policy = FetchPolicy.allowing_private()
    assert (await fetch(f"{base}/doc", policy))[1]["id"] == f"{base}/doc"
    with pytest.raises(Refused, match="metadata"):
        await fetch("http://169.254.169.254/", policy)


async def test_redirect_within_the_allowed_host_is_followed(base: str) -> None:
    url, doc = await fetch(f"{base}/redirect?to=/hop/2")
    assert url == doc["id"] == f"{base}/hop/2"


async def test_redirect_to_a_refused_address_is_refused(base: str, start: Start) -> None:
    other = await start("127.0.0.3")
    with pytest.raises(Refused, match=r"127\.0\.0\.3 is a loopback address: refused"):
        await fetch(f"{base}/redirect?to={other}/doc")
    with pytest.raises(Refused, match="only http and https"):
        await fetch(f"{base}/redirect?to=file:///etc/passwd")


async def test_redirect_to_an_invalid_location_is_final(base: str) -> None:
    with pytest.raises(RemoteError, match="invalid Location") as error:
        await fetch(f"{base}/redirect?to=http://[::1")
    assert not error.value.retryable


async def test_redirects_are_counted(base: str) -> None:
    url, _ = await fetch(f"{base}/countdown/3")
    assert url == f"{base}/countdown/0"
    with pytest.raises(RemoteError, match="more than 3 redirects") as error:
        await fetch(f"{base}/countdown/4")
    assert not error.value.retryable


async def test_redirects_can_be_left_to_the_caller(base: str) -> None:
    async with GuardedClient(ONLY_2) as client:
        response = await client.request("GET", f"{base}/countdown/1", follow_redirects=False)
    assert (response.status, response.headers["Location"]) == (302, "/countdown/0")


async def test_a_post_is_never_redirected(base: str) -> None:
    async with GuardedClient(ONLY_2) as client:
        with pytest.raises(RemoteError, match=r"redirected \(303\) to /doc: not followed") as error:
            await client.request("POST", f"{base}/inbox", body=b"{}", headers={"Content-Type": AS2})
    assert not error.value.retryable


async def test_signer_signs_every_hop(base: str) -> None:
    calls: list[tuple[str, str, bytes | None]] = []

    def sign(method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> Mapping[str, str]:
        calls.append((method, url, body))
        assert headers["Accept"].startswith(AS2)
        return {**headers, "X-Signed-Url": url}

    url, doc = await fetch(f"{base}/redirect?to=/hop/1", sign=sign)
    assert calls == [("GET", f"{base}/redirect?to=/hop/1", None), ("GET", f"{base}/hop/1", None)]
    assert doc["seen"] == url == f"{base}/hop/1"


@pytest.mark.parametrize("path", ["/big", "/bomb"])
async def test_body_over_the_limit_is_refused(base: str, path: str) -> None:
    policy = FetchPolicy(allow_networks=ONLY_2.allow_networks, max_bytes=1000)
    with pytest.raises(RemoteError, match="response larger than 1000 bytes") as error:
        await fetch(base + path, policy)
    assert not error.value.retryable


async def test_gzip_within_the_limit_is_decompressed(base: str) -> None:
    assert await fetch(f"{base}/bomb") == (f"{base}/bomb", {})


@pytest.mark.parametrize("path", ["/slow", "/drip"])
async def test_timeout_is_retryable(base: str, path: str) -> None:
    policy = FetchPolicy(allow_networks=ONLY_2.allow_networks, timeout=0.5)
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(RemoteError, match=r"no complete answer within 0\.5 s") as error:
        await fetch(base + path, policy)
    assert error.value.retryable
    assert loop.time() - began < 2


async def test_connection_refused_is_retryable() -> None:
    with socket.socket() as unused:  # bound, never listening: connections to it are refused
        unused.bind(("127.0.0.2", 0))
        port = unused.getsockname()[1]
        with pytest.raises(RemoteError, match="ClientConnectorError") as error:
            await fetch(f"http://127.0.0.2:{port}/doc")
    assert error.value.retryable


async def test_client_lifecycle(base: str) -> None:
    client = GuardedClient(ONLY_2)
    with pytest.raises(RuntimeError, match="before start"):
        await client.request("GET", f"{base}/doc")
    await client.start()
    await client.close()
    await client.close()  # harmless twice
    await client.start()  # and restartable
    assert (await client.request("GET", f"{base}/doc")).status == 200
    await client.close()


@pytest.mark.parametrize(
    ("code", "retry_after", "retryable", "expected_after"),
    [
        (404, "", False, None),
        (410, "", False, None),
        (503, "30", True, 30.0),
        (429, "30", True, 30.0),
        (500, "", True, None),
        (408, "", True, None),
    ],
)
async def test_statuses_map_to_remote_errors(
    base: str, code: int, retry_after: str, retryable: bool, expected_after: float | None
) -> None:
    url = f"{base}/status/{code}?retry_after={retry_after}"
    async with GuardedClient(ONLY_2) as client:
        response = await client.request("GET", url)
        assert response.status == code
        with pytest.raises(RemoteError) as error:
            raise_for_status(response)
        with pytest.raises(RemoteError):
            await client.get_json(url)
    assert (error.value.remote_status, error.value.retryable, error.value.retry_after) == (
        code, retryable, expected_after,
    )  # fmt: skip


def test_retry_after_as_http_date() -> None:
    now = datetime(2025, 10, 12, 14, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Sun, 12 Oct 2025 14:02:00 GMT", now) == 120.0
    assert parse_retry_after("Sun, 12 Oct 2025 13:00:00 GMT", now) == 0.0
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("-5", now) is None


@pytest.mark.parametrize(
    ("path", "reason"),
    [("/html", "served as text/html, not JSON"), ("/array", "not an object"), ("/broken", "not valid JSON")],
)
async def test_get_json_refuses_what_is_not_a_json_object(base: str, path: str, reason: str) -> None:
    with pytest.raises(MalformedActivity, match=reason):
        await fetch(base + path)


async def test_resolve_handle(base: str) -> None:
    host = base.removeprefix("http://")
    async with GuardedClient(ONLY_2) as client:
        assert await resolve_handle(client, f"@alice@{host}", scheme="http") == f"http://{host}/actors/alice"
        with pytest.raises(MalformedActivity, match=rf"acct:noself@{host} .* has no rel=self link"):
            await resolve_handle(client, f"noself@{host}", scheme="http")
        with pytest.raises(RemoteError, match="HTTP 404") as error:
            await resolve_handle(client, f"acct:nobody@{host}", scheme="http")
        assert not error.value.retryable
        with pytest.raises(Refused):  # https by default; and the port is irrelevant to the address check
            await resolve_handle(client, "@alice@127.0.0.1:1")
