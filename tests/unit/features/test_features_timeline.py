"""Hand-computed features on one small, hand-written timeline (every family, exact values).

The firm F1 is scored as of T = 2025-07-01 00:00 with the default availability lags
(customs 3 days, shipments 1, payments 1, loans 0). Each record carries a comment saying
why it counts or not; each expected value says how it was worked out by hand.
"""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd
import pytest

from credit.records import RECORD_TYPES
from features.catalog import feature_names
from features.pipeline import build, compute

T = pd.Timestamp("2025-07-01")

FIRM = ("F1", "2022-07-01", "b2c", "cosmetics", "CN-GD")

# declaration_id, declared_at, direction, regime, hs_code, dest, value, status,
# tax_refund_usd, tax_refund_status, tax_refund_settled_at
CUSTOMS = [
    # age 11 days: 30d window; refund claimed, still pending
    ("C1", "2025-06-20", "export", "9610", "330499", "US", 1000, "cleared", 90, "pending", None),
    # 06-29 + 3 days lag = 07-02 >= T: not yet available, never counts
    ("C2", "2025-06-29", "export", "9710", "330499", "DE", 5000, "cleared", 0, "none", None),
    # age 47: 90d window; inspected; refund paid 06-10 (+3 = 06-13 < T): settled after 26 days
    ("C3", "2025-05-15", "export", "9710", "950300", "DE", 2000, "inspected", 180, "paid",
     "2025-06-10"),
    # age 122: prior-90d window; rejected; refund denied 06-29 but +3 = 07-02 >= T: pending
    ("C4", "2025-03-01", "export", "9710", "330499", "JP", 3000, "rejected", 270, "denied",
     "2025-06-29"),
    # age 150: an import
    ("C5", "2025-02-01", "import", "0110", "851762", "US", 500, "cleared", 0, "none", None),
    # age 351: last 30-day period of the year (330, 360]
    ("C6", "2024-07-15", "export", "9710", "330499", "US", 1500, "cleared", 0, "none", None),
    # age 447: outside 365 days, inside the year-ago quarter (365, 455]
    ("C7", "2024-04-10", "export", "9710", "330499", "US", 800, "cleared", 0, "none", None),
]  # fmt: skip

# shipment_id, shipped_at, closed_at, mode, dest, destination_type, value, status
SHIPMENTS = [
    # age 30; express delivered in 4 days (SLA 7): on time
    ("S1", "2025-06-01", "2025-06-05", "express", "US", "consumer", 100, "delivered"),
    # age 61; postal delivered in 30 days (SLA 20): late
    ("S2", "2025-05-01", "2025-05-31", "postal", "DE", "consumer", 50, "delivered"),
    # age 91: prior 90 days; returned; a US consumer parcel but worth more than 800
    ("S3", "2025-04-01", "2025-04-20", "air", "US", "consumer", 900, "returned"),
    # age 11; delivered 07-05, after T: in transit as of T
    ("S4", "2025-06-20", "2025-07-05", "sea", "DE", "business", 5000, "delivered"),
    # shipped 06-30 12:00, + 1 day lag = 07-01 12:00 >= T: not available
    ("S5", "2025-06-30 12:00", "2025-07-02", "express", "US", "consumer", 10, "delivered"),
    # age 150; a low-value US consumer parcel, lost
    ("S6", "2025-02-01", "2025-03-10", "postal", "US", "consumer", 20, "lost"),
    # age 212: outside 180 days, inside 365; overseas warehouse, damaged
    ("S7", "2024-12-01", "2024-12-09", "express", "JP", "overseas_warehouse", 3000, "damaged"),
]

