"""HTTP signatures: our output against httpsig and http-message-signatures, and one refusal per gate."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpsig
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from http_message_signatures import HTTPMessageSigner, HTTPMessageVerifier, MappingKeyResolver, algorithms

from federation.errors import SignatureError
from federation.signatures import (
    ResolvedKey,
    VerifiedSignature,
    check_content_digest,
    check_digest,
    content_digest_header,
    digest_header,
    generate_key,
    load_private,
    load_public,
    private_pem,
    public_pem,
    require_owner,
    sign_request,
    sign_request_rfc9421,
    verify_request,
)
from federation.signatures.keys import cached_public

KEY = generate_key()
OTHER = generate_key()
ACTOR = "https://peer.example/actors/alice"
KEY_ID = ACTOR + "#main-key"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
INBOX = "https://node.example/inbox?page=2"
BODY = b'{"type": "Follow", "actor": "https://peer.example/actors/alice"}'
JSON = {"Content-Type": "application/activity+json"}


class Resolver:
    """Returns the given PEMs in turn (the last one repeats) and records each call."""

    def __init__(self, *keys: rsa.RSAPrivateKey, error: Exception | None = None) -> None:
        self.pems = [public_pem(key) for key in keys]
        self.error = error
        self.calls: list[tuple[str, bool]] = []

    async def __call__(self, key_id: str, refresh: bool) -> ResolvedKey:
        self.calls.append((key_id, refresh))
        if self.error is not None:
            raise self.error
        return ResolvedKey(key_id, ACTOR, self.pems[min(len(self.calls), len(self.pems)) - 1])


async def verify(method: str, url: str, headers: dict[str, str], body: bytes | None = None,
                 resolver: Resolver | None = None, **kwargs: Any) -> VerifiedSignature:  # fmt: skip
    return await verify_request(method, url, headers, body, resolver or Resolver(KEY), now=NOW, **kwargs)


def http_date(when: datetime) -> str:
    return when.strftime("%a, %d %b %Y %H:%M:%S GMT")


def hand_signed(method: str, target: str, headers: dict[str, str], covered: list[str], *,
                key: rsa.RSAPrivateKey = KEY, algorithm: str | None = "rsa-sha256", extra: str = "",
                params: dict[str, int] | None = None) -> dict[str, str]:  # fmt: skip
    """A cavage signature built here from the draft's text, not by the code under test."""
    lower = {k.lower(): v for k, v in headers.items()}
    lines = []
    for name in covered:
        if name == "(request-target)":
            lines.append(f"(request-target): {method.lower()} {target}")
        elif name in ("(created)", "(expires)"):
            lines.append(f"{name}: {(params or {})[name[1:-1]]}")
        else:
            lines.append(f"{name.lower()}: {lower[name.lower()]}")
    raw = key.sign("\n".join(lines).encode(), padding.PKCS1v15(), hashes.SHA256())
    fields = [f'keyId="{KEY_ID}"'] + ([f'algorithm="{algorithm}"'] if algorithm else [])
    fields += [f"{k}={v}" for k, v in (params or {}).items()]
    fields += [f'headers="{" ".join(covered)}"', f'signature="{base64.b64encode(raw).decode()}"']
    return {**headers, "Signature": ",".join(fields) + extra}


def post_headers(body: bytes = BODY, when: datetime = NOW) -> dict[str, str]:
    return {"Host": "node.example", "Date": http_date(when), "Digest": digest_header(body), **JSON}


FULL = ["(request-target)", "host", "date", "digest", "content-type"]


# Keys and digests


def test_pem_round_trip_and_malformed_pem() -> None:
    assert load_private(private_pem(KEY)).private_numbers() == KEY.private_numbers()
    assert load_public(public_pem(KEY)).public_numbers() == KEY.public_key().public_numbers()
    assert KEY.key_size == 2048 and KEY.public_key().public_numbers().e == 65537
    with pytest.raises(SignatureError, match="malformed public key PEM"):
        load_public("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----")
    with pytest.raises(SignatureError, match="not RSA"):
        load_public(public_pem(ed25519.Ed25519PrivateKey.generate().public_key()))  # type: ignore[arg-type]


