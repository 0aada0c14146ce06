"""The point-in-time rule: the rule itself, and leakage (nothing dated at or after T counts)."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from features.catalog import feature_names
from features.pipeline import build
from features.pit import DEFAULT_LAGS, Lags, is_known, known
from tests.oracle_features import load_world, random_world


def _eval(expr: str) -> object:
    return duckdb.connect().execute(f"SELECT {expr}").fetchall()[0][0]


@pytest.mark.parametrize(
    ("ts", "as_of", "lag", "expected"),
    [
        ("2025-06-30 23:59:59", "2025-07-01", 0, True),  # just before T
        ("2025-07-01", "2025-07-01", 0, False),  # at T: never
        ("2025-06-28", "2025-07-01", 3, False),  # available exactly at T: not before T
        ("2025-06-27 23:00", "2025-07-01", 3, True),
        ("2025-07-02", "2025-07-01", 0, False),  # after T
    ],
)
def test_known_rule_sql_and_python_agree(ts: str, as_of: str, lag: int, expected: bool) -> None:
    sql = known(f"TIMESTAMP '{ts}'", f"TIMESTAMP '{as_of}'", lag)
    assert _eval(sql) is expected
    assert is_known(pd.Timestamp(ts), pd.Timestamp(as_of), lag) is expected


def test_unknown_date_is_never_known() -> None:
    assert _eval(known("CAST(NULL AS TIMESTAMP)", "TIMESTAMP '2025-01-01'", 0)) is None
    assert is_known(None, pd.Timestamp("2025-01-01"), 0) is False
    assert is_known(pd.NaT, pd.Timestamp("2025-01-01"), 0) is False


def test_lags_defaults_and_parsing() -> None:
    assert Lags().as_dict() == DEFAULT_LAGS
    assert Lags.parse(["customs=5", "payments=0"]).customs == 5
    with pytest.raises(ValueError, match="unknown record type"):
        Lags.parse(["invoices=2"])
    with pytest.raises(ValueError, match="TYPE=DAYS"):
        Lags.parse(["customs"])
    with pytest.raises(ValueError, match="whole number"):
        Lags.parse(["customs=two"])
    with pytest.raises(ValueError, match="0..365"):
        Lags(customs=-1)


def test_a_longer_lag_hides_recent_records() -> None:
    world = random_world(20, months=12, seed=4)
    con = duckdb.connect()
    load_world(con, world)
    sp = pd.DataFrame({"firm_id": world["firms"]["firm_id"], "as_of": pd.Timestamp("2023-10-01")})
    short = build(con, sp, lags=Lags(customs=0))
    long = build(con, sp, lags=Lags(customs=30))
    # a 30-day lag leaves nothing of the last 30 days
    assert (long["export_value_30d"] == 0).all()
    assert short["export_value_30d"].sum() > 0


# --- leakage ----------------------------------------------------------------------------------


def _future(world: dict[str, pd.DataFrame], t: pd.Timestamp, seed: int) -> dict:
    """The same world plus everything that happens at or after ``t``.

    * new records of every type dated in [t, t + 400 days];
    * every open state at t (unpaid invoice, shipment in transit, pending refund, loan with
      no outcome) changes at or after t;
    * every state change already dated at or after t moves to another date at or after t.
    """
    rng = np.random.default_rng(seed)
    w = {k: v.copy() for k, v in world.items()}

    def later(n: int) -> pd.Series:
        return pd.Series(t + pd.to_timedelta(rng.integers(0, 400 * 24, n), "h")).astype(
            "datetime64[us]"
        )

    # customs: pending refunds settle after t; settlements after t move
    c = w["customs"]
    open_ = (c["tax_refund_status"] == "pending") | (c["tax_refund_settled_at"] >= t)
    open_ &= c["declared_at"] < t
    c.loc[open_, "tax_refund_status"] = rng.choice(["paid", "denied"], open_.sum())
    c.loc[open_, "tax_refund_settled_at"] = later(open_.sum()).to_numpy()
    # shipments: in transit at t closes later (any final status)
    s = w["shipments"]
    open_ = (s["closed_at"].isna() | (s["closed_at"] >= t)) & (s["shipped_at"] < t)
    s.loc[open_, "status"] = rng.choice(["delivered", "returned", "lost"], open_.sum())
    s.loc[open_, "closed_at"] = later(open_.sum()).to_numpy()
    # payments: unpaid at t is paid later
    p = w["payments"]
    open_ = (p["paid_at"].isna() | (p["paid_at"] >= t)) & (p["occurred_at"] < t)
    p.loc[open_, "paid_at"] = later(open_.sum()).to_numpy()
    # loans: disbursements and defaults after t
    ln = w["loans"]
    late = (ln["applied_at"] < t) & (ln["disbursed_at"] >= t)
    ln.loc[late, "disbursed_at"] = (ln.loc[late, "disbursed_at"] + pd.Timedelta(days=3)).to_numpy()
    undecided = (ln["applied_at"] < t) & ln["disbursed_at"].notna() & ln["defaulted"].isna()
    undecided &= ln["disbursed_at"] < t
    ln.loc[undecided, "defaulted"] = True
    ln.loc[undecided, "default_at"] = later(undecided.sum()).to_numpy()
    # new records dated at or after t: copies of existing ones, moved into the future
    for name, time_col in (
        ("customs", "declared_at"),
        ("shipments", "shipped_at"),
        ("payments", "occurred_at"),
        ("loans", "applied_at"),
    ):
        df = w[name]
        extra = df.sample(min(len(df), 500), random_state=seed, replace=False).copy()
        shift = later(len(extra)).to_numpy() - extra[time_col].to_numpy()
        for col in extra.columns:
            if pd.api.types.is_datetime64_any_dtype(extra[col]):
                extra[col] = extra[col] + shift
        id_col = df.columns[0]
        extra[id_col] = [f"NEW{i}_{v}" for i, v in enumerate(extra[id_col])]
        w[name] = pd.concat([df, extra], ignore_index=True)
    return w


@pytest.mark.parametrize("when", ["2023-09-15", "2024-06-01 13:30", "2025-12-01"])
def test_records_at_or_after_as_of_change_nothing(when: str) -> None:
    t = pd.Timestamp(when)
    world = random_world(80, months=36, seed=11)
    spine = pd.DataFrame({"firm_id": world["firms"]["firm_id"], "as_of": t})
    before = duckdb.connect()
    load_world(before, world)
    after = duckdb.connect()
    future = _future(world, t, seed=3)
    load_world(after, future)
    assert len(future["payments"]) > len(world["payments"])
    a = build(before, spine, with_market=True)
    b = build(after, spine, with_market=True)
    names = feature_names()
    pd.testing.assert_frame_equal(a[names], b[names], rtol=1e-12, atol=1e-12)
    assert (a["main_market"] == b["main_market"]).all()
    # the check has teeth: the same world one year later does differ
    later = build(after, spine.assign(as_of=t + pd.Timedelta(days=365)))
    assert not np.allclose(
        later[names].fillna(-1).to_numpy(), b[names].fillna(-1).to_numpy(), equal_nan=True
    )
