"""What both signature schemes share: the injected key lookup, the result, clock and key-rotation rules."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from cryptography.hazmat.primitives.asymmetric import rsa

from federation.errors import NodeError, SignatureError

from .keys import cached_public

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ResolvedKey:
    """A public key as published by its owner (`publicKey.id`, `publicKey.owner`, `publicKey.publicKeyPem`)."""

    key_id: str
    owner: str
    public_pem: str


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    """Who signed, and what the signature covers: callers check `owner` against the activity's actor."""

    key_id: str
    owner: str
    scheme: Literal["cavage", "rfc9421"]
    covered: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Policy:
    now: datetime
    window: timedelta
    require_digest_for_body: bool


# Called as resolve_key(key_id, refresh): refresh=True must bypass any cache (the owner may have rotated its key).
KeyResolver = Callable[[str, bool], Awaitable[ResolvedKey]]
# Returns False when the cryptographic check fails (worth one refresh); raises SignatureError for anything else.
Attempt = Callable[[rsa.RSAPublicKey], bool]


def require_owner(verified: VerifiedSignature, actor: str) -> None:
    """Refuse an activity whose actor is not the owner of the key that signed it."""
    if verified.owner != actor:
        raise SignatureError(f"keyId {verified.key_id} is not owned by actor {actor} (owner: {verified.owner})")


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Lower-cased names; repeated fields (a multidict's items()) are joined with ", " as HTTP combines them."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        value = value.strip()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def duration(delta: timedelta) -> str:
    seconds = int(abs(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h" if not rest else f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m" if not secs else f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def check_time(label: str, when: datetime, now: datetime, window: timedelta) -> None:
    age = now - when
    if age > window:
        raise SignatureError(f"{label} is {duration(age)} old (window ±{duration(window)})")
    if -age > window:
        raise SignatureError(f"{label} is {duration(age)} in the future (window ±{duration(window)})")


def check_expires(expires: datetime, now: datetime, window: timedelta) -> None:
    # The window doubles as clock-skew margin, as Mastodon does with its CLOCK_SKEW_MARGIN.
    if now - expires > window:
        raise SignatureError(f"signature expired {duration(now - expires)} ago (margin {duration(window)})")


async def _fetch(resolve_key: KeyResolver, key_id: str, refresh: bool) -> ResolvedKey:
    try:
        return await resolve_key(key_id, refresh)
    except NodeError as exc:
        raise SignatureError(f"could not fetch key {key_id}: {exc.detail}") from exc
    except Exception as exc:
        # The resolver talks to the network: any failure of it is a refusal, never a 500.
        raise SignatureError(f"could not fetch key {key_id}: {type(exc).__name__}: {exc}") from exc


async def verify_with_rotation(key_id: str, resolve_key: KeyResolver, attempt: Attempt) -> ResolvedKey:
    """Try the cached key, then exactly one refreshed fetch: actors rotate keys and caches lag behind."""
    resolved = await _fetch(resolve_key, key_id, False)
    if attempt(cached_public(key_id, resolved.public_pem)):
        return resolved
    log.debug("signature does not verify with the cached key %s; refetching it", key_id)
    fresh = await _fetch(resolve_key, key_id, True)
    if fresh.public_pem != resolved.public_pem and attempt(cached_public(key_id, fresh.public_pem)):
        return fresh
    raise SignatureError(f"signature does not verify with key {key_id} (also after refetching it)")


def now_utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now