# payment_id, kind, amount, counterparty, occurred_at, due_at, paid_at
PAYMENTS = [
    ("P1", "settlement", 1000, "amazon", "2025-06-25", None, "2025-06-25"),  # age 6
    ("P2", "settlement", 2000, "shopee", "2025-05-10", None, "2025-05-10"),  # age 52
    ("P3", "settlement", 1500, "amazon", "2025-03-20", None, "2025-03-20"),  # age 103: prior 90
    ("P4", "refund", 300, "amazon", "2025-06-10", None, "2025-06-10"),  # age 21
    ("P5", "refund", 100, "amazon", "2025-03-25", None, "2025-03-25"),  # age 98: prior 90
    ("P6", "chargeback", 50, "amazon", "2025-06-12", None, "2025-06-12"),  # age 19
    ("P7", "fee", 100, "amazon", "2025-06-01", None, "2025-06-01"),  # age 30
    # age 91 (outside 90d outflows); paid 20 days late
    ("P8", "supplier_payment", 800, "sup1", "2025-04-01", "2025-05-01", "2025-05-21"),
    # unpaid, due 06-01: 30 days past due at T
    ("P9", "supplier_payment", 400, "sup1", "2025-05-01", "2025-06-01", None),
    # paid 07-02, after T: unpaid as of T, 12 days past due (06-19 -> 07-01)
    ("P10", "supplier_payment", 600, "sup2", "2025-05-20", "2025-06-19", "2025-07-02"),
    # due 07-15: not yet due, no DPD
    ("P11", "supplier_payment", 200, "sup2", "2025-06-15", "2025-07-15", None),
    # paid before due: 0 DPD; age 150
    ("P12", "supplier_payment", 500, "sup1", "2025-02-01", "2025-03-01", "2025-02-25"),
    # B2B invoice paid 06-20, 36 days late; age 77: a 90-day inflow
    ("P13", "b2b_receipt", 3000, "buyer1", "2025-04-15", "2025-05-15", "2025-06-20"),
    # B2B invoice unpaid, due 05-31: 31 days past due
    ("P14", "b2b_receipt", 1000, "buyer2", "2025-05-01", "2025-05-31", None),
    # 06-30 10:00 + 1 day >= T: not available
    ("P15", "settlement", 700, "amazon", "2025-06-30 10:00", None, "2025-06-30 10:00"),
    # loan L1 instalments: DPD 0, 20, 40
    ("P16", "loan_repayment", 1000, "lender", "2025-01-15", "2025-02-14", "2025-02-14"),
    ("P17", "loan_repayment", 1000, "lender", "2025-01-15", "2025-03-16", "2025-04-05"),
    ("P18", "loan_repayment", 1000, "lender", "2025-01-15", "2025-04-15", "2025-05-25"),
    # loan L2 instalments: due 07-05 (within 30 days of T) and 12-02; unpaid, not yet due
    ("P19", "loan_repayment", 2500, "lender", "2025-06-05", "2025-07-05", None),
    ("P20", "loan_repayment", 2500, "lender", "2025-06-05", "2025-12-02", None),
]

# loan_id, product, applied_at, disbursed_at, amount, term_days, defaulted, default_at
LOANS = [
    # old loan, defaulted 2023-10-01 (before T)
    ("L0", "working_capital_advance", "2023-05-01", "2023-05-03", 1000, 90, True, "2023-10-01"),
    # 167 days since disbursement > 90-day term: repaid, not outstanding
    ("L1", "working_capital_advance", "2025-01-10", "2025-01-15", 3000, 90, False, None),
    # disbursed 26 days before T, 180-day term: outstanding
    ("L2", "receivables_financing", "2025-06-01", "2025-06-05", 5000, 180, None, None),
    # applied exactly at T: not before T, never counts
    ("L3", "working_capital_advance", "2025-07-01", None, 9000, 90, None, None),
]


def _frames() -> dict[str, pd.DataFrame]:
    firms = pd.DataFrame([FIRM], columns=RECORD_TYPES["firms"].columns)
    customs = pd.DataFrame(
        [
            (i, "F1", d, dr, rg, hs, "CN", dest, v, 1.0, st, tr, trs, ts)
            for i, d, dr, rg, hs, dest, v, st, tr, trs, ts in CUSTOMS
        ],
        columns=RECORD_TYPES["customs"].columns,
    )
    shipments = pd.DataFrame(
        [
            (i, "F1", None, s, c, m, "CN", dest, dt, 1.0, v, st)
            for i, s, c, m, dest, dt, v, st in SHIPMENTS
        ],
        columns=RECORD_TYPES["shipments"].columns,
    )
    inflow = {"settlement", "b2b_receipt", "loan_disbursement"}
    payments = pd.DataFrame(
        [
            (i, "F1", k, "in" if k in inflow else "out", a, "USD", cp, o, d, p)
            for i, k, a, cp, o, d, p in PAYMENTS
        ],
        columns=RECORD_TYPES["payments"].columns,
    )
    loans = pd.DataFrame(
        [(i, "F1", p, a, d, amt, t, df, da) for i, p, a, d, amt, t, df, da in LOANS],
        columns=RECORD_TYPES["loans"].columns,
    )
    out = {"firms": firms, "customs": customs, "shipments": shipments, "payments": payments}
    out["loans"] = loans
    for name, df in out.items():
        for f in RECORD_TYPES[name].fields:
            if f.dtype == "timestamp":
                df[f.name] = pd.to_datetime(df[f.name], format="ISO8601")
    return out


