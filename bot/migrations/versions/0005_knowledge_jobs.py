"""Knowledge jobs: Slack-file events and ``/kb sync`` queued by the front for the answer workers.

Revision ID: 0005_knowledge_jobs
Revises: 0004_answer_parts

Like 0003, the table is created only when missing: the stores' own ``create_all`` may have made it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_knowledge_jobs"
down_revision = "0004_answer_parts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("knowledge_jobs"):
        return
    op.create_table(
        "knowledge_jobs",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(160), nullable=False),
        sa.Column("lane", sa.String(200), nullable=False),
        sa.Column("args", sa.JSON, nullable=False),
        sa.Column("requested_at", sa.Float, nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("owner", sa.String(160), nullable=True),
        sa.Column("lease_until", sa.Float, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_knowledge_jobs_lane", "knowledge_jobs", ["lane", "requested_at"])


def downgrade() -> None:
    op.drop_table("knowledge_jobs")
