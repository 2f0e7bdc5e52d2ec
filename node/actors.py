"""This node's actors: its initiatives, its thematic and local groups (`node/groups.py`) and the
node itself, each with its own RSA keypair.

Private keys are encrypted at rest with the node's secret (Fernet, AES-128-CBC + HMAC) and
never served; the secret lives in DATA/secret.key (mode 0600) or OSCARTES_SECRET_KEY.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from sqlalchemy import Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from federation import signatures as sig
from node.config import Config
from node.convert.common import now_utc
from node.errors import NodeError
from node.storage.tables import actors

ActorKind = Literal["initiative", "application", "group"]
NODE_USERNAME = "node"
#: Usernames an initiative may not take: they name the node's own actors and routes.
RESERVED = frozenset({NODE_USERNAME, "actor", "admin", "api", "inbox", "relay", "root", "oscartes"})
#: What a group gives up its username for: initiatives win (`ensure`), groups add this suffix.
GROUP_SUFFIX = "_groupe"
SECRET_FILE = "secret.key"  # noqa: S105 - a file name, not a secret


@dataclass(frozen=True)
class LocalActor:
    iri: str
    username: str
    kind: ActorKind
    public_pem: str
    private_pem_encrypted: str
    manually_approves: bool
    created_at: datetime | None = None

    @property
    def key_id(self) -> str:
        return f"{self.iri}#main-key"


def node_actor_iri(config: Config) -> str:
    return f"{config.base_url}/actor"


def ensure_secret(data_dir: Path) -> None:
    """Written by `oscartes init`; kept out of node.toml so that file can be shared."""
    path = data_dir / SECRET_FILE
    if not path.exists():
        path.write_bytes(Fernet.generate_key())
        path.chmod(0o600)


@lru_cache(maxsize=4)
def _fernet(data_dir: Path, env_secret: str) -> Fernet:
    if env_secret:
        return Fernet(env_secret.encode())
    path = data_dir / SECRET_FILE
    if not path.exists():
        raise NodeError(f"no secret key in {path}: run `oscartes init`")
    return Fernet(path.read_bytes().strip())


def fernet(config: Config) -> Fernet:
    return _fernet(config.data_dir, os.environ.get("OSCARTES_SECRET_KEY", ""))


def private_key(config: Config, actor: LocalActor) -> RSAPrivateKey:
    try:
        pem = fernet(config).decrypt(actor.private_pem_encrypted.encode()).decode()
    except InvalidToken as exc:
        raise NodeError(f"cannot decrypt the key of {actor.iri}: wrong secret key?") from exc
    return _load_private(pem)


@lru_cache(maxsize=1024)
def _load_private(pem: str) -> RSAPrivateKey:
    return sig.load_private(pem)


def _row(r: Row[Any]) -> LocalActor:
    return LocalActor(r.iri, r.username, r.kind, r.public_pem, r.private_pem, r.manually_approves, r.created_at)


async def get(conn: AsyncConnection, iri: str) -> LocalActor | None:
    row = (await conn.execute(select(actors).where(actors.c.iri == iri))).first()
    return _row(row) if row else None


async def by_username(conn: AsyncConnection, username: str) -> LocalActor | None:
    row = (await conn.execute(select(actors).where(actors.c.username == username))).first()
    return _row(row) if row else None


def new_keypair(config: Config) -> tuple[str, str]:
    """(public PEM, encrypted private PEM). RSA generation takes tens of ms: call off the loop."""
    key = sig.generate_key()
    encrypted = fernet(config).encrypt(sig.private_pem(key).encode()).decode()
    return sig.public_pem(key), encrypted


async def ensure(conn: AsyncConnection, config: Config, iri: str, username: str, kind: ActorKind,
                 keys: tuple[str, str] | None = None) -> LocalActor:  # fmt: skip
    found = await get(conn, iri)
    if found is not None:
        return found
    if keys is None:
        keys = await asyncio.to_thread(new_keypair, config)
    if kind != "group":
        await _group_steps_aside(conn, username)
    public, private = keys
    await conn.execute(
        insert(actors).values(iri=iri, username=username, kind=kind, public_pem=public, private_pem=private,
                              manually_approves=False, created_at=now_utc())  # fmt: skip
    )
    actor = await get(conn, iri)
    assert actor is not None
    return actor


async def free_group_username(conn: AsyncConnection, wanted: str) -> str:
    """`wanted` if no actor has it and it is not reserved, else `wanted_groupe`, `wanted_groupe_2`..."""
    candidate, n = wanted, 1
    while candidate in RESERVED or await by_username(conn, candidate) is not None:
        candidate = wanted + GROUP_SUFFIX + (f"_{n}" if n > 1 else "")
        n += 1
    return candidate


async def _group_steps_aside(conn: AsyncConnection, username: str) -> None:
    """A group holding an initiative's username takes another: its IRI, keys and followers stay."""
    holder = await by_username(conn, username)
    if holder is not None and holder.kind == "group":
        renamed = await free_group_username(conn, username)
        await conn.execute(update(actors).where(actors.c.iri == holder.iri).values(username=renamed))


async def set_manual_approval(conn: AsyncConnection, iri: str, manual: bool) -> None:
    await conn.execute(update(actors).where(actors.c.iri == iri).values(manually_approves=manual))
