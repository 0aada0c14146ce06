"""The service database engine: JSON columns, SQLite checkpoints off the request path."""

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


def test_fast_query_reads_what_sqlalchemy_reads_and_raises_its_errors(tmp_path: Path) -> None:
    import pytest
    from sqlalchemy.exc import OperationalError

    from credit.db import FastQuery

    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    meta = sa.MetaData()
    t = sa.Table("t", meta, sa.Column("k", sa.String), sa.Column("v", sa.Float))
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(t.insert(), [{"k": "a", "v": 1.5}, {"k": "a", "v": 2.5}, {"k": "b", "v": 3}])
    stmt = sa.select(t.c.k, t.c.v).where(t.c.k == sa.bindparam("k")).order_by(t.c.v).limit(1)
    q = FastQuery(engine, stmt)
    for k in ("a", "b", "zz"):
        with engine.connect() as conn:
            expected = conn.execute(stmt, {"k": k}).first()
        got = q.first({"k": k})
        assert got == (tuple(expected) if expected is not None else None)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE t")
    with pytest.raises(OperationalError):  # SQLAlchemy's error, as callers expect
        q.first({"k": "a"})
    engine.dispose()
    broken = make_engine(f"sqlite:///{tmp_path}")  # a directory: cannot be opened
    with pytest.raises(OperationalError):
        FastQuery(broken, stmt).first({"k": "a"})
