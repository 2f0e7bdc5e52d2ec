"""Body digests: `Digest` (RFC 3230, sent with draft-cavage) and `Content-Digest` (RFC 9530, with RFC 9421)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from federation.errors import SignatureError

_HASHES = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}


def digest_header(body: bytes) -> str:
    # Upper case: microblog.pub refuses `sha-256=` (see INTEROP.md).
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def content_digest_header(body: bytes) -> str:
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii") + ":"


def check_digest(value: str, body: bytes) -> None:
    """Raise SignatureError unless a `Digest` header value matches the body."""
    _check(_parse(value, "Digest", sf=False), body, "Digest")


def check_content_digest(value: str, body: bytes) -> None:
    """Raise SignatureError unless a `Content-Digest` header value matches the body."""
    _check(_parse(value, "Content-Digest", sf=True), body, "Content-Digest")


def _parse(value: str, name: str, *, sf: bool) -> dict[str, bytes]:
    """Algorithm (lower-cased) -> raw digest, for the algorithms we know; others are skipped."""
    found: dict[str, bytes] = {}
    seen: list[str] = []
    for member in value.split(","):
        alg, sep, encoded = member.strip().partition("=")
        alg = alg.strip().lower()
        encoded = encoded.strip()
        if not sep or not alg:
            raise SignatureError(f"malformed {name} header: {value!r}")
        seen.append(alg)
        if alg not in _HASHES:
            continue
        if sf:
            # Structured-field byte sequence; servers that forget the colons exist, so they are optional.
            encoded = encoded.split(";", 1)[0].strip()
            if encoded.startswith(":") and encoded.endswith(":") and len(encoded) >= 2:
                encoded = encoded[1:-1]
        try:
            found[alg] = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SignatureError(f"malformed {name} header: {alg} value is not base64") from exc
    if not found:
        raise SignatureError(f"{name} carries no SHA-256 or SHA-512 value (got {', '.join(seen) or 'nothing'})")
    return found


def _check(digests: dict[str, bytes], body: bytes, name: str) -> None:
    for alg, expected in digests.items():
        if not hmac.compare_digest(_HASHES[alg](body).digest(), expected):
            raise SignatureError(f"digest mismatch: the body does not match {name} ({alg})")
