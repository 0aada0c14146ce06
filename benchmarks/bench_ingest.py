"""Ingestion throughput: payment rows validated and stored per second, and peak memory.

Generates a payments file (and the firms it references) with DuckDB into a temporary
folder outside the repository, ingests the firms, then times the payments file through
the full pipeline (read, validate, reference and duplicate checks, store). A small share
of rows is deliberately invalid so the rejection path is exercised too.

    .venv/bin/python benchmarks/bench_ingest.py                 # 2,000,000 rows, CSV
    .venv/bin/python benchmarks/bench_ingest.py --rows 10000000 --format parquet

The issue's floor is 300,000 payment rows/s on the 2-core reference machine; the ratio
to that floor is printed.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb

FLOOR_ROWS_PER_S = 300_000
N_FIRMS = 5_000
BAD_EVERY = 1_000  # one row in BAD_EVERY has a negative amount


def generate(folder: Path, rows: int, fmt: str) -> tuple[Path, int]:
    """Write firms and payments files; return the payments path and the bad-row count."""
    con = duckdb.connect()
    con.execute(
        f"""COPY (SELECT 'F' || lpad(i::VARCHAR, 6, '0') AS firm_id,
                   DATE '2018-01-01' + (i % 1000)::INT AS registered_at,
                   'b2c' AS business_model, 'textiles_apparel' AS main_category,
                   'CN-GD' AS home_region
            FROM range({N_FIRMS}) t(i)) TO '{folder / "firms.csv"}' (HEADER)"""
    )
    kinds = "['settlement','fee','refund','supplier_payment']"
    dirs = "['in','out','out','out']"
    query = f"""
        SELECT 'P' || i AS payment_id,
               'F' || lpad((i % {N_FIRMS})::VARCHAR, 6, '0') AS firm_id,
               {kinds}[1 + i % 4] AS kind,
               {dirs}[1 + i % 4] AS direction,
               CASE WHEN i % {BAD_EVERY} = 7 THEN -1.0
                    ELSE round(10 + (i * 7919 % 100000) / 100.0, 2) END AS amount_usd,
               ['USD','EUR','CNY'][1 + i % 3] AS currency,
               'cp-' || (i % 977) AS counterparty_id,
               TIMESTAMP '2023-01-01' + to_seconds((i % 50000000)::BIGINT) AS occurred_at,
               CASE WHEN i % 5 = 0 THEN TIMESTAMP '2023-01-01'
                    + to_seconds((i % 50000000)::BIGINT + 2592000) END AS due_at,
               TIMESTAMP '2023-01-01' + to_seconds((i % 50000000)::BIGINT + 86400) AS paid_at
        FROM range({rows}) t(i)
    """
    out = folder / f"payments.{fmt}"
    opts = (
        "(FORMAT PARQUET)" if fmt == "parquet" else "(HEADER, TIMESTAMPFORMAT '%Y-%m-%dT%H:%M:%S')"
    )
    con.execute(f"COPY ({query}) TO '{out}' {opts}")
    bad = con.execute(
        f"SELECT count(*) FROM range({rows}) t(i) WHERE i % {BAD_EVERY} = 7"
    ).fetchall()[0][0]
    con.close()
    return out, int(bad)


def cpu_seconds() -> float:
    """CPU time of this process (all DuckDB threads included), user + system."""
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Python and DuckDB together), in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    from credit.ingest import ingest_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    parser.add_argument("--memory-limit", default="2GB", help="DuckDB memory limit")
    parser.add_argument(
        "--threads", type=int, default=None, help="DuckDB threads (default: one per core)"
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_ingest_") as tmp:
        root = Path(tmp)
        (root / "firms").mkdir()
        (root / "payments").mkdir()
        t = time.perf_counter()
        pay, bad = generate(root / "firms", args.rows, args.format)
        pay = pay.rename(root / "payments" / pay.name)
        size_mb = pay.stat().st_size / 2**20
        print(
            f"generated {args.rows:,} payment rows ({size_mb:,.0f} MiB {args.format}) "
            f"in {time.perf_counter() - t:.1f} s"
        )
        store = root / "records.duckdb"
        today = date(2026, 1, 1)
        first = ingest_dir(root / "firms", store, ingestion_date=today)
        first.raise_for_errors()
        rss_before = peak_rss_mb()
        cpu = cpu_seconds()
        load = os.getloadavg()[0]
        t = time.perf_counter()
        report = ingest_dir(
            root / "payments",
            store,
            ingestion_date=today,
            memory_limit=args.memory_limit,
            threads=args.threads,
        )
        seconds = time.perf_counter() - t
        cpu = cpu_seconds() - cpu
        report.raise_for_errors()
        f = report.files[0]
        rate = f.read / seconds
        print(
            f"payments: read {f.read:,}  accepted {f.accepted:,}  rejected {f.rejected:,}  "
            f"in {seconds:.2f} s"
        )
        print(
            f"throughput: {rate:,.0f} rows/s  (floor {FLOOR_ROWS_PER_S:,} rows/s, "
            f"ratio {rate / FLOOR_ROWS_PER_S:.2f}x)"
        )
        print(
            f"CPU time: {cpu:.2f} s ({cpu / f.read * 1e6:.2f} CPU-s per million rows); "
            f"load average at start {load:.1f} on {os.cpu_count()} cores"
        )
        print(
            f"peak RSS: {peak_rss_mb():,.0f} MiB (before payments: {rss_before:,.0f} MiB; "
            f"DuckDB memory limit {args.memory_limit})"
        )
        ok = f.read == args.rows and f.rejected == bad and f.accepted == args.rows - bad
        print(f"counts check: {'OK' if ok else 'FAILED'} (expected {bad:,} rejected)")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
