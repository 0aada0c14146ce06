"""Portfolio monitoring's rules, each firing and not, the reasons that moved most, the signals
read from the record store under a consent's sources, and the policy's monitoring section."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from credit.policy import MonitoringPolicy, PolicyError, default_policy, policy_from_dict
from credit.portfolio import FirmState, fired_rules, moved_reasons, record_signals

GRADES = ("A", "B", "C", "D", "E", "F")
RULES = MonitoringPolicy()


def _signals(**kw: Any) -> dict[str, Any]:
    base = {
        "overdue_supplier_invoices": 0,
        "settlements_90d": 1000.0,
        "settlements_prev_90d": 1000.0,
        "shipments_closed": 100,
        "shipments_returned_or_lost": 2,
    }
    return {**base, **kw}


def _state(pd_: float = 0.02, grade: str = "B", **signals: Any) -> FirmState:
    return FirmState(pd_, 600, grade, _signals(**signals))


def _rules(before: FirmState | None, after: FirmState, rules: MonitoringPolicy = RULES) -> set[str]:
    return {a["rule"] for a in fired_rules(rules, GRADES, before, after)}


def test_nothing_fires_when_nothing_changed() -> None:
    assert _rules(_state(), _state()) == set()
    assert _rules(None, _state()) == set()  # a first run of a healthy firm


def test_grade_down_by_two_notches_fires_and_by_one_does_not() -> None:
    assert "grade_down" in _rules(_state(grade="B"), _state(0.03, grade="D"))
    assert "grade_down" not in _rules(_state(grade="B"), _state(0.03, grade="C"))
    assert "grade_down" not in _rules(_state(grade="D"), _state(0.03, grade="B"))  # upgrade
    assert "grade_down" in _rules(
        _state(grade="B"), _state(0.03, grade="C"), MonitoringPolicy(grade_down_notches=1)
    )
    (alert,) = [
        a
        for a in fired_rules(RULES, GRADES, _state(grade="A"), _state(0.03, grade="E"))
        if a["rule"] == "grade_down"
    ]
    assert (alert["before"], alert["after"]) == ("A", "E")


def test_pd_doubled_fires_and_less_does_not() -> None:
    assert "pd_ratio" in _rules(_state(0.02), _state(0.04))
    assert "pd_ratio" not in _rules(_state(0.02), _state(0.0399))
    assert "pd_ratio" not in _rules(_state(0.04), _state(0.02))
    assert "pd_ratio" in _rules(_state(0.02), _state(0.03), MonitoringPolicy(pd_ratio=1.5))
    assert "pd_ratio" not in _rules(None, _state(0.5))  # needs a previous run


def test_new_overdue_supplier_invoices_fire_and_fewer_do_not() -> None:
    before = _state(overdue_supplier_invoices=1)
    assert "overdue_invoices" in _rules(before, _state(overdue_supplier_invoices=2))
    assert "overdue_invoices" not in _rules(before, _state(overdue_supplier_invoices=1))
    assert "overdue_invoices" not in _rules(before, _state(overdue_supplier_invoices=0))
    off = MonitoringPolicy(overdue_invoices=False)
    assert "overdue_invoices" not in _rules(before, _state(overdue_supplier_invoices=5), off)


def test_settlements_down_by_half_fires_once() -> None:
    down = _state(settlements_90d=400.0, settlements_prev_90d=1000.0)
    assert "settlements_drop" in _rules(_state(), down)
    assert "settlements_drop" in _rules(None, down)  # a state of the records: first run too
    assert "settlements_drop" not in _rules(down, down)  # already down at the last run
    slight = _state(settlements_90d=600.0, settlements_prev_90d=1000.0)
    assert "settlements_drop" not in _rules(_state(), slight)
    assert "settlements_drop" not in _rules(_state(), _state(settlements_prev_90d=0.0))
    alert = next(
        a for a in fired_rules(RULES, GRADES, _state(), down) if a["rule"] == "settlements_drop"
    )
    assert alert["after"]["change"] == pytest.approx(-0.6)


def test_shipments_returned_or_lost_above_the_share_fire_once() -> None:
    bad = _state(shipments_closed=50, shipments_returned_or_lost=6)  # 12%
    assert "shipment_problems" in _rules(_state(), bad)
    assert "shipment_problems" not in _rules(bad, bad)
    at = _state(shipments_closed=50, shipments_returned_or_lost=5)  # exactly 10%: not above
    assert "shipment_problems" not in _rules(_state(), at)
    assert "shipment_problems" not in _rules(_state(), _state(shipments_closed=0))
    assert "shipment_problems" in _rules(
        _state(), at, MonitoringPolicy(shipment_problem_share=0.05)
    )


def test_reasons_that_moved_most() -> None:
    codes = {"a": "R01", "b": "R02", "c": "R03"}
    texts = {"a": "A text", "b": "B text", "c": "C text"}
    moved = moved_reasons(
        {"a": 0.1, "b": 0.0, "c": 0.5}, {"a": 0.15, "b": 0.9, "c": 0.1}, codes, texts, k=2
    )
    assert [m["code"] for m in moved] == ["R02", "R03"]
    assert moved[0]["change"] == pytest.approx(0.9) and moved[1]["change"] == pytest.approx(-0.4)
    first = moved_reasons(None, {"a": 0.3, "b": -1.0, "c": 0.2}, codes, texts, k=2)
    assert [m["feature"] for m in first] == ["a", "c"] and first[0]["before"] is None


def test_policy_monitoring_section_defaults_and_validation() -> None:
    m = default_policy().monitoring
    assert (m.grade_down_notches, m.pd_ratio, m.settlements_drop, m.shipment_problem_share) == (
        2,
        2.0,
        0.5,
        0.1,
    )
    assert m.lgd == 0.45
    from credit.policy import _default_data

    data = dict(_default_data())
    data.pop("monitoring")
    assert policy_from_dict(data).monitoring == MonitoringPolicy()  # left out: the defaults
    data["monitoring"] = {"pd_ratio": 0.5}
    with pytest.raises(PolicyError, match="monitoring.pd_ratio"):
        policy_from_dict(data)


def test_signals_from_the_record_store_under_the_consent_sources(tmp_path: Path) -> None:
    from credit.store import open_store

    path = tmp_path / "records.duckdb"
    con = open_store(path)
    t = pd.Timestamp
    due, late, jun, mar = (
        (t("2025-05-01"), t("2025-06-01")),
        t("2025-06-10"),
        t("2025-06-15"),
        t("2025-03-01"),
    )
    sup = ("F1", "supplier_payment", "out", 100.0, "USD", "s")
    payments = pd.DataFrame(
        [
            # F1: two overdue unpaid supplier invoices (one from a provider outside the consent)
            ("P1", *sup, *due, None),
            ("P2", *sup, *due, None),
            ("P3", *sup, *due, late),
            ("P4", "F1", "settlement", "in", 300.0, "USD", "amz", jun, None, jun),
            ("P5", "F1", "settlement", "in", 1e3, "USD", "amz", mar, None, mar),
        ],
        columns=["payment_id", "firm_id", "kind", "direction", "amount_usd", "currency",
                 "counterparty_id", "occurred_at", "due_at", "paid_at"],
    )  # fmt: skip
    shipments = pd.DataFrame(
        [
            (f"S{i}", "F1", None, t("2025-05-01"), t("2025-05-10"), "express", "CN", "US",
             "consumer", 1.0, 10.0, "returned" if i < 2 else "delivered")
            for i in range(10)
        ],
        columns=["shipment_id", "firm_id", "declaration_id", "shipped_at", "closed_at", "mode",
                 "origin_country", "destination_country", "destination_type", "weight_kg",
                 "declared_value_usd", "status"],
    )  # fmt: skip
    con.register("_p", payments)
    con.register("_s", shipments)
    con.execute("INSERT INTO payments SELECT * FROM _p")
    con.execute("INSERT INTO shipments SELECT * FROM _s")
    con.execute(
        "INSERT INTO record_ingestions VALUES ('payments', 'P2', 'file_2', 'other', '2025-01-01')"
    )
    con.close()
    now = datetime(2025, 7, 1, tzinfo=UTC)
    everything = record_signals(path, None, {"F1": None, "F2": None}, now)["F1"]
    assert everything["overdue_supplier_invoices"] == 2
    assert everything["settlements_90d"] == 300.0 and everything["settlements_prev_90d"] == 1000.0
    assert (everything["shipments_closed"], everything["shipments_returned_or_lost"]) == (10, 2)
    scoped = record_signals(path, None, {"F1": frozenset({"operator"})}, now)["F1"]
    assert scoped["overdue_supplier_invoices"] == 1  # P2's provider is not among the sources
    after = FirmState(0.02, 600, "B", everything)
    assert {"settlements_drop", "shipment_problems"} <= {
        a["rule"] for a in fired_rules(RULES, GRADES, None, after)
    }


def test_the_schedule_runs_every_portfolio_at_its_interval(monkeypatch: Any) -> None:
    import asyncio

    import credit.portfolio as portfolio_mod

    calls: list[tuple[Any, str]] = []

    class Stub:
        def run_all(self, tenant: Any, *, trigger: str) -> list[Any]:
            calls.append((tenant, trigger))
            if len(calls) == 2:
                raise RuntimeError("a failed run is logged; the next comes at its time")
            return []

    monkeypatch.setattr(portfolio_mod.Portfolio, "of", classmethod(lambda cls, svc: Stub()))

    async def main() -> None:
        task = asyncio.create_task(
            portfolio_mod.run_portfolio_schedule(lambda: None, lambda: 0.05 / 60)  # type: ignore[arg-type, return-value]
        )
        await asyncio.sleep(0.4)
        task.cancel()

    asyncio.run(main())
    assert 4 <= len(calls) <= 9 and set(calls) == {(None, "schedule")}
