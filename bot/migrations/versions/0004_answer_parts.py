"""Every message of a long answer in the ledger: ``slack_claims.reply_parts``.

A resumed answer edits the later messages of a split answer instead of posting them again. Databases
whose table was made by ``metadata.create_all`` already have the column.

Revision ID: 0004_answer_parts
Revises: 0003_channel_loop
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_answer_parts"
down_revision = "0003_channel_loop"
branch_labels = None
depends_on = None


def _has_column(table: str, column: str) -> bool:
    return any(c["name"] == column for c in sa.inspect(op.get_bind()).get_columns(table))


def upgrade() -> None:
    if not _has_column("slack_claims", "reply_parts"):
        op.add_column("slack_claims", sa.Column("reply_parts", sa.JSON, nullable=True))


def downgrade() -> None:
    op.drop_column("slack_claims", "reply_parts")
