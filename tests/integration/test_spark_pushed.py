"""Records pushed over HTTP feed the batch build on both engines as ingested files do.

A simulated world's firms, customs, shipments and loans come as files; its payments are pushed
(``credit.ledger.Ledger.push``, what ``POST /v1/records`` calls), so they live in the service
database only. ``credit features build`` (DuckDB) copies them into the record store first;
``credit records export`` writes them beside the lake's files, where Spark reads them. The two
training sets agree feature by feature (the parity rule of ``test_spark_features.py``), and
both count the pushed payments.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

pytest.importorskip("pyspark", reason='PySpark is not installed: pip install "tradecredit[spark]"')

from credit.cli import app  # noqa: E402
from credit.db import get_engine, upgrade  # noqa: E402
from credit.ledger import Ledger  # noqa: E402
from credit.simulator import simulate  # noqa: E402
from features import spark as fs  # noqa: E402
from tests.consent_support import as_json  # noqa: E402
from tests.integration.test_spark_features import assert_same_features  # noqa: E402

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def test_pushed_payments_feed_duckdb_and_spark_alike(data_dir: Path, tmp_path: Path) -> None:
    w = simulate(firms=20, start="2024-01", months=12, seed=5, today=dt.date(2026, 1, 1))
    flat, lake = tmp_path / "flat", tmp_path / "lake"
    w.write(flat)
    payments = pd.read_parquet(flat / "payments.parquet")
    (flat / "payments.parquet").unlink()
    lake.mkdir()
    for f in flat.glob("*.parquet"):
        (lake / f.name).write_bytes(f.read_bytes())
    runner = CliRunner()
    done = runner.invoke(app, ["ingest", str(flat), "--source", "customs-data", "--json"])
    assert done.exit_code == 0, done.output
    upgrade(get_engine())
    ledger = Ledger(get_engine())
    records = as_json(payments, "payments")
    for i in range(0, len(records), 4000):
        out = ledger.push("acme-market", None, {"payments": records[i : i + 4000]}, body_sha256="t")
        assert out.counts["payments"].rejected == 0
    # DuckDB: the build copies the pushed payments into the record store
    built = runner.invoke(app, ["features", "build", "--spine", "loans", "--out",
                                str(tmp_path / "duck.parquet")])  # fmt: skip
    assert built.exit_code == 0, built.output
    assert f"copied {len(records):,} pushed record(s)" in built.output
    duck = pd.read_parquet(tmp_path / "duck.parquet")
    # Spark: the exported files sit beside the lake's, and are read with them
    exported = runner.invoke(app, ["records", "export", str(lake)])
    assert exported.exit_code == 0 and "payments_pushed.parquet" in exported.output
    assert (
        json.dumps(sorted(p.name for p in lake.glob("payments*"))) == '["payments_pushed.parquet"]'
    )
    spark = fs.session("local[2]", app_name="tradecredit-test-pushed")
    try:
        fs.register(fs.read_records(spark, lake))
        spk = fs.training_set(spark).toPandas()
    finally:
        spark.stop()
    duck = duck.sort_values("loan_id").reset_index(drop=True)
    spk = spk.sort_values("loan_id").reset_index(drop=True)[list(duck.columns)]
    assert_same_features(duck, spk, ["loan_id", "firm_id"])
    inflow = [c for c in duck.columns if c.startswith("inflow_")]
    assert inflow and duck[inflow].fillna(0).to_numpy().sum() > 0  # the pushed payments count
