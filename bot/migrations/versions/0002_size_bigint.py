"""kb_documents.size as BIGINT: a file over 2 GiB no longer aborts a sync on PostgreSQL.

Revision ID: 0002_size_bigint
Revises: 0001
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_size_bigint"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batch mode: SQLite cannot ALTER a column's type and rebuilds the table; elsewhere one ALTER.
    with op.batch_alter_table("kb_documents") as batch:
        batch.alter_column("size", existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("kb_documents") as batch:
        batch.alter_column("size", existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=False)
