"""manual actions and idempotency keys

Manual order intents the next cycle carries out, and the Idempotency-Key of account creation and of
confirmation requests.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 18:39:03.828318
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "manual_actions",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("deployment_id", sa.UUID(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("actor", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("confirmation_id", sa.UUID(), nullable=True),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.CheckConstraint(
            "action IN ('open', 'close', 'reduce', 'flatten', 'cancel_order')",
            name=op.f("ck_manual_actions_action"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'done', 'rejected', 'canceled')", name=op.f("ck_manual_actions_status")
        ),
        sa.ForeignKeyConstraint(
            ["confirmation_id"],
            ["confirmations.id"],
            name=op.f("fk_manual_actions_confirmation_id_confirmations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_manual_actions_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_manual_actions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_manual_actions")),
    )
    op.create_index(
        op.f("ix_manual_actions_deployment_id"), "manual_actions", ["deployment_id"], unique=False
    )
    op.create_index(
        "ix_manual_actions_pending",
        "manual_actions",
        ["deployment_id", "created_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(op.f("ix_manual_actions_user_id"), "manual_actions", ["user_id"], unique=False)
    op.add_column("broker_accounts", sa.Column("idempotency_key", sa.String(length=200), nullable=True))
    op.add_column("broker_accounts", sa.Column("request_hash", sa.String(length=64), nullable=True))
    op.create_index(
        "uq_broker_accounts_user_id_idempotency_key",
        "broker_accounts",
        ["user_id", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    op.add_column("confirmations", sa.Column("idempotency_key", sa.String(length=200), nullable=True))
    op.create_index(
        "uq_confirmations_user_id_action_idempotency_key",
        "confirmations",
        ["user_id", "action", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "uq_confirmations_user_id_action_idempotency_key",
        table_name="confirmations",
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    op.drop_column("confirmations", "idempotency_key")
    op.drop_index(
        "uq_broker_accounts_user_id_idempotency_key",
        table_name="broker_accounts",
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    op.drop_column("broker_accounts", "request_hash")
    op.drop_column("broker_accounts", "idempotency_key")
    op.drop_index(op.f("ix_manual_actions_user_id"), table_name="manual_actions")
    op.drop_index(
        "ix_manual_actions_pending",
        table_name="manual_actions",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_index(op.f("ix_manual_actions_deployment_id"), table_name="manual_actions")
    op.drop_table("manual_actions")
