"""Test-only helpers for the feature pipeline.

* :func:`random_world`: a quick random record world that satisfies the data contract
  (used when the simulator is absent, and by the benchmark for scaling runs);
* :func:`oracle`: an independent, plain-pandas computation of a subset of the catalog's
  features, written from the catalog's *descriptions* rather than from its SQL. It is the
  reference the engine is checked against (tests) and the baseline it is timed against
  (``benchmarks/bench_features.py``). Deliberately straightforward: loop over spine rows,
  filter the firm's records with pandas, compute.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import duckdb
import numpy as np
import pandas as pd

from credit.records import RECORD_TYPES

DAY = pd.Timedelta(days=1)
#: Defaults of features.pit.DEFAULT_LAGS, restated here on purpose (independent oracle).
LAGS = {"customs": 3, "shipments": 1, "payments": 1, "loans": 0}
EU = set(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE".split()  # noqa: SIM905
)


# --- a random world ---------------------------------------------------------------------------


def random_world(
    n_firms: int, months: int = 36, seed: int = 0, start: str = "2023-01-01"
) -> dict[str, pd.DataFrame]:
    """Random records for ``n_firms`` firms over ``months`` months (contract-valid).

    Roughly 20 records per firm-month: 3 customs declarations, 6 shipments, 10 payments,
    plus a loan or two per firm with monthly instalments.
    """
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(start)
    span_days = months * 30
    firm_ids = np.array([f"F{i:06d}" for i in range(n_firms)])
    # firms join over the first half of the period
    join_day = rng.integers(-400, span_days // 2, n_firms)
    firms = pd.DataFrame(
        {
            "firm_id": firm_ids,
            "registered_at": t0 + pd.to_timedelta(join_day, "D"),
            "business_model": rng.choice(["b2b", "b2c", "mixed"], n_firms),
            "main_category": rng.choice(["cosmetics", "electronics_digital", "food"], n_firms),
            "home_region": "CN-GD",
        }
    )
    first_day = np.maximum(join_day, 0)

    def events(rate_per_month: float) -> tuple[np.ndarray, np.ndarray]:
        active = span_days - first_day
        n = rng.poisson(rate_per_month * active / 30.0)
        firm = np.repeat(np.arange(n_firms), n)
        day = first_day[firm] + rng.random(firm.size) * active[firm]
        return firm, day

    def ts(days: np.ndarray) -> pd.Series:
        return pd.Series(t0 + pd.to_timedelta(np.round(days * 24) / 24, "D")).astype(
            "datetime64[us]"
        )

    dests = np.array(["US", "DE", "FR", "JP", "SG", "BR", "AE", "GB", "AU"])
    # customs
    f, d = events(3.0)
    n = f.size
    refund_status = rng.choice(["none", "pending", "paid", "denied"], n, p=[0.4, 0.1, 0.4, 0.1])
    settle = np.where(
        np.isin(refund_status, ["paid", "denied"]), d + rng.integers(5, 90, n), np.nan
    )
    customs = pd.DataFrame(
        {
            "declaration_id": [f"D{i}" for i in range(n)],
            "firm_id": firm_ids[f],
            "declared_at": ts(d),
            "direction": rng.choice(["export", "import"], n, p=[0.9, 0.1]),
            "regime": rng.choice(["9610", "9710", "9810", "1210", "0110"], n),
            "hs_code": rng.choice(["330499", "950300", "851762", "610910", "940360"], n),
            "origin_country": "CN",
            "destination_country": rng.choice(dests, n),
            "value_usd": np.round(rng.lognormal(8, 1, n), 2),
            "quantity": rng.integers(1, 500, n).astype(float),
            "status": rng.choice(
                ["cleared", "inspected", "held", "rejected"], n, p=[0.85, 0.08, 0.05, 0.02]
            ),
            "tax_refund_usd": 0.0,
            "tax_refund_status": refund_status,
            "tax_refund_settled_at": ts(settle),
        }
    )
    customs["tax_refund_usd"] = np.where(
        refund_status == "none", 0.0, np.round(customs["value_usd"] * 0.09, 2)
    )
    # shipments
    f, d = events(6.0)
    n = f.size
    status = rng.choice(
        ["delivered", "returned", "lost", "damaged", "in_transit"],
        n,
        p=[0.85, 0.06, 0.02, 0.02, 0.05],
    )
    closed = np.where(status != "in_transit", d + rng.integers(2, 40, n), np.nan)
    shipments = pd.DataFrame(
        {
            "shipment_id": [f"S{i}" for i in range(n)],
            "firm_id": firm_ids[f],
            "declaration_id": None,
            "shipped_at": ts(d),
            "closed_at": ts(closed),
            "mode": rng.choice(["postal", "express", "air", "sea", "rail"], n),
            "origin_country": "CN",
            "destination_country": rng.choice(dests, n),
            "destination_type": rng.choice(["consumer", "business", "overseas_warehouse"], n),
            "weight_kg": np.round(rng.lognormal(1, 1, n), 2) + 0.01,
            "declared_value_usd": np.round(rng.lognormal(6, 1.2, n), 2) + 0.01,
            "status": status,
        }
    )
    # payments
    f, d = events(10.0)
    n = f.size
    kind = rng.choice(
        ["settlement", "b2b_receipt", "supplier_payment", "refund", "chargeback", "fee"],
        n,
        p=[0.45, 0.1, 0.2, 0.12, 0.03, 0.1],
    )
    direction = np.where(np.isin(kind, ["settlement", "b2b_receipt"]), "in", "out")
    invoice = np.isin(kind, ["b2b_receipt", "supplier_payment"])
    due = np.where(invoice, d + 30, np.nan)
    late = rng.choice([0, 0, 0, 5, 20, 45, 100], n)
    paid = np.where(invoice, due + late - rng.integers(0, 10, n), d)
    paid = np.where(invoice & (rng.random(n) < 0.05), np.nan, np.maximum(paid, d))
    payments = pd.DataFrame(
        {
            "payment_id": [f"P{i}" for i in range(n)],
            "firm_id": firm_ids[f],
            "kind": kind,
            "direction": direction,
            "amount_usd": np.round(rng.lognormal(7, 1, n), 2) + 0.01,
            "currency": "USD",
            "counterparty_id": rng.choice(["amazon", "shopee", "ebay", "buyer1", "sup1"], n),
            "occurred_at": ts(d),
            "due_at": ts(due),
            "paid_at": ts(paid),
        }
    )
    # loans: 1-2 per firm, monthly instalments as loan_repayment payments
    n_loans = rng.integers(1, 3, n_firms)
    lf = np.repeat(np.arange(n_firms), n_loans)
    nl = lf.size
    applied = first_day[lf] + 60 + rng.random(nl) * np.maximum(span_days - first_day[lf] - 60, 1)
    disbursed = np.where(rng.random(nl) < 0.85, applied + rng.integers(1, 10, nl), np.nan)
    term = rng.choice([90, 180, 360], nl)
    defaulted = np.where(np.isnan(disbursed), None, rng.random(nl) < 0.08).astype(object)
    unknown = ~np.isnan(disbursed) & (disbursed + 365 > span_days)
    defaulted[unknown] = None
    default_at = np.where(
        defaulted == True,  # noqa: E712
        disbursed + 90 + rng.integers(0, 200, nl),
        np.nan,
    )
    loans = pd.DataFrame(
        {
            "loan_id": [f"L{i}" for i in range(nl)],
            "firm_id": firm_ids[lf],
            "product": rng.choice(["working_capital_advance", "receivables_financing"], nl),
            "applied_at": ts(applied),
            "disbursed_at": ts(disbursed),
            "amount_usd": np.round(rng.lognormal(9, 0.7, nl), 2),
            "term_days": term.astype(np.int64),
            "defaulted": pd.array(defaulted, dtype="boolean"),
            "default_at": ts(default_at.astype(float)),
        }
    )
    inst_rows = []
    for i in np.flatnonzero(~np.isnan(disbursed)):
        k = term[i] // 30
        due_i = disbursed[i] + 30 * np.arange(1, k + 1)
        late_i = rng.choice([0, 0, 0, 3, 15, 40], k)
        paid_i = due_i + late_i - 2
        if defaulted[i] is True:
            paid_i = np.where(due_i >= default_at[i] - 90, np.nan, paid_i)
        inst_rows.append(
            pd.DataFrame(
                {
                    "firm_id": firm_ids[lf[i]],
                    "occurred_at": disbursed[i],
                    "due": due_i,
                    "paid": paid_i,
                    "amount_usd": round(float(loans.amount_usd[i]) / k, 2),
                }
            )
        )
    if inst_rows:
        inst = pd.concat(inst_rows, ignore_index=True)
        m = len(inst)
        repay = pd.DataFrame(
            {
                "payment_id": [f"R{i}" for i in range(m)],
                "firm_id": inst["firm_id"].to_numpy(),
                "kind": "loan_repayment",
                "direction": "out",
                "amount_usd": inst["amount_usd"].to_numpy(),
                "currency": "USD",
                "counterparty_id": "lender1",
                "occurred_at": ts(inst["occurred_at"].to_numpy()),
                "due_at": ts(inst["due"].to_numpy()),
                "paid_at": ts(inst["paid"].to_numpy()),
            }
        )
        payments = pd.concat([payments, repay], ignore_index=True)
    return {
        "firms": firms,
        "customs": customs,
        "shipments": shipments,
        "payments": payments,
        "loans": loans,
    }


def load_world(con: duckdb.DuckDBPyConnection, world: Mapping[str, pd.DataFrame]) -> None:
    """Create the contract tables on ``con`` and insert the world's frames."""
    for name, rt in RECORD_TYPES.items():
        con.execute(rt.create_table_sql(primary_key=False))
        df = world.get(name)
        if df is None or not len(df):
            continue
        con.register("_w", df[rt.columns])
        con.execute(f"INSERT INTO {name} SELECT * FROM _w")
        con.unregister("_w")


