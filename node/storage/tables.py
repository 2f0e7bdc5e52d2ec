"""The SQL schema, as SQLAlchemy Core tables. Alembic migrations create it; this mirrors them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out: SQLite would hand back naive ones."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        # SQLite compares datetimes as text: store them all in the same zone and shape.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

records = Table(
    "records",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("iri", String(2048), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("slug", String(64), nullable=False),
    Column("origin", String(2048), nullable=False),
    Column("name", Text, nullable=False),
    Column("data", Text, nullable=False),
    Column("doc", Text, nullable=False),
    Column("ntriples", Text, nullable=False),
    Column("version", Integer, nullable=False, default=1),
    Column("lat", Float),
    Column("lon", Float),
    Column("insee", String(5)),
    Column("departement", String(3)),
    Column("start_at", UtcDateTime()),
    Column("end_at", UtcDateTime()),
    Column("owner", String(2048)),
    Column("category", String(2048)),
    Column("published", UtcDateTime(), nullable=False),
    Column("updated", UtcDateTime(), nullable=False),
    Column("deleted_at", UtcDateTime()),
    #: when the record last changed on this node: the change stream's order
    Column("changed_at", UtcDateTime()),
    Index("ix_records_kind_published", "kind", "published", "id"),
    Index("ix_records_kind_slug", "kind", "slug"),
    Index("ix_records_lat_lon", "lat", "lon"),
    Index("ix_records_insee", "insee"),
    Index("ix_records_departement", "departement"),
    Index("ix_records_start", "start_at"),
    Index("ix_records_owner", "owner"),
    Index("ix_records_origin", "origin"),
    Index("ix_records_category", "category"),
    Index("ix_records_kind_deleted", "kind", "deleted_at"),
    Index("ix_records_origin_changed", "origin", "changed_at", "id"),
    #: covers every filter and sort of a search by place (migration 0005 says why)
    Index("ix_records_place", "lat", "lon", "kind", "deleted_at", "published", "start_at", "end_at", "origin",
          "insee", "departement"),
)

record_themes = Table(
    "record_themes",
    metadata,
    Column("record_id", Integer, ForeignKey("records.id", ondelete="CASCADE"), primary_key=True),
    Column("theme", String(2048), primary_key=True),
    Index("ix_record_themes_theme", "theme", "record_id"),
)

#: Durable index work: a row per record whose RDF index entry must be (re)written.
index_jobs = Table(
    "index_jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job", String(16), nullable=False),  # "record" or "reindex"
    Column("iri", String(2048), nullable=False),
    Column("graph", String(2048), nullable=False),
    Column("state", String(16), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("locked_until", UtcDateTime()),
    Column("last_error", Text),
    Column("created_at", UtcDateTime(), nullable=False),
    Index("ix_index_jobs_state", "state", "next_attempt_at", "id"),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("initiatives", Text, nullable=False, default="[]"),
    Column("label", String(200), nullable=False, default=""),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("last_used_at", UtcDateTime()),
    Column("revoked", Boolean, nullable=False, default=False),
)


def _work_columns() -> list[Column[Any]]:
    """What every durable work row carries: a state, its attempts and when to try again."""
    return [
        Column("state", String(16), nullable=False, default="pending"),
        Column("attempts", Integer, nullable=False, default=0),
        Column("next_attempt_at", UtcDateTime(), nullable=False),
        Column("locked_until", UtcDateTime()),
        Column("last_error", Text),
        Column("created_at", UtcDateTime(), nullable=False),
    ]


#: This node's actors (its initiatives and the node itself) and their keys.
actors = Table(
    "actors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("iri", String(2048), nullable=False, unique=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("public_pem", Text, nullable=False),
    Column("private_pem", Text, nullable=False),  # encrypted with the node's secret
    Column("manually_approves", Boolean, nullable=False, default=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

remote_actors = Table(
    "remote_actors",
    metadata,
    Column("iri", String(2048), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("username", String(255), nullable=False),
    Column("inbox", String(2048), nullable=False),
    Column("shared_inbox", String(2048)),
    Column("key_id", String(2048)),
    Column("public_pem", Text),
    Column("doc", Text, nullable=False),
    Column("fetched_at", UtcDateTime(), nullable=False),
    Index("ix_remote_actors_key_id", "key_id"),
)

follows = Table(
    "follows",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("follower", String(2048), nullable=False),
    Column("target", String(2048), nullable=False),
    Column("activity_id", String(2048), nullable=False),
    Column("state", String(16), nullable=False),  # pending, accepted, rejected
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    UniqueConstraint("follower", "target", name="uq_follows_pair"),
    Index("ix_follows_target", "target", "state"),
    Index("ix_follows_activity", "activity_id"),
)

#: Signed, verified activities as received: stored before the 202, processed by a worker.
inbox_items = Table(
    "inbox_items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("activity_id", String(2048), unique=True),
    Column("activity_type", String(64), nullable=False),
    Column("actor", String(2048), nullable=False),
    Column("recipient", String(2048), nullable=False),
    Column("key_id", String(2048), nullable=False),
    Column("body", Text, nullable=False),
    *_work_columns(),
    Index("ix_inbox_items_state", "state", "next_attempt_at", "id"),
)

#: What this node's actors published (their outboxes); every id dereferences.
activities = Table(
    "activities",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("iri", String(2048), nullable=False, unique=True),
    Column("actor", String(2048), nullable=False),
    Column("type", String(32), nullable=False),
    Column("object", String(2048), nullable=False),
    Column("doc", Text, nullable=False),
    Column("public", Boolean, nullable=False),
    Column("published", UtcDateTime(), nullable=False),
    Index("ix_activities_actor", "actor", "published", "id"),
)

#: One row per (activity, target inbox): the unit of delivery, retried until done or final.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("activity_id", Integer, ForeignKey("activities.id", ondelete="CASCADE"), nullable=False),
    Column("inbox", String(2048), nullable=False),
    Column("host", String(255), nullable=False),
    Column("last_status", Integer),
    *_work_columns(),
    UniqueConstraint("activity_id", "inbox", name="uq_deliveries_activity_inbox"),
    Index("ix_deliveries_state", "state", "next_attempt_at", "id"),
)

hosts = Table(
    "hosts",
    metadata,
    Column("host", String(255), primary_key=True),
    Column("failures", Integer, nullable=False, default=0),
    Column("unavailable_until", UtcDateTime()),
    Column("last_success_at", UtcDateTime()),
)

domain_blocks = Table(
    "domain_blocks",
    metadata,
    Column("domain", String(255), primary_key=True),
    Column("reason", Text, nullable=False, default=""),
    Column("created_at", UtcDateTime(), nullable=False),
)

#: Flag activities: moderation reports for the node's host.
reports = Table(
    "reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("activity_id", String(2048)),
    Column("reporter", String(2048), nullable=False),
    Column("objects", Text, nullable=False),
    Column("content", Text, nullable=False, default=""),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("resolved", Boolean, nullable=False, default=False),
)


#: Other nodes whose directories this node copies: one named graph each, with its sync cursor.
#: The row is also the durable sync work: due when `next_attempt_at` passes.
origins = Table(
    "origins",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("graph", String(2048), nullable=False, unique=True),  # the origin's dataset IRI
    Column("actor", String(2048), nullable=False),  # the origin node's actor
    Column("host", String(255), nullable=False),
    Column("base_url", String(2048), nullable=False),
    Column("changes", String(2048), nullable=False),  # its change stream
    Column("name", Text, nullable=False, default=""),
    Column("license", String(2048), nullable=False, default=""),
    Column("policy", String(16), nullable=False, default="trusted"),  # trusted, limited, blocked
    Column("relay", Boolean, nullable=False, default=False),  # pass its news on to our followers
    Column("followed", Boolean, nullable=False, default=False),  # we follow it (else learned by relay)
    Column("via", String(2048)),  # the node that relayed it to us first
    Column("sync_state", String(16), nullable=False, default="bootstrap"),  # bootstrap, live, frozen
    Column("cursor", Text),
    Column("retrieved_at", UtcDateTime()),
    Column("modified_at", UtcDateTime()),
    *_work_columns(),
    Index("ix_origins_state", "state", "next_attempt_at"),
    Index("ix_origins_host", "host"),
)

#: Records refused at ingestion (authority, SHACL, parse), with the reason, for the host.
ingest_reports = Table(
    "ingest_reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("origin", String(2048), nullable=False),
    Column("iri", String(2048), nullable=False),
    Column("reason", Text, nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Index("ix_ingest_reports_origin", "origin", "id"),
)

#: Activities this node has passed on: none is relayed twice, so cycles settle.
relayed = Table(
    "relayed",
    metadata,
    Column("activity", String(2048), primary_key=True),
    Column("relayed_at", UtcDateTime(), nullable=False),
)
