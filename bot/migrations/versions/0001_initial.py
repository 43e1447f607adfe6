"""The first tables: manifest, ledger, feedback.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Databases created before migrations existed (``metadata.create_all``) already hold some or all of
these tables: each one is created only when missing, so such a database is adopted as it is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _missing(name: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(name)


def upgrade() -> None:
    if _missing("kb_documents"):
        op.create_table(
            "kb_documents",
            sa.Column("doc_id", sa.String(64), primary_key=True),
            sa.Column("source", sa.String(32), nullable=False),
            sa.Column("path", sa.String(1024), nullable=False),
            sa.Column("location", sa.String(2048), nullable=False),
            sa.Column("title", sa.String(512), nullable=False),
            sa.Column("access", sa.String(256), nullable=False),
            sa.Column("size", sa.Integer, nullable=False),
            sa.Column("mtime_ns", sa.String(32), nullable=False),
            sa.Column("byte_hash", sa.String(64), nullable=False),
            sa.Column("chunk_count", sa.Integer, nullable=False),
            sa.Column("chunking", sa.String(64), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("reason", sa.Text, nullable=True),
            sa.Column("last_sync", sa.DateTime(timezone=True), nullable=True),
        )
    if _missing("kb_sync_runs"):
        op.create_table(
            "kb_sync_runs",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("ok", sa.Boolean, nullable=True),
            sa.Column("seconds", sa.Float, nullable=True),
            sa.Column("summary", sa.JSON, nullable=True),
            sa.Column("error", sa.Text, nullable=True),
        )
    if _missing("locks"):
        op.create_table(
            "locks",
            sa.Column("name", sa.String(128), primary_key=True),
            sa.Column("owner", sa.String(256), nullable=False),
            sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        )
    if _missing("slack_claims"):
        op.create_table(
            "slack_claims",
            sa.Column("team", sa.String(32), primary_key=True),
            sa.Column("channel", sa.String(32), primary_key=True),
            sa.Column("ts", sa.String(160), primary_key=True),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("conversation", sa.String(200), nullable=False),
            sa.Column("thread_ts", sa.String(32)),
            sa.Column("user_id", sa.String(32), nullable=False),
            sa.Column("question", sa.Text, nullable=False),
            sa.Column("sent_at", sa.Float, nullable=False),
            sa.Column("context", sa.JSON, nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("owner", sa.String(160)),
            sa.Column("lease_until", sa.Float, nullable=False),
            sa.Column("attempts", sa.Integer, nullable=False),
            sa.Column("reply_ts", sa.String(32)),
            sa.Column("reply_mode", sa.String(16)),
            sa.Column("error", sa.Text),
            sa.Column("created_at", sa.Float, nullable=False),
            sa.Column("updated_at", sa.Float, nullable=False),
        )
        op.create_index("ix_slack_claims_conversation", "slack_claims", ["conversation"])
        op.create_index("ix_slack_claims_open", "slack_claims", ["status", "lease_until"])
        op.create_index("ix_slack_claims_owner", "slack_claims", ["owner", "status"])
    if _missing("answers"):
        op.create_table(
            "answers",
            sa.Column("answer_id", sa.String(200), primary_key=True),
            sa.Column("conversation", sa.String(200), nullable=False),
            sa.Column("question", sa.Text, nullable=False),
            sa.Column("answer", sa.Text, nullable=False),
            sa.Column("sources", sa.JSON, nullable=False),
            sa.Column("outcome", sa.String(16), nullable=False),
            sa.Column("created_at", sa.Float, nullable=False),
        )
    if _missing("feedback"):
        op.create_table(
            "feedback",
            sa.Column("answer_id", sa.String(200), primary_key=True),
            sa.Column("user_id", sa.String(32), primary_key=True),
            sa.Column("rating", sa.String(16), nullable=False),
            sa.Column("conversation", sa.String(200), nullable=False),
            sa.Column("question", sa.Text, nullable=False),
            sa.Column("answer", sa.Text, nullable=False),
            sa.Column("sources", sa.JSON, nullable=False),
            sa.Column("created_at", sa.Float, nullable=False),
            sa.Column("updated_at", sa.Float, nullable=False),
        )


def downgrade() -> None:
    for name in ("feedback", "answers", "slack_claims", "locks", "kb_sync_runs", "kb_documents"):
        op.drop_table(name)
