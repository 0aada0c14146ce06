"""API keys and the decision audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False, index=True),
        sa.Column("role", sa.String(16), nullable=False),
        # sha256 hex of the whole key; the key itself is never stored.
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("note", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('lender', 'platform', 'admin')", name="ck_api_keys_role"),
    )
    op.create_table(
        "decisions",
        sa.Column("decision_id", sa.String(40), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("firm_id", sa.String(64), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("features", _JSON, nullable=False),
        sa.Column("pd", sa.Float, nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("grade", sa.String(8), nullable=False),
        sa.Column("reasons", _JSON, nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("model_run_id", sa.String(64), nullable=True),
        sa.Column("thin_file", sa.Boolean, nullable=True),
        sa.Column("history_months", sa.Float, nullable=True),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_decisions_tenant_scored_at", "decisions", ["tenant", "scored_at"])
    op.create_index("ix_decisions_firm_id", "decisions", ["firm_id"])


def downgrade() -> None:
    op.drop_index("ix_decisions_firm_id", table_name="decisions")
    op.drop_index("ix_decisions_tenant_scored_at", table_name="decisions")
    op.drop_table("decisions")
    op.drop_table("api_keys")
