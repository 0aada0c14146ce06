"""Hand-written valid rows for each record type, and helpers to write and ingest them.

The rows form one small consistent world: two firms, one export declaration with its
shipment, payments and a loan. Tests copy a row, break one field, and check the reason.
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from credit.ingest import IngestReport, ingest_dir
from credit.records import RECORD_TYPES

#: Timestamps after this day are "after the ingestion date".
TODAY = date(2025, 1, 31)

FIRM = {
    "firm_id": "F1",
    "registered_at": "2020-05-01",
    "business_model": "b2c",
    "main_category": "textiles_apparel",
    "home_region": "CN-GD",
}
FIRM2 = {**FIRM, "firm_id": "F2", "business_model": "b2b", "home_region": "Zhejiang"}
CUSTOMS = {
    "declaration_id": "D1",
    "firm_id": "F1",
    "declared_at": "2024-03-01T10:00:00+08:00",
    "direction": "export",
    "regime": "9610",
    "hs_code": "610910",
    "origin_country": "CN",
    "destination_country": "US",
    "value_usd": "1200.50",
    "quantity": "300",
    "status": "cleared",
    "tax_refund_usd": "80",
    "tax_refund_status": "paid",
    "tax_refund_settled_at": "2024-04-15",
}
SHIPMENT = {
    "shipment_id": "S1",
    "firm_id": "F1",
    "declaration_id": "D1",
    "shipped_at": "2024-03-02",
    "closed_at": "2024-03-20",
    "mode": "postal",
    "origin_country": "CN",
    "destination_country": "US",
    "destination_type": "consumer",
    "weight_kg": "42.5",
    "declared_value_usd": "1200.50",
    "status": "delivered",
}
PAYMENT = {
    "payment_id": "P1",
    "firm_id": "F1",
    "kind": "settlement",
    "direction": "in",
    "amount_usd": "990.00",
    "currency": "USD",
    "counterparty_id": "amazon-us",
    "occurred_at": "2024-04-01",
    "due_at": "",
    "paid_at": "2024-04-01",
}
LOAN = {
    "loan_id": "L1",
    "firm_id": "F2",
    "product": "working_capital_advance",
    "applied_at": "2024-05-01",
    "disbursed_at": "2024-05-03",
    "amount_usd": "20000",
    "term_days": "90",
    "defaulted": "true",
    "default_at": "2024-09-01",
}
VALID: dict[str, list[dict[str, str]]] = {
    "firms": [FIRM, FIRM2],
    "customs": [CUSTOMS],
    "shipments": [SHIPMENT],
    "payments": [PAYMENT],
    "loans": [LOAN],
}


def write_csv(
    folder: Path, name: str, rows: list[dict[str, Any]], columns: list[str] | None = None
) -> Path:
    """Write ``rows`` to ``folder/name.csv`` with the contract columns (or ``columns``)."""
    folder.mkdir(parents=True, exist_ok=True)
    cols = columns or RECORD_TYPES[name.split("_")[0].split(".")[0]].columns
    path = folder / f"{name}.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def ingest(folder: Path, store: Path) -> IngestReport:
    """Ingest ``folder`` into ``store`` as of :data:`TODAY`."""
    return ingest_dir(folder, store, ingestion_date=TODAY)


def rows(store: Path, sql: str) -> list[tuple[Any, ...]]:
    """Run a query on the store (read-only) and return all rows."""
    con = duckdb.connect(str(store), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def seed_firms(folder: Path, store: Path) -> None:
    """Store the two valid firms (so other record types can reference them)."""
    write_csv(folder / "seed", "firms", [FIRM, FIRM2])
    ingest(folder / "seed", store).raise_for_errors()
