"""Batch and online feature computation: one generated query, two ways to feed it.

* :func:`build` runs the catalog's query (:func:`features.sql.feature_sql`) on a record
  store for a spine of ``(firm_id, as_of)`` rows.
* :func:`compute` is the online path: the records of one firm, passed in memory, are
  exposed to an in-memory DuckDB under the same table names and the *same* query runs on
  a one-row spine. There is no second implementation of any feature.

Spines: :func:`loan_spine` (one row per loan application, as of ``applied_at``, with its
outcome), :func:`monthly_spine` (month-end snapshots of every registered firm),
:func:`latest_spine` (every firm at one moment, for the online store).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from credit.records import RECORD_TYPES, RecordType
from features.catalog import feature_names
from features.pit import Lags
from features.sql import SPINE_TABLE, SQLITE_MEDIAN, feature_sql

Store = duckdb.DuckDBPyConnection | str | Path

#: Non-feature columns of the training set, in order (the models rely on them).
TRAINING_COLUMNS = [
    "loan_id",
    "firm_id",
    "as_of",
    "product",
    "amount_usd",
    "disbursed_at",
    "defaulted",
    "default_at",
    "business_model",
    "main_category",
    "main_market",
]


def _naive_utc(values: Any) -> pd.Series:
    """Timestamps as naive UTC microseconds (the store's representation)."""
    s = pd.Series(values)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    elif not pd.api.types.is_datetime64_any_dtype(s.dtype):
        s = pd.to_datetime(s, utc=True, format="ISO8601").dt.tz_localize(None)
    return s.astype("datetime64[us]")


def _as_timestamp(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    if ts is pd.NaT:
        raise ValueError("as_of must be a date or timestamp, got an empty value")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


def _connect(store: Store) -> tuple[duckdb.DuckDBPyConnection, bool]:
    if isinstance(store, duckdb.DuckDBPyConnection):
        return store, False
    path = Path(store)
    if not path.exists():
        raise FileNotFoundError(
            f"record store {path} does not exist; ingest records first (credit ingest) "
            "or pass --store"
        )
    return duckdb.connect(str(path), read_only=True), True


def _ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Missing record tables act as empty ones (temporary, nothing is written)."""
    present = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    present |= {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
    for name, rt in RECORD_TYPES.items():
        if name not in present:
            con.execute(rt.create_table_sql().replace("CREATE TABLE", "CREATE TEMP TABLE"))


def _validate_spine(spine: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(spine, pd.DataFrame):
        raise TypeError("spine must be a pandas DataFrame with columns firm_id and as_of")
    missing = [c for c in ("firm_id", "as_of") if c not in spine.columns]
    if missing:
        raise ValueError(f"spine lacks column(s) {', '.join(missing)}; it needs firm_id, as_of")
    if spine["firm_id"].isna().any():
        raise ValueError("spine has rows without firm_id")
    as_of = _naive_utc(spine["as_of"].to_numpy() if len(spine) else spine["as_of"])
    if as_of.isna().any():
        raise ValueError("spine has rows without as_of")
    return pd.DataFrame(
        {
            "row_id": np.arange(len(spine), dtype=np.int64),
            "firm_id": spine["firm_id"].astype(str).to_numpy(),
            "as_of": as_of.to_numpy(),
        }
    )


def _run(con: duckdb.DuckDBPyConnection, sp: pd.DataFrame, lags: Lags | None) -> pd.DataFrame:
    con.register(SPINE_TABLE, sp)
    try:
        return con.execute(feature_sql(lags)).df()
    finally:
        con.unregister(SPINE_TABLE)


def build(
    store: Store,
    spine: pd.DataFrame,
    lags: Lags | None = None,
    with_market: bool = False,
) -> pd.DataFrame:
    """Features of every spine row, as of that row's ``as_of``.

    Parameters
    ----------
    store : a DuckDB connection or the path of a record store (opened read-only).
    spine : DataFrame with ``firm_id`` and ``as_of`` (dates or timestamps; tz-aware values
        are converted to UTC); other columns are passed through.
    lags : availability lags per record type (default :class:`features.pit.Lags`).
    with_market : also return ``main_market`` (largest export region over 365 days).

    Returns
    -------
    pandas.DataFrame
        The spine's columns (same order and rows) followed by every catalog feature in
        catalog order (float64; NaN where the catalog says so).
    """
    sp = _validate_spine(spine)
    con, close = _connect(store)
    try:
        _ensure_tables(con)
        res = _run(con, sp, lags)
    finally:
        if close:
            con.close()
    out = spine.reset_index(drop=True).copy()
    feats = res[feature_names()].astype("float64").reset_index(drop=True)
    cols = {n: feats[n].to_numpy() for n in feats.columns}
    if with_market:
        cols["main_market"] = res["main_market"].to_numpy()
    return pd.concat([out, pd.DataFrame(cols, index=out.index)], axis=1)


# --- online path -------------------------------------------------------------------------

_local = threading.local()

#: SQLite column type of each contract dtype (timestamps as integer microseconds, UTC)
_SQLITE_TYPES = {"string": "TEXT", "timestamp": "INTEGER", "float": "REAL", "int": "INTEGER",
                 "bool": "INTEGER"}  # fmt: skip


class _Median:
    """DuckDB's ``median`` (the interpolated middle value) as a SQLite aggregate."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def step(self, value: float | None) -> None:
        if value is not None:
            self.values.append(value)

    def finalize(self) -> float | None:
        if not self.values:
            return None
        v = sorted(self.values)
        mid = len(v) // 2
        return float(v[mid]) if len(v) % 2 else (v[mid - 1] + v[mid]) / 2.0


def _online_con() -> sqlite3.Connection:
    """This thread's in-memory SQLite database holding the record tables of the online path.

    The online path computes a handful of firms at a time, where DuckDB's fixed cost of
    parsing, binding and optimizing the ~27 KB feature query (about 100 ms) would dominate;
    SQLite compiles the same query (:func:`features.sql.feature_sql` with ``dialect="sqlite"``)
    once per connection and keeps the compiled statement, so each call pays for its records
    only. The tables persist and are emptied per call.
    """
    con = getattr(_local, "con", None)
    if con is None:
        con = sqlite3.connect(":memory:", cached_statements=16)
        con.create_aggregate(SQLITE_MEDIAN, 1, _Median)  # type: ignore[arg-type]
        for name, rt in RECORD_TYPES.items():
            cols = ", ".join(f"{f.name} {_SQLITE_TYPES[f.dtype]}" for f in rt.fields)
            con.execute(f"CREATE TABLE {name} ({cols})")
            con.execute(f"CREATE INDEX {name}_firm ON {name} (firm_id)")
        con.execute(f"CREATE TABLE {SPINE_TABLE} (row_id INTEGER, firm_id TEXT, as_of INTEGER)")
        _local.con = con
    return con


_EPOCH = datetime(1970, 1, 1)
_MICRO = timedelta(microseconds=1)


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v)


def _micros(v: Any) -> int:
    """A timestamp as naive-UTC microseconds since the epoch, as the store reads it: tz-aware
    values are converted to UTC, naive ones are taken as UTC, strings must be ISO 8601."""
    if isinstance(v, str):
        try:
            v = datetime.fromisoformat(v)
        except ValueError:
            v = pd.to_datetime(v, utc=True, format="ISO8601")
    elif isinstance(v, np.datetime64):
        v = pd.Timestamp(v)
    if isinstance(v, pd.Timestamp):
        if v.tzinfo is not None:
            v = v.tz_convert("UTC").tz_localize(None)
        return int(v.value) // 1000
    if isinstance(v, datetime):
        if v.tzinfo is not None:
            v = v.astimezone(UTC).replace(tzinfo=None)
        return (v - _EPOCH) // _MICRO
    if isinstance(v, date):
        return (datetime(v.year, v.month, v.day) - _EPOCH) // _MICRO
    raise TypeError(f"expected a date or timestamp, got {v!r}")


def _as_int(v: Any) -> int:
    if isinstance(v, bool):
        return int(v)
    x = float(v) if isinstance(v, str) else v
    if isinstance(x, (float, np.floating)) and not float(x).is_integer():
        raise ValueError(f"expected a whole number, got {v!r}")
    return int(x)


#: per contract dtype: a present value -> the value SQLite stores (raises on a wrong type)
_CONVERT: dict[str, Any] = {
    "timestamp": _micros,
    "float": float,
    "int": _as_int,
    "bool": lambda v: int(bool(v)),
    "string": str,
}


def _rows(rt: RecordType, rows: Any, firm_id: str) -> list[tuple[Any, ...]]:
    """Records (list of dicts or DataFrame) -> rows of the online table of that record type,
    in the contract's column order, ``firm_id`` set to ``firm_id``."""
    if rows is None:
        return []
    if isinstance(rows, pd.DataFrame):
        rows = rows.to_dict("records")
    rows = list(rows)
    if not rows:
        return []
    present = set().union(*(r.keys() for r in rows))
    missing = [c for c in rt.required_columns if c not in present and c != "firm_id"]
    if missing:
        raise ValueError(f"{rt.name} records lack required field(s): {', '.join(missing)}")
    columns: list[list[Any]] = []
    for f in rt.fields:
        if f.name == "firm_id":
            columns.append([firm_id] * len(rows))
            continue
        if f.name not in present:
            columns.append([None] * len(rows))
            continue
        convert = _CONVERT[f.dtype]
        try:
            columns.append([None if _missing(v := r.get(f.name)) else convert(v) for r in rows])
        except (ValueError, TypeError, OverflowError) as e:
            raise ValueError(f"{rt.name}.{f.name}: {e}") from None
    return list(zip(*columns, strict=True))


class RowCache:
    """Rows already converted for the online tables, by record object.

    A caller that computes many variants of one firm's records (seller recourse: the same
    records with a few invoices paid) passes one cache to :func:`compute_many`, so a record
    object reused unchanged is converted once. Records are keyed by identity and held by the
    cache: a record must not be changed in place after it was computed (replace it).
    """

    def __init__(self) -> None:
        self._rows: dict[int, tuple[Mapping[str, Any], tuple[Any, ...]]] = {}

    def rows(
        self, rt: RecordType, records: Sequence[Mapping[str, Any]], firm_id: str
    ) -> list[tuple[Any, ...]]:
        pos = rt.columns.index("firm_id")
        fresh = [r for r in records if self._rows.get(id(r), (None,))[0] is not r]
        if fresh:
            for r, row in zip(fresh, _rows(rt, fresh, ""), strict=True):
                self._rows[id(r)] = (r, row)
        out = []
        for r in records:
            row = self._rows[id(r)][1]
            out.append((*row[:pos], firm_id, *row[pos + 1 :]))
        return out


def compute(
    records: Mapping[str, Any],
    as_of: Any,
    firm: Mapping[str, Any] | None = None,
    lags: Lags | None = None,
) -> dict[str, float]:
    """Features of one firm from its records passed in memory (the online path).

    Runs the same generated query as :func:`build` over tables that hold only the given
    records (``customs``, ``shipments``, ``payments``, ``loans``, ``firms``).

    Parameters
    ----------
    records : record type -> list of dicts or DataFrame, with the contract's fields
        (``firm_id`` may be omitted; every record is taken to belong to the one firm).
        Absent types count as no records.
    as_of : the moment T the features describe (tz-aware values are converted to UTC).
    firm : the firm's own record (``firm_id``, ``registered_at``, ...), optional.
    lags : availability lags (default :class:`features.pit.Lags`).

    Returns
    -------
    dict
        Feature name -> value (float, NaN where the catalog says so), in catalog order.

    Raises
    ------
    ValueError
        An unknown record type, a missing required field or a value of the wrong type.

    Notes
    -----
    The query is :func:`build`'s, generated from the same catalog, executed by an in-memory
    SQLite database (see :func:`_online_con`) whose compiled statement is reused from call
    to call; each thread keeps its own connection.
    """
    return compute_many([(records, as_of, firm)], lags=lags)[0]


OnlineItem = tuple[Mapping[str, Any], Any, Mapping[str, Any] | None]


def compute_many(
    items: Sequence[OnlineItem], lags: Lags | None = None, cache: RowCache | None = None
) -> list[dict[str, float]]:
    """:func:`compute` for several firms at once, in one query (e.g. a batch of requests).

    Each item is ``(records, as_of, firm)`` as :func:`compute` takes them; items never see
    each other's records, even when they name the same firm. The query's fixed cost
    (planning) is paid once for the whole batch. ``cache``: rows converted by an earlier
    call (:class:`RowCache`), for records given as lists of dicts.

    Returns
    -------
    list of dict
        One feature dict per item, in the items' order.
    """
    tables: dict[str, list[tuple[Any, ...]]] = {name: [] for name in RECORD_TYPES}
    as_ofs = []
    for i, (records, as_of, firm) in enumerate(items):
        unknown = set(records) - set(RECORD_TYPES) - {"firms"}
        if unknown:
            raise ValueError(
                f"unknown record type(s) {sorted(unknown)}; expected {', '.join(RECORD_TYPES)}"
            )
        # a private id per item: two items about one firm must not share records
        key = f"_item{i}"
        for name, rt in RECORD_TYPES.items():
            rows: Any = ([dict(firm)] if firm else []) if name == "firms" else records.get(name)
            if cache is not None and isinstance(rows, list) and rows:
                tables[name].extend(cache.rows(rt, rows, key))
            else:
                tables[name].extend(_rows(rt, rows, key))
        as_ofs.append(_as_timestamp(as_of))
    if not as_ofs:
        return []
    con = _online_con()
    try:
        for name, rows in tables.items():
            if rows:
                marks = ", ".join("?" * len(rows[0]))
                con.executemany(f"INSERT INTO {name} VALUES ({marks})", rows)
        spine = [(i, f"_item{i}", _micros(t)) for i, t in enumerate(as_ofs)]
        con.executemany(f"INSERT INTO {SPINE_TABLE} VALUES (?, ?, ?)", spine)
        out = con.execute(feature_sql(lags, dialect="sqlite")).fetchall()
    finally:
        con.rollback()  # empties the tables: nothing was committed
    names = feature_names()
    n = len(names)
    return [
        dict(zip(names, (np.nan if v is None else float(v) for v in row[1 : n + 1]), strict=True))
        for row in out
    ]


# --- spines --------------------------------------------------------------------------------


def loan_spine(store: Store) -> pd.DataFrame:
    """One row per loan application, ``as_of = applied_at``, with its outcome columns."""
    con, close = _connect(store)
    try:
        _ensure_tables(con)
        return con.execute(
            "SELECT l.loan_id, l.firm_id, l.applied_at AS as_of, l.product, l.amount_usd, "
            "l.disbursed_at, l.defaulted, l.default_at, f.business_model, f.main_category "
            "FROM loans l LEFT JOIN firms f ON f.firm_id = l.firm_id "
            "ORDER BY l.applied_at, l.loan_id"
        ).df()
    finally:
        if close:
            con.close()


def month_ends(start: str, end: str) -> list[pd.Timestamp]:
    """Snapshot moments for months ``start``..``end`` (``YYYY-MM``, inclusive).

    A month's snapshot is taken at midnight starting the next month, so every record of
    the month (subject to its availability lag) counts.

    >>> [str(t.date()) for t in month_ends("2025-01", "2025-03")]
    ['2025-02-01', '2025-03-01', '2025-04-01']
    """
    try:
        first = pd.Period(start, freq="M")
        last = pd.Period(end, freq="M")
    except ValueError:
        raise ValueError(f"months must look like 2025-01, got {start!r} and {end!r}") from None
    if last < first:
        raise ValueError(f"--to {end} is before --from {start}")
    return [(p + 1).to_timestamp() for p in pd.period_range(first, last, freq="M")]


def store_horizon(store: Store) -> pd.Timestamp | None:
    """Midnight after the latest event time in the store (``None`` when it is empty)."""
    con, close = _connect(store)
    try:
        _ensure_tables(con)
        row = con.execute(
            "SELECT greatest((SELECT max(declared_at) FROM customs), "
            "(SELECT max(shipped_at) FROM shipments), (SELECT max(occurred_at) FROM payments),"
            " (SELECT max(applied_at) FROM loans))"
        ).fetchone()
    finally:
        if close:
            con.close()
    if row is None or row[0] is None:
        return None
    return pd.Timestamp(row[0]).normalize() + pd.Timedelta(days=1)


def monthly_spine(store: Store, start: str | None = None, end: str | None = None) -> pd.DataFrame:
    """Month-end snapshots of every firm registered before the snapshot.

    ``start``/``end`` are ``YYYY-MM`` months; by default the 12 months ending with the last
    complete month of data.
    """
    if start is None or end is None:
        horizon = store_horizon(store)
        if horizon is None:
            raise ValueError("the record store is empty; nothing to snapshot")
        last = pd.Period(horizon - pd.Timedelta(days=1), freq="M")
        if (horizon - pd.Timedelta(days=1)).is_month_end is False:
            last = last - 1
        end = end or str(last)
        start = start or str(pd.Period(end, freq="M") - 11)
    moments = month_ends(start, end)
    con, close = _connect(store)
    try:
        _ensure_tables(con)
        firms = con.execute("SELECT firm_id, registered_at FROM firms ORDER BY firm_id").df()
    finally:
        if close:
            con.close()
    frames = []
    for t in moments:
        ids = firms.loc[firms["registered_at"] < t, "firm_id"]
        frames.append(pd.DataFrame({"firm_id": ids.to_numpy(), "as_of": t}))
    if not frames:
        return pd.DataFrame({"firm_id": [], "as_of": pd.Series([], dtype="datetime64[us]")})
    return pd.concat(frames, ignore_index=True)


def latest_spine(store: Store, as_of: datetime | str | None = None) -> pd.DataFrame:
    """Every firm at one moment (default: the store's horizon, see :func:`store_horizon`)."""
    t = _as_timestamp(as_of) if as_of is not None else store_horizon(store)
    if t is None:
        raise ValueError("the record store is empty; nothing to materialize")
    con, close = _connect(store)
    try:
        _ensure_tables(con)
        ids = con.execute("SELECT firm_id FROM firms ORDER BY firm_id").df()["firm_id"]
    finally:
        if close:
            con.close()
    return pd.DataFrame({"firm_id": ids.to_numpy(), "as_of": t})


def training_set(store: Store, lags: Lags | None = None) -> pd.DataFrame:
    """The loan spine with every feature as of ``applied_at``: :data:`TRAINING_COLUMNS` then
    the catalog's features. ``defaulted`` is a nullable boolean (missing = outcome unknown)."""
    spine = loan_spine(store)
    out = build(store, spine, lags=lags, with_market=True)
    out["defaulted"] = out["defaulted"].astype("boolean")
    return out[TRAINING_COLUMNS + feature_names()]
