"""RFC 9421 HTTP Message Signatures, which Fedify tries first and Mastodon ≥ 4.5 accepts.

The cryptographic work and the signature base are left to `http-message-signatures`; this module
adds the fediverse's policy (which components must be covered, the clock window, Content-Digest)
and the key lookup, which the library can only do synchronously.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import http_sf
from cryptography.exceptions import InvalidSignature as BadCryptography
from cryptography.hazmat.primitives.asymmetric import rsa
from http_message_signatures import (
    HTTPMessageSignaturesException,
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    algorithms,
)

from federation.errors import SignatureError

from .common import (
    KeyResolver,
    Policy,
    VerifiedSignature,
    check_expires,
    check_time,
    lower_headers,
    now_utc,
    verify_with_rotation,
)
from .digests import check_content_digest, content_digest_header

ALGORITHM = "rsa-v1_5-sha256"


@dataclass
class _Message:
    """The request shape the library reads: an upper-case method, an absolute URL, headers with items()."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)


class _OneKey(HTTPSignatureKeyResolver):
    def __init__(self, key_id: str, public: rsa.RSAPublicKey | None = None,
                 private: rsa.RSAPrivateKey | None = None) -> None:  # fmt: skip
        self.key_id, self.public, self.private = key_id, public, private

    def resolve_public_key(self, key_id: str) -> rsa.RSAPublicKey | None:
        return self.public if key_id == self.key_id else None

    def resolve_private_key(self, key_id: str) -> rsa.RSAPrivateKey:
        if key_id != self.key_id or self.private is None:
            raise KeyError(key_id)
        return self.private


class _Verifier(HTTPMessageVerifier):
    require_created = False

    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        # Checked before the key fetch against the caller's clock and window (the library's is fixed at ±5 s).
        return None


@dataclass(frozen=True, slots=True)
class _Candidate:
    label: str
    items: list[Any]  # as parsed, so that it serialises back unchanged
    components: tuple[str, ...]
    params: dict[str, Any]
    signature: bytes


def _component_name(item: Any) -> str:
    name, params = item if isinstance(item, tuple) else (item, {})
    if not isinstance(name, str):
        raise SignatureError("malformed Signature-Input: a component name is not a string")
    return name if not params else http_sf.ser((name, params))


def _dictionary(headers: Mapping[str, str], name: str) -> dict[str, Any]:
    try:
        return cast(dict[str, Any], http_sf.parse(headers[name.lower()].encode("latin-1"), tltype="dictionary"))
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise SignatureError(f"malformed {name} header: {exc}") from exc


def _candidates(headers: Mapping[str, str]) -> list[_Candidate]:
    if "signature" not in headers:
        raise SignatureError("malformed signature: Signature-Input without a Signature header")
    inputs, signatures = _dictionary(headers, "Signature-Input"), _dictionary(headers, "Signature")
    if not inputs:
        raise SignatureError("malformed Signature-Input header: it is empty")
    found = []
    for label, member in inputs.items():
        value, params = member
        signature = signatures.get(label)
        if not isinstance(value, list):
            raise SignatureError(f"malformed Signature-Input header: {label} is not an inner list")
        if signature is None or not isinstance(signature[0], bytes):
            raise SignatureError(f"malformed Signature header: no byte sequence for {label}")
        names = tuple(_component_name(item) for item in value)
        found.append(_Candidate(label, value, names, dict(params), signature[0]))
    return found


def _lacks(components: tuple[str, ...], body: bool) -> list[str]:
    have = set(components)
    lacks = [] if "@method" in have else ["@method"]
    if "@target-uri" not in have and not {"@authority", "@path"} <= have:
        lacks.append("@target-uri (or @authority and @path)")
    if body and "content-digest" not in have:
        lacks.append("content-digest")
    return lacks


def _choose(candidates: list[_Candidate], body: bool) -> _Candidate:
    for candidate in candidates:
        if not _lacks(candidate.components, body):
            return candidate
    first = candidates[0]
    raise SignatureError(
        f"signature {first.label} does not cover {', '.join(_lacks(first.components, body))}"
        f" (covers: {' '.join(first.components)})"
    )


