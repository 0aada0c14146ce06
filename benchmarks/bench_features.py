"""Benchmark of the feature pipeline (issue 4): batch speed and memory, scaling, online latency.

Run::

    .venv/bin/python benchmarks/bench_features.py                 # 20,000 firms x 36 months
    .venv/bin/python benchmarks/bench_features.py --firms 2000 --scales 1,2,4 --scale-base 1000

What it prints, all measured in this run:

* the main world (``--firms`` x ``--months``, simulated by ``credit.simulator``): events,
  spine rows (every loan application + month-end snapshots of every firm for the last 12
  months), seconds, spine rows/s and the peak memory (RSS) of the process that built them;
* the baseline: the independent pandas oracle (``tests/oracle_features.py``) on a random
  sample of the same spine (it is far too slow for all of it), as rows/s, and the engine's
  speed-up over it (the engine computes all catalog features, the oracle a subset);
* scaling: the same build at 1x, 2x, 4x ``--scale-base`` firms;
* the online path (``features.compute``) for the firm with the most records over two years:
  p50 and p99 latency.

Each build runs in a fresh child process so its peak memory is its own.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def make_store(firms: int, months: int, seed: int, path: Path) -> tuple[dict, int, float]:
    """Simulate a world and load it into a DuckDB record store at ``path``."""
    import duckdb

    from credit.simulator import simulate
    from tests.oracle_features import load_world

    t0 = time.perf_counter()
    world = dict(simulate(firms=firms, start="2023-01", months=months, seed=seed).frames())
    con = duckdb.connect(str(path))
    load_world(con, world)
    con.close()
    events = sum(len(df) for name, df in world.items() if name != "firms")
    return world, events, time.perf_counter() - t0


def spine_of(path: Path) -> pd.DataFrame:
    from features.pipeline import loan_spine, monthly_spine, store_horizon

    horizon = store_horizon(path)
    assert horizon is not None
    last = pd.Period(horizon - pd.Timedelta(days=1), freq="M")
    if not (horizon - pd.Timedelta(days=1)).is_month_end:
        last -= 1
    monthly = monthly_spine(path, str(last - 11), str(last))
    loans = loan_spine(path)[["firm_id", "as_of"]]
    return pd.concat([loans, monthly], ignore_index=True)


def _child(path: str, spine_file: str, q: mp.Queue) -> None:
    from features.pipeline import build

    spine = pd.read_parquet(spine_file)
    t0 = time.perf_counter()
    build(path, spine)
    secs = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    q.put((secs, usage.ru_maxrss / 1024 / 1024, cpu))


def timed_build(path: Path, spine: pd.DataFrame, tmp: Path) -> tuple[float, float, float]:
    """Seconds, peak RSS (GiB) and CPU seconds of ``features.build`` in a fresh process.

    CPU seconds include the child's imports (about a second); on a busy shared machine
    they say more about the cost than the wall-clock seconds do."""
    spine_file = tmp / f"spine_{path.stem}.parquet"
    spine.to_parquet(spine_file)
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()
    p = ctx.Process(target=_child, args=(str(path), str(spine_file), q))
    p.start()
    secs, peak_gb, cpu = q.get()
    p.join()
    return secs, peak_gb, cpu


def online_latency(world: dict, n: int = 200) -> tuple[float, float, int, float]:
    """p50 / p99 milliseconds of ``features.compute`` for the busiest firm over two years."""
    from features.pipeline import compute

    end = world["payments"]["occurred_at"].max()
    start = end - pd.Timedelta(days=730)
    counts = pd.concat(
        [
            world[k].loc[world[k][c] >= start, "firm_id"]
            for k, c in (("customs", "declared_at"), ("shipments", "shipped_at"),
                         ("payments", "occurred_at"))
        ]
    ).value_counts()  # fmt: skip
    firm = counts.index[0]
    recs = {}
    for k, c in (("customs", "declared_at"), ("shipments", "shipped_at"),
                 ("payments", "occurred_at"), ("loans", "applied_at")):  # fmt: skip
        df = world[k]
        recs[k] = df[(df["firm_id"] == firm) & (df[c] >= start)].to_dict("records")
    firm_row = world["firms"][world["firms"]["firm_id"] == firm].iloc[0].to_dict()
    as_of = end + pd.Timedelta(days=1)
    for _ in range(5):
        compute(recs, as_of, firm=firm_row)
    times = []
    c0 = time.process_time()
    for _ in range(n):
        t0 = time.perf_counter()
        compute(recs, as_of, firm=firm_row)
        times.append((time.perf_counter() - t0) * 1000)
    cpu_ms = (time.process_time() - c0) / n * 1000
    n_records = sum(len(v) for v in recs.values())
    return float(np.percentile(times, 50)), float(np.percentile(times, 99)), n_records, cpu_ms


def online_batch(world: dict, n: int = 100) -> tuple[float, int]:
    """Milliseconds per firm of ``features.compute_many`` on ``n`` firms' two-year
    histories in one call (the batch scoring endpoint's case)."""
    from features.pipeline import compute_many

    end = world["payments"]["occurred_at"].max()
    start = end - pd.Timedelta(days=730)
    cols = (("customs", "declared_at"), ("shipments", "shipped_at"),
            ("payments", "occurred_at"), ("loans", "applied_at"))  # fmt: skip
    recent = {k: world[k][world[k][c] >= start] for k, c in cols}
    grouped = {k: dict(tuple(df.groupby("firm_id"))) for k, df in recent.items()}
    firms = world["firms"].sample(min(n, len(world["firms"])), random_state=2)
    items = []
    for row in firms.to_dict("records"):
        recs = {
            k: grouped[k][row["firm_id"]].to_dict("records") if row["firm_id"] in grouped[k]
            else []
            for k in grouped
        }  # fmt: skip
        items.append((recs, end + pd.Timedelta(days=1), row))
    compute_many(items[:2])
    t0 = time.perf_counter()
    compute_many(items)
    return (time.perf_counter() - t0) * 1000 / len(items), len(items)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--firms", type=int, default=20000)
    ap.add_argument("--months", type=int, default=36)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--oracle-rows", type=int, default=300)
    ap.add_argument("--scales", default="1,2,4", help="multiples of --scale-base ('' to skip)")
    ap.add_argument("--scale-base", type=int, default=5000)
    ap.add_argument("--online-runs", type=int, default=200)
    args = ap.parse_args(argv)

    from tests.oracle_features import ORACLE_FEATURES, oracle

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        path = tmp / "main.duckdb"
        world, events, sim_s = make_store(args.firms, args.months, args.seed, path)
        spine = spine_of(path)
        print(f"world: {args.firms:,} firms x {args.months} months, {events:,} events "
              f"(simulated + loaded in {sim_s:.1f} s)")  # fmt: skip
        secs, peak, cpu = timed_build(path, spine, tmp)
        engine_rps = len(spine) / secs
        print(f"engine: {len(spine):,} spine rows (loans + 12 month-ends), all features: "
              f"{secs:.1f} s ({cpu:.1f} CPU-s), {engine_rps:,.0f} rows/s, "
              f"peak RSS {peak:.2f} GiB; load average {os.getloadavg()[0]:.1f}")  # fmt: skip

        sample = spine.sample(min(args.oracle_rows, len(spine)), random_state=1)
        t0 = time.perf_counter()
        oracle(world, sample.reset_index(drop=True))
        o_secs = time.perf_counter() - t0
        oracle_rps = len(sample) / o_secs
        print(f"baseline (pandas oracle, {len(ORACLE_FEATURES)} features, sample of "
              f"{len(sample)} rows): {o_secs:.1f} s, {oracle_rps:,.1f} rows/s; "
              f"engine speed-up {engine_rps / oracle_rps:,.0f}x")  # fmt: skip

        p50, p99, n_rec, cpu_ms = online_latency(world, args.online_runs)
        print(f"online compute (one firm, {n_rec} records over two years, {args.online_runs} "
              f"calls): p50 {p50:.1f} ms, p99 {p99:.1f} ms, {cpu_ms:.1f} CPU-ms/call")  # fmt: skip
        per_firm, n_items = online_batch(world)
        print(f"online compute_many ({n_items} firms' two-year histories in one call): "
              f"{per_firm:.1f} ms per firm")  # fmt: skip
        del world

        scales = [int(s) for s in args.scales.split(",") if s.strip()]
        for k in scales:
            n = args.scale_base * k
            p = tmp / f"scale{k}.duckdb"
            _, ev, _ = make_store(n, args.months, args.seed, p)
            sp = spine_of(p)
            s, pk, c = timed_build(p, sp, tmp)
            print(f"scaling {k}x: {n:,} firms, {ev:,} events, {len(sp):,} rows: {s:.1f} s "
                  f"({c:.1f} CPU-s, {len(sp) / s:,.0f} rows/s), peak RSS {pk:.2f} GiB")  # fmt: skip
            p.unlink()


if __name__ == "__main__":
    main()
