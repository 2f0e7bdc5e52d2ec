"""draft-cavage-http-signatures-12, the scheme Mastodon sends and every fediverse server accepts."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import formatdate, parsedate_to_datetime
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

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
from .digests import check_digest, digest_header

# hs2019 only says "look at the key": for the RSA keys of the fediverse that means PKCS#1 v1.5 with SHA-256.
ALGORITHMS = frozenset({"rsa-sha256", "hs2019"})
_PARAM = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^",\s]*)\s*(?:,|$)')
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def sign_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    key_id: str,
    key: rsa.RSAPrivateKey,
    now: datetime | None = None,
) -> dict[str, str]:
    """The full header set to send: `headers` plus Host (unless given), Date, Digest (with a body) and Signature."""
    ours = {"date", "digest", "signature"}
    out = {name: value for name, value in headers.items() if name.lower() not in ours}
    lowered = lower_headers(out)
    if "host" not in lowered:
        out["Host"] = lowered["host"] = host_of(url)
    when = now_utc(now)
    out["Date"] = lowered["date"] = formatdate(when.timestamp(), usegmt=True)
    covered = ["(request-target)", "host", "date"]
    if body is not None:
        out["Digest"] = lowered["digest"] = digest_header(body)
        if "content-type" not in lowered:
            raise ValueError("a request with a body needs a Content-Type to sign")
        covered += ["digest", "content-type"]
    target = f"{method.lower()} {request_target(url, with_query=True)}"
    text = signing_string(covered, lowered, target, {})
    signature = key.sign(text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    out["Signature"] = (
        f'keyId="{key_id}",algorithm="rsa-sha256",headers="{" ".join(covered)}",'
        f'signature="{base64.b64encode(signature).decode("ascii")}"'
    )
    return out


def host_of(url: str) -> str:
    """The Host header an HTTP client sends for `url`: no userinfo, no default port."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2].lower()
    host, sep, port = netloc.rpartition(":")
    if sep and not host.endswith("]") and "]" in port:  # a bare IPv6 literal has no port
        return netloc
    if sep and port == _DEFAULT_PORTS.get(parts.scheme.lower()):
        return host
    return netloc


def request_target(url: str, *, with_query: bool) -> str:
    parts = urlsplit(url)
    path = parts.path or "/"
    return f"{path}?{parts.query}" if with_query and parts.query else path


def parse_signature(value: str) -> dict[str, str]:
    """`keyId="...",algorithm="...",headers="...",signature="..."` -> lower-cased parameter names to values."""
    params: dict[str, str] = {}
    pos = 0
    value = value.strip()
    while pos < len(value):
        match = _PARAM.match(value, pos)
        if match is None or match.end() == pos:
            raise SignatureError(f"malformed Signature header near {value[pos : pos + 30]!r}")
        name, raw = match.group(1).lower(), match.group(2)
        if name in params:
            raise SignatureError(f"malformed Signature header: {name} appears twice")
        params[name] = re.sub(r"\\(.)", r"\1", raw[1:-1]) if raw.startswith('"') else raw
        pos = match.end()
    return params


def signing_string(covered: list[str], headers: Mapping[str, str], target: str, params: Mapping[str, str]) -> str:
    lines = []
    for name in covered:
        if name == "(request-target)":
            lines.append(f"(request-target): {target}")
        elif name in ("(created)", "(expires)"):
            lines.append(f"{name}: {params[name[1:-1]]}")
        else:
            lines.append(f"{name}: {headers[name]}")
    return "\n".join(lines)


def _timestamp(params: Mapping[str, str], name: str) -> datetime:
    if name not in params:
        raise SignatureError(f"signature covers ({name}) but has no {name} parameter")
    try:
        if not (params[name].isascii() and params[name].isdigit()):
            raise ValueError(name)
        return datetime.fromtimestamp(int(params[name]), UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise SignatureError(f"malformed Signature header: {name}={params[name]!r} is not a Unix time") from exc


def _http_date(value: str) -> datetime:
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError) as exc:
        raise SignatureError(f"Date header is not an HTTP date: {value!r}") from exc
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


async def verify_cavage(
    method: str,
    url: str,
    signature_value: str,
    headers: Mapping[str, str],
    body: bytes | None,
    resolve_key: KeyResolver,
    policy: Policy,
) -> VerifiedSignature:
    headers = lower_headers(headers)
    params = parse_signature(signature_value)
    algorithm = params.get("algorithm", "hs2019").lower()
    if algorithm not in ALGORITHMS:
        raise SignatureError(f"unsupported signature algorithm {algorithm!r} (accepted: rsa-sha256, hs2019)")
    for required in ("keyid", "signature"):
        if not params.get(required):
            raise SignatureError(f"malformed Signature header: no {'keyId' if required == 'keyid' else required}")
    key_id = params["keyid"]
    try:
        signature = base64.b64decode(params["signature"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("malformed Signature header: signature is not base64") from exc
    # Without a headers parameter the draft signs only Date, which we refuse below.
    covered = params.get("headers", "date").lower().split()

    missing = [name for name in ("(request-target)", "host") if name not in covered]
    if "date" not in covered and "(created)" not in covered:
        missing.append("date")
    if body and policy.require_digest_for_body and "digest" not in covered:
        missing.append("digest")
    if missing:
        raise SignatureError(f"signature does not cover {', '.join(missing)} (covers: {' '.join(covered)})")
    absent = [name for name in covered if not name.startswith("(") and name not in headers]
    if absent:
        raise SignatureError(f"signed header {', '.join(absent)} is absent from the request")

    if "date" in covered:
        check_time("Date header", _http_date(headers["date"]), policy.now, policy.window)
    if "(created)" in covered:
        check_time("signature created time", _timestamp(params, "created"), policy.now, policy.window)
    if "expires" in params or "(expires)" in covered:
        check_expires(_timestamp(params, "expires"), policy.now, policy.window)

    if "digest" in headers:
        check_digest(headers["digest"], body or b"")

    # Mastodon signs the query string into (request-target), Fedify leaves it out: accept both.
    targets = dict.fromkeys((request_target(url, with_query=True), request_target(url, with_query=False)))
    texts = [signing_string(covered, headers, f"{method.lower()} {t}", params).encode("utf-8") for t in targets]

    def attempt(key: rsa.RSAPublicKey) -> bool:
        for text in texts:
            try:
                key.verify(signature, text, padding.PKCS1v15(), hashes.SHA256())
            except InvalidSignature:
                continue
            return True
        return False

    resolved = await verify_with_rotation(key_id, resolve_key, attempt)
    return VerifiedSignature(key_id=key_id, owner=resolved.owner, scheme="cavage", covered=tuple(covered))
