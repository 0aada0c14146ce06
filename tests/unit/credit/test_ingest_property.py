"""Property: whatever mix of valid and corrupted rows, counts reconcile and only valid rows land.

Every stored row is re-validated by exporting the table to Parquet and ingesting it into a
fresh store: it must come back with zero rejections.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.credit.ingest_rows import FIRM, FIRM2, PAYMENT, ingest, rows, write_csv

# Each corruption breaks a valid payment so that it must be rejected.
CORRUPTIONS: dict[str, dict[str, str]] = {
    "negative_amount": {"amount_usd": "-3.5"},
    "text_amount": {"amount_usd": "ten"},
    "bad_currency": {"currency": "usd"},
    "impossible_date": {"occurred_at": "2023-02-30", "paid_at": ""},
    "future_date": {"occurred_at": "2031-01-01", "paid_at": ""},
    "unknown_kind": {"kind": "gift"},
    "wrong_direction": {"direction": "out"},
    "unknown_firm": {"firm_id": "F404"},
    "empty_required": {"counterparty_id": ""},
    "bad_id": {"payment_id": "has space"},
}

row_strategy = st.tuples(
    st.sampled_from(["valid", "duplicate", *CORRUPTIONS]),
    st.sampled_from(["F1", "F2"]),
    st.decimals(min_value="0.01", max_value="99999", places=2).map(str),
)


@pytest.mark.slow
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(row_strategy, min_size=1, max_size=30))
def test_mixed_rows_reconcile_and_only_valid_rows_are_stored(
    spec: list[tuple[str, str, str]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = root / "s.duckdb"
        write_csv(root / "in", "firms", [FIRM, FIRM2])
        payments, expected_ids = [], set()
        for i, (kind, firm, amount) in enumerate(spec):
            row = {**PAYMENT, "payment_id": f"P{i}", "firm_id": firm, "amount_usd": amount}
            if kind == "duplicate":
                if not expected_ids:  # nothing to duplicate yet: an ordinary valid row
                    kind = "valid"
                else:
                    row["payment_id"] = sorted(expected_ids)[0]
            elif kind != "valid":
                row.update(CORRUPTIONS[kind])
            if kind == "valid":
                expected_ids.add(row["payment_id"])
            payments.append(row)
        write_csv(root / "in", "payments", payments)

        f = ingest(root / "in", store).files[1]
        assert f.read == len(spec)
        assert f.read == f.accepted + f.rejected
        assert f.accepted == len(expected_ids)
        stored = {r[0] for r in rows(store, "SELECT payment_id FROM payments")}
        assert stored == expected_ids
        assert rows(store, "SELECT count(*) FROM rejected")[0][0] == f.rejected

        # every stored row satisfies the contract: it re-ingests cleanly into a new store
        (root / "again").mkdir()
        con = duckdb.connect(str(store), read_only=True)
        for table in ("firms", "payments"):
            con.execute(f"COPY {table} TO '{root / 'again' / table}.parquet' (FORMAT PARQUET)")
        con.close()
        again = ingest(root / "again", root / "s2.duckdb")
        assert again.ok
        assert [(g.accepted, g.rejected) for g in again.files] == [(2, 0), (len(stored), 0)]