# --- the oracle -----------------------------------------------------------------------------

ORACLE_FEATURES = [
    "export_value_90d",
    "export_growth_90d",
    "export_monthly_cv_12m",
    "destination_hhi_365d",
    "eu_export_share_365d",
    "customs_rejected_rate_365d",
    "tax_refund_denial_rate_365d",
    "returned_rate_180d",
    "median_transit_days_180d",
    "inflow_90d",
    "refund_ratio_90d",
    "supplier_dpd_max_365d",
    "supplier_on_time_share_365d",
    "worst_loan_dpd_ever",
    "past_default_count",
    "months_of_history",
    "thin_file_flag",
]


def _known(ts: pd.Series, as_of: pd.Timestamp, lag: int) -> pd.Series:
    return (ts + lag * DAY) < as_of


def _div(a: float, b: float) -> float:
    return a / b if b else math.nan


def _days(a: pd.Series, b: pd.Series | pd.Timestamp) -> pd.Series:
    """Calendar days from a to b (difference of the dates)."""
    if isinstance(b, pd.Timestamp):
        return (b.normalize() - a.dt.normalize()).dt.days
    return (b.dt.normalize() - a.dt.normalize()).dt.days


def _oracle_row(g: Mapping[str, pd.DataFrame], as_of: pd.Timestamp) -> dict[str, float]:
    out: dict[str, float] = {}
    c = g["customs"]
    c = c[_known(c["declared_at"], as_of, LAGS["customs"])]
    c_age = (as_of - c["declared_at"]) / DAY
    exp = c[c["direction"] == "export"]
    e_age = c_age[exp.index]
    e90 = exp.loc[e_age <= 90, "value_usd"].sum()
    out["export_value_90d"] = e90
    prev = exp.loc[(e_age > 90) & (e_age <= 180), "value_usd"]
    out["export_growth_90d"] = (e90 - prev.sum()) / prev.sum() if len(prev) else math.nan
    months = [
        exp.loc[(e_age > 30 * k) & (e_age <= 30 * (k + 1)), "value_usd"].sum() for k in range(12)
    ]
    mean = float(np.mean(months))
    out["export_monthly_cv_12m"] = float(np.std(months)) / mean if mean else math.nan
    e365 = exp[e_age <= 365]
    by_dest = e365.groupby("destination_country")["value_usd"].sum()
    tot = by_dest.sum()
    out["destination_hhi_365d"] = float(((by_dest / tot) ** 2).sum()) if tot > 0 else math.nan
    out["eu_export_share_365d"] = _div(
        e365.loc[e365["destination_country"].isin(EU), "value_usd"].sum(), tot
    )
    c365 = c[c_age <= 365]
    out["customs_rejected_rate_365d"] = _div((c365["status"] == "rejected").sum(), len(c365))
    settled = c365[
        c365["tax_refund_status"].isin(["paid", "denied"])
        & _known(c365["tax_refund_settled_at"], as_of, LAGS["customs"])
    ]
    out["tax_refund_denial_rate_365d"] = _div(
        settled.loc[settled["tax_refund_status"] == "denied", "tax_refund_usd"].sum(),
        settled["tax_refund_usd"].sum(),
    )
    s = g["shipments"]
    s = s[_known(s["shipped_at"], as_of, LAGS["shipments"])]
    s180 = s[(as_of - s["shipped_at"]) / DAY <= 180]
    closed = s180[_known(s180["closed_at"], as_of, LAGS["shipments"])]
    out["returned_rate_180d"] = _div((closed["status"] == "returned").sum(), len(closed))
    deliv = closed[closed["status"] == "delivered"]
    out["median_transit_days_180d"] = (
        float(_days(deliv["shipped_at"], deliv["closed_at"]).median()) if len(deliv) else math.nan
    )
    p = g["payments"]
    p = p[_known(p["occurred_at"], as_of, LAGS["payments"])]
    p_age = (as_of - p["occurred_at"]) / DAY
    is_paid = _known(p["paid_at"], as_of, LAGS["payments"])
    p90 = p[(p_age <= 90)]
    paid90 = is_paid[p90.index]
    out["inflow_90d"] = p90.loc[
        p90["kind"].isin(["settlement", "b2b_receipt"]) & paid90, "amount_usd"
    ].sum()
    settle = p90.loc[(p90["kind"] == "settlement") & paid90, "amount_usd"]
    refunds = p90.loc[p90["kind"] == "refund", "amount_usd"].sum()
    out["refund_ratio_90d"] = _div(refunds, settle.sum()) if len(settle) else math.nan

    def dpd(frame: pd.DataFrame) -> pd.Series:
        paid_known = _known(frame["paid_at"], as_of, LAGS["payments"])
        late_paid = _days(frame["due_at"], frame["paid_at"]).clip(lower=0)
        overdue = _days(frame["due_at"], as_of)
        v = pd.Series(np.nan, index=frame.index)
        v[paid_known] = late_paid[paid_known]
        open_due = ~paid_known & (frame["due_at"] < as_of)
        v[open_due] = overdue[open_due]
        return v[frame["due_at"].notna()].dropna()

    sup = p[(p_age <= 365) & (p["kind"] == "supplier_payment")]
    sd = dpd(sup)
    out["supplier_dpd_max_365d"] = float(sd.max()) if len(sd) else math.nan
    out["supplier_on_time_share_365d"] = _div(float((sd == 0).sum()), float(len(sd)))
    lp = p[p["kind"] == "loan_repayment"]
    ld = dpd(lp)
    out["worst_loan_dpd_ever"] = float(ld.max()) if len(ld) else math.nan
    loans = g["loans"]
    loans = loans[_known(loans["applied_at"], as_of, LAGS["loans"])]
    out["past_default_count"] = float(_known(loans["default_at"], as_of, LAGS["loans"]).sum())
    firsts = []
    for name, col in (
        ("customs", "declared_at"),
        ("shipments", "shipped_at"),
        ("payments", "occurred_at"),
    ):
        frame = g[name]
        seen = frame.loc[_known(frame[col], as_of, LAGS[name]), col]
        if len(seen):
            firsts.append(seen.min())
    # whole calendar days between the dates, like every other day count of the catalog
    moh = (as_of.normalize() - min(firsts).normalize()).days / 30.4375 if firsts else 0.0
    out["months_of_history"] = moh
    n_customs_365 = len(c365)
    out["thin_file_flag"] = 1.0 if moh < 6 or n_customs_365 < 10 else 0.0
    return {k: float(out[k]) for k in ORACLE_FEATURES}


def oracle(world: Mapping[str, pd.DataFrame], spine: pd.DataFrame) -> pd.DataFrame:
    """The oracle's features for each spine row (``firm_id``, ``as_of``)."""
    by_firm = {
        name: dict(tuple(df.groupby("firm_id"))) for name, df in world.items() if name != "firms"
    }
    empty = {name: world[name].iloc[0:0] for name in by_firm}
    rows = []
    for firm_id, as_of in zip(spine["firm_id"], pd.to_datetime(spine["as_of"]), strict=True):
        g = {name: by_firm[name].get(firm_id, empty[name]) for name in by_firm}
        rows.append(_oracle_row(g, pd.Timestamp(as_of)))
    return pd.DataFrame(rows, columns=ORACLE_FEATURES)
