"""Parity: the catalog on Spark ``local[2]`` gives the embedded engine's features.

One simulated world (in memory, written as Parquet under tmp_path) is ingested into a DuckDB
record store for the embedded engine; Spark reads the same records from Parquet files laid
out as a lake would hold them (payments partitioned by month, shipments in several files).
For every (firm, as_of) row and every feature: floats within 1e-9 (relative to the value,
absolute below 1), nulls identical.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("pyspark", reason='PySpark is not installed: pip install "tradecredit[spark]"')

from credit.ingest import ingest_dir  # noqa: E402
from credit.simulator import simulate  # noqa: E402
from features import pipeline  # noqa: E402
from features import spark as fs  # noqa: E402
from features.catalog import feature_names  # noqa: E402
from features.pit import Lags  # noqa: E402

pytestmark = [pytest.mark.spark, pytest.mark.slow]

TOL = 1e-9


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{'flat': simulated files, 'lake': the same records partitioned, 'store': DuckDB}."""
    root = tmp_path_factory.mktemp("spark-world")
    w = simulate(firms=40, start="2024-01", months=12, seed=11, today=dt.date(2026, 1, 1))
    w.write(root / "flat")
    lake = root / "lake"
    lake.mkdir()
    for name in ("firms", "customs", "loans"):
        (lake / f"{name}.parquet").write_bytes((root / "flat" / f"{name}.parquet").read_bytes())
    # shipments in two files named as `credit ingest` accepts them
    ships = pq.read_table(root / "flat" / "shipments.parquet")
    half = ships.num_rows // 2
    pq.write_table(ships.slice(0, half), lake / "shipments_part-1.parquet")
    pq.write_table(ships.slice(half), lake / "shipments_part-2.parquet")
    # payments partitioned by month, with the partition column Spark discovers (and drops)
    pays = pq.read_table(root / "flat" / "payments.parquet")
    months = pd.Series(pays.column("occurred_at").to_pandas()).dt.strftime("%Y-%m").to_numpy()
    for month in sorted(set(months)):
        part = lake / "payments" / f"month={month}"
        part.mkdir(parents=True)
        pq.write_table(pays.filter(pa.array(months == month)), part / "part-0.parquet")
    store = root / "records.duckdb"
    ingest_dir(root / "flat", store).raise_for_errors()
    return {"flat": root / "flat", "lake": lake, "store": store}


@pytest.fixture(scope="module")
def spark(world):  # type: ignore[no-untyped-def]
    s = fs.session("local[2]", app_name="tradecredit-test-features")
    fs.register(fs.read_records(s, world["lake"]))
    yield s
    s.stop()


def assert_same_features(duck: pd.DataFrame, spk: pd.DataFrame, keys: list[str]) -> None:
    """Same rows in the same order, every feature equal within TOL, nulls identical."""
    assert len(duck) == len(spk) > 0
    assert list(spk.columns) == list(duck.columns)
    for k in keys:
        assert spk[k].astype(str).tolist() == duck[k].astype(str).tolist(), k
    problems = []
    for f in feature_names():
        a = duck[f].to_numpy(dtype=float)
        b = spk[f].to_numpy(dtype=float)
        na, nb = np.isnan(a), np.isnan(b)
        if (na != nb).any():
            problems.append(f"{f}: null in {int((na != nb).sum())} rows on one engine only")
            continue
        diff = np.abs(a[~na] - b[~na])
        off = diff > TOL * np.maximum(1.0, np.abs(a[~na]))
        if off.any():
            problems.append(f"{f}: {int(off.sum())} rows differ (max {diff.max():.3g})")
    assert not problems, "\n".join(problems)
    # the comparison is not between empty columns
    informative = [f for f in feature_names() if duck[f].notna().any() and duck[f].nunique() > 1]
    assert len(informative) > 0.8 * len(feature_names())


def test_training_set_matches_duckdb(spark, world) -> None:
    duck = pipeline.training_set(world["store"])
    spk = fs.training_set(spark).toPandas()
    assert_same_features(duck, spk, ["loan_id", "firm_id", "as_of", "main_market", "product"])


def test_cli_monthly_snapshots_match_duckdb_with_other_lags(spark, world, tmp_path) -> None:
    """``credit features build --engine spark``: every firm x 12 month-ends, non-default lags."""
    from typer.testing import CliRunner

    from credit.cli import app

    out = tmp_path / "monthly"
    res = CliRunner().invoke(
        app,
        [
            "features", "build", "--engine", "spark", "--records", str(world["lake"]),
            "--spine", "monthly", "--lag", "customs=7", "--lag", "payments=0",
            "--out", str(out),
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    lags = Lags(customs=7, payments=0)
    duck = pipeline.build(
        world["store"], pipeline.monthly_spine(world["store"]), lags=lags, with_market=True
    )
    spk = pd.read_parquet(out)
    assert f"wrote {out} (Parquet folder): {len(duck):,} rows" in res.output
    assert (out / "_tradecredit.json").is_file()
    assert_same_features(duck, spk, ["firm_id", "as_of", "main_market"])
    assert spk["as_of"].nunique() == 12


def test_missing_required_column_is_named(spark, tmp_path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    pd.DataFrame({"firm_id": ["F1"], "business_model": ["b2c"]}).to_parquet(bad / "firms.parquet")
    with pytest.raises(ValueError, match="firms records .* lack required column.*registered_at"):
        fs.read_records(spark, bad)