def _store(frames: dict[str, pd.DataFrame]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for name, rt in RECORD_TYPES.items():
        con.execute(rt.create_table_sql())
        con.register("_f", frames[name])
        con.execute(f"INSERT INTO {name} SELECT * FROM _f")
        con.unregister("_f")
    return con


@pytest.fixture(scope="module")
def row() -> pd.Series:
    con = _store(_frames())
    out = build(con, pd.DataFrame({"firm_id": ["F1"], "as_of": [T]}), with_market=True)
    return out.iloc[0]


HHI_3 = (2500**2 + 2000**2 + 3000**2) / 7500**2  # shares of 2500, 2000, 3000 in 7500
MONTHS = [1000, 2000, 0, 0, 3000, 0, 0, 0, 0, 0, 0, 1500]  # 30-day periods: C1 C3 . . C4 ... C6

EXPECTED: dict[str, float] = {
    # --- scale and growth (visible exports: C1 1000 age 11, C3 2000 age 47, C4 3000 age 122,
    # C6 1500 age 351, C7 800 age 447; C2 is inside the customs lag)
    "export_value_30d": 1000,  # C1
    "export_value_90d": 3000,  # C1 + C3
    "export_value_365d": 7500,  # C1 + C3 + C4 + C6
    "export_count_90d": 2,  # C1, C3
    "export_growth_90d": 0.0,  # (3000 - C4 3000) / 3000
    "export_yoy_90d": 2.75,  # (3000 - C7 800) / 800
    "export_active_months_12m": 4,  # periods 0, 1, 4, 11
    "mean_export_declaration_usd_365d": 1875,  # 7500 / 4
    "import_value_365d": 500,  # C5
    # --- volatility
    "export_monthly_cv_12m": float(np.std(MONTHS) / np.mean(MONTHS)),
    "export_max_monthly_drop_12m": 1.0,  # period 4 (3000) -> period 3 (0)
    "export_peak_month_share_12m": 0.4,  # 3000 / 7500
    "export_last_month_vs_mean_12m": 1.6,  # 1000 / (7500 / 12)
    # --- diversification
    "destination_hhi_365d": HHI_3,  # US 2500 (C1 + C6), DE 2000, JP 3000
    "hs_chapter_hhi_365d": (5500**2 + 2000**2) / 7500**2,  # ch. 33: 5500, ch. 95: 2000
    "n_destination_countries_365d": 3,
    "n_regions_365d": 3,  # US, EU, JP
    "n_hs_chapters_365d": 2,
    "us_export_share_365d": 2500 / 7500,
    "eu_export_share_365d": 2000 / 7500,
    "buyer_hhi_365d": HHI_3,  # amazon 2500 (P1 + P3), shopee 2000, buyer1 3000
    "n_buyers_365d": 3,
    # --- customs compliance (declarations within 365 days: C1 C3 C4 C5 C6)
    "customs_inspected_rate_365d": 0.2,  # C3
    "customs_held_rate_365d": 0.0,
    "customs_rejected_rate_365d": 0.2,  # C4
    "customs_issue_rate_trend_90d": 0.5 - 0.5,  # 90d: C3 of C1,C3; prior: C4 of C4,C5
    "tax_refund_denial_rate_365d": 0.0,  # only C3 (paid) settled by T; C4's denial is later
    "pending_tax_refund_usd": 360,  # C1 90 + C4 270
    "median_refund_settle_days_365d": 26,  # C3: 05-15 -> 06-10
    "b2c_direct_mail_share_365d": 1000 / 7500,  # C1 under 9610
    "overseas_warehouse_regime_share_365d": 0.0,
    "pending_refund_to_exports": 360 / 7500,
    "eu_consumer_goods_share_365d": 2000 / 7500,  # C3: DE, HS chapter 95
    # --- logistics (180 days: S1 S2 S3 S4 S6; closed by T: S1 S2 S3 S6)
    "shipment_count_90d": 3,  # S1, S2, S4
    "shipment_count_365d": 6,  # all but S5
    "shipment_growth_90d": 0.5,  # (3 - 2 [S3, S6]) / 2
    "on_time_delivery_rate_180d": 0.25,  # S1 of 4 closed
    "returned_rate_180d": 0.25,  # S3
    "lost_rate_180d": 0.25,  # S6
    "damaged_rate_180d": 0.0,  # S7 is older than 180 days
    "return_rate_trend_90d": 0.0 - 0.5,  # 90d: 0 of S1,S2; prior: S3 of S3,S6
    "median_transit_days_180d": 17,  # S1 4, S2 30
    "in_transit_share_90d": 1 / 3,  # S4 of S1, S2, S4
    "overseas_warehouse_share_365d": 3000 / 9070,  # S7 of 100+50+900+5000+20+3000
    "express_share_365d": 0.5,  # S1, S3 (air), S7
    "mean_shipment_value_usd_365d": 9070 / 6,
    "us_low_value_b2c_share_365d": 2 / 6,  # S1 (100), S6 (20); S3 is worth 900
    # --- cash flow
    "inflow_30d": 1000,  # P1
    "inflow_90d": 6000,  # P1 + P2 + P13 (P14 unpaid)
    "inflow_365d": 7500,  # + P3
    "inflow_growth_90d": 3.0,  # (6000 - 1500) / 1500
    "outflow_90d": 450,  # P4 300 + P6 50 + P7 100 (P8 age 91; P9-P11 unpaid at T)
    "inflow_outflow_ratio_90d": 6000 / 450,
    # prior 90 days: P3 1500 / (P5 100 + P8 800 + P12 500)
    "inflow_outflow_ratio_trend_90d": 6000 / 450 - 1500 / 1400,
    "refund_ratio_90d": 0.1,  # P4 300 / (P1 + P2) 3000
    "refund_ratio_trend_90d": 0.1 - 100 / 1500,  # prior: P5 / P3
    "chargeback_ratio_90d": 50 / 3000,
    "fee_ratio_90d": 100 / 6000,
    "mean_days_between_payouts_90d": 46,  # P2 (age 52) to P1 (age 6)
    "days_since_last_inflow": 6,  # P1
    "receivables_overdue_share_365d": 0.25,  # P14 1000 of 4000
    "buyer_dpd_mean_365d": 33.5,  # P13 36, P14 31
    "net_cash_flow_90d": 5550,
    "inflow_to_exports_365d": 1.0,  # 7500 / 7500
    # --- payment discipline (supplier DPD: P8 20, P9 30, P10 12, P12 0; P11 not due)
    "supplier_dpd_mean_365d": 15.5,
    "supplier_dpd_max_365d": 30,
    "supplier_dpd30_count_365d": 1,  # P9
    "supplier_on_time_share_365d": 0.25,  # P12
    "supplier_overdue_unpaid_usd": 1000,  # P9 400 + P10 600
    "supplier_payment_coverage_90d": 0.0,  # due by T: P9 400, P10 600; neither paid by T
    "supplier_dpd_trend_90d": 21 - 10,  # 90d: P9, P10 -> 21; prior: P8, P12 -> 10
    "worst_loan_dpd_ever": 40,  # P18
    "loan_dpd_max_90d": math.nan,  # P19, P20 not yet due
    "loan_instalments_late_share": 2 / 3,  # P17, P18 of P16-P18
    "loan_instalments_due_ever": 3,
    "past_default_count": 1,  # L0
    "loans_outstanding_count": 1,  # L2
    "loans_outstanding_usd": 5000,
    "loan_applications_365d": 2,  # L1, L2 (L3 at T does not count)
    "loan_due_next_30d_usd": 2500,  # P19
    "loan_due_to_inflow_30d": 2.5,  # 2500 / 1000
    # --- tenure
    "firm_age_days": 1096,  # 2022-07-01 -> 2025-07-01
    "months_of_history": 447 / 30.4375,  # first record C7 2024-04-10, 447 days before T
    "n_customs_365d": 5,
    "n_payments_365d": 19,  # P1-P20 but P15
    "records_365d": 30,  # 5 + 6 + 19
    "thin_file_flag": 1,  # under 10 declarations in the year
    "has_loan_history": 1,
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hand_computed(row: pd.Series, name: str) -> None:
    expected = EXPECTED[name]
    got = row[name]
    if math.isnan(expected):
        assert math.isnan(got), f"{name}: expected NaN, got {got}"
    else:
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-12), name


def test_every_family_is_checked() -> None:
    from features.catalog import CATALOG, FAMILIES

    checked = {f.family for f in CATALOG if f.name in EXPECTED}
    assert checked == set(FAMILIES)
    # almost the whole catalog has a hand-computed value here
    assert len(EXPECTED) >= 0.9 * len(feature_names())


def test_main_market(row: pd.Series) -> None:
    assert row["main_market"] == "JP"  # JP 3000 > US 2500 > EU 2000


def test_online_path_gives_the_same_row(row: pd.Series) -> None:
    fr = _frames()
    records = {k: fr[k] for k in ("customs", "shipments", "payments", "loans")}
    got = compute(records, T, firm=fr["firms"].iloc[0].to_dict())
    for name in feature_names():
        a, b = got[name], row[name]
        assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9), name


def test_later_as_of_sees_the_settlements() -> None:
    """A week later C4's denial, S4's delivery and P10's payment are known."""
    con = _store(_frames())
    out = build(con, pd.DataFrame({"firm_id": ["F1"], "as_of": [T + pd.Timedelta(days=7)]}))
    r = out.iloc[0]
    assert r["tax_refund_denial_rate_365d"] == pytest.approx(270 / (180 + 270))
    assert r["in_transit_share_90d"] == pytest.approx(0.0)  # S4, S5 delivered by 07-08
    assert r["supplier_overdue_unpaid_usd"] == pytest.approx(400)  # only P9 left
    assert r["supplier_payment_coverage_90d"] == pytest.approx(600 / 1000)  # P10 paid 07-02
