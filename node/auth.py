"""API tokens: random secrets shown once, stored as SHA-256 hashes, with a role."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from node.convert.common import now_utc
from node.errors import Forbidden, Unauthorized
from node.records import Kind, Record
from node.storage.tables import tokens

Role = Literal["admin", "editor"]
ROLES: tuple[Role, ...] = ("admin", "editor")
PREFIX = "osc_"


@dataclass(frozen=True)
class Principal:
    token_id: int
    role: Role
    initiatives: frozenset[str]

    def may_create(self, kind: Kind, record: Record) -> None:
        if self.role == "admin":
            return
        if kind == "initiative":
            raise Forbidden("only an admin token can create initiatives")
        self._owns(record.attributed_to, kind)

    def may_change(self, before: Record, after: Record | None = None) -> None:
        if self.role == "admin":
            return
        for record in (before, after):
            if record is None:
                continue
            owner = record.iri if record.kind == "initiative" else record.attributed_to
            self._owns(owner, record.kind)

    def _owns(self, initiative: str, kind: Kind) -> None:
        if initiative not in self.initiatives:
            raise Forbidden(f"this token may not edit {kind} records of {initiative or 'no initiative'}")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(conn: AsyncConnection, role: Role, initiatives: list[str], label: str = "") -> str:
    token = PREFIX + secrets.token_urlsafe(32)
    await conn.execute(
        insert(tokens).values(
            token_hash=hash_token(token), role=role, initiatives=json.dumps(sorted(initiatives)),
            label=label, created_at=now_utc(), revoked=False,
        )
    )  # fmt: skip
    return token


async def authenticate(conn: AsyncConnection, header: str | None) -> Principal:
    if not header:
        raise Unauthorized("missing Authorization: Bearer <token>")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    row = (await conn.execute(select(tokens).where(tokens.c.token_hash == hash_token(token.strip())))).first()
    if row is None or row.revoked:
        raise Unauthorized("unknown or revoked token")
    await conn.execute(update(tokens).where(tokens.c.id == row.id).values(last_used_at=now_utc()))
    return Principal(row.id, row.role, frozenset(json.loads(row.initiatives)))


async def list_tokens(conn: AsyncConnection) -> list[dict[str, object]]:
    """What an operator may see of the tokens: never the secret (only its hash is stored)."""
    rows = await conn.execute(select(tokens).order_by(tokens.c.id))
    return [
        {"id": r.id, "role": r.role, "initiatives": json.loads(r.initiatives), "label": r.label,
         "created": r.created_at.isoformat(), "last_used": r.last_used_at.isoformat() if r.last_used_at else None,
         "revoked": r.revoked}
        for r in rows
    ]  # fmt: skip


async def revoke_token(conn: AsyncConnection, token_id: int) -> bool:
    result = await conn.execute(update(tokens).where(tokens.c.id == token_id).values(revoked=True))
    return bool(result.rowcount)
