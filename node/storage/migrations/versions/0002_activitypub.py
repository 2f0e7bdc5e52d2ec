"""ActivityPub: actor keys, remote actors, follows, inbox and delivery work rows, outbox, moderation.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from node.storage.tables import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _work_columns() -> list[sa.Column[object]]:
    """The columns every durable work row carries."""
    return [
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
        sa.Column("locked_until", UtcDateTime()),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "actors",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("iri", sa.String(2048), nullable=False, unique=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("public_pem", sa.Text, nullable=False),
        sa.Column("private_pem", sa.Text, nullable=False),
        sa.Column("manually_approves", sa.Boolean, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "remote_actors",
        sa.Column("iri", sa.String(2048), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("inbox", sa.String(2048), nullable=False),
        sa.Column("shared_inbox", sa.String(2048)),
        sa.Column("key_id", sa.String(2048)),
        sa.Column("public_pem", sa.Text),
        sa.Column("doc", sa.Text, nullable=False),
        sa.Column("fetched_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_remote_actors_key_id", "remote_actors", ["key_id"])
    op.create_table(
        "follows",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("follower", sa.String(2048), nullable=False),
        sa.Column("target", sa.String(2048), nullable=False),
        sa.Column("activity_id", sa.String(2048), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("follower", "target", name="uq_follows_pair"),
    )
    op.create_index("ix_follows_target", "follows", ["target", "state"])
    op.create_index("ix_follows_activity", "follows", ["activity_id"])
    op.create_table(
        "inbox_items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("activity_id", sa.String(2048), unique=True),
        sa.Column("activity_type", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(2048), nullable=False),
        sa.Column("recipient", sa.String(2048), nullable=False),
        sa.Column("key_id", sa.String(2048), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        *_work_columns(),
    )
    op.create_index("ix_inbox_items_state", "inbox_items", ["state", "next_attempt_at", "id"])
    op.create_table(
        "activities",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("iri", sa.String(2048), nullable=False, unique=True),
        sa.Column("actor", sa.String(2048), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("object", sa.String(2048), nullable=False),
        sa.Column("doc", sa.Text, nullable=False),
        sa.Column("public", sa.Boolean, nullable=False),
        sa.Column("published", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_activities_actor", "activities", ["actor", "published", "id"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("activity_id", sa.Integer, sa.ForeignKey("activities.id", ondelete="CASCADE"), nullable=False),
        sa.Column("inbox", sa.String(2048), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("last_status", sa.Integer),
        *_work_columns(),
        sa.UniqueConstraint("activity_id", "inbox", name="uq_deliveries_activity_inbox"),
    )
    op.create_index("ix_deliveries_state", "deliveries", ["state", "next_attempt_at", "id"])
    op.create_table(
        "hosts",
        sa.Column("host", sa.String(255), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("unavailable_until", UtcDateTime()),
        sa.Column("last_success_at", UtcDateTime()),
    )
    op.create_table(
        "domain_blocks",
        sa.Column("domain", sa.String(255), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("activity_id", sa.String(2048)),
        sa.Column("reporter", sa.String(2048), nullable=False),
        sa.Column("objects", sa.Text, nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("resolved", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    for table in ("reports", "domain_blocks", "hosts", "deliveries", "activities", "inbox_items", "follows",
                  "remote_actors", "actors"):  # fmt: skip
        op.drop_table(table)
