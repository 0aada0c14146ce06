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


def _insert_both_ways_and_compare(url: str) -> None:
    import datetime as dt

    from sqlalchemy.dialects import postgresql

    from credit.db import FastInsert

    engine = make_engine(url)
    meta = sa.MetaData()
    json_type = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    t = sa.Table(
        "t",
        meta,
        sa.Column("id", sa.String(8), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True)),
        sa.Column("doc", json_type),
        sa.Column("flag", sa.Boolean),
        sa.Column("x", sa.Float),
        sa.Column("n", sa.Integer),
    )
    meta.create_all(engine)
    at = dt.datetime(2025, 6, 30, 12, 34, 56, 789000, tzinfo=dt.UTC)
    row = {"at": at, "doc": {"a": [1, 2.5, None], "b": "é"}, "flag": True, "x": 0.1, "n": 3}
    with engine.begin() as conn:
        conn.execute(t.insert(), [{"id": "sa", **row}])
    FastInsert(engine, t).insert([{"id": "fast1", **row}, {"id": "fast2", "n": 4}])
    with engine.connect() as conn:
        got = {r.id: r._asdict() for r in conn.execute(sa.select(t))}
    assert {k: v for k, v in got["fast1"].items() if k != "id"} == {
        k: v for k, v in got["sa"].items() if k != "id"
    }
    assert got["fast2"]["n"] == 4 and got["fast2"]["doc"] is None and got["fast2"]["at"] is None
    engine.dispose()


def test_fast_insert_stores_what_sqlalchemy_stores_on_sqlite(tmp_path: Path) -> None:
    _insert_both_ways_and_compare(f"sqlite:///{tmp_path / 's.db'}")


def test_fast_insert_stores_what_sqlalchemy_stores_on_postgresql() -> None:
    from tests.api_support import fresh_pg_database

    with fresh_pg_database("tc_fastinsert") as (url, _, _):
        _insert_both_ways_and_compare(url)
