"""Lender decisioning: outcomes, reviews with four eyes, key holders.

* ``decisions`` gains the outcome under the lender's policy (``approved``, ``declined``,
  ``referred``), the model's recommendation, the rules that fired, the amount applied for,
  the policy (name and version) and, for a referred decision, its review;
* ``reviews``: one row per referred decision (its state, the recommendation and exposure it
  was opened with, the policy's review terms at the time, the final outcome);
* ``review_actions``: every reviewer action, insert-only (holder, key, outcome, reason codes,
  note, time);
* ``api_keys`` gains ``holder``: the person a key belongs to (reviewers must have one).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("outcome", sa.String(16), nullable=True))
        batch.add_column(sa.Column("recommendation", sa.String(16), nullable=True))
        batch.add_column(sa.Column("rules", _JSON, nullable=True))
        batch.add_column(sa.Column("amount", sa.Float, nullable=True))
        batch.add_column(sa.Column("policy", sa.String(100), nullable=True))
        batch.add_column(sa.Column("review_id", sa.String(40), nullable=True))
    op.create_index("ix_decisions_firm", "decisions", ["firm_id", "scored_at"])
    op.create_table(
        "reviews",
        sa.Column("review_id", sa.String(40), primary_key=True),
        sa.Column("decision_id", sa.String(40), nullable=False, unique=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("firm_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("recommendation", sa.String(16), nullable=False),
        sa.Column("grade", sa.String(8), nullable=False),
        sa.Column("exposure", sa.Float, nullable=False),
        sa.Column("terms", _JSON, nullable=False),
        sa.Column("opened_at", _TS, nullable=False),
        sa.Column("pending_outcome", sa.String(16), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("closed_at", _TS, nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("ix_reviews_tenant_status", "reviews", ["tenant", "status", "opened_at"])
    op.create_table(
        "review_actions",
        sa.Column("action_id", sa.String(40), primary_key=True),
        sa.Column("review_id", sa.String(40), nullable=False),
        sa.Column("holder", sa.String(80), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason_codes", _JSON, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("effect", sa.String(16), nullable=False),
        sa.Column("at", _TS, nullable=False),
    )
    op.create_index("ix_review_actions_review", "review_actions", ["review_id", "at"])
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("holder", sa.String(80), nullable=True))
        batch.drop_constraint("ck_api_keys_role", type_="check")
        batch.create_check_constraint(
            "ck_api_keys_role", "role IN ('lender', 'platform', 'admin', 'reviewer')"
        )


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("holder")
        batch.drop_constraint("ck_api_keys_role", type_="check")
        batch.create_check_constraint("ck_api_keys_role", "role IN ('lender', 'platform', 'admin')")
    op.drop_index("ix_review_actions_review", table_name="review_actions")
    op.drop_table("review_actions")
    op.drop_index("ix_reviews_tenant_status", table_name="reviews")
    op.drop_table("reviews")
    op.drop_index("ix_decisions_firm", table_name="decisions")
    with op.batch_alter_table("decisions") as batch:
        for c in ("review_id", "policy", "amount", "rules", "recommendation", "outcome"):
            batch.drop_column(c)
