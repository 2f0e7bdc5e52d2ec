"""Node-to-node federation: followed origins and their sync cursors, refused records, relays.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from node.storage.tables import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "origins",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("graph", sa.String(2048), nullable=False, unique=True),
        sa.Column("actor", sa.String(2048), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("base_url", sa.String(2048), nullable=False),
        sa.Column("changes", sa.String(2048), nullable=False),
        sa.Column("name", sa.Text, nullable=False, server_default=""),
        sa.Column("license", sa.String(2048), nullable=False, server_default=""),
        sa.Column("policy", sa.String(16), nullable=False, server_default="trusted"),
        sa.Column("relay", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("followed", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("via", sa.String(2048)),
        sa.Column("sync_state", sa.String(16), nullable=False, server_default="bootstrap"),
        sa.Column("cursor", sa.Text),
        sa.Column("retrieved_at", UtcDateTime()),
        sa.Column("modified_at", UtcDateTime()),
        sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
        sa.Column("locked_until", UtcDateTime()),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_origins_state", "origins", ["state", "next_attempt_at"])
    op.create_index("ix_origins_host", "origins", ["host"])
    op.create_table(
        "ingest_reports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("origin", sa.String(2048), nullable=False),
        sa.Column("iri", sa.String(2048), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_ingest_reports_origin", "ingest_reports", ["origin", "id"])
    op.create_table(
        "relayed",
        sa.Column("activity", sa.String(2048), primary_key=True),
        sa.Column("relayed_at", UtcDateTime(), nullable=False),
    )
    # When a record last changed on this node (its `updated` is the record's own claim, which
    # an import may date in the past): the order of the change stream followers page through.
    with op.batch_alter_table("records") as batch:
        batch.add_column(sa.Column("changed_at", UtcDateTime()))
    op.execute("UPDATE records SET changed_at = updated")
    op.create_index("ix_records_origin_changed", "records", ["origin", "changed_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_records_origin_changed", "records")
    with op.batch_alter_table("records") as batch:
        batch.drop_column("changed_at")
    op.drop_table("relayed")
    op.drop_index("ix_ingest_reports_origin", "ingest_reports")
    op.drop_table("ingest_reports")
    op.drop_index("ix_origins_host", "origins")
    op.drop_index("ix_origins_state", "origins")
    op.drop_table("origins")