def test_public_keys_are_parsed_once_per_key_id_and_pem() -> None:
    pem = public_pem(OTHER)
    first = cached_public("https://x.example/k", pem)
    assert cached_public("https://x.example/k", pem) is first


def test_digest_headers() -> None:
    assert digest_header(b"") == "SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    assert content_digest_header(b"") == "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"
    check_digest(digest_header(BODY).replace("SHA-256", "sha-256"), BODY)
    check_content_digest(content_digest_header(BODY).replace("sha-256", "SHA-256"), BODY)
    sha512 = "sha-512=:" + base64.b64encode(hashlib.sha512(BODY).digest()).decode() + ":"
    check_content_digest(sha512, BODY)
    with pytest.raises(SignatureError, match="digest mismatch: the body does not match Content-Digest"):
        check_content_digest(sha512, BODY + b" ")
    with pytest.raises(SignatureError, match="no SHA-256 or SHA-512 value"):
        check_digest("MD5=abc=", BODY)


# Outgoing cavage signatures


def test_sign_request_header_set() -> None:
    out = sign_request("POST", "https://Peer.example:443/inbox", JSON, BODY, KEY_ID, KEY, now=NOW)
    assert out["Host"] == "peer.example"
    assert out["Date"] == "Sat, 01 Mar 2025 12:00:00 GMT"
    assert out["Digest"].startswith("SHA-256=")
    assert out["Signature"].startswith(f'keyId="{KEY_ID}",algorithm="rsa-sha256",')
    assert 'headers="(request-target) host date digest content-type"' in out["Signature"]
    get = sign_request("GET", "http://127.0.0.2:8080/actor", {"Accept": "application/activity+json"}, None,
                       KEY_ID, KEY, now=NOW)  # fmt: skip
    assert get["Host"] == "127.0.0.2:8080" and "Digest" not in get
    assert 'headers="(request-target) host date"' in get["Signature"]


@pytest.mark.parametrize(("method", "body"), [("POST", BODY), ("GET", None)])
def test_our_signatures_verify_with_httpsig(method: str, body: bytes | None) -> None:
    out = sign_request(method, INBOX, JSON if body else {}, body, KEY_ID, KEY, now=NOW)
    required = FULL if body else FULL[:3]
    verifier = httpsig.HeaderVerifier(out, public_pem(KEY), required_headers=required, method=method,
                                      path="/inbox?page=2", sign_header="signature")  # fmt: skip
    assert verifier.verify() is True
    tampered = httpsig.HeaderVerifier(out, public_pem(KEY), required_headers=required, method=method,
                                      path="/inbox?page=3", sign_header="signature")  # fmt: skip
    assert tampered.verify() is False


async def test_httpsig_signatures_verify_with_ours() -> None:
    signer = httpsig.HeaderSigner(KEY_ID, private_pem(KEY), algorithm="rsa-sha256", headers=FULL,
                                  sign_header="signature")  # fmt: skip
    signed = dict(signer.sign(post_headers(), method="POST", path="/inbox?page=2"))
    result = await verify("POST", INBOX, signed, BODY)
    assert result == VerifiedSignature(KEY_ID, ACTOR, "cavage", tuple(FULL))


async def test_round_trip_through_our_own_verifier() -> None:
    out = sign_request("POST", INBOX, JSON, BODY, KEY_ID, KEY, now=NOW)
    assert (await verify("POST", INBOX, out, BODY)).scheme == "cavage"


# Incoming cavage variants that must pass


async def test_fedify_request_target_without_query_verifies() -> None:
    signed = hand_signed("POST", "/inbox", post_headers(), FULL)
    assert (await verify("POST", INBOX, signed, BODY)).owner == ACTOR


@pytest.mark.parametrize("algorithm", ["hs2019", None, "RSA-SHA256"])
async def test_hs2019_and_missing_algorithm_are_rsa_sha256(algorithm: str | None) -> None:
    signed = hand_signed("POST", "/inbox?page=2", post_headers(), FULL, algorithm=algorithm)
    assert (await verify("POST", INBOX, signed, BODY)).key_id == KEY_ID


async def test_authorization_header_and_case_insensitive_names() -> None:
    headers = {k.lower(): v for k, v in post_headers().items()}
    signed = hand_signed("POST", "/inbox?page=2", headers, ["(request-target)", "Host", "DATE", "Digest"])
    signed["authorization"] = "Signature " + signed.pop("Signature")
    assert (await verify("POST", INBOX, signed, BODY)).covered == ("(request-target)", "host", "date", "digest")


