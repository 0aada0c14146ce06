"""DuckDB (embedded) vs Spark ``local[N]`` on the same feature job at 1x, 4x, 16x a world.

Run::

    .venv/bin/python benchmarks/bench_spark.py                      # 500 firms x 24 months
    .venv/bin/python benchmarks/bench_spark.py --firms 250 --scales 1,4 --spine monthly

For each scale the simulator (``credit.simulator``) writes a world of ``--firms * scale`` firms
as Parquet record files; then each engine runs the *same job*: read the Parquet records, build
the features of the spine (``loans``: one row per loan application, the training set;
``monthly``: every firm at the last 12 month-ends), write a Parquet feature table.

* DuckDB: :func:`features.pipeline.build` on an in-memory DuckDB whose record tables are views
  over the Parquet files (``threads`` = the machine's cores);
* Spark: :func:`features.spark.build_to_parquet` on one ``local[N]`` session. The session
  start and a first (cold JVM) run at 1x are reported apart; the table shows warm runs.

Every figure printed is measured in this run: wall-clock seconds, spine rows per second, and
the 1-minute load average at the end of each run (the machine may be shared). The two
engines' outputs are compared (rows and the largest relative feature difference).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def simulate_world(firms: int, months: int, out: Path) -> dict[str, int]:
    from credit.simulator import simulate

    start = (pd.Timestamp("2025-12-01") - pd.DateOffset(months=months)).strftime("%Y-%m")
    w = simulate(firms=firms, start=start, months=months, seed=7, today=dt.date(2026, 1, 1))
    w.write(out)
    return w.record_counts()


def duckdb_job(records: Path, out: Path, spine: str) -> tuple[float, int]:
    import duckdb

    from features import pipeline

    t0 = time.perf_counter()
    con = duckdb.connect()
    for name in ("firms", "customs", "shipments", "payments", "loans"):
        con.execute(
            f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{records / (name + '.parquet')}')"
        )
    if spine == "loans":
        df = pipeline.training_set(con)
    else:
        df = pipeline.build(con, pipeline.monthly_spine(con), with_market=True)
    df.to_parquet(out, index=False)
    con.close()
    return time.perf_counter() - t0, len(df)


def spark_job(spark, records: Path, out: Path, spine: str) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    from features.spark import build_to_parquet

    res = build_to_parquet(records, out, spine=spine, spark=spark)
    return res.seconds, res.rows


def compare(duck: Path, spk: Path, keys: list[str]) -> str:
    from features.catalog import feature_names

    a = pd.read_parquet(duck).sort_values(keys, ignore_index=True)
    b = pd.read_parquet(spk).sort_values(keys, ignore_index=True)
    if len(a) != len(b):
        return f"ROWS DIFFER ({len(a)} vs {len(b)})"
    worst, nulls = 0.0, 0
    for f in feature_names():
        x, y = a[f].to_numpy(float), b[f].to_numpy(float)
        nulls += int((np.isnan(x) != np.isnan(y)).sum())
        ok = ~np.isnan(x) & ~np.isnan(y)
        if ok.any():
            rel = np.abs(x[ok] - y[ok]) / np.maximum(1.0, np.abs(x[ok]))
            worst = max(worst, float(rel.max()))
    return f"max rel diff {worst:.1e}, null mismatches {nulls}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--firms", type=int, default=500, help="firms at 1x")
    ap.add_argument("--months", type=int, default=24)
    ap.add_argument("--scales", default="1,4,16")
    ap.add_argument("--spine", choices=("loans", "monthly"), default="loans")
    ap.add_argument("--master", default="local[2]")
    args = ap.parse_args()
    scales = [int(s) for s in args.scales.split(",")]

    from features.spark import session

    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"job: read Parquet records -> {args.spine} spine features -> write Parquet")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        t0 = time.perf_counter()
        spark = session(args.master, app_name="tradecredit-bench")
        print(
            f"spark {spark.version} {args.master}: session start {time.perf_counter() - t0:.1f} s"
        )
        for i, s in enumerate(scales):
            rec = t / f"x{s}"
            t0 = time.perf_counter()
            counts = simulate_world(args.firms * s, args.months, rec)
            n_rec = sum(v for k, v in counts.items() if k != "firms")
            print(
                f"{s}x: {args.firms * s} firms, {n_rec:,} records "
                f"(simulated in {time.perf_counter() - t0:.1f} s)",
                flush=True,
            )
            if i == 0:
                cold, _ = spark_job(spark, rec, t / "cold", args.spine)
                print(f"  spark cold run (first in this JVM): {cold:.1f} s", flush=True)
            d_sec, d_rows = duckdb_job(rec, t / f"duck{s}.parquet", args.spine)
            d_load = os.getloadavg()[0]
            print(f"  duckdb {d_sec:.1f} s ({d_rows} rows, load {d_load:.1f})", flush=True)
            s_sec, s_rows = spark_job(spark, rec, t / f"spark{s}", args.spine)
            s_load = os.getloadavg()[0]
            print(f"  spark  {s_sec:.1f} s ({s_rows} rows, load {s_load:.1f})", flush=True)
            keys = ["loan_id"] if args.spine == "loans" else ["firm_id", "as_of"]
            parity = compare(t / f"duck{s}.parquet", t / f"spark{s}", keys)
            print(f"  parity: {parity}", flush=True)
            rows.append((s, args.firms * s, n_rec, d_rows, d_sec, s_sec, d_load, s_load, parity))
        spark.stop()

    print()
    print("| scale | firms | records | spine rows | DuckDB s | Spark local s | Spark/DuckDB "
          "| DuckDB rows/s | Spark rows/s | load (D/S) | parity |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for s, f, n, r, d, sp, dl, sl, p in rows:
        print(
            f"| {s}x | {f:,} | {n:,} | {r:,} | {d:.1f} | {sp:.1f} | {sp / d:.1f}x "
            f"| {r / d:,.0f} | {r / sp:,.0f} | {dl:.0f}/{sl:.0f} | {p} |"
        )


if __name__ == "__main__":
    main()
