"""Ingestion of whole files: file errors, duplicates, idempotency, formats, bookkeeping."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from credit.ingest import IngestError, ingest_dir
from credit.records import RECORD_TYPES
from credit.store import table_counts
from tests.unit.credit.ingest_rows import (
    FIRM,
    FIRM2,
    PAYMENT,
    TODAY,
    VALID,
    ingest,
    rows,
    seed_firms,
    write_csv,
)


def _stored(store: Path) -> dict[str, int]:
    from credit.store import open_store

    con = open_store(store, read_only=True)
    try:
        return table_counts(con)
    finally:
        con.close()


def _payments(n: int, **changes: str) -> list[dict[str, str]]:
    return [{**PAYMENT, "payment_id": f"P{i}", **changes} for i in range(n)]


# --- file errors: one line naming the file, nothing written ------------------------------


def test_missing_required_column_fails_the_file_before_anything_is_written(
    tmp_path: Path,
) -> None:
    store = tmp_path / "s.duckdb"
    write_csv(tmp_path / "in", "firms", [FIRM])
    cols = [c for c in RECORD_TYPES["payments"].columns if c != "amount_usd"]
    write_csv(tmp_path / "in", "payments", _payments(2), columns=cols)
    report = ingest(tmp_path / "in", store)
    assert not report.ok
    assert report.errors == [
        "payments.csv: missing required column(s): amount_usd (a payments file needs "
        + ", ".join(RECORD_TYPES["payments"].required_columns)
        + ")"
    ]
    # headers are checked first: the valid firms file is not ingested either
    assert [f.status for f in report.files] == ["not_attempted", "failed"]
    assert _stored(store) == dict.fromkeys([*RECORD_TYPES, "rejected"], 0)
    with pytest.raises(IngestError, match="payments.csv"):
        report.raise_for_errors()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "file is empty (0 bytes)"),
        (b"\n\n", "no header line"),
        ("firm_id,registered_at\n".encode("utf-16"), "not UTF-8 encoded near line 1"),
    ],
    ids=["zero-bytes", "blank", "utf16-header"],
)
def test_unreadable_csv_headers(tmp_path: Path, content: bytes, problem: str) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "firms.csv").write_bytes(content)
    report = ingest(tmp_path / "in", tmp_path / "s.duckdb")
    assert len(report.errors) == 1
    assert report.errors[0].startswith("firms.csv: " + problem)
    assert "\n" not in report.errors[0]


def test_non_utf8_bytes_in_a_row_fail_the_file_and_write_nothing_of_it(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    seed_firms(tmp_path, store)
    path = write_csv(tmp_path / "in", "payments", _payments(3))
    data = path.read_bytes().replace(b"amazon-us", b"amaz\xf6n-us", 1)  # Latin-1 o-umlaut
    path.write_bytes(data)
    write_csv(tmp_path / "in", "loans", VALID["loans"])
    report = ingest(tmp_path / "in", store)
    assert len(report.errors) == 1
    assert report.errors[0].startswith("payments.csv: not UTF-8 encoded")
    assert "save the file as UTF-8" in report.errors[0]
    assert [f.status for f in report.files] == ["failed", "not_attempted"]
    counts = _stored(store)
    assert (counts["payments"], counts["loans"], counts["rejected"]) == (0, 0, 0)
    assert rows(store, "SELECT count(*) FROM ingestions WHERE record_type = 'payments'") == [(0,)]


def test_malformed_csv_row_fails_the_file(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in", "firms", [FIRM, FIRM2])
    path.write_text(path.read_text() + "F3,2020-01-01,b2b,food,CN-GD,extra\n")
    report = ingest(tmp_path / "in", tmp_path / "s.duckdb")
    assert report.errors and report.errors[0].startswith("firms.csv: malformed CSV")
    assert _stored(tmp_path / "s.duckdb")["firms"] == 0


def test_truncated_parquet_fails_the_file(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    pd.DataFrame(VALID["firms"]).to_parquet(tmp_path / "full.parquet")
    data = (tmp_path / "full.parquet").read_bytes()
    (tmp_path / "in" / "firms.parquet").write_bytes(data[: len(data) // 2])
    report = ingest(tmp_path / "in", tmp_path / "s.duckdb")
    assert report.errors and report.errors[0].startswith(
        "firms.parquet: not a readable Parquet file"
    )


def test_no_record_files(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("hello")
    report = ingest(tmp_path / "in", tmp_path / "s.duckdb")
    assert not report.ok and "no record files found" in report.errors[0]
    assert report.skipped == ["notes.txt"]


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError):
        ingest_dir(tmp_path / "missing", tmp_path / "s.duckdb")


# --- rows: duplicates, idempotency, order ------------------------------------------------


def test_header_only_file_reads_nothing(tmp_path: Path) -> None:
    write_csv(tmp_path / "in", "firms", [])
    report = ingest(tmp_path / "in", tmp_path / "s.duckdb")
    assert report.ok
    assert (report.files[0].read, report.files[0].accepted) == (0, 0)


def test_duplicate_ids_in_a_file_keep_the_first_valid_row(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    seed_firms(tmp_path, store)
    pays = [
        {**PAYMENT, "payment_id": "A", "amount_usd": "-1"},  # line 2: invalid
        {**PAYMENT, "payment_id": "A", "amount_usd": "10"},  # line 3: first valid A, kept
        {**PAYMENT, "payment_id": "A", "amount_usd": "10"},  # line 4: duplicate
        {**PAYMENT, "payment_id": "B"},  # line 5
        {**PAYMENT, "payment_id": "B", "amount_usd": "7"},  # line 6: duplicate
    ]
    write_csv(tmp_path / "in", "payments", pays)
    f = ingest(tmp_path / "in", store).files[0]
    assert (f.read, f.accepted, f.rejected) == (5, 2, 3)
    assert rows(store, "SELECT payment_id, amount_usd FROM payments ORDER BY 1") == [
        ("A", 10.0),
        ("B", 990.0),
    ]
    got = rows(store, "SELECT line, field, reason FROM rejected ORDER BY line")
    assert [(g[0], g[1]) for g in got] == [(2, "amount_usd"), (4, "payment_id"), (6, "payment_id")]
    assert got[1][2].startswith("duplicate payment_id: an earlier valid row")


def test_same_files_twice_add_nothing(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    for name in RECORD_TYPES:
        write_csv(tmp_path / "in", name, VALID[name])
    first = ingest(tmp_path / "in", store)
    before = _stored(store)
    second = ingest(tmp_path / "in", store)
    assert first.ok and second.ok
    assert _stored(store) == before
    for f in second.files:
        assert f.read == f.accepted == f.already_present > 0
        assert (f.added, f.rejected) == (0, 0)
    # both runs are recorded, with the same file digests
    digests = rows(
        store,
        "SELECT file, count(DISTINCT sha256), count(*) FROM ingestions GROUP BY file ORDER BY file",
    )
    assert all(d[1:] == (1, 2) for d in digests) and len(digests) == len(RECORD_TYPES)


def test_same_id_with_different_content_is_rejected_never_overwritten(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    seed_firms(tmp_path, store)
    write_csv(tmp_path / "in1", "payments", [PAYMENT])
    ingest(tmp_path / "in1", store)
    changed = {**PAYMENT, "amount_usd": "991.00"}
    same_value_other_spelling = {**PAYMENT, "payment_id": "P2", "amount_usd": "990"}
    write_csv(tmp_path / "in2", "payments", [changed, same_value_other_spelling])
    f = ingest(tmp_path / "in2", store).files[0]
    assert (f.read, f.accepted, f.already_present, f.rejected) == (2, 1, 0, 1)
    assert rows(store, "SELECT payment_id, amount_usd FROM payments ORDER BY 1") == [
        ("P1", 990.0),
        ("P2", 990.0),
    ]
    reason = rows(store, "SELECT reason, value FROM rejected")
    assert reason[0][0].startswith("payment_id is already stored with different content")
    assert reason[0][1] == "P1"


def test_record_types_are_ingested_in_dependency_order(tmp_path: Path) -> None:
    # "a_payments" sorts before "firms" by name; the firms must still be stored first.
    write_csv(tmp_path / "in", "payments_a", [PAYMENT])
    write_csv(tmp_path / "in", "firms", [FIRM])
    report = ingest(tmp_path / "in", tmp_path / "s.duckdb")
    assert [f.file for f in report.files] == ["firms.csv", "payments_a.csv"]
    assert [f.accepted for f in report.files] == [1, 1]


def test_unknown_files_skipped_extra_columns_ignored_optional_columns_may_be_absent(
    tmp_path: Path,
) -> None:
    store = tmp_path / "s.duckdb"
    seed_firms(tmp_path, store)
    cols = [c for c in RECORD_TYPES["payments"].columns if c != "due_at"] + ["note"]
    write_csv(tmp_path / "in", "payments", [{**PAYMENT, "note": "x"}], columns=cols)
    pd.DataFrame({"firm_id": ["F1"], "pd": [0.1]}).to_parquet(tmp_path / "in" / "truth.parquet")
    report = ingest(tmp_path / "in", store)
    assert report.ok and report.skipped == ["truth.parquet"]
    f = report.files[0]
    assert f.accepted == 1
    assert f.warnings == [
        "ignored unexpected column(s): note",
        "optional column(s) absent, read as empty: due_at",
    ]
    assert rows(store, "SELECT due_at FROM payments") == [(None,)]


def test_parquet_with_native_types_matches_csv_strings(tmp_path: Path) -> None:
    """The simulator's Parquet (datetime64, nullable boolean, int64) equals the CSV form."""
    store = tmp_path / "s.duckdb"
    for name in RECORD_TYPES:
        write_csv(tmp_path / "csv", name, VALID[name])
    assert ingest(tmp_path / "csv", store).ok
    (tmp_path / "pq").mkdir()
    for name in RECORD_TYPES:
        df = pd.DataFrame(VALID[name]).replace({"": None})
        for f in RECORD_TYPES[name].fields:
            if f.dtype == "timestamp":
                df[f.name] = pd.to_datetime(df[f.name], utc=True, format="ISO8601")
                if name != "customs":  # customs keeps tz-aware timestamps, the rest naive
                    df[f.name] = df[f.name].dt.tz_localize(None)
            elif f.dtype == "float":
                df[f.name] = df[f.name].astype(float)
            elif f.dtype == "int":
                df[f.name] = df[f.name].astype("int64")
            elif f.dtype == "bool":
                df[f.name] = df[f.name].map({"true": True, "false": False}).astype("boolean")
        df.to_parquet(tmp_path / "pq" / f"{name}.parquet")
    report = ingest(tmp_path / "pq", store)
    assert report.ok, report.errors
    for f in report.files:
        assert f.read == f.already_present == len(VALID[f.record_type]), f


