"""HTTP signatures, framework-neutral: plain method, URL, headers and body in; the key lookup injected.

Outgoing requests are signed with draft-cavage (what Mastodon expects); incoming ones may use
draft-cavage or RFC 9421 (what Fedify sends first). Every refusal is a SignatureError saying why.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from federation.errors import SignatureError

from .cavage import sign_request, verify_cavage
from .common import KeyResolver, Policy, ResolvedKey, VerifiedSignature, lower_headers, now_utc, require_owner
from .digests import check_content_digest, check_digest, content_digest_header, digest_header
from .keys import generate_key, load_private, load_public, private_pem, public_pem
from .rfc9421 import sign_request_rfc9421, verify_rfc9421

__all__ = [
    "KeyResolver",
    "ResolvedKey",
    "VerifiedSignature",
    "check_content_digest",
    "check_digest",
    "content_digest_header",
    "digest_header",
    "generate_key",
    "load_private",
    "load_public",
    "private_pem",
    "public_pem",
    "require_owner",
    "sign_request",
    "sign_request_rfc9421",
    "verify_request",
]


async def verify_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    resolve_key: KeyResolver,
    *,
    now: datetime | None = None,
    window: timedelta = timedelta(hours=1),
    require_digest_for_body: bool = True,
) -> VerifiedSignature:
    """Verify an incoming request signed with RFC 9421 or draft-cavage; raise SignatureError otherwise.

    `url` is the absolute URL as the client addressed it (scheme and host as seen before any proxy,
    path and query still percent-encoded as sent): both schemes sign it.
    """
    lowered = lower_headers(headers)
    policy = Policy(now_utc(now), window, require_digest_for_body)
    # Both schemes name their header "Signature"; only RFC 9421 adds Signature-Input.
    if "signature-input" in lowered:
        return await verify_rfc9421(method, url, lowered, body, resolve_key, policy)
    if "signature" in lowered:
        return await verify_cavage(method, url, lowered["signature"], lowered, body, resolve_key, policy)
    scheme, _, rest = lowered.get("authorization", "").partition(" ")
    if scheme.lower() == "signature" and rest.strip():
        return await verify_cavage(method, url, rest, lowered, body, resolve_key, policy)
    raise SignatureError("request is not signed (no Signature, Signature-Input or Authorization: Signature header)")
