"""The relations the catalog implies between features (:mod:`features.relations`).

Vectors computed from records (hand-written ones, a few simulated firms, a firm with no
records at all) break none of them; a targeted edit of one feature breaks exactly the
relations that feature takes part in; NaN ("no records") breaks nothing except a derived
feature whose NaN does not match its expression.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

from features.catalog import CATALOG, feature_names
from features.pipeline import compute
from features.relations import relations, violations
from tests.record_support import payment

AS_OF = "2025-01-01"
FIRM = {
    "firm_id": "F1",
    "registered_at": "2022-03-01",
    "business_model": "mixed",
    "main_category": "textiles_apparel",
    "home_region": "CN-GD",
}


def _customs(i: int, day: str, direction: str = "export", **kw: Any) -> dict[str, Any]:
    rec = {
        "declaration_id": f"C{i}",
        "firm_id": "F1",
        "declared_at": day,
        "direction": direction,
        "regime": "9610" if i % 2 else "9810",
        "hs_code": "610910" if i % 3 else "940360",
        "origin_country": "CN",
        "destination_country": ("US", "DE", "FR")[i % 3] if direction == "export" else "CN",
        "value_usd": 1000.0 + 100 * i,
        "quantity": 10.0,
        "status": ("cleared", "inspected", "held")[i % 3],
        "tax_refund_usd": 0.0,
        "tax_refund_status": "none",
        "tax_refund_settled_at": None,
    }
    rec.update(kw)
    return rec


def _shipment(i: int, day: str, closed: str | None, status: str, **kw: Any) -> dict[str, Any]:
    rec = {
        "shipment_id": f"S{i}",
        "firm_id": "F1",
        "declaration_id": None,
        "shipped_at": day,
        "closed_at": closed,
        "mode": ("postal", "express", "air")[i % 3],
        "origin_country": "CN",
        "destination_country": "US",
        "destination_type": ("consumer", "overseas_warehouse")[i % 2],
        "weight_kg": 2.0 + i,
        "declared_value_usd": 50.0 * (i + 1),
        "status": status,
    }
    rec.update(kw)
    return rec


def _hand_written() -> dict[str, list[dict[str, Any]]]:
    months = [f"2024-{m:02d}-10" for m in range(2, 13)]
    customs = [_customs(i, d) for i, d in enumerate(months)]
    customs.append(_customs(20, "2024-06-05", direction="import"))
    customs.append(
        _customs(
            21,
            "2024-09-01",
            tax_refund_usd=90.0,
            tax_refund_status="paid",
            tax_refund_settled_at="2024-10-20",
        )
    )
    customs.append(_customs(22, "2024-11-20", tax_refund_usd=40.0, tax_refund_status="pending"))
    shipments = [
        _shipment(1, "2024-08-01", "2024-08-15", "delivered"),
        _shipment(2, "2024-10-01", "2024-10-25", "returned"),
        _shipment(3, "2024-11-01", "2024-11-30", "lost"),
        _shipment(4, "2024-12-20", None, "in_transit"),
        _shipment(5, "2024-12-01", "2024-12-06", "delivered"),
    ]
    payments = [
        payment("P1", "settlement", 2000.0, "2024-11-15", None, "2024-11-15", "AMAZON"),
        payment("P2", "settlement", 1500.0, "2024-12-15", None, "2024-12-15", "SHOPIFY"),
        payment("P3", "b2b_receipt", 900.0, "2024-10-01", "2024-11-01", "2024-11-20", "B1"),
        payment("P4", "b2b_receipt", 700.0, "2024-11-01", "2024-12-01", None, "B2"),
        payment("P5", "supplier_payment", 800.0, "2024-09-01", "2024-10-01", "2024-11-15", "SU1"),
        payment("P6", "supplier_payment", 300.0, "2024-11-01", "2024-12-01", None, "SU2"),
        payment("P7", "refund", 60.0, "2024-12-05", None, "2024-12-05", "AMAZON"),
        payment("P8", "fee", 25.0, "2024-12-05", None, "2024-12-05", "AMAZON"),
        payment("P9", "loan_disbursement", 1000.0, "2024-10-01", None, "2024-10-01", "L1"),
        payment("P10", "loan_repayment", 520.0, "2024-10-01", "2024-11-01", "2024-11-03", "L1"),
        payment("P11", "loan_repayment", 520.0, "2024-10-01", "2024-12-01", None, "L1"),
        payment("P12", "loan_repayment", 520.0, "2024-10-01", "2025-01-20", None, "L1"),
    ]
    loans = [
        {
            "loan_id": "LN1",
            "firm_id": "F1",
            "product": "working_capital_advance",
            "applied_at": "2024-09-25",
            "disbursed_at": "2024-10-01",
            "amount_usd": 1000.0,
            "term_days": 120,
            "defaulted": None,
            "default_at": None,
        }
    ]
    return {"customs": customs, "shipments": shipments, "payments": payments, "loans": loans}


@pytest.fixture(scope="module")
def vec() -> dict[str, float]:
    v = compute(_hand_written(), AS_OF, firm=FIRM)
    # the edits below rely on these being numbers
    for n in ("export_value_30d", "export_value_90d", "inflow_90d", "outflow_90d"):
        assert not math.isnan(v[n]), n
    assert v["export_value_90d"] > 0 and v["outflow_90d"] > 0
    return v


def _edit(v: dict[str, float], **changes: float) -> dict[str, float]:
    out = dict(v)
    for k, x in changes.items():
        assert k in out, k
        out[k] = x
    return out


# -- the relations themselves ---------------------------------------------------------------


def test_relation_names_are_unique_and_cover_the_catalog() -> None:
    names = [r.name for r in relations()]
    assert len(names) == len(set(names))
    assert relations() is relations()  # built once
    by_name = set(names)
    for f in CATALOG:
        if f.source == "derived":
            assert f"{f.name} = its expression" in by_name
        if f.dtype == "count":
            assert f"{f.name} is a whole number >= 0" in by_name
        if f.dtype == "flag":
            assert f"{f.name} is 0 or 1" in by_name
        if f.aggregation == "hhi":
            assert f"0 <= {f.name} <= 1" in by_name
        if f.aggregation == "monthly_active":
            assert f"{f.name} <= 12" in by_name
    for pair in (
        "export_value_30d <= export_value_90d",
        "export_value_90d <= export_value_365d",
        "inflow_30d <= inflow_90d",
        "inflow_90d <= inflow_365d",
        "shipment_count_90d <= shipment_count_365d",
    ):
        assert pair in by_name
    # only adjacent windows are chained (the transitive one follows)
    assert "export_value_30d <= export_value_365d" not in by_name
    # a ratio whose numerator is not among its denominator's records is unbounded
    assert "0 <= inflow_outflow_ratio_90d <= 1" not in by_name
    assert "0 <= refund_ratio_90d <= 1" not in by_name
    assert "0 <= us_export_share_365d <= 1" in by_name
    assert "0 <= receivables_overdue_share_365d <= 1" in by_name
    # a derived feature gets no blanket sign relation (net cash flow may be negative)
    assert "net_cash_flow_90d >= 0" not in by_name


# -- vectors computed from records ------------------------------------------------------------


def test_a_vector_computed_from_hand_written_records_breaks_no_relation(
    vec: dict[str, float],
) -> None:
    assert set(vec) == set(feature_names())
    assert violations(vec) == []


def test_a_firm_without_records_breaks_no_relation() -> None:
    v = compute({}, AS_OF, firm=FIRM)
    assert any(math.isnan(x) for x in v.values())  # NaN where the catalog says "no records"
    assert violations(v) == []


def test_simulated_firms_break_no_relation() -> None:
    from credit.simulator import simulate

    frames = dict(simulate(firms=20, start="2024-01", months=12, seed=1).frames())
    firms = frames["firms"]
    for fid in firms["firm_id"].tolist()[:4]:
        recs = {k: df[df["firm_id"] == fid] for k, df in frames.items() if k != "firms"}
        firm = firms[firms["firm_id"] == fid].iloc[0].to_dict()
        for as_of in ("2024-07-01", "2025-01-01"):
            v = compute(recs, as_of, firm=firm)
            assert violations(v) == [], (fid, as_of)


# -- targeted edits -------------------------------------------------------------------------


def test_a_derived_feature_off_its_expression(vec: dict[str, float]) -> None:
    v = _edit(vec, net_cash_flow_90d=vec["inflow_90d"] - vec["outflow_90d"] + 1.0)
    assert violations(v) == ["net_cash_flow_90d = its expression"]
    # an input of the expression moved, the derived value not: the same relation breaks
    v = _edit(vec, outflow_90d=vec["outflow_90d"] + 10.0)
    assert violations(v) == ["net_cash_flow_90d = its expression"]
    # a rounding error is not a violation
    exact = vec["inflow_90d"] - vec["outflow_90d"]
    v = _edit(vec, net_cash_flow_90d=exact + 1e-9 * max(1.0, abs(exact)))
    assert violations(v) == []


def test_a_shorter_window_above_the_longer_one(vec: dict[str, float]) -> None:
    v = _edit(vec, export_value_30d=vec["export_value_90d"] + 1.0)
    assert violations(v) == ["export_value_30d <= export_value_90d"]
    v = _edit(vec, shipment_count_90d=vec["shipment_count_365d"] + 1.0)
    assert violations(v) == ["shipment_count_90d <= shipment_count_365d"]
    # equal windows are fine
    v = _edit(vec, export_value_30d=vec["export_value_90d"])
    assert violations(v) == []


def test_a_count_that_is_not_a_whole_number(vec: dict[str, float]) -> None:
    assert violations(_edit(vec, export_count_90d=2.5)) == [
        "export_count_90d is a whole number >= 0"
    ]
    assert violations(_edit(vec, n_buyers_365d=-1.0)) == [
        "n_buyers_365d is a whole number >= 0",
        "n_buyers_365d >= 0",
    ]


def test_a_flag_that_is_neither_0_nor_1(vec: dict[str, float]) -> None:
    # both flags are derived: 0.5 is also off their expression
    assert sorted(violations(_edit(vec, thin_file_flag=0.5))) == [
        "thin_file_flag = its expression",
        "thin_file_flag is 0 or 1",
    ]
    flipped = 1.0 - vec["has_loan_history"]
    assert violations(_edit(vec, has_loan_history=flipped)) == ["has_loan_history = its expression"]


def test_shares_and_concentrations_outside_0_1(vec: dict[str, float]) -> None:
    assert violations(_edit(vec, buyer_hhi_365d=1.3)) == ["0 <= buyer_hhi_365d <= 1"]
    assert violations(_edit(vec, destination_hhi_365d=-0.1)) == ["0 <= destination_hhi_365d <= 1"]
    assert violations(_edit(vec, us_export_share_365d=1.5)) == ["0 <= us_export_share_365d <= 1"]
    assert violations(_edit(vec, buyer_hhi_365d=1.0, us_export_share_365d=0.0)) == []
    # an unbounded ratio may exceed 1
    assert violations(_edit(vec, inflow_outflow_ratio_90d=7.0)) == []


def test_a_negative_sum_mean_or_median(vec: dict[str, float]) -> None:
    assert violations(_edit(vec, import_value_365d=-5.0)) == ["import_value_365d >= 0"]
    assert violations(_edit(vec, mean_shipment_value_usd_365d=-1.0)) == [
        "mean_shipment_value_usd_365d >= 0"
    ]
    assert violations(_edit(vec, median_transit_days_180d=-2.0)) == [
        "median_transit_days_180d >= 0"
    ]


def test_active_months_above_12(vec: dict[str, float]) -> None:
    assert violations(_edit(vec, export_active_months_12m=13.0)) == [
        "export_active_months_12m <= 12"
    ]
    assert violations(_edit(vec, export_active_months_12m=12.0)) == []


def test_several_edits_report_every_broken_relation(vec: dict[str, float]) -> None:
    v = _edit(vec, buyer_hhi_365d=2.0, import_value_365d=-1.0, export_count_90d=0.5)
    assert set(violations(v)) == {
        "0 <= buyer_hhi_365d <= 1",
        "import_value_365d >= 0",
        "export_count_90d is a whole number >= 0",
    }


# -- NaN ------------------------------------------------------------------------------------


def test_nan_takes_part_in_no_violation(vec: dict[str, float]) -> None:
    nan = math.nan
    v = _edit(
        vec,
        export_value_30d=nan,
        export_count_90d=nan,
        buyer_hhi_365d=nan,
        import_value_365d=nan,
        export_active_months_12m=nan,
        us_export_share_365d=nan,
    )
    assert violations(v) == []
    # NaN inputs of an expression with a NaN result: consistent
    assert violations(_edit(vec, inflow_90d=nan, net_cash_flow_90d=nan)) == []
    # None is taken as NaN too
    assert violations(_edit(vec, import_value_365d=None)) == []  # type: ignore[arg-type]


def test_a_derived_nan_must_match_its_expression(vec: dict[str, float]) -> None:
    # a number where the expression gives one: NaN breaks it
    assert violations(_edit(vec, net_cash_flow_90d=math.nan)) == [
        "net_cash_flow_90d = its expression"
    ]
    # a NaN input makes the expression NaN: a number is then wrong
    assert violations(_edit(vec, inflow_90d=math.nan)) == ["net_cash_flow_90d = its expression"]
    # no exports: the ratios over exports are NaN (NULLIF), and a number breaks them
    no_exports = _edit(
        vec,
        export_value_30d=0.0,
        export_value_90d=0.0,
        export_value_365d=0.0,
        pending_refund_to_exports=math.nan,
        inflow_to_exports_365d=math.nan,
    )
    assert violations(no_exports) == []
    assert violations(_edit(no_exports, pending_refund_to_exports=0.0)) == [
        "pending_refund_to_exports = its expression"
    ]


def test_violations_reads_a_series_as_well_as_a_dict(vec: dict[str, float]) -> None:
    s = pd.Series(_edit(vec, buyer_hhi_365d=1.3))
    assert violations(s) == ["0 <= buyer_hhi_365d <= 1"]
