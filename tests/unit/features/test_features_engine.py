"""The engine against an independent pandas oracle, online == batch, and edge cases."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd
import pytest

from credit.records import RECORD_TYPES
from features.catalog import CATALOG, feature_names, get
from features.pipeline import build, compute
from tests.oracle_features import ORACLE_FEATURES, load_world, oracle, random_world


def _simulated(firms: int, seed: int) -> dict[str, pd.DataFrame]:
    from credit.simulator import simulate

    return dict(simulate(firms=firms, start="2023-01", months=36, seed=seed).frames())


@pytest.fixture(scope="module")
def sim_world() -> dict[str, pd.DataFrame]:
    return _simulated(60, seed=5)


@pytest.fixture(scope="module")
def sim_store(sim_world: dict[str, pd.DataFrame]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    load_world(con, sim_world)
    return con


def _random_pairs(world: dict[str, pd.DataFrame], n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    firms = world["firms"]["firm_id"].to_numpy()
    start = pd.Timestamp("2023-01-01")
    return pd.DataFrame(
        {
            "firm_id": rng.choice(firms, n),
            # any time of day over the simulated years (and a little after)
            "as_of": start + pd.to_timedelta(rng.integers(0, 1130 * 24 * 60, n), "min"),
        }
    )


def _assert_same(a: pd.Series | np.ndarray, b: pd.Series | np.ndarray, what: str) -> None:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    same = np.isclose(x, y, rtol=1e-9, atol=1e-9, equal_nan=True)
    if not same.all():
        i = np.flatnonzero(~same)[:5]
        raise AssertionError(f"{what}: {(~same).sum()} rows differ, e.g. {x[i]} vs {y[i]}")


def test_oracle_covers_at_least_12_features_across_families() -> None:
    assert len(ORACLE_FEATURES) >= 12
    assert len({get(n).family for n in ORACLE_FEATURES}) >= 7


@pytest.mark.parametrize("source", ["random", "simulator"])
def test_engine_matches_the_pandas_oracle(source: str, sim_world: dict) -> None:
    world = random_world(40, months=36, seed=2) if source == "random" else sim_world
    con = duckdb.connect()
    load_world(con, world)
    spine = _random_pairs(world, 50, seed=9)
    got = build(con, spine)
    want = oracle(world, spine)
    for name in ORACLE_FEATURES:
        _assert_same(got[name], want[name], name)
    # not a vacuous comparison: most features take several distinct, non-missing values
    informative = [n for n in ORACLE_FEATURES if want[n].dropna().nunique() > 2]
    assert len(informative) >= 10


def _records(world: dict[str, pd.DataFrame], firm: str) -> tuple[dict, dict]:
    recs = {
        k: world[k][world[k]["firm_id"] == firm].to_dict("records")
        for k in ("customs", "shipments", "payments", "loans")
    }
    return recs, world["firms"][world["firms"]["firm_id"] == firm].iloc[0].to_dict()


def _online_equals_batch(world: dict, con: duckdb.DuckDBPyConnection, n: int) -> None:
    pairs = _random_pairs(world, n, seed=21)
    batch = build(con, pairs)
    names = feature_names()
    by_firm: dict[str, tuple[dict, dict]] = {}
    online = []
    for firm, as_of in zip(pairs["firm_id"], pairs["as_of"], strict=True):
        if firm not in by_firm:
            by_firm[firm] = _records(world, firm)
        recs, firm_row = by_firm[firm]
        got = compute(recs, as_of, firm=firm_row)
        assert list(got) == names
        online.append([got[n] for n in names])
    online_df = pd.DataFrame(online, columns=names)
    for name in names:
        _assert_same(online_df[name], batch[name], name)


def test_online_equals_batch_quick(sim_world: dict, sim_store: duckdb.DuckDBPyConnection) -> None:
    _online_equals_batch(sim_world, sim_store, 8)


@pytest.mark.slow
def test_online_equals_batch_200_pairs(
    sim_world: dict, sim_store: duckdb.DuckDBPyConnection
) -> None:
    _online_equals_batch(sim_world, sim_store, 200)


# --- edge cases -------------------------------------------------------------------------------

T = pd.Timestamp("2025-07-01")


def _one(records: dict, firm: dict | None = None) -> dict[str, float]:
    return compute(records, T, firm=firm)


def test_no_records_at_all() -> None:
    f = _one({})
    for feat in CATALOG:
        v = f[feat.name]
        if feat.dtype in ("count", "flag"):
            assert not math.isnan(v), feat.name  # counts and flags are never NaN
    assert f["export_value_365d"] == 0 and f["inflow_90d"] == 0
    assert math.isnan(f["destination_hhi_365d"]) and math.isnan(f["refund_ratio_90d"])
    assert math.isnan(f["firm_age_days"])  # firm unknown
    assert f["months_of_history"] == 0
    assert f["thin_file_flag"] == 1 and f["has_loan_history"] == 0


def test_missing_semantics_are_documented_for_every_feature() -> None:
    for feat in CATALOG:
        assert feat.missing.strip(), feat.name
        if feat.dtype in ("count", "flag"):
            assert "NaN when" not in feat.missing, feat.name


def _customs(i: int, when: str, value: float, dest: str = "US", **kw: object) -> dict:
    row = {
        "declaration_id": f"D{i}",
        "declared_at": when,
        "direction": "export",
        "regime": "9610",
        "hs_code": "330499",
        "origin_country": "CN",
        "destination_country": dest,
        "value_usd": value,
        "quantity": 1,
        "status": "cleared",
        "tax_refund_usd": 0,
        "tax_refund_status": "none",
        "tax_refund_settled_at": None,
    }
    row.update(kw)
    return row


def _payment(i: int, kind: str, amount: float, when: str, **kw: object) -> dict:
    direction = "in" if kind in ("settlement", "b2b_receipt", "loan_disbursement") else "out"
    row = {
        "payment_id": f"P{i}",
        "kind": kind,
        "direction": direction,
        "amount_usd": amount,
        "currency": "USD",
        "counterparty_id": "amazon",
        "occurred_at": when,
        "due_at": None,
        "paid_at": when,
    }
    row.update(kw)
    return row


def test_a_single_record() -> None:
    f = _one({"customs": [_customs(1, "2025-06-01", 1234.5)]})
    assert f["export_value_90d"] == 1234.5
    assert f["destination_hhi_365d"] == 1.0 and f["n_destination_countries_365d"] == 1
    assert f["us_export_share_365d"] == 1.0
    assert f["export_active_months_12m"] == 1
    assert f["export_peak_month_share_12m"] == 1.0
    assert math.isnan(f["export_max_monthly_drop_12m"])  # no earlier period had exports
    assert math.isnan(f["export_growth_90d"])  # nothing in the prior quarter
    assert f["months_of_history"] == pytest.approx(30 / 30.4375)


def test_all_refunds() -> None:
    f = _one({"payments": [_payment(i, "refund", 100.0, "2025-06-0" + str(i)) for i in (1, 2)]})
    assert f["outflow_90d"] == 200
    assert math.isnan(f["refund_ratio_90d"])  # no settlements to compare with
    assert f["inflow_outflow_ratio_90d"] == 0.0  # nothing in, 200 out
    assert f["net_cash_flow_90d"] == -200
    assert math.isnan(f["days_since_last_inflow"])


def test_amounts_at_the_limits() -> None:
    big, tiny = 1e10, 0.01  # the contract's maximum and a cent
    f = _one(
        {
            "customs": [_customs(1, "2025-06-01", big), _customs(2, "2025-06-02", tiny, "DE")],
            "payments": [_payment(1, "settlement", big, "2025-06-01")],
        }
    )
    assert f["export_value_30d"] == big + tiny
    assert f["us_export_share_365d"] == pytest.approx(big / (big + tiny), rel=1e-15)
    assert f["inflow_30d"] == big
    assert all(not math.isinf(v) for v in f.values())


def test_timezones_are_converted_to_utc() -> None:
    recs = {"customs": [_customs(1, "2025-06-01T23:00:00-02:00", 10.0)]}  # 06-02 01:00 UTC
    f_utc = compute(recs, "2025-06-05T04:00:00Z", firm=None)  # 06-05 04:00 UTC
    f_naive = compute(recs, pd.Timestamp("2025-06-05 04:00"), firm=None)
    assert f_utc == f_naive or all(
        (math.isnan(a) and math.isnan(b)) or a == b
        for a, b in zip(f_utc.values(), f_naive.values(), strict=True)
    )
    # 06-02 01:00 + 3 days = 06-05 01:00 < 06-05 04:00: known
    assert f_utc["export_value_30d"] == 10.0
    assert compute(recs, "2025-06-05T00:30:00Z")["export_value_30d"] == 0.0


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown record type"):
        compute({"invoices": []}, T)
    with pytest.raises(ValueError, match="lack required field"):
        compute({"customs": [{"declaration_id": "D1", "declared_at": "2025-01-01"}]}, T)
    with pytest.raises(ValueError, match="as_of"):
        compute({}, None)
    con = duckdb.connect()
    with pytest.raises(ValueError, match="firm_id"):
        build(con, pd.DataFrame({"as_of": [T]}))
    with pytest.raises(ValueError, match="without as_of"):
        build(con, pd.DataFrame({"firm_id": ["F1"], "as_of": [None]}))
    with pytest.raises(FileNotFoundError, match="ingest"):
        build("/nonexistent/records.duckdb", pd.DataFrame({"firm_id": ["F1"], "as_of": [T]}))


def test_build_keeps_spine_columns_and_order() -> None:
    con = duckdb.connect()  # no record tables at all: they act as empty
    spine = pd.DataFrame(
        {"loan_id": ["b", "a"], "firm_id": ["F2", "F1"], "as_of": [T, T - pd.Timedelta(days=1)]}
    )
    out = build(con, spine)
    assert list(out.columns) == ["loan_id", "firm_id", "as_of", *feature_names()]
    assert out["loan_id"].tolist() == ["b", "a"]
    assert not {"customs", "payments"} & {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE NOT temporary"
        ).fetchall()
    }


def test_contract_tables_are_what_the_engine_reads() -> None:
    con = duckdb.connect()
    for rt in RECORD_TYPES.values():
        con.execute(rt.create_table_sql())
    out = build(con, pd.DataFrame({"firm_id": ["F1"], "as_of": [T]}))
    assert out.shape == (1, 2 + len(feature_names()))


def test_compute_many_equals_compute_item_by_item(sim_world: dict) -> None:
    from features.pipeline import compute_many

    pairs = _random_pairs(sim_world, 6, seed=33)
    items = []
    for firm, as_of in zip(pairs["firm_id"], pairs["as_of"], strict=True):
        recs, firm_row = _records(sim_world, firm)
        items.append((recs, as_of, firm_row))
    # the same firm twice, once with its records and once with none: nothing is shared
    items.append(({}, items[0][1], items[0][2]))
    many = compute_many(items)
    assert len(many) == len(items)
    for item, got in zip(items, many, strict=True):
        one = compute(*item)
        for name in feature_names():
            _assert_same([got[name]], [one[name]], name)
    assert many[-1]["export_value_365d"] == 0 and many[-1]["n_payments_365d"] == 0
    assert compute_many([]) == []
