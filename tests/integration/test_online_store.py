"""The online feature store on SQLite (embedded default) and on a real PostgreSQL."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.catalog import feature_names
from features.online import OnlineStore, _decode

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _frame(firms: list[str], as_of: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    names = feature_names()
    values = rng.normal(size=(len(firms), len(names)))
    values[:, 3] = np.nan  # a missing value must survive the round trip
    values[:, 4], values[:, 5] = np.inf, -np.inf  # and so must infinities (not valid JSON)
    df = pd.DataFrame(values, columns=names)
    df.insert(0, "as_of", pd.Timestamp(as_of))
    df.insert(0, "firm_id", firms)
    return df


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'service.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throwaway database on the local PostgreSQL (skipped when it is unreachable)."""
    from sqlalchemy import create_engine, text

    try:
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as e:  # noqa: BLE001 - any failure to connect means: no server here
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN}: {type(e).__name__}")
    name = f"tc_online_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        from credit.db import dispose_engines

        dispose_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _exercise(url: str) -> None:
    store = OnlineStore(url)
    jan = _frame(["F1", "F2", "F3"], "2025-01-01", seed=1)
    feb = _frame(["F1", "F2"], "2025-02-01", seed=2)
    assert store.write(jan) == 3
    assert store.write(feb) == 2
    assert store.count() == 5

    # latest snapshot by default
    as_of, feats = store.get("F1")  # type: ignore[misc]
    assert as_of == pd.Timestamp("2025-02-01").to_pydatetime()
    assert list(feats) == feature_names()
    row = feb.iloc[0]
    for name in feature_names():
        if math.isnan(row[name]):
            assert math.isnan(feats[name])
        else:
            assert feats[name] == pytest.approx(row[name], rel=1e-15)
    # latest at or before a moment
    got = store.get("F1", "2025-01-31")
    assert got is not None and got[0] == pd.Timestamp("2025-01-01").to_pydatetime()
    assert store.get("F1", "2025-02-01")[0] == pd.Timestamp("2025-02-01")  # type: ignore[index]
    assert store.get("F3") is not None and store.get("F3", "2024-12-31") is None
    assert store.get("nobody") is None
    # the two reads (latest; latest at or before a moment) give one snapshot the same way
    latest, at_moment = store.get("F1"), store.get("F1", "2100-01-01")
    assert latest is not None and at_moment is not None
    assert type(latest[0]) is type(at_moment[0]) is datetime and latest[0] == at_moment[0]
    assert list(latest[1]) == list(at_moment[1])
    np.testing.assert_array_equal(list(latest[1].values()), list(at_moment[1].values()))
    assert latest[1][feature_names()[4]] == math.inf and latest[1][feature_names()[5]] == -math.inf
    # tz-aware moments are UTC
    assert store.get("F1", pd.Timestamp("2025-01-31 23:00", tz="Europe/Paris")) is not None

    # rewriting a snapshot replaces it
    again = _frame(["F1"], "2025-02-01", seed=3)
    store.write(again)
    assert store.count() == 5
    assert store.get("F1")[1]["export_value_30d"] == pytest.approx(  # type: ignore[index]
        again.iloc[0]["export_value_30d"]
    )

    with pytest.raises(ValueError, match="missing column"):
        store.write(jan.drop(columns=["inflow_90d"]))
    with pytest.raises(ValueError, match="duplicate"):
        store.write(pd.concat([jan, jan]))

    # a lookup is a primary-key seek: fast even with many firms stored
    many = _frame([f"G{i:05d}" for i in range(3000)], "2025-03-01", seed=4)
    store.write(many)
    t0 = time.perf_counter()
    for i in range(200):
        assert store.get(f"G{i * 7:05d}") is not None
    per_lookup_ms = (time.perf_counter() - t0) / 200 * 1000
    assert per_lookup_ms < 20, per_lookup_ms


def test_sqlite(sqlite_url: str) -> None:
    _exercise(sqlite_url)


@pytest.mark.postgres
@pytest.mark.integration
def test_postgresql(postgres_url: str) -> None:
    _exercise(postgres_url)


def test_snapshots_written_with_a_bare_infinity_still_read() -> None:
    # json.dumps wrote infinities as the non-standard token Infinity in earlier builds
    got = _decode('{"a":Infinity,"b":-Infinity,"c":null,"d":1.5}')
    assert got["a"] == math.inf and got["b"] == -math.inf
    assert math.isnan(got["c"]) and got["d"] == 1.5


def test_default_url_is_the_service_database(settings) -> None:  # type: ignore[no-untyped-def]
    store = OnlineStore()
    store.write(_frame(["F1"], "2025-01-01", seed=5))
    assert (settings.data_dir / "service.db").exists()


def test_latest_frame_holds_each_firm_s_latest_snapshot(tmp_path: Path) -> None:
    """``credit score --batch online`` scores this table: one row per firm, its latest."""
    store = OnlineStore(f"sqlite:///{tmp_path / 'online.db'}")
    assert store.latest_frame().empty
    names = feature_names()
    rows = []
    for firm, when, value in [("B", "2025-03-01", 1.0), ("A", "2025-01-01", 2.0),
                              ("A", "2025-02-01", 3.0), ("B", "2025-02-01", 4.0)]:  # fmt: skip
        rows.append({"firm_id": firm, "as_of": pd.Timestamp(when), **dict.fromkeys(names, value)})
    store.write(pd.DataFrame(rows))
    frame = store.latest_frame()
    assert frame["firm_id"].tolist() == ["A", "B"]
    assert frame["as_of"].tolist() == [pd.Timestamp("2025-02-01"), pd.Timestamp("2025-03-01")]
    assert frame[names[0]].tolist() == [3.0, 1.0]
    assert list(frame.columns) == ["firm_id", "as_of", *names]
