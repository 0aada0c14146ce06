"""Model reloads: one row per ``POST /v1/admin/reload``, so every worker and replica follows.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_reloads",
        sa.Column("reload_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(32)),
        sa.Column("model_version", sa.String(64)),
    )


def downgrade() -> None:
    op.drop_table("model_reloads")
