"""Consent-scoped sharing: consents, provided records and their ingestions, decision lineage.

* ``consents``: one row per consent request or consent (firm, grantee, purposes, sources,
  status, when granted / expires / revoked, and the evidence of how it was given);
* ``record_batches``: every ingestion a provider made (an HTTP push or a file), with its
  SHA-256, counts and rejected rows; ``provided_records``: the records pushed over HTTP
  (shared by every replica of the service); ``firm_sources``: which providers hold records
  of which firm, and when they last sent some;
* ``decisions`` gains the consent a decision was made under, the sources it used and the
  moment its records were known as of (``knowledge_at``, for replay and lineage).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "consents",
        sa.Column("consent_id", sa.String(40), primary_key=True),
        sa.Column("firm_id", sa.String(64), nullable=False),
        sa.Column("grantee", sa.String(64), nullable=False),
        sa.Column("purposes", _JSON, nullable=False),
        # NULL while requested without naming sources: filled with the firm's providers when
        # the seller approves
        sa.Column("sources", _JSON, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("requested_key_id", sa.String(32), nullable=True),
        sa.Column("requested_at", _TS, nullable=False),
        sa.Column("months", sa.Integer, nullable=False),
        sa.Column("link_id", sa.String(32), nullable=True),
        sa.Column("decided_at", _TS, nullable=True),
        sa.Column("granted_at", _TS, nullable=True),
        sa.Column("expires_at", _TS, nullable=True),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.Column("revoked_by", sa.String(80), nullable=True),
        sa.Column("evidence", _JSON, nullable=True),
    )
    op.create_index("ix_consents_grantee_firm", "consents", ["grantee", "firm_id"])
    op.create_index("ix_consents_firm", "consents", ["firm_id"])
    op.create_table(
        "record_batches",
        sa.Column("ingestion_id", sa.String(40), primary_key=True),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("ingested_at", _TS, nullable=False),
        sa.Column("counts", _JSON, nullable=False),
        sa.Column("rejected", _JSON, nullable=False),
    )
    op.create_index("ix_record_batches_provider", "record_batches", ["provider", "ingested_at"])
    op.create_table(
        "provided_records",
        sa.Column("record_type", sa.String(16), primary_key=True),
        sa.Column("record_id", sa.String(64), primary_key=True),
        sa.Column("firm_id", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("ingestion_id", sa.String(40), nullable=False),
        sa.Column("ingested_at", _TS, nullable=False),
        sa.Column("content", sa.Text, nullable=False),
    )
    op.create_index("ix_provided_records_firm", "provided_records", ["firm_id", "ingested_at"])
    op.create_index("ix_provided_records_ingestion", "provided_records", ["ingestion_id"])
    op.create_table(
        "firm_sources",
        sa.Column("firm_id", sa.String(64), primary_key=True),
        sa.Column("provider", sa.String(64), primary_key=True),
        sa.Column("first_ingested_at", _TS, nullable=False),
        sa.Column("last_ingested_at", _TS, nullable=False),
    )
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("consent_id", sa.String(40), nullable=True))
        batch.add_column(sa.Column("sources", _JSON, nullable=True))
        batch.add_column(sa.Column("knowledge_at", _TS, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("knowledge_at")
        batch.drop_column("sources")
        batch.drop_column("consent_id")
    op.drop_table("firm_sources")
    op.drop_index("ix_provided_records_ingestion", table_name="provided_records")
    op.drop_index("ix_provided_records_firm", table_name="provided_records")
    op.drop_table("provided_records")
    op.drop_index("ix_record_batches_provider", table_name="record_batches")
    op.drop_table("record_batches")
    op.drop_index("ix_consents_firm", table_name="consents")
    op.drop_index("ix_consents_grantee_firm", table_name="consents")
    op.drop_table("consents")