async def test_created_stands_in_for_date_and_expires_is_enforced() -> None:
    headers = {"Host": "node.example"}
    created, expires = int(NOW.timestamp()) - 60, int(NOW.timestamp()) + 60
    covered = ["(request-target)", "host", "(created)", "(expires)"]
    signed = hand_signed("GET", "/inbox?page=2", headers, covered, algorithm="hs2019",
                         params={"created": created, "expires": expires})  # fmt: skip
    assert (await verify("GET", INBOX, signed)).covered == tuple(covered)
    old = {"created": created - 7200, "expires": expires - 7200}
    signed = hand_signed("GET", "/inbox?page=2", headers, covered, algorithm="hs2019", params=old)
    with pytest.raises(SignatureError, match="signature created time is 2h01m old"):
        await verify("GET", INBOX, signed)


# Refusals, one per gate


async def test_unsigned() -> None:
    with pytest.raises(SignatureError, match="request is not signed"):
        await verify("POST", INBOX, post_headers(), BODY)


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        ('keyId="a",,,signature', "malformed Signature header"),
        ('algorithm="rsa-sha256",headers="date",signature="AAAA"', "no keyId"),
        (f'keyId="{KEY_ID}",headers="date",signature="%%%"', "signature is not base64"),
        (f'keyId="{KEY_ID}",keyId="x",signature="AAAA"', "keyid appears twice"),
    ],
)
async def test_malformed_signature_header(signature: str, reason: str) -> None:
    with pytest.raises(SignatureError, match=reason):
        await verify("POST", INBOX, {**post_headers(), "Signature": signature}, BODY)


@pytest.mark.parametrize("algorithm", ["rsa-sha512", "ed25519", "hmac-sha256"])
async def test_unsupported_algorithm(algorithm: str) -> None:
    signed = hand_signed("POST", "/inbox?page=2", post_headers(), FULL, algorithm=algorithm)
    with pytest.raises(SignatureError, match=f"unsupported signature algorithm '{algorithm}'"):
        await verify("POST", INBOX, signed, BODY)


@pytest.mark.parametrize("left_out", ["(request-target)", "host", "date", "digest"])
async def test_required_header_not_covered(left_out: str) -> None:
    covered = [name for name in FULL if name != left_out]
    resolver = Resolver(KEY)
    signed = hand_signed("POST", "/inbox?page=2", post_headers(), covered)
    with pytest.raises(SignatureError, match=f"signature does not cover {re.escape(left_out)}"):
        await verify("POST", INBOX, signed, BODY, resolver)
    assert resolver.calls == []  # refused before any key fetch


async def test_covered_header_absent_from_request() -> None:
    signed = hand_signed("POST", "/inbox?page=2", post_headers(), FULL)
    del signed["Content-Type"]
    with pytest.raises(SignatureError, match="signed header content-type is absent"):
        await verify("POST", INBOX, signed, BODY)


@pytest.mark.parametrize(
    ("shift", "reason"),
    [
        (timedelta(hours=-3), r"Date header is 3h old \(window ±1h\)"),
        (timedelta(hours=-1, minutes=-12), r"Date header is 1h12m old"),
        (timedelta(hours=2, minutes=5), r"Date header is 2h05m in the future \(window ±1h\)"),
    ],
)
async def test_date_out_of_window(shift: timedelta, reason: str) -> None:
    signed = hand_signed("POST", "/inbox?page=2", post_headers(when=NOW + shift), FULL)
    with pytest.raises(SignatureError, match=reason):
        await verify("POST", INBOX, signed, BODY)


async def test_date_within_window_passes_and_window_is_configurable() -> None:
    signed = hand_signed("POST", "/inbox?page=2", post_headers(when=NOW - timedelta(minutes=50)), FULL)
    await verify("POST", INBOX, signed, BODY)
    with pytest.raises(SignatureError, match=r"Date header is 50m old \(window ±5m\)"):
        await verify("POST", INBOX, signed, BODY, window=timedelta(minutes=5))


