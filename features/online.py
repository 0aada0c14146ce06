"""The online feature store: the latest feature snapshot of every firm, for the API.

One table, ``online_features``, in the service database (SQLite by default, PostgreSQL
through ``TRADECREDIT_DATABASE_URL``)::

    firm_id          VARCHAR(64)  \\  primary key: a lookup is one index seek
    as_of            TIMESTAMP    /
    catalog_version  VARCHAR(32)  the catalog the values were computed with
    features         TEXT         JSON object feature name -> number (NaN stored as null)
    written_at       TIMESTAMP

Several snapshots of a firm may be kept (one per ``as_of``); :meth:`OnlineStore.get`
returns the latest at or before the moment asked for.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import orjson
import pandas as pd
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    delete,
    func,
    select,
    tuple_,
)

from credit.db import json_dumps
from credit.fastpath.dbapi import fast_query
from features.catalog import CATALOG_VERSION, feature_names

TABLE_NAME = "online_features"

metadata = MetaData()
online_features = Table(
    TABLE_NAME,
    metadata,
    Column("firm_id", String(64), primary_key=True),
    Column("as_of", DateTime(), primary_key=True),
    Column("catalog_version", String(32), nullable=False),
    Column("features", Text(), nullable=False),
    Column("written_at", DateTime(), nullable=False),
)


def _naive(ts: Any) -> datetime:
    t = pd.Timestamp(ts)
    if t is pd.NaT:
        raise ValueError("as_of must be a date or timestamp")
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return t.to_pydatetime()


def _encode(values: dict[str, Any]) -> str:
    # Standard JSON has no NaN or infinity: NaN is written as null and an infinity as the
    # string "inf" or "-inf", which float() reads back, so every value round-trips.
    clean: dict[str, Any] = {}
    for k, v in values.items():
        if v is None or (isinstance(v, float) and math.isnan(v)):
            clean[k] = None
        elif isinstance(v, float) and math.isinf(v):
            clean[k] = "inf" if v > 0 else "-inf"
        else:
            clean[k] = float(v)
    return json_dumps(clean)


def _decode(text: str) -> dict[str, float]:
    try:
        raw = orjson.loads(text)
    except orjson.JSONDecodeError:  # written by an earlier build: a bare Infinity
        raw = json.loads(text)
    return {k: (float("nan") if v is None else float(v)) for k, v in raw.items()}


# The two reads of :meth:`OnlineStore.get`, built once and run as direct statements
# (credit.fastpath.dbapi: SQLAlchemy's SQL and type conversions, without its execution layer,
# which costs more than the read itself).
_LATEST = (
    select(online_features.c.as_of, online_features.c.features, online_features.c.written_at)
    .where(online_features.c.firm_id == bindparam("firm_id"))
    .order_by(online_features.c.as_of.desc())
    .limit(1)
)
_LATEST_AT = _LATEST.where(online_features.c.as_of <= bindparam("as_of"))


class OnlineStore:
    """Latest features per firm in the service database.

    Parameters
    ----------
    url : SQLAlchemy URL (default: the settings' service database).

    Examples
    --------
    >>> store = OnlineStore("sqlite://")  # doctest: +SKIP
    >>> store.write(features_df)  # firm_id, as_of, feature columns  # doctest: +SKIP
    >>> store.get("F1")  # doctest: +SKIP
    (datetime.datetime(2025, 7, 1, 0, 0), {'export_value_30d': 1200.0, ...})
    """

    def __init__(self, url: str | None = None) -> None:
        self.url = url
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from credit.db import get_engine

            self._engine = get_engine(self.url)
            metadata.create_all(self._engine, tables=[online_features], checkfirst=True)
        return self._engine

    def write(self, df: pd.DataFrame, chunk: int = 1000, written_at: datetime | None = None) -> int:
        """Insert or replace snapshots: one per row of ``df`` (``firm_id``, ``as_of`` and
        every catalog feature). Returns the number of rows written.

        ``written_at``: the moment the records the values were computed from were read
        (default: now). A firm with records ingested after it gets its features computed
        afresh at its next score, so pass the time the build started reading."""
        names = feature_names()
        missing = [c for c in ("firm_id", "as_of", *names) if c not in df.columns]
        if missing:
            raise ValueError(
                f"cannot write online features: missing column(s) {', '.join(missing[:5])}"
                + (" ..." if len(missing) > 5 else "")
            )
        if df.duplicated(["firm_id", "as_of"]).any():
            raise ValueError("duplicate (firm_id, as_of) rows in the features to write")
        now = _naive(written_at) if written_at is not None else datetime.now(UTC)
        now = now.replace(tzinfo=None)
        values = df[names].astype("float64").to_numpy()
        firms = df["firm_id"].astype(str).tolist()
        as_ofs = [_naive(t) for t in df["as_of"]]
        rows = [
            {
                "firm_id": firms[i],
                "as_of": as_ofs[i],
                "catalog_version": CATALOG_VERSION,
                "features": _encode(dict(zip(names, values[i].tolist(), strict=True))),
                "written_at": now,
            }
            for i in range(len(df))
        ]
        engine = self.engine
        with engine.begin() as conn:
            for i in range(0, len(rows), chunk):
                part = rows[i : i + chunk]
                keys = [(r["firm_id"], r["as_of"]) for r in part]
                conn.execute(
                    delete(online_features).where(
                        tuple_(online_features.c.firm_id, online_features.c.as_of).in_(keys)
                    )
                )
                conn.execute(online_features.insert(), part)
        return len(rows)

    def snapshot(
        self, firm_id: str, as_of: Any = None
    ) -> tuple[datetime, dict[str, float], datetime] | None:
        """:meth:`get` and when the snapshot was written (UTC): ``(as_of, features,
        written_at)`` or ``None``."""
        if as_of is None:
            found = fast_query(self.engine, "online_latest", _LATEST).first(
                {"firm_id": str(firm_id)}
            )
        else:
            found = fast_query(self.engine, "online_latest_at", _LATEST_AT).first(
                {"firm_id": str(firm_id), "as_of": _naive(as_of)}
            )
        if found is None:
            return None
        when, text, written = found
        return when, _decode(text), written.replace(tzinfo=UTC)

    def get(self, firm_id: str, as_of: Any = None) -> tuple[datetime, dict[str, float]] | None:
        """The latest snapshot of ``firm_id`` at or before ``as_of`` (default: the latest).

        Returns
        -------
        (as_of, features) or None
            ``features`` maps every feature name to a float (NaN for missing); ``None``
            when the firm has no snapshot at or before ``as_of``.
        """
        found = self.snapshot(firm_id, as_of)
        return None if found is None else (found[0], found[1])

    def latest_frame(self) -> pd.DataFrame:
        """The latest snapshot of every firm as a feature table: ``firm_id``, ``as_of`` and
        one float column per feature (NaN for missing); empty when the store is."""
        t = online_features.c
        ranked = select(
            t.firm_id,
            t.as_of,
            t.features,
            func.row_number().over(partition_by=t.firm_id, order_by=t.as_of.desc()).label("n"),
        ).subquery()
        latest = (
            select(ranked.c.firm_id, ranked.c.as_of, ranked.c.features)
            .where(ranked.c.n == 1)
            .order_by(ranked.c.firm_id)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(latest).all()
        feats = pd.DataFrame.from_records([_decode(text) for _, _, text in rows]).astype("float64")
        feats.insert(0, "as_of", [r[1] for r in rows])
        feats.insert(0, "firm_id", [r[0] for r in rows])
        return feats

    def count(self) -> int:
        """Number of stored snapshots."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(online_features)).scalar_one())
