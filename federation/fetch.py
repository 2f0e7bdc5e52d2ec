"""The one HTTP client every outgoing request of the node goes through, behind an SSRF guard.

Remote documents name URLs we then fetch (actors, keys, inboxes, redirects), so an attacker
chooses them: without a guard, one Follow could make us read the cloud metadata service or an
admin port on the node's own network. The address is checked inside the connector's resolver,
so the address checked is the address connected to: a name that resolves to a public address
when checked and a private one when connecting (DNS rebinding) has no window.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from federation.errors import MalformedActivity, Refused, RemoteError, TooLarge

Network = IPv4Network | IPv6Network
IPAddress = IPv4Address | IPv6Address
Signer = Callable[[str, str, Mapping[str, str], bytes | None], Mapping[str, str]]

AS2_ACCEPT = 'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
JSON_TYPES = frozenset({"application/json", "application/activity+json", "application/ld+json", "application/jrd+json"})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
PRIVATE_NETWORKS: tuple[Network, ...] = tuple(
    ip_network(n) for n in ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
_CGNAT = ip_network("100.64.0.0/10")
_NAT64 = ip_network("64:ff9b::/96")
# AWS/GCP/Azure/OpenStack use the IPv4 one; AWS also answers on the IPv6 one (Nitro).
_METADATA = frozenset({ip_address("169.254.169.254"), ip_address("fd00:ec2::254")})
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)", re.IGNORECASE)


@dataclass(frozen=True)
class FetchPolicy:
    allow_networks: tuple[Network, ...] = ()
    timeout: float = 10.0
    connect_timeout: float = 5.0
    max_bytes: int = 1_000_000
    max_redirects: int = 3
    user_agent: str = "Oscartes"

    @classmethod
    def allowing_private(cls) -> FetchPolicy:
        """The node's "allow private addresses" setting (tests, or a federation on one LAN).

        Link-local stays refused, and with it the cloud metadata address.
        """
        return cls(allow_networks=PRIVATE_NETWORKS)


@dataclass(frozen=True)
class Response:
    status: int
    url: str
    headers: Mapping[str, str]
    body: bytes = field(repr=False)


def address_refusal(ip: IPAddress, allow: tuple[Network, ...] = ()) -> str | None:
    """Why connecting to `ip` is refused ("a private address"...), or None when it is allowed."""
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        # The socket ends up talking IPv4 to the mapped address: judge that one.
        return address_refusal(ip.ipv4_mapped, allow)
    if any(ip in network for network in allow):
        return None
    if ip in _METADATA:
        return "the cloud metadata address"
    checks: tuple[tuple[bool, str], ...] = (
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip in _CGNAT, "a shared (CGNAT) address"),
        (isinstance(ip, IPv6Address) and ip.is_site_local, "a site-local address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "a non-global address"),
    )
    for refused, reason in checks:
        if refused:
            return reason
    if isinstance(ip, IPv6Address):
        # 6to4 and NAT64 gateways forward to the embedded IPv4 address.
        embedded = ip.sixtofour or (IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None)
        if embedded is not None and (inner := address_refusal(embedded, allow)) is not None:
            return f"{inner} ({embedded}) embedded in IPv6"
    return None


def _shown(ip: IPAddress) -> str:
    # ipaddress prints ::ffff:10.0.0.1 as ::ffff:a00:1, hiding the address that matters.
    mapped = ip.ipv4_mapped if isinstance(ip, IPv6Address) else None
    return f"::ffff:{mapped}" if mapped else str(ip)


def checked_url(url: str | URL, allow: tuple[Network, ...] = ()) -> URL:
    """Parse `url` and refuse what must never be fetched, before any DNS lookup or connection."""
    try:
        parsed = url if isinstance(url, URL) else URL(url)
    except (ValueError, TypeError):
        raise Refused(f"{url!r} is not a valid URL: refused") from None
    if parsed.scheme not in ("http", "https"):
        raise Refused(f"{url}: only http and https URLs are fetched, not {parsed.scheme or 'a relative URL'}")
    if parsed.raw_user is not None or parsed.raw_password is not None:
        raise Refused(f"{parsed.with_user(None)}: URLs carrying credentials (user@host) are refused")
    host = parsed.raw_host or ""
    try:
        ip = ip_address(host)
    except ValueError:
        labels = host.rstrip(".").split(".")
        # An all-numeric last label is a legacy IPv4 form (127.1, 2130706433) that resolvers map
        # onto an address; no real name ends like that.
        if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels) or labels[-1].isdigit():
            raise Refused(f"{url}: {host!r} is not a valid host name: refused") from None
        return parsed
    reason = address_refusal(ip, allow)
    if reason is not None:
        raise Refused(f"{url}: {_shown(ip)} is {reason}: refused")
    return parsed


class GuardedResolver(AbstractResolver):
    """Resolves through `inner`, and refuses the whole name if any address it gives is refused.

    aiohttp connects only to the addresses a resolver returns, so this is the last word.
    (Literal-IP URLs skip resolvers: `checked_url` handles those.)
    """

    def __init__(self, allow: tuple[Network, ...], inner: AbstractResolver) -> None:
        self._allow, self._inner = allow, inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            ip = ip_address(result["host"])
            reason = address_refusal(ip, self._allow)
            if reason is not None:
                raise Refused(f"{host} resolves to {_shown(ip)}, {reason}: refused")
        return results

    async def close(self) -> None:
        await self._inner.close()


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if absent or invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; parsedate gives naive for "-0000"
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def raise_for_status(response: Response) -> None:
    """RemoteError for anything but 2xx: 408, 429 and 5xx are retryable, other statuses final."""
    status = response.status
    if 200 <= status < 300:
        return
    retryable = status in (408, 429) or status >= 500
    retry_after = parse_retry_after(response.headers.get("Retry-After")) if retryable else None
    raise RemoteError(f"{response.url} answered HTTP {status}", status, retryable, retry_after)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


class GuardedClient:
    """Owns one aiohttp session; use `async with GuardedClient(policy) as client:` or start()/close().

    `resolver` replaces the system resolver under the guard (tests use it to play DNS).
    """

    def __init__(self, policy: FetchPolicy | None = None, *, limit_per_host: int = 4,
                 resolver: AbstractResolver | None = None) -> None:  # fmt: skip
        self.policy = policy or FetchPolicy()
        self._limit_per_host = limit_per_host
        self._inner_resolver = resolver
        self._session: aiohttp.ClientSession | None = None
        self._resolver: AbstractResolver | None = None

    async def start(self) -> None:
        if self._session is not None:
            return
        # The connector closes only resolvers it created itself: close() closes ours.
        self._resolver = GuardedResolver(self.policy.allow_networks, self._inner_resolver or DefaultResolver())
        connector = aiohttp.TCPConnector(resolver=self._resolver, limit_per_host=self._limit_per_host)
        timeout = aiohttp.ClientTimeout(
            total=self.policy.timeout, connect=self.policy.connect_timeout, sock_connect=self.policy.connect_timeout
        )
        # trust_env=False: an HTTP(S)_PROXY in the environment would connect for us, past the guard.
        self._session = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), timeout=timeout,
            auto_decompress=True, trust_env=False, raise_for_status=False,
        )  # fmt: skip

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
        if self._resolver is not None and self._inner_resolver is None:  # an injected one is its owner's
            await self._resolver.close()
        self._resolver = None

    async def __aenter__(self) -> GuardedClient:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                      body: bytes | None = None, sign: Signer | None = None,
                      follow_redirects: bool = True) -> Response:  # fmt: skip
        """One request, redirects included, within `policy.timeout` in total.

        Statuses are not errors here (see raise_for_status); refusals raise Refused, failures
        RemoteError. `sign` is called for every hop, since signatures cover the URL.
        """
        if self._session is None:
            raise RuntimeError("GuardedClient used before start()")
        method = method.upper()
        allow = self.policy.allow_networks
        target = checked_url(url, allow)
        sent = {"User-Agent": self.policy.user_agent, **(headers or {})}
        try:
            async with asyncio.timeout(self.policy.timeout):
                for _ in range(self.policy.max_redirects + 1):
                    response = await self._hop(self._session, method, target, sent, body, sign, follow_redirects)
                    location = response.headers.get("Location")
                    if not follow_redirects or response.status not in REDIRECTS or location is None:
                        return response
                    if method not in ("GET", "HEAD"):
                        # Replaying a POST elsewhere (or turning it into a GET on 303) would deliver
                        # a signed activity to a place its sender never chose.
                        raise RemoteError(f"{method} {target} redirected ({response.status}) to {location}: "
                                          "not followed", response.status, retryable=False)  # fmt: skip
                    try:
                        joined = target.join(URL(location))
                    except ValueError:
                        raise RemoteError(f"{target} redirects to an invalid Location {location!r}",
                                          response.status, retryable=False) from None  # fmt: skip
                    following = checked_url(joined, allow)
                    if target.scheme == "https" and following.scheme == "http":
                        raise Refused(f"{target} redirects to {following}: a downgrade to http is refused")
                    if following.origin() != target.origin():
                        sent = {k: v for k, v in sent.items() if k.lower() not in ("authorization", "cookie")}
                    target = following
                raise RemoteError(f"{url}: more than {self.policy.max_redirects} redirects", retryable=False)
        except TimeoutError:
            raise RemoteError(f"{method} {target}: no complete answer within {self.policy.timeout} s") from None
        except aiohttp.ClientError as exc:
            raise RemoteError(f"{method} {target}: {type(exc).__name__}: {exc}") from exc

    async def _hop(self, session: aiohttp.ClientSession, method: str, target: URL, headers: dict[str, str],
                   body: bytes | None, sign: Signer | None, follow_redirects: bool) -> Response:  # fmt: skip
        if sign is not None:
            headers = {**headers, **sign(method, str(target), dict(headers), body)}
        limit = self.policy.max_bytes
        too_large = f"{target}: response larger than {limit} bytes"
        async with session.request(method, target, headers=headers, data=body, allow_redirects=False) as resp:
            if follow_redirects and resp.status in REDIRECTS and "Location" in resp.headers:
                return Response(resp.status, str(resp.url), resp.headers, b"")
            declared = resp.content_length
            # A compressed Content-Length says nothing about the decompressed size the limit is on.
            if declared is not None and declared > limit and "Content-Encoding" not in resp.headers:
                raise TooLarge(too_large, resp.status, retryable=False)
            received = bytearray()
            async for chunk in resp.content.iter_chunked(64 * 1024):
                received += chunk
                if len(received) > limit:
                    raise TooLarge(too_large, resp.status, retryable=False)
            return Response(resp.status, str(resp.url), resp.headers, bytes(received))

    async def get_json(self, url: str, *, accept: str = AS2_ACCEPT,
                       sign: Signer | None = None) -> tuple[str, dict[str, Any]]:  # fmt: skip
        """GET a JSON object: (final URL, object). Non-2xx → RemoteError; not a JSON object → MalformedActivity."""
        response = await self.request("GET", url, headers={"Accept": accept}, sign=sign)
        raise_for_status(response)
        content_type = media_type(response.headers.get("Content-Type"))
        if content_type not in JSON_TYPES:
            raise MalformedActivity(f"{response.url}: served as {content_type or 'no content type'}, not JSON")
        try:
            document = json.loads(response.body)
        except ValueError as exc:  # UnicodeDecodeError is a ValueError too
            raise MalformedActivity(f"{response.url}: body is not valid JSON ({exc})") from None
        if not isinstance(document, dict):
            raise MalformedActivity(f"{response.url}: JSON body is a {type(document).__name__}, not an object")
        return response.url, document
