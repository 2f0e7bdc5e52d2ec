"""Records, themes, full-text index, index work rows and API tokens.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from node.storage.tables import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "records",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("iri", sa.String(2048), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("origin", sa.String(2048), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("doc", sa.Text, nullable=False),
        sa.Column("ntriples", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("lat", sa.Float),
        sa.Column("lon", sa.Float),
        sa.Column("insee", sa.String(5)),
        sa.Column("departement", sa.String(3)),
        sa.Column("start_at", UtcDateTime()),
        sa.Column("end_at", UtcDateTime()),
        sa.Column("owner", sa.String(2048)),
        sa.Column("category", sa.String(2048)),
        sa.Column("published", UtcDateTime(), nullable=False),
        sa.Column("updated", UtcDateTime(), nullable=False),
        sa.Column("deleted_at", UtcDateTime()),
    )
    op.create_index("ix_records_kind_published", "records", ["kind", "published", "id"])
    op.create_index("ix_records_kind_slug", "records", ["kind", "slug"])
    op.create_index("ix_records_lat_lon", "records", ["lat", "lon"])
    op.create_index("ix_records_insee", "records", ["insee"])
    op.create_index("ix_records_departement", "records", ["departement"])
    op.create_index("ix_records_start", "records", ["start_at"])
    op.create_index("ix_records_owner", "records", ["owner"])
    op.create_index("ix_records_origin", "records", ["origin"])
    op.create_index("ix_records_category", "records", ["category"])

    op.create_table(
        "record_themes",
        sa.Column(
            "record_id",
            sa.Integer,
            sa.ForeignKey("records.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("theme", sa.String(2048), primary_key=True),
    )
    op.create_index("ix_record_themes_theme", "record_themes", ["theme", "record_id"])

    op.create_table(
        "index_jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job", sa.String(16), nullable=False),
        sa.Column("iri", sa.String(2048), nullable=False),
        sa.Column("graph", sa.String(2048), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
        sa.Column("locked_until", UtcDateTime()),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_index_jobs_state", "index_jobs", ["state", "next_attempt_at", "id"])

    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("initiatives", sa.Text, nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("last_used_at", UtcDateTime()),
        sa.Column("revoked", sa.Boolean, nullable=False),
    )

    if op.get_bind().dialect.name == "postgresql":
        # Text is folded (accents removed) by the node before to_tsvector, so no extension is needed.
        op.create_table(
            "record_text",
            sa.Column(
                "record_id",
                sa.Integer,
                sa.ForeignKey("records.id", ondelete="CASCADE"),
                primary_key=True,
            ),
            sa.Column("tsv", sa.dialects.postgresql.TSVECTOR, nullable=False),
        )
        op.execute("CREATE INDEX ix_record_text_tsv ON record_text USING GIN (tsv)")
    else:
        op.execute(
            "CREATE VIRTUAL TABLE record_fts USING fts5("
            "name, body, tokenize = 'unicode61 remove_diacritics 2')"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_table("record_text")
    else:
        op.execute("DROP TABLE record_fts")
    op.drop_table("tokens")
    op.drop_table("index_jobs")
    op.drop_table("record_themes")
    op.drop_table("records")
