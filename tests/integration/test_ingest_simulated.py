"""The simulator's files pass the contract, and its Parquet and CSV forms store identically."""

from __future__ import annotations

from pathlib import Path

import pytest

from credit.ingest import ingest_dir
from credit.records import RECORD_TYPES

simulator = pytest.importorskip("credit.simulator")


@pytest.mark.slow
def test_simulated_parquet_and_csv_are_accepted_and_identical(tmp_path: Path) -> None:
    world = simulator.simulate(firms=20, start="2023-01", months=9, seed=7)
    world.write(tmp_path / "pq", fmt="parquet")
    world.write(tmp_path / "csv", fmt="csv")
    store = tmp_path / "s.duckdb"

    first = ingest_dir(tmp_path / "pq", store)
    assert first.ok, first.errors
    assert first.skipped == ["truth.parquet"]
    assert [f.record_type for f in first.files] == list(RECORD_TYPES)
    for f in first.files:
        assert f.read > 0 and f.rejected == 0, (f.file, f.top_reasons)
        assert f.accepted == f.read == world.record_counts()[f.record_type]

    # the same records as CSV text: every row already present, nothing added or rejected
    second = ingest_dir(tmp_path / "csv", store)
    assert second.ok, second.errors
    for f in second.files:
        assert (f.read, f.already_present, f.rejected) == (f.read, f.read, 0), (
            f.file,
            f.top_reasons,
        )
