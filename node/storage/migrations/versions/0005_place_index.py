"""A covering index for searches by place: box and radius queries filter and sort on it alone.

On SQLite a record's row holds its documents (several kB) before the place and date columns,
so reading those columns from the row walks its overflow pages: a box around a city read
tens of thousands of them (docs/performance.md).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COLUMNS = ["lat", "lon", "kind", "deleted_at", "published", "start_at", "end_at", "origin", "insee", "departement"]


def upgrade() -> None:
    op.create_index("ix_records_place", "records", COLUMNS)


def downgrade() -> None:
    op.drop_index("ix_records_place", table_name="records")
