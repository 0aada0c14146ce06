"""The round trip: a simulated world written as its sellers' exports (every adapter format)
and ingested through the adapters gives the same features as the same world through the
contract files; amounts converted from other currencies come back within a cent.

"The same world" is the world as the exports carry it (:func:`credit.simulator.exports.
carried_world`): a field a format has no room for (a customs declaration's tax refund, a
parcel's destination type) takes the adapter's value in both."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from credit.adapters import FORMATS
from credit.adapters.ingest import ingest_export
from credit.ingest import ingest_dir
from credit.records import RECORD_TYPES
from credit.simulator import simulate
from credit.simulator.exports import carried_world, simulated_rates, write_exports
from credit.simulator.writer import contract_schema, write_tables
from features.pipeline import build, monthly_spine

pytestmark = pytest.mark.slow
EXPORTS = list(FORMATS)


@pytest.fixture(scope="module")
def world() -> dict[str, pd.DataFrame]:
    w = simulate(firms=80, start="2023-01", months=15, seed=11)
    return {**w.frames(), "_dates": pd.DataFrame({"d": [w.start, w.end]})}


def _frames(world: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    return {k: v for k, v in world.items() if k in RECORD_TYPES}


def _native_store(frames: dict[str, pd.DataFrame], tmp: Path) -> Path:
    tables = {
        n: pa.Table.from_pandas(frames[n][rt.columns], schema=contract_schema(n),
                                preserve_index=False)
        for n, rt in RECORD_TYPES.items()
    }  # fmt: skip
    write_tables(tables, tmp / "native", "parquet")
    store = tmp / "native.duckdb"
    report = ingest_dir(tmp / "native", store)
    assert report.ok and all(f.rejected == 0 for f in report.files), report.to_dict()
    return store


def _export_store(frames: dict[str, pd.DataFrame], tmp: Path, rates: object) -> tuple[Path, dict]:
    paths = write_exports(frames, tmp / "exports", EXPORTS, rates)  # type: ignore[arg-type]
    store = tmp / "exports.duckdb"
    report = ingest_dir(tmp / "exports", store)
    assert report.ok and all(f.rejected == 0 for f in report.files), report.to_dict()
    totals = {"files": 0, "read": 0, "mapped": 0, "rejected": 0, "skipped": 0, "records": 0}
    with paths["manifest"].open() as fh:
        for row in csv.DictReader(fh):
            r = ingest_export(
                paths["manifest"].parent / row["file"], row["format"], firm_id=row["firm_id"],
                fx=paths.get("fx"), store_path=store,
            )  # fmt: skip
            assert r.ok and r.reconciles, r.to_dict()
            assert r.rows["rejected"] == 0 and r.records["rejected"] == 0, r.to_dict()
            totals["files"] += 1
            totals["records"] += r.records["added"]
            for k in ("read", "mapped", "rejected", "skipped"):
                totals[k] += r.rows[k]
    return store, totals


def _features(store: Path) -> pd.DataFrame:
    spine = monthly_spine(store, "2023-04", "2024-03")
    return build(store, spine).sort_values(["firm_id", "as_of"]).reset_index(drop=True)


def test_features_through_the_adapters_equal_the_contract_files(
    world: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    frames = _frames(world)
    reference = _native_store(carried_world(frames, EXPORTS), tmp_path)
    through, totals = _export_store(frames, tmp_path, None)
    assert totals["files"] > 80 and totals["mapped"] > 1000, totals  # every format, many rows
    a, b = _features(reference), _features(through)
    assert len(a) == len(b) > 500
    assert (a[["firm_id", "as_of"]] == b[["firm_id", "as_of"]]).all().all()
    names = [c for c in a.columns if c not in ("firm_id", "as_of")]
    x, y = a[names].to_numpy(float), b[names].to_numpy(float)
    assert (np.isnan(x) == np.isnan(y)).all()
    diff = np.nanmax(np.abs(x - y))
    print(f"round trip, USD: {totals}; {x.size:,} feature values, max |diff| {diff:.3g}")
    assert diff <= 1e-9


def test_amounts_in_other_currencies_come_back_within_a_cent(
    world: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    frames = _frames(world)
    start, end = world["_dates"]["d"]
    rates = simulated_rates(start - pd.Timedelta(days=1), end)
    through, totals = _export_store(frames, tmp_path, rates)
    expected = carried_world(frames, EXPORTS)["payments"]
    import duckdb

    con = duckdb.connect(str(through), read_only=True)
    try:
        got = con.execute("SELECT * FROM payments").df()
    finally:
        con.close()
    key = ["firm_id", "kind", "counterparty_id", "occurred_at", "currency"]
    e = expected.sort_values([*key, "amount_usd"]).reset_index(drop=True)
    g = got.sort_values([*key, "amount_usd"]).reset_index(drop=True)
    assert len(e) == len(g)
    for c in key:
        assert (e[c].astype(str) == g[c].astype(str)).all(), c
    err = np.abs(e["amount_usd"].to_numpy() - g["amount_usd"].to_numpy())
    adapted = ~e["counterparty_id"].isin(frames["payments"]["counterparty_id"].unique())
    foreign = ((e["currency"] != "USD") & adapted).to_numpy()
    print(f"round trip, FX: {int(foreign.sum()):,} amounts converted, max |error| "
          f"${err[foreign].max():.4f}; {totals}")  # fmt: skip
    assert foreign.sum() > 100 and err.max() <= 0.01 + 1e-9
