"""The service database engine: JSON columns, SQLite checkpoints off the request path.

The direct statements (FastQuery, FastInsert) are tested in test_fastpath_dbapi.py."""

from __future__ import annotations

import math
import time
from pathlib import Path

import sqlalchemy as sa

from credit.db import BackgroundCheckpoint, json_dumps, make_engine


def test_json_columns_write_nan_as_null_and_numpy_values() -> None:
    import numpy as np

    assert json_dumps({"a": math.nan, "b": np.float64(1.5), "c": np.int64(2)}) == (
        '{"a":null,"b":1.5,"c":2}'
    )


def test_background_checkpoint_takes_checkpoints_off_the_writers(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    cp = BackgroundCheckpoint(engine, interval=0.05)
    try:
        with engine.begin() as conn:
            # the engine's own connections never checkpoint on commit
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
            conn.exec_driver_sql("CREATE TABLE t (x TEXT)")
        for i in range(300):  # ~300 commits: past 1,000 WAL pages would checkpoint by default
            with engine.begin() as conn:
                conn.execute(sa.text("INSERT INTO t VALUES (:x)"), {"x": "y" * 4000 + str(i)})
        deadline = time.monotonic() + 10
        while cp.checkpoints < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert cp.checkpoints >= 2
    finally:
        cp.stop()
    with engine.connect() as conn:
        busy, log_frames, done = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        assert busy == 0 and log_frames == done  # everything is in the database file
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 300
    engine.dispose()
