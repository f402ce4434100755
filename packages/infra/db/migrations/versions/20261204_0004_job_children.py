"""job children: the parts of fanned-out jobs

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 17:44:39.975883
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_children",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("parent_kind", sa.String(length=64), nullable=False),
        sa.Column("parent_id", sa.UUID(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="queued", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("progress", sa.Float(), server_default="0", nullable=False),
        sa.Column("spec", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("result", sa.LargeBinary(), nullable=True),
        sa.Column("error", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_job_children_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_children")),
        sa.UniqueConstraint(
            "parent_kind",
            "parent_id",
            "position",
            name=op.f("uq_job_children_parent_kind_parent_id_position"),
        ),
    )
    op.create_index(
        "ix_job_children_status_heartbeat_at", "job_children", ["status", "heartbeat_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_job_children_status_heartbeat_at", table_name="job_children")
    op.drop_table("job_children")
