"""Seller links: one row per link issued, so a link can be revoked and dies with its key.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seller_links",
        sa.Column("link_id", sa.String(32), primary_key=True),
        sa.Column("firm_id", sa.String(64), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        # The API key that asked for the link; NULL for an operator's link (command line).
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_seller_links_tenant", "seller_links", ["tenant"])


def downgrade() -> None:
    op.drop_index("ix_seller_links_tenant", table_name="seller_links")
    op.drop_table("seller_links")
