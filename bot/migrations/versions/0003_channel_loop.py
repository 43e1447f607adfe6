"""The loop: gaps (questions the documents did not answer), what each answer searched, per-channel
settings, saved answers from resolved threads.

Revision ID: 0003_channel_loop
Revises: 0002_size_bigint
Create Date: 2026-12-05

Like 0001, each table (and the new column) is created only when missing: a store's own
``create_all`` may have made it first.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_channel_loop"
down_revision = "0002_size_bigint"
branch_labels = None
depends_on = None


def _missing(name: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(name)


def _has_column(table: str, column: str) -> bool:
    return any(c["name"] == column for c in sa.inspect(op.get_bind()).get_columns(table))


def upgrade() -> None:
    if not _has_column("answers", "searched"):
        with op.batch_alter_table("answers") as batch:
            batch.add_column(sa.Column("searched", sa.JSON, nullable=True))
    if _missing("gaps"):
        op.create_table(
            "gaps",
            sa.Column("gap_id", sa.String(300), primary_key=True),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("team", sa.String(32), nullable=False),
            sa.Column("channel", sa.String(32), nullable=False),
            sa.Column("private", sa.Boolean, nullable=False),
            sa.Column("conversation", sa.String(200), nullable=False),
            sa.Column("user_id", sa.String(32), nullable=False),
            sa.Column("question", sa.Text, nullable=False),
            sa.Column("searched", sa.JSON, nullable=False),
            sa.Column("created_at", sa.Float, nullable=False),
        )
    if _missing("channel_configs"):
        op.create_table(
            "channel_configs",
            sa.Column("team", sa.String(32), primary_key=True),
            sa.Column("channel", sa.String(32), primary_key=True),
            sa.Column("folders", sa.JSON, nullable=True),
            sa.Column("other_channel_files", sa.Boolean, nullable=False),
            sa.Column("follow_ups", sa.String(16), nullable=False),
            sa.Column("experts", sa.JSON, nullable=False),
            sa.Column("expert_group", sa.String(32), nullable=True),
            sa.Column("updated_by", sa.String(32), nullable=False),
            sa.Column("updated_at", sa.Float, nullable=False),
        )
    if _missing("saved_answers"):
        op.create_table(
            "saved_answers",
            sa.Column("key", sa.String(120), primary_key=True),
            sa.Column("team", sa.String(32), nullable=False),
            sa.Column("channel", sa.String(32), nullable=False),
            sa.Column("channel_name", sa.String(200), nullable=False),
            sa.Column("thread_ts", sa.String(32), nullable=False),
            sa.Column("private", sa.Boolean, nullable=False),
            sa.Column("asker", sa.String(32), nullable=False),
            sa.Column("question", sa.Text, nullable=False),
            sa.Column("answer", sa.Text, nullable=False),
            sa.Column("answered_by", sa.String(200), nullable=False),
            sa.Column("permalink", sa.String(1000), nullable=False),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("created_at", sa.Float, nullable=False),
            sa.Column("updated_at", sa.Float, nullable=False),
        )
    if _missing("expert_calls"):
        op.create_table(
            "expert_calls",
            sa.Column("key", sa.String(120), primary_key=True),
            sa.Column("called_by", sa.String(32), nullable=False),
            sa.Column("experts", sa.JSON, nullable=False),
            sa.Column("called_at", sa.Float, nullable=False),
        )


def downgrade() -> None:
    op.drop_table("expert_calls")
    op.drop_table("saved_answers")
    op.drop_table("channel_configs")
    op.drop_table("gaps")
    with op.batch_alter_table("answers") as batch:
        batch.drop_column("searched")
