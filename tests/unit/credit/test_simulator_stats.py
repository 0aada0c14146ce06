"""Statistical sanity of a simulated world: default rate, seasonality, shocks, distress.

One world of 2,500 firms over 2024-2025 (both shocks inside the window) is shared by the
tests; thresholds leave room for sampling noise at that size.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from credit.simulator import World, simulate
from credit.simulator.summary import summarize


@pytest.fixture(scope="module")
def world() -> World:
    return simulate(firms=2500, start="2024-01", months=24, seed=3, today=dt.date(2026, 1, 1))


def _export_value(w: World, mask: pd.Series | None = None) -> pd.Series:
    c = w.customs[w.customs["direction"] == "export"]
    if mask is not None:
        c = c[mask.loc[c.index]]
    return c.groupby(c["declared_at"].dt.to_period("M"))["value_usd"].sum()


def test_default_rate_in_range_and_varies(world: World) -> None:
    s = summarize(world)
    assert 0.02 <= s["default_rate"] <= 0.06, s["default_rate"]
    by_bm = s["default_rate_by_business_model"]
    assert set(by_bm) == {"b2b", "b2c", "mixed"}
    assert max(by_bm.values()) > 1.15 * min(by_bm.values()), by_bm
    assert s["b2b_value_share"] >= 0.6
    assert s["oracle_auc"] > s["worst_dpd_auc"] + 0.1


def test_seasonality_q4_peak_and_new_year_trough(world: World) -> None:
    v = _export_value(world)
    p = pd.Period
    # Q4 peak, both years together so that the common business cycle does not decide:
    # consumer parcels in November well above September, all exports in Q4 above Q3
    parcels = _export_value(world, world.customs["regime"].isin(["9610", "1210"]))
    nov = parcels[p("2024-11", "M")] + parcels[p("2025-11", "M")]
    sep = parcels[p("2024-09", "M")] + parcels[p("2025-09", "M")]
    assert nov > 1.12 * sep, nov / sep
    quarter = v.groupby(v.index.quarter).sum()
    assert quarter[4] > 1.05 * quarter[3], quarter
    # New Year on 10 Feb 2024: February well below January and March
    assert v[p("2024-02", "M")] < 0.75 * (v[p("2024-01", "M")] + v[p("2024-03", "M")]) / 2


def _ratio(v: pd.Series, after: tuple[str, str], before: tuple[str, str]) -> float:
    idx = v.index.to_timestamp()
    a = v[(idx >= after[0]) & (idx <= after[1])].sum()
    b = v[(idx >= before[0]) & (idx <= before[1])].sum()
    return float(a / b)


def test_de_minimis_hits_us_consumer_parcels_only(world: World) -> None:
    c = world.customs
    parcels = c["regime"].isin(["9610", "1210"])
    b2b = c["regime"].isin(["9710", "0110"])
    us = c["destination_country"] == "US"
    after, before = ("2025-06-01", "2025-10-31"), ("2024-06-01", "2024-10-31")
    us_parcels = _ratio(_export_value(world, parcels & us), after, before)
    other_parcels = _ratio(_export_value(world, parcels & ~us), after, before)
    us_b2b = _ratio(_export_value(world, b2b & us), after, before)
    other_b2b = _ratio(_export_value(world, b2b & ~us), after, before)
    assert us_parcels < 0.65 * other_parcels, (us_parcels, other_parcels)
    assert 0.8 < us_b2b / other_b2b < 1.25, (us_b2b, other_b2b)


def test_gpsr_raises_checks_on_eu_consumer_goods_only(world: World) -> None:
    c = world.customs.merge(world.firms[["firm_id", "main_category"]], on="firm_id")
    eu = c["destination_country"].isin(["DE", "FR", "NL", "IT", "ES", "PL"])
    consumer = c["main_category"].isin(
        ["textiles_apparel", "home_furnishings", "cosmetics", "electronics_digital"]
    )
    parcels = c["regime"].isin(["9610", "1210"])
    checked = c["status"] != "cleared"
    before = c["declared_at"].between("2024-06-01", "2024-11-30")
    after = c["declared_at"].between("2024-12-16", "2025-04-30")

    def rise(group: pd.Series) -> float:
        return float(checked[group & after].mean() - checked[group & before].mean())

    assert rise(parcels & eu & consumer) > 0.08
    assert abs(rise(parcels & ~eu)) < 0.04
    assert abs(rise(parcels & eu & ~consumer)) < 0.05


def test_supplier_payment_delays_rise_before_default(world: World) -> None:
    end = pd.Timestamp(world.end)
    p = world.payments
    sup = p[p["kind"] == "supplier_payment"].copy()
    sup["delay"] = (sup["paid_at"].fillna(end) - sup["due_at"]).dt.days
    sup = sup[sup["due_at"] < end]
    loans = world.loans
    d = loans[loans["defaulted"].fillna(False)]
    assert len(d) >= 30
    m = sup.merge(d[["firm_id", "applied_at", "default_at"]], on="firm_id")
    first_miss = m["default_at"] - pd.Timedelta(days=90)
    # the two months before the first missed instalment (after the application), against
    # the half-year before the application
    near = m[
        (m["due_at"] <= first_miss)
        & (m["due_at"] > first_miss - pd.Timedelta(days=60))
        & (m["due_at"] > m["applied_at"])
    ]
    half_year = pd.Timedelta(days=180)
    early = m[(m["due_at"] <= m["applied_at"]) & (m["due_at"] > m["applied_at"] - half_year)]
    healthy = sup[~sup["firm_id"].isin(d["firm_id"])]
    assert near["delay"].mean() > 1.4 * early["delay"].mean(), (
        near["delay"].mean(),
        early["delay"].mean(),
    )
    assert near["delay"].mean() > 2 * healthy["delay"].mean()


def test_truth_pd_drives_outcomes(world: World) -> None:
    t = world.truth.merge(world.loans[["loan_id", "defaulted"]], on="loan_id")
    t = t[t["matured"]]
    y = t["defaulted"].astype(bool).to_numpy()
    pd_ = t["true_pd"].to_numpy()
    # calibrated: the mean true PD matches the default rate within sampling error
    se = np.sqrt(pd_.mean() * (1 - pd_.mean()) / len(pd_))
    assert abs(y.mean() - pd_.mean()) < 4 * se
    # healthier firms (top health quartile) default far less than the bottom quartile
    q = np.quantile(t["health"], [0.25, 0.75])
    assert y[t["health"] >= q[1]].mean() < 0.5 * y[t["health"] <= q[0]].mean()


@pytest.mark.slow
def test_default_settings_leave_room_for_features() -> None:
    # the command's defaults (start 2023-01, 36 months) at a third of the default size
    s = summarize(simulate(firms=6000, months=36, seed=7, today=dt.date(2026, 1, 1)))
    assert 0.02 <= s["default_rate"] <= 0.06
    assert s["oracle_auc"] >= 0.80, s["oracle_auc"]
    assert s["worst_dpd_auc"] < s["oracle_auc"] - 0.15, s["worst_dpd_auc"]


def test_de_minimis_tightens_cash_of_exposed_firms_only(world: World) -> None:
    # difference in differences on supplier-payment delays, June-December 2025 against the
    # same months of 2024, exposed sellers against sellers exposed to neither shock
    sh = world.latent.shocks
    firm_ids = world.firms["firm_id"].to_numpy()
    exposed = set(firm_ids[sh.exposure_dm > 0.4])
    untouched = set(firm_ids[(sh.exposure_dm == 0) & (sh.exposure_gpsr == 0)])
    p = world.payments
    sup = p[(p["kind"] == "supplier_payment") & p["paid_at"].notna()]
    delay = (sup["paid_at"] - sup["due_at"]).dt.days
    after = sup["due_at"].between("2025-06-01", "2025-11-30")
    before = sup["due_at"].between("2024-06-01", "2024-11-30")

    def rise(firms: set[str]) -> float:
        mine = sup["firm_id"].isin(firms)
        return float(delay[mine & after].mean() - delay[mine & before].mean())

    assert len(exposed) >= 50
    assert rise(exposed) > rise(untouched) + 3, (rise(exposed), rise(untouched))
