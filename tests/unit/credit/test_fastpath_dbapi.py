"""credit.fastpath.dbapi: the direct statements give what SQLAlchemy gives. FastQuery returns
``Connection.execute``'s values, FastInsert stores ``Table.insert()``'s rows, on SQLite and
on PostgreSQL, and failures raise SQLAlchemy's errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import OperationalError

from credit.db import make_engine
from credit.fastpath.dbapi import FastInsert, FastQuery, fast_query

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _table(meta: sa.MetaData) -> sa.Table:
    return sa.Table(
        "t",
        meta,
        sa.Column("id", sa.String(8), primary_key=True),
        sa.Column("k", sa.String(8)),
        sa.Column("at", sa.DateTime(timezone=True)),
        sa.Column("day", sa.DateTime()),  # naive, as the online store's as_of
        sa.Column("doc", JSON),
        sa.Column("flag", sa.Boolean),
        sa.Column("x", sa.Float),
        sa.Column("n", sa.Integer),
    )


AT = dt.datetime(2025, 6, 30, 12, 34, 56, 789000, tzinfo=dt.UTC)
ROW = {"at": AT, "doc": {"a": [1, 2.5, None], "b": "é"}, "flag": True, "x": 0.1, "n": 3}


def _query_both_ways_and_compare(url: str) -> None:
    engine = make_engine(url)
    meta = sa.MetaData()
    t = _table(meta)
    meta.create_all(engine)
    day = dt.datetime(2025, 1, 1)
    with engine.begin() as conn:
        conn.execute(
            t.insert(),
            [
                {"id": f"r{i}", "k": k, "day": day + dt.timedelta(days=i, microseconds=i), **ROW}
                for i, k in enumerate(["a", "a", "a", "b"])
            ],
        )
        conn.execute(t.insert(), [{"id": "empty", "k": "c"}])  # NULLs in every typed column
    cols = (t.c.id, t.c.at, t.c.day, t.c.doc, t.c.flag, t.c.x, t.c.n, t.c.doc.is_(None).label("no"))
    latest = sa.select(*cols).where(t.c.k == sa.bindparam("k")).order_by(t.c.day.desc()).limit(1)
    latest_at = latest.where(t.c.day <= sa.bindparam("day"))  # a timestamp parameter
    cases = [(latest, {"k": k}) for k in ("a", "b", "c", "zz")] + [
        (latest_at, {"k": "a", "day": when})
        for when in (day, day + dt.timedelta(days=1), day + dt.timedelta(days=1, microseconds=1))
    ]
    cases.append((latest_at, {"k": "a", "day": day - dt.timedelta(microseconds=1)}))  # none
    for stmt, params in cases:
        with engine.connect() as conn:
            expected = conn.execute(stmt, params).first()
        got = FastQuery(engine, stmt).first(params)
        assert got == (tuple(expected) if expected is not None else None), params
        if got is not None:  # the same types, not only equal values (datetime, bool, dict)
            assert [type(v) for v in got] == [type(v) for v in expected]  # type: ignore[union-attr]
    engine.dispose()


def test_fast_query_reads_what_sqlalchemy_reads_on_sqlite(tmp_path: Path) -> None:
    _query_both_ways_and_compare(f"sqlite:///{tmp_path / 's.db'}")


@pytest.mark.postgres
def test_fast_query_reads_what_sqlalchemy_reads_on_postgresql() -> None:
    from tests.api_support import fresh_pg_database

    with fresh_pg_database("tc_fastquery") as (url, _, _):
        _query_both_ways_and_compare(url)


def test_fast_query_raises_sqlalchemys_errors(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    meta = sa.MetaData()
    t = sa.Table("t", meta, sa.Column("k", sa.String), sa.Column("v", sa.Float))
    meta.create_all(engine)
    stmt = sa.select(t.c.k, t.c.v).where(t.c.k == sa.bindparam("k"))
    q = FastQuery(engine, stmt)
    assert q.first({"k": "a"}) is None
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE t")
    with pytest.raises(OperationalError):  # SQLAlchemy's error, as callers expect
        q.first({"k": "a"})
    engine.dispose()
    broken = make_engine(f"sqlite:///{tmp_path}")  # a directory: cannot be opened
    with pytest.raises(OperationalError):
        FastQuery(broken, stmt).first({"k": "a"})


def test_fast_query_is_rendered_once_per_engine_and_name(tmp_path: Path) -> None:
    one, two = (make_engine(f"sqlite:///{tmp_path / n}") for n in ("1.db", "2.db"))
    stmt = sa.select(sa.literal(1))
    assert fast_query(one, "q", stmt) is fast_query(one, "q", stmt)
    assert fast_query(two, "q", stmt) is not fast_query(one, "q", stmt)
    assert fast_query(one, "q", stmt).first({}) == (1,)


def _insert_both_ways_and_compare(url: str) -> None:
    engine = make_engine(url)
    meta = sa.MetaData()
    t = _table(meta)
    meta.create_all(engine)
    row = {**ROW, "day": dt.datetime(2025, 1, 1, 0, 0, 0, 1)}
    with engine.begin() as conn:
        conn.execute(t.insert(), [{"id": "sa", **row}])
        conn.execute(t.insert(), [{"id": "sa2", "n": 4}])
    FastInsert(engine, t).insert([{"id": "fast1", **row}, {"id": "fast2", "n": 4}])
    with engine.connect() as conn:
        got = {r.id: r._asdict() for r in conn.execute(sa.select(t))}

    def without_id(r: dict) -> dict:
        return {k: v for k, v in r.items() if k != "id"}

    assert without_id(got["fast1"]) == without_id(got["sa"])
    assert without_id(got["fast2"]) == without_id(got["sa2"])  # absent columns: NULL
    assert got["fast2"]["n"] == 4 and got["fast2"]["doc"] is None and got["fast2"]["at"] is None
    engine.dispose()


def test_fast_insert_stores_what_sqlalchemy_stores_on_sqlite(tmp_path: Path) -> None:
    _insert_both_ways_and_compare(f"sqlite:///{tmp_path / 's.db'}")


@pytest.mark.postgres
def test_fast_insert_stores_what_sqlalchemy_stores_on_postgresql() -> None:
    from tests.api_support import fresh_pg_database

    with fresh_pg_database("tc_fastinsert") as (url, _, _):
        _insert_both_ways_and_compare(url)


def test_fast_insert_commits_nothing_unless_every_row_went_in(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    meta = sa.MetaData()
    t = _table(meta)
    meta.create_all(engine)
    ins = FastInsert(engine, t)
    ins.insert([{"id": "a"}])
    with pytest.raises(OperationalError):  # any driver error comes out as OperationalError
        ins.insert([{"id": "b"}, {"id": "a"}])  # the second row's key is taken
    with engine.connect() as conn:
        assert [r.id for r in conn.execute(sa.select(t.c.id).order_by(t.c.id))] == ["a"]
    engine.dispose()
