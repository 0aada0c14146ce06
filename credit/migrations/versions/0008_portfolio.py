"""Portfolio monitoring: the firms each lender watches, every run, every re-score, the alerts.

* ``portfolio_firms``: one row per tenant and watched firm (exposure, product, how it was
  registered) with the firm's state at its last run (PD, grade, signals, SHAP contributions),
  which the next run compares against;
* ``portfolio_runs``: one row per run of a tenant's portfolio (model, counts, when);
* ``portfolio_scores``: every re-score of a run (PD, grade, exposure, segment, signals), for
  the report and the grade migration between two runs;
* ``alerts``: a rule that fired for a firm in a run, with before and after and the reasons
  that moved most; written with its ``monitoring.alert`` event (table ``events``, 0007).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "portfolio_firms",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("firm_id", sa.String(64), primary_key=True),
        sa.Column("exposure", sa.Float, nullable=True),
        sa.Column("product", sa.String(40), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("registered_at", _TS, nullable=False),
        sa.Column("registered_by", sa.String(32), nullable=True),
        sa.Column("last_run_id", sa.String(40), nullable=True),
        sa.Column("last_scored_at", _TS, nullable=True),
        sa.Column("last_pd", sa.Float, nullable=True),
        sa.Column("last_score", sa.Integer, nullable=True),
        sa.Column("last_grade", sa.String(8), nullable=True),
        sa.Column("last_signals", _JSON, nullable=True),
        sa.Column("last_contributions", _JSON, nullable=True),
    )
    op.create_table(
        "portfolio_runs",
        sa.Column("run_id", sa.String(40), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=False),
        sa.Column("model_version", sa.String(64), nullable=True),
        # the model's features, in the order of the firms' stored SHAP contributions
        sa.Column("features", _JSON, nullable=False),
        sa.Column("watched", sa.Integer, nullable=False),
        sa.Column("scored", sa.Integer, nullable=False),
        sa.Column("skipped", _JSON, nullable=False),
        sa.Column("alerts", sa.Integer, nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
    )
    op.create_index("ix_portfolio_runs_tenant", "portfolio_runs", ["tenant", "started_at"])
    op.create_table(
        "portfolio_scores",
        sa.Column("run_id", sa.String(40), primary_key=True),
        sa.Column("firm_id", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("pd", sa.Float, nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("grade", sa.String(8), nullable=False),
        sa.Column("exposure", sa.Float, nullable=True),
        sa.Column("market", sa.String(16), nullable=True),
        sa.Column("regime", sa.String(8), nullable=True),
        sa.Column("product", sa.String(40), nullable=True),
        sa.Column("signals", _JSON, nullable=False),
        sa.Column("reasons", _JSON, nullable=False),
    )
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.String(40), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("firm_id", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("rule", sa.String(40), nullable=False),
        sa.Column("text", sa.String(200), nullable=False),
        sa.Column("before_value", _JSON, nullable=True),
        sa.Column("after_value", _JSON, nullable=True),
        sa.Column("reasons", _JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("event_id", sa.String(40), nullable=True),
        # closed by the lender once handled: who, when and why
        sa.Column("closed_at", _TS, nullable=True),
        sa.Column("closed_by", sa.String(80), nullable=True),
        sa.Column("close_note", sa.String(2000), nullable=True),
    )
    op.create_index("ix_alerts_tenant_created", "alerts", ["tenant", "created_at"])
    op.create_index("ix_alerts_tenant_firm", "alerts", ["tenant", "firm_id"])


def downgrade() -> None:
    op.drop_index("ix_alerts_tenant_firm", table_name="alerts")
    op.drop_index("ix_alerts_tenant_created", table_name="alerts")
    op.drop_table("alerts")
    op.drop_table("portfolio_scores")
    op.drop_index("ix_portfolio_runs_tenant", table_name="portfolio_runs")
    op.drop_table("portfolio_runs")
    op.drop_table("portfolio_firms")
