"""`credit ingest` accepts everything `credit simulate` writes: zero rejections."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from credit.cli import app
from credit.ingest import ingest_dir
from credit.records import RECORD_TYPES

runner = CliRunner()


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_ingest_accepts_every_simulated_record(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "sim"
    sim = runner.invoke(
        app,
        ["simulate", "--firms", "120", "--start", "2024-06", "--months", "14", "--seed", "4",
         "--out", str(out), "--format", fmt],
    )  # fmt: skip
    assert sim.exit_code == 0, sim.output
    result = runner.invoke(app, ["ingest", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"], report
    counts = report["record_types"]
    assert list(counts) == list(RECORD_TYPES)
    for name, c in counts.items():
        assert c["read"] > 0, name
        assert c["rejected"] == 0, (name, c["top_reasons"])
        assert c["accepted"] == c["read"], name


def test_reingesting_adds_nothing(tmp_path: Path) -> None:
    from credit.simulator import simulate

    simulate(firms=30, start="2023-03", months=10, seed=9).write(tmp_path / "w")
    store = tmp_path / "store.duckdb"
    first = ingest_dir(tmp_path / "w", store)
    again = ingest_dir(tmp_path / "w", store)
    assert first.ok and again.ok
    assert all(f.rejected == 0 for f in first.files)
    assert all(f.added == 0 and f.already_present == f.read for f in again.files)
