"""The online path runs the feature query on SQLite: the rewrite keeps DuckDB's semantics.

Timestamps live in SQLite as integer microseconds; these checks evaluate the rewritten
temporal expressions on both engines for awkward values (before 1970, sub-second, exactly
midnight, across midnight) and compare."""

from __future__ import annotations

import sqlite3

import duckdb
import pandas as pd
import pytest
import sqlglot

from features.pipeline import _Median, _micros
from features.sql import SQLITE_MEDIAN, _sqlite_temporal

STAMPS = [
    "1969-12-31 23:59:59.999999",
    "1969-12-31 00:00:00",
    "1970-01-01 00:00:00",
    "2024-02-28 23:59:59.5",
    "2024-02-29 00:00:00",
    "2024-02-29 00:00:00.000001",
    "2025-06-05 04:00:00",
    "2025-06-08 03:59:59.999999",
]

EXPRESSIONS = [
    "date_diff('day', CAST(a AS DATE), CAST(b AS DATE))",
    "date_diff('second', a, b)",
    "date_diff('second', a, b) / 86400.0",
    "CASE WHEN a + INTERVAL '3' DAY < b THEN 1 ELSE 0 END",
    "CASE WHEN a >= b - INTERVAL '365' DAY THEN 1 ELSE 0 END",
]


def _sqlite(expr: str) -> str:
    tree = sqlglot.parse_one(f"SELECT {expr} FROM t", read="duckdb").transform(_sqlite_temporal)
    return tree.sql(dialect="sqlite")


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_temporal_rewrite_agrees_with_duckdb(expr: str) -> None:
    pairs = [(a, b) for a in STAMPS for b in STAMPS]
    duck = duckdb.connect()
    duck.execute("CREATE TABLE t (i INTEGER, a TIMESTAMP, b TIMESTAMP)")
    duck.executemany(
        "INSERT INTO t VALUES (?, ?, ?)", [(i, a, b) for i, (a, b) in enumerate(pairs)]
    )
    expected = duck.execute(f"SELECT {expr} FROM t ORDER BY i").fetchall()
    lite = sqlite3.connect(":memory:")
    lite.execute("CREATE TABLE t (i INTEGER, a INTEGER, b INTEGER)")
    lite.executemany(
        "INSERT INTO t VALUES (?, ?, ?)",
        [(i, _micros(pd.Timestamp(a)), _micros(pd.Timestamp(b))) for i, (a, b) in enumerate(pairs)],
    )
    got = lite.execute(_sqlite(expr) + " ORDER BY i").fetchall()
    mismatches = [
        (p, e[0], g[0]) for p, e, g in zip(pairs, expected, got, strict=True) if e[0] != g[0]
    ]
    assert not mismatches, mismatches[:5]


@pytest.mark.parametrize("values", [[3, 1, 2], [4, 1, 3, 2], [None, 5], [None], [2.5, -1.0]])
def test_median_aggregate_is_duckdbs(values: list) -> None:
    duck = duckdb.connect()
    expected = duck.execute(
        "SELECT median(v) FROM (SELECT unnest(?::DOUBLE[]) AS v)", [values]
    ).fetchone()[0]
    lite = sqlite3.connect(":memory:")
    lite.create_aggregate(SQLITE_MEDIAN, 1, _Median)  # type: ignore[arg-type]
    lite.execute("CREATE TABLE t (v REAL)")
    lite.executemany("INSERT INTO t VALUES (?)", [(v,) for v in values])
    assert lite.execute(f"SELECT {SQLITE_MEDIAN}(v) FROM t").fetchone()[0] == expected


def test_unsupported_temporal_forms_fail_loudly() -> None:
    with pytest.raises(ValueError, match="interval unit"):
        _sqlite("a + INTERVAL '1' MONTH")
    with pytest.raises(ValueError, match="date_diff unit"):
        _sqlite("date_diff('month', a, b)")


def test_timestamps_convert_like_the_store() -> None:
    aware = "2025-06-01T23:00:00-02:00"
    assert _micros(aware) == _micros(pd.Timestamp("2025-06-02 01:00"))
    assert _micros("2025-06-02T01:00:00Z") == _micros(pd.Timestamp("2025-06-02 01:00"))
    assert _micros(pd.Timestamp("1970-01-01 00:00:00.000001")) == 1
    assert _micros(pd.Timestamp("1969-12-31 23:59:59.999999")) == -1
    with pytest.raises(TypeError):
        _micros(3.5)
