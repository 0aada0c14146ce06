"""Source rows: what became of every row of an export file pushed through an adapter.

``source_rows``: one row per line of the export (``POST /v1/records`` with a ``format``),
under the push's ingestion: its outcome (mapped, rejected, skipped), the reason, the record it
went into, and the money as the source gave it (original currency, amount, and the US dollars
per unit used to convert it).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_rows",
        sa.Column("ingestion_id", sa.String(40), primary_key=True),
        sa.Column("line", sa.Integer, primary_key=True),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(8), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("record_type", sa.String(16), nullable=True),
        sa.Column("record_id", sa.String(64), nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("amount", sa.Float, nullable=True),
        sa.Column("usd_rate", sa.Float, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("source_rows")