def test_parquet_bad_rows_report_their_row_number(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    (tmp_path / "in").mkdir()
    df = pd.DataFrame([FIRM, {**FIRM, "firm_id": "F2"}])
    df["registered_at"] = pd.to_datetime(["2020-01-01", "2026-06-01"])  # row 2 in the future
    df.to_parquet(tmp_path / "in" / "firms.parquet")
    f = ingest(tmp_path / "in", store).files[0]
    assert (f.read, f.accepted, f.rejected) == (2, 1, 1)
    assert rows(store, "SELECT line, record_id, field, value FROM rejected") == [
        (2, "F2", "registered_at", "2026-06-01 00:00:00")
    ]


def test_long_values_are_truncated_in_rejected(tmp_path: Path) -> None:
    write_csv(tmp_path / "in", "firms", [{**FIRM, "home_region": "x" * 500}])
    store = tmp_path / "s.duckdb"
    assert ingest(tmp_path / "in", store).files[0].rejected == 1
    [(value,)] = rows(store, "SELECT value FROM rejected")
    assert len(value) == 200 and value.endswith("...")


def test_ingestions_table_records_each_file(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    write_csv(tmp_path / "in", "firms", [FIRM, {**FIRM, "firm_id": "F2", "home_region": ""}])
    report = ingest(tmp_path / "in", store)
    [rec] = rows(
        store,
        "SELECT file, sha256, record_type, read, accepted, already_present, "
        "rejected, started_at <= finished_at FROM ingestions",
    )
    assert rec[0] == "firms.csv" and rec[2] == "firms" and rec[3:] == (2, 1, 0, 1, True)
    assert rec[1] == report.files[0].sha256 and len(rec[1]) == 64
    assert report.to_dict()["record_types"]["firms"]["top_reasons"] == [
        {"field": "home_region", "reason": "home_region is required and is empty", "count": 1}
    ]
    assert report.ingestion_date == TODAY.isoformat()
    assert isinstance(rows(store, "SELECT ingested_at FROM rejected")[0][0], datetime)


def test_progress_is_reported_per_stage(tmp_path: Path) -> None:
    write_csv(tmp_path / "in", "firms", [FIRM])
    seen: list[tuple[str, str, int, int]] = []
    report = ingest_dir(
        tmp_path / "in",
        tmp_path / "s.duckdb",
        ingestion_date=TODAY,
        progress=lambda *a: seen.append(a),
        memory_limit="256MB",
    )
    assert report.ok
    assert seen == [
        ("firms.csv", "reading", 0, 3),
        ("firms.csv", "validating", 1, 3),
        ("firms.csv", "storing", 2, 3),
        ("firms.csv", "done", 3, 3),
    ]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_line_numbers_hold_on_a_file_read_in_parallel(tmp_path: Path, fmt: str) -> None:
    """Bad rows spread over a file of many chunks are reported on their exact lines."""
    import duckdb

    store = tmp_path / "s.duckdb"
    seed_firms(tmp_path, store)
    n, every = 300_000, 9_973
    (tmp_path / "in").mkdir()
    con = duckdb.connect()
    opts = "(FORMAT PARQUET, ROW_GROUP_SIZE 20000)" if fmt == "parquet" else "(HEADER)"
    con.execute(
        f"""COPY (SELECT 'P' || i AS payment_id, 'F1' AS firm_id, 'settlement' AS kind,
                   'in' AS direction,
                   CASE WHEN i % {every} = 5 THEN '-1' ELSE '12.5' END AS amount_usd,
                   'USD' AS currency, 'amazon-us' AS counterparty_id,
                   '2024-04-01' AS occurred_at, NULL AS due_at, '2024-04-01' AS paid_at
            FROM range({n}) t(i) ORDER BY i)
          TO '{tmp_path / "in" / f"payments.{fmt}"}' {opts}"""
    )
    con.close()
    f = ingest(tmp_path / "in", store).files[0]
    bad = [i for i in range(n) if i % every == 5]
    assert (f.read, f.rejected) == (n, len(bad))
    first_line = 2 if fmt == "csv" else 1
    got = rows(store, "SELECT line, record_id, value FROM rejected ORDER BY line")
    assert got == [(i + first_line, f"P{i}", "-1") for i in bad]
