"""Contract tests: for every record type, hand-written rows that pass and rows that fail.

Each failing case breaks exactly one thing in an otherwise valid row and checks the
field and the reason reported, that the counts reconcile and that the row is not stored.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from credit.records import RECORD_TYPES, SQL_TYPES, vocabulary
from credit.store import open_store
from tests.unit.credit.ingest_rows import (
    CUSTOMS,
    FIRM,
    LOAN,
    PAYMENT,
    SHIPMENT,
    VALID,
    ingest,
    rows,
    write_csv,
)

BASE = {
    "firms": FIRM,
    "customs": CUSTOMS,
    "shipments": SHIPMENT,
    "payments": PAYMENT,
    "loans": LOAN,
}

# (record type, changes to the valid row, field reported, words of the reason)
BAD = [
    ("firms", {"registered_at": "2023-02-30"}, "registered_at", "not a valid date"),
    ("firms", {"registered_at": "2025-02-01"}, "registered_at", "after the ingestion date"),
    ("firms", {"registered_at": "0023-05-01"}, "registered_at", "before 1900-01-01"),
    ("firms", {"registered_at": "2020-5-1"}, "registered_at", "not a valid date"),
    ("firms", {"business_model": "wholesale"}, "business_model", "must be one of: b2b"),
    ("firms", {"firm_id": "bad id!"}, "firm_id", "not a valid identifier"),
    ("firms", {"main_category": ""}, "main_category", "is required"),
    ("customs", {"value_usd": "-5"}, "value_usd", "must be > 0"),
    ("customs", {"value_usd": "12,5"}, "value_usd", "not a finite number"),
    ("customs", {"quantity": "NaN"}, "quantity", "not a finite number"),
    ("customs", {"hs_code": "61091"}, "hs_code", "exactly 6 digits"),
    ("customs", {"destination_country": "XX"}, "destination_country", "ISO 3166-1"),
    ("customs", {"origin_country": "cn"}, "origin_country", "ISO 3166-1"),
    ("customs", {"regime": "9999"}, "regime", "must be one of: 9610"),
    ("customs", {"tax_refund_usd": "-1"}, "tax_refund_usd", "must be >= 0"),
    ("customs", {"tax_refund_settled_at": ""}, "tax_refund_settled_at", "is required when"),
    (
        "customs",
        {"tax_refund_settled_at": "2024-02-01"},
        "tax_refund_settled_at",
        "before declared_at",
    ),
    ("customs", {"firm_id": "F9"}, "firm_id", "not a known firm"),
    ("shipments", {"declaration_id": "D404"}, "declaration_id", "not a stored customs"),
    ("shipments", {"status": "in_transit"}, "closed_at", "must be empty while"),
    ("shipments", {"closed_at": ""}, "closed_at", "required once a shipment"),
    ("shipments", {"closed_at": "2024-03-01"}, "closed_at", "before shipped_at"),
    ("shipments", {"weight_kg": "0"}, "weight_kg", "must be > 0"),
    ("shipments", {"mode": "teleport"}, "mode", "must be one of: postal"),
    ("payments", {"currency": "XYZ"}, "currency", "ISO 4217"),
    ("payments", {"amount_usd": "-10"}, "amount_usd", "must be > 0"),
    ("payments", {"amount_usd": "1e11"}, "amount_usd", "must be <= 1e+10"),
    ("payments", {"direction": "out"}, "direction", "does not match kind"),
    ("payments", {"paid_at": "2024-03-31"}, "paid_at", "before occurred_at"),
    ("payments", {"occurred_at": "2024-13-01"}, "occurred_at", "not a valid date"),
    ("payments", {"occurred_at": "01/04/2024"}, "occurred_at", "not a valid date"),
    ("payments", {"paid_at": "2025-03-01"}, "paid_at", "after the ingestion date"),
    ("payments", {"counterparty_id": ""}, "counterparty_id", "is required"),
    ("loans", {"term_days": "30.5"}, "term_days", "not a whole number"),
    ("loans", {"term_days": "0"}, "term_days", "must be >= 1"),
    ("loans", {"defaulted": "maybe"}, "defaulted", "not true or false"),
    ("loans", {"default_at": ""}, "default_at", "required when defaulted is true"),
    ("loans", {"defaulted": "", "default_at": "2024-09-01"}, "default_at", "must be empty unless"),
    (
        "loans",
        {"disbursed_at": "", "defaulted": "false", "default_at": ""},
        "defaulted",
        "never disbursed",
    ),
    ("loans", {"product": "payday"}, "product", "must be one of: working_capital"),
    ("loans", {"firm_id": "F9"}, "firm_id", "not a known firm"),
]


def _seed(tmp_path: Path, store: Path) -> None:
    write_csv(tmp_path / "seed", "firms", VALID["firms"])
    write_csv(tmp_path / "seed", "customs", VALID["customs"])
    ingest(tmp_path / "seed", store).raise_for_errors()


@pytest.mark.parametrize("name", list(RECORD_TYPES))
def test_valid_rows_are_stored_with_contract_types(tmp_path: Path, name: str) -> None:
    store = tmp_path / "s.duckdb"
    for n in RECORD_TYPES:  # everything, in dependency order, in one directory
        write_csv(tmp_path / "in", n, VALID[n])
    report = ingest(tmp_path / "in", store)
    assert report.ok, report.errors
    f = next(f for f in report.files if f.record_type == name)
    assert (f.read, f.accepted, f.rejected) == (len(VALID[name]), len(VALID[name]), 0)
    types = dict(
        rows(
            store,
            f"SELECT column_name, data_type FROM information_schema.columns "
            f"WHERE table_name = '{name}'",
        )
    )
    assert types == {fs.name: SQL_TYPES[fs.dtype] for fs in RECORD_TYPES[name].fields}


@pytest.mark.parametrize(
    ("name", "changes", "field", "reason"),
    BAD,
    ids=[f"{b[0]}-{b[2]}-{i}" for i, b in enumerate(BAD)],
)
def test_broken_row_is_rejected_with_reason(
    tmp_path: Path, name: str, changes: dict[str, str], field: str, reason: str
) -> None:
    store = tmp_path / "s.duckdb"
    if name != "firms":
        _seed(tmp_path, store)
    rt = RECORD_TYPES[name]
    good = {**BASE[name], rt.id_field: "GOOD1"}
    bad = {**BASE[name], rt.id_field: "BAD1", **changes}
    if name == "shipments" and changes.get("status") == "in_transit":
        bad["closed_at"] = "2024-03-20"
    write_csv(tmp_path / "in", name, [good, bad])
    report = ingest(tmp_path / "in", store)
    f = report.files[0]
    assert (f.read, f.accepted, f.rejected) == (2, 1, 1)
    got = rows(store, "SELECT line, field, reason, record_type FROM rejected")
    assert len(got) == 1
    line, got_field, got_reason, got_type = got[0]
    assert (line, got_field, got_type) == (3, field, name)  # header is line 1, good row 2
    assert reason in got_reason
    assert f.top_reasons[0].reason == got_reason
    stored = {r[0] for r in rows(store, f"SELECT {rt.id_field} FROM {name}")}
    assert "GOOD1" in stored
    assert "BAD1" not in stored and changes.get(rt.id_field) not in stored


def test_timestamps_are_stored_in_utc_and_booleans_parsed(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    _seed(tmp_path, store)
    loans = [
        {**LOAN, "loan_id": "L1", "defaulted": "TRUE", "applied_at": "2024-05-01T23:30:00-02:00"},
        {
            **LOAN,
            "loan_id": "L2",
            "defaulted": "0",
            "default_at": "",
            "applied_at": "2024-05-01T12:00:00.250+05:30",
        },
        {**LOAN, "loan_id": "L3", "defaulted": "", "default_at": ""},  # outcome unknown
        {
            **LOAN,
            "loan_id": "L4",
            "defaulted": "no",
            "default_at": "",
            "applied_at": "2024-05-01T08:00:00Z",
        },
    ]
    write_csv(tmp_path / "in", "loans", loans)
    report = ingest(tmp_path / "in", store)
    assert report.files[0].rejected == 0
    got = dict(
        (r[0], r[1:]) for r in rows(store, "SELECT loan_id, applied_at, defaulted FROM loans")
    )
    assert got["L1"] == (datetime(2024, 5, 2, 1, 30), True)  # 23:30 at -02:00 = 01:30 UTC
    assert got["L2"][1] is False and got["L3"][1] is None and got["L4"][1] is False
    assert got["L4"][0] == datetime(2024, 5, 1, 8, 0)
    assert got["L2"][0] == datetime(2024, 5, 1, 6, 30, 0, 250000)


def test_due_date_may_lie_after_the_ingestion_date(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    _seed(tmp_path, store)
    invoice = {
        **PAYMENT,
        "kind": "b2b_receipt",
        "occurred_at": "2025-01-20",
        "due_at": "2025-03-20",
        "paid_at": "",
    }
    write_csv(tmp_path / "in", "payments", [invoice])
    assert ingest(tmp_path / "in", store).files[0].accepted == 1


def test_create_table_sql_matches_contract() -> None:
    con = duckdb.connect()
    for rt in RECORD_TYPES.values():
        con.execute(rt.create_table_sql())
        cols = con.execute(f"DESCRIBE {rt.name}").fetchall()
        assert [(c[0], c[1]) for c in cols] == [(f.name, f.sql_type) for f in rt.fields]
        assert {c[0] for c in cols if c[2] == "NO"} >= set(rt.required_columns)
    con.close()


def test_store_tables_have_exactly_the_contract_columns(tmp_path: Path) -> None:
    con = open_store(tmp_path / "s.duckdb")
    try:
        for rt in RECORD_TYPES.values():
            cols = con.execute(f"DESCRIBE {rt.name}").fetchall()
            assert [(c[0], c[1]) for c in cols] == [(f.name, f.sql_type) for f in rt.fields]
        rejected = [c[0] for c in con.execute("DESCRIBE rejected").fetchall()]
        assert {
            "source_file",
            "line",
            "record_type",
            "record_id",
            "field",
            "value",
            "reason",
            "ingested_at",
        } <= set(rejected)
    finally:
        con.close()


def test_vocabularies() -> None:
    assert {"CN", "US", "DE"} <= vocabulary("iso3166")
    assert {"USD", "CNY", "EUR"} <= vocabulary("iso4217")
    with pytest.raises(KeyError):
        vocabulary("iso639")


def test_contract_doc_is_up_to_date() -> None:
    from credit.commands.contract import render_markdown

    doc = Path(__file__).resolve().parents[3] / "docs" / "data-contract.md"
    assert doc.read_text(encoding="utf-8") == render_markdown(), (
        "docs/data-contract.md is stale: run `credit contract describe --output "
        "docs/data-contract.md`"
    )
    for rt in RECORD_TYPES.values():  # every field and rule is documented
        assert all(f"`{f.name}`" in doc.read_text() for f in rt.fields)
        assert all(r.reason in doc.read_text() for r in rt.rules)


def test_csv_with_byte_order_mark(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in", "firms", [FIRM])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    report = ingest(tmp_path / "in", tmp_path / "s.duckdb")
    assert report.ok, report.errors
    assert (report.files[0].accepted, report.files[0].rejected) == (1, 0)