def _time_param(params: Mapping[str, Any], name: str) -> datetime:
    value = params[name]
    if type(value) is not int:
        raise SignatureError(f"malformed Signature-Input header: {name} is not an integer")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise SignatureError(f"malformed Signature-Input header: {name}={value} is out of range") from exc


async def verify_rfc9421(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    resolve_key: KeyResolver,
    policy: Policy,
) -> VerifiedSignature:
    headers = lower_headers(headers)
    chosen = _choose(_candidates(headers), bool(body) and policy.require_digest_for_body)
    alg = chosen.params.get("alg", ALGORITHM)
    if alg != ALGORITHM:
        raise SignatureError(f"unsupported signature algorithm {alg!r} (accepted: {ALGORITHM})")
    key_id = chosen.params.get("keyid")
    if not isinstance(key_id, str) or not key_id:
        raise SignatureError(f"malformed Signature-Input header: {chosen.label} has no keyid")
    if "created" not in chosen.params:
        # Without it the signature could be replayed for ever.
        raise SignatureError(f"signature {chosen.label} has no created parameter")
    check_time("signature created time", _time_param(chosen.params, "created"), policy.now, policy.window)
    if "expires" in chosen.params:
        check_expires(_time_param(chosen.params, "expires"), policy.now, policy.window)
    if "content-digest" in headers:
        check_content_digest(headers["content-digest"], body or b"")
    elif body and policy.require_digest_for_body:
        raise SignatureError("signed header content-digest is absent from the request")

    # The library refuses several signatures without an expected tag: hand it only the chosen one.
    only = {k: v for k, v in headers.items() if k not in ("signature-input", "signature")}
    only["signature-input"] = http_sf.ser({chosen.label: (chosen.items, chosen.params)})
    only["signature"] = http_sf.ser({chosen.label: (chosen.signature, {})})
    message = _Message(method.upper(), url, only)

    def attempt(key: rsa.RSAPublicKey) -> bool:
        verifier = _Verifier(signature_algorithm=algorithms.RSA_V1_5_SHA256, key_resolver=_OneKey(key_id, key))
        try:
            verifier.verify(message, max_age=None)
        except HTTPMessageSignaturesException as exc:
            if isinstance(exc.__cause__, BadCryptography):
                return False
            raise SignatureError(f"signature {chosen.label} refused: {exc}") from exc
        return True

    resolved = await verify_with_rotation(key_id, resolve_key, attempt)
    return VerifiedSignature(key_id=key_id, owner=resolved.owner, scheme="rfc9421", covered=chosen.components)


def sign_request_rfc9421(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    key_id: str,
    key: rsa.RSAPrivateKey,
    now: datetime | None = None,
) -> dict[str, str]:
    """The full header set to send: `headers` plus Content-Digest (with a body), Signature-Input and Signature."""
    ours = {"content-digest", "signature", "signature-input"}
    out = {name: value for name, value in headers.items() if name.lower() not in ours}
    covered = ["@method", "@target-uri"]
    if body is not None:
        out["Content-Digest"] = content_digest_header(body)
        if "content-type" not in lower_headers(out):
            raise ValueError("a request with a body needs a Content-Type to sign")
        covered += ["content-digest", "content-type"]
    message = _Message(method.upper(), url, out)
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.RSA_V1_5_SHA256, key_resolver=_OneKey(key_id, private=key)
    )
    try:
        # Since 3.0 the library refuses a Content-Digest it did not write unless told to reuse (and re-check) it.
        signer.sign(message, key_id=key_id, created=now_utc(now), label="sig1",
                    covered_component_ids=covered, body=body, use_existing_digest=body is not None)  # fmt: skip
    except HTTPMessageSignaturesException as exc:
        raise ValueError(f"cannot sign {method} {url}: {exc}") from exc
    return out