async def test_body_changed_after_signing() -> None:
    signed = hand_signed("POST", "/inbox?page=2", post_headers(), FULL)
    with pytest.raises(SignatureError, match="digest mismatch: the body does not match Digest"):
        await verify("POST", INBOX, signed, BODY.replace(b"Follow", b"Delete"))


async def test_digest_not_covered_with_a_body() -> None:
    covered = ["(request-target)", "host", "date", "content-type"]
    signed = hand_signed("POST", "/inbox?page=2", post_headers(), covered)
    with pytest.raises(SignatureError, match="signature does not cover digest"):
        await verify("POST", INBOX, signed, BODY)
    await verify("POST", INBOX, signed, BODY, require_digest_for_body=False)


async def test_key_fetch_failure_is_wrapped() -> None:
    signed = hand_signed("POST", "/inbox?page=2", post_headers(), FULL)
    resolver = Resolver(error=ConnectionError("peer.example refused the connection"))
    with pytest.raises(SignatureError, match=f"could not fetch key {KEY_ID}: ConnectionError: peer.example"):
        await verify("POST", INBOX, signed, BODY, resolver)


async def test_malformed_published_key() -> None:
    signed = hand_signed("POST", "/inbox?page=2", post_headers(), FULL)
    resolver = Resolver(KEY)
    resolver.pems = ["-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"]
    with pytest.raises(SignatureError, match=f"key {KEY_ID}: malformed public key PEM"):
        await verify("POST", INBOX, signed, BODY, resolver)


async def test_wrong_key_fails_after_exactly_one_refresh() -> None:
    signed = hand_signed("POST", "/inbox?page=2", post_headers(), FULL)
    resolver = Resolver(OTHER, generate_key())
    with pytest.raises(SignatureError, match=f"signature does not verify with key {KEY_ID}"):
        await verify("POST", INBOX, signed, BODY, resolver)
    assert resolver.calls == [(KEY_ID, False), (KEY_ID, True)]


async def test_rotated_key_is_refetched_once() -> None:
    signed = hand_signed("POST", "/inbox?page=2", post_headers(), FULL)
    resolver = Resolver(OTHER, KEY)
    assert (await verify("POST", INBOX, signed, BODY, resolver)).owner == ACTOR
    assert resolver.calls == [(KEY_ID, False), (KEY_ID, True)]


async def test_wrong_request_target_does_not_verify() -> None:
    signed = hand_signed("POST", "/other-inbox", post_headers(), FULL)
    with pytest.raises(SignatureError, match="signature does not verify"):
        await verify("POST", INBOX, signed, BODY)


def test_require_owner() -> None:
    verified = VerifiedSignature(KEY_ID, ACTOR, "cavage", ())
    require_owner(verified, ACTOR)
    with pytest.raises(SignatureError, match=f"keyId {KEY_ID} is not owned by actor https://b.example/y"):
        require_owner(verified, "https://b.example/y")


# RFC 9421


class Message:
    def __init__(self, method: str, url: str, headers: dict[str, str]) -> None:
        self.method, self.url, self.headers = method, url, headers


def library_signed(body: bytes | None = BODY, *, covered: tuple[str, ...] | None = None,
                   algorithm: Any = algorithms.RSA_V1_5_SHA256, created: datetime = NOW, label: str = "sig1",
                   message: Message | None = None, include_alg: bool = True) -> dict[str, str]:  # fmt: skip
    """Signed by http-message-signatures the way Fedify signs: created, keyid, alg, label sig1."""
    message = message or Message("POST", INBOX, {"Host": "node.example", **JSON})
    if body is not None and "Content-Digest" not in message.headers:
        message.headers["Content-Digest"] = content_digest_header(body)
    default = ("@method", "@target-uri", "@authority", "content-digest") if body else ("@method", "@target-uri")
    signer = HTTPMessageSigner(signature_algorithm=algorithm,
                               key_resolver=MappingKeyResolver(public_keys={}, private_keys={KEY_ID: KEY}))  # fmt: skip
    signer.sign(message, key_id=KEY_ID, created=created, label=label, covered_component_ids=covered or default,
                include_alg=include_alg, append_if_signature_exists=True,
                use_existing_digest="Content-Digest" in message.headers)  # fmt: skip
    return message.headers


