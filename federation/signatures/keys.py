"""RSA keypairs for actors, and the PEM forms that travel in `publicKey.publicKeyPem`."""

from __future__ import annotations

from functools import lru_cache

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from federation.errors import SignatureError


def generate_key() -> rsa.RSAPrivateKey:
    # 2048 bits is what Mastodon, Fedify and Misskey generate and expect.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def public_pem(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> str:
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    # SubjectPublicKeyInfo ("BEGIN PUBLIC KEY") is the form every fediverse server parses.
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode(
        "ascii"
    )


def load_private(pem: str) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError, UnsupportedAlgorithm) as exc:
        raise SignatureError(f"malformed private key PEM: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SignatureError(f"private key is {type(key).__name__}, not RSA")
    return key


def load_public(pem: str) -> rsa.RSAPublicKey:
    try:
        key = serialization.load_pem_public_key(pem.strip().encode("ascii"))
    except (ValueError, TypeError, UnicodeEncodeError, UnsupportedAlgorithm) as exc:
        raise SignatureError(f"malformed public key PEM: {exc}") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureError(f"public key is {type(key).__name__}, not RSA")
    return key


@lru_cache(maxsize=512)
def cached_public(key_id: str, pem: str) -> rsa.RSAPublicKey:
    """Parsing a PEM costs more than the RSA check itself; the same few peers sign most requests."""
    try:
        return load_public(pem)
    except SignatureError as exc:
        raise SignatureError(f"key {key_id}: {exc.detail}") from exc