async def test_rfc9421_from_the_library_verifies() -> None:
    result = await verify("POST", INBOX, library_signed(), BODY)
    assert result == VerifiedSignature(KEY_ID, ACTOR, "rfc9421", ("@method", "@target-uri", "@authority",
                                                                   "content-digest"))  # fmt: skip
    get = Message("GET", INBOX, {"Host": "node.example"})
    assert (await verify("GET", INBOX, library_signed(None, include_alg=False, message=get))).scheme == "rfc9421"


async def test_rfc9421_tampered_fails() -> None:
    signed = library_signed()
    with pytest.raises(SignatureError, match="signature does not verify"):
        await verify("POST", "https://node.example/inbox?page=3", signed, BODY)
    with pytest.raises(SignatureError, match="digest mismatch: the body does not match Content-Digest"):
        await verify("POST", INBOX, signed, BODY + b" ")


async def test_rfc9421_first_signature_covering_enough_is_used() -> None:
    message = Message("POST", INBOX, {"Host": "node.example", **JSON})
    library_signed(message=message, covered=("@method", "content-digest"), label="weak")
    signed = library_signed(message=message, label="strong", created=NOW - timedelta(minutes=1))
    assert (await verify("POST", INBOX, signed, BODY)).covered[:2] == ("@method", "@target-uri")


@pytest.mark.parametrize(
    ("covered", "reason"),
    [
        (("@target-uri", "content-digest"), "signature sig1 does not cover @method"),
        (("@method", "@authority", "content-digest"), r"does not cover @target-uri \(or @authority and @path\)"),
        (("@method", "@target-uri"), "does not cover content-digest"),
    ],
)
async def test_rfc9421_required_components(covered: tuple[str, ...], reason: str) -> None:
    with pytest.raises(SignatureError, match=reason):
        await verify("POST", INBOX, library_signed(covered=covered), BODY)


async def test_rfc9421_stale_created_and_wrong_algorithm() -> None:
    with pytest.raises(SignatureError, match=r"signature created time is 3h old \(window ±1h\)"):
        await verify("POST", INBOX, library_signed(created=NOW - timedelta(hours=3)), BODY)
    with pytest.raises(SignatureError, match="unsupported signature algorithm 'rsa-pss-sha512'"):
        await verify("POST", INBOX, library_signed(algorithm=algorithms.RSA_PSS_SHA512), BODY)
    with pytest.raises(SignatureError, match="malformed Signature-Input header"):
        await verify("POST", INBOX, {**library_signed(), "Signature-Input": "sig1=(("}, BODY)


async def test_rfc9421_rotation_and_wrong_key() -> None:
    resolver = Resolver(OTHER, KEY)
    await verify("POST", INBOX, library_signed(), BODY, resolver)
    assert resolver.calls == [(KEY_ID, False), (KEY_ID, True)]
    resolver = Resolver(OTHER)
    with pytest.raises(SignatureError, match="signature does not verify"):
        await verify("POST", INBOX, library_signed(), BODY, resolver)
    assert len(resolver.calls) == 2


async def test_rfc9421_broken_request_is_refused_without_a_refetch() -> None:
    signed = library_signed(covered=("@method", "@target-uri", "host", "content-digest"))
    del signed["Host"]
    resolver = Resolver(KEY)
    with pytest.raises(SignatureError, match='signature sig1 refused: .*"host" not found'):
        await verify("POST", INBOX, signed, BODY, resolver)
    assert resolver.calls == [(KEY_ID, False)]


async def test_our_rfc9421_signing_verifies_with_the_library_and_ours() -> None:
    out = sign_request_rfc9421("POST", INBOX, JSON, BODY, KEY_ID, KEY, now=NOW)
    assert '("@method" "@target-uri" "content-digest" "content-type")' in out["Signature-Input"]
    verifier = HTTPMessageVerifier(signature_algorithm=algorithms.RSA_V1_5_SHA256,
                                   key_resolver=MappingKeyResolver(public_keys={KEY_ID: KEY.public_key()},
                                                                   private_keys={}))  # fmt: skip
    assert verifier.verify(Message("POST", INBOX, out), max_age=None, body=BODY)[0].body == BODY
    assert (await verify("POST", INBOX, out, BODY)).scheme == "rfc9421"
