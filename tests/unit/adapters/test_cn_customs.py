"""The China Single Window customs declaration adapter (``cn-customs``)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from credit.adapters import adapt, detect
from credit.adapters.base import Adapted, Context, contract_frame
from credit.adapters.cn_customs import ADAPTER, synthetic_number
from credit.adapters.fx import Rates

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "samples/adapters/cn-customs/declarations.csv"
RATES = Rates.load(ROOT / "samples/adapters/fx.csv")
FMT = "cn-customs"
HEADER = (
    "报关单号,项号,申报日期,监管方式,商品编号,成交数量,总价,币制,最终目的国(地区),申报状态,修改时间"
)


def _adapt(text: str, rates: Rates | None = RATES) -> Adapted:
    return adapt(text, Context(firm_id="F000001", rates=rates), FMT)


def _sample() -> Adapted:
    return _adapt(SAMPLE.read_text(encoding="utf-8"))


def _by_line(a: Adapted) -> dict[int, tuple[str, str]]:
    return {r.line: (r.outcome, r.reason) for r in a.rows}


def _records(a: Adapted) -> dict[str, dict[str, object]]:
    return {r["declaration_id"]: r for r in a.records}


def _eur(amount: float, day: str, currency: str = "EUR") -> float:
    return round(amount * RATES.usd_per_unit(currency, date.fromisoformat(day)), 2)


# -- the hand-written sample -----------------------------------------------------------------------


def test_sample_counts_reconcile() -> None:
    a = _sample()
    counts = a.counts()
    assert counts == {"read": 20, "mapped": 13, "rejected": 5, "skipped": 2}
    assert counts["read"] == counts["mapped"] + counts["rejected"] + counts["skipped"]
    assert len(a.records) == 13
    assert [r.line for r in a.rows] == list(range(2, 22))


def test_sample_awkward_cases() -> None:
    a = _sample()
    lines = _by_line(a)
    recs = _records(a)
    # the declaration amended after lodging: the later version wins, the first is skipped
    assert lines[10] == ("skipped", "superseded by the amendment on line 11")
    assert lines[11][0] == "mapped"
    amended = recs["cn-530020240000010006-1"]
    assert (amended["value_usd"], amended["quantity"]) == (640.0, 64.0)
    # a CNY value on a Saturday: no rate, rejected
    assert lines[12][0] == "rejected" and "no CNY reference rate for 2024-03-09" in lines[12][1]
    # trade mode 1039 (market procurement) is outside the contract
    assert lines[13] == (
        "rejected",
        "监管方式 (trade mode) 1039 is not one the data contract allows "
        "(9610, 9710, 9810, 1210, 0110)",
    )
    assert (
        lines[14][0] == "rejected" and "'851713' is not a 10-digit commodity code" in lines[14][1]
    )
    assert lines[18][0] == "rejected" and "'ZZZ' is not a country code" in lines[18][1]
    assert lines[19][0] == "rejected" and "still in clearance" in lines[19][1]
    assert lines[20][0] == "skipped" and "draft" in lines[20][1]


def test_sample_record_values() -> None:
    recs = _records(_sample())
    first = recs["cn-530020240000010001-1"]
    assert first == {
        "declaration_id": "cn-530020240000010001-1", "firm_id": "F000001",
        "declared_at": "2024-03-04T00:00:00", "direction": "export", "regime": "9610",
        "hs_code": "610910", "origin_country": "CN", "destination_country": "US",
        "value_usd": 1250.0, "quantity": 200.0, "status": "cleared", "tax_refund_usd": 0.0,
        "tax_refund_status": "none", "tax_refund_settled_at": None,
    }  # fmt: skip
    # EUR converted at the declaration day's rate; the legal quantity (120 台), not 10 箱
    eur = recs["cn-530020240000010002-1"]
    assert eur["value_usd"] == _eur(3400.0, "2024-03-05") and eur["quantity"] == 120.0
    assert recs["cn-530020240000010004-1"]["value_usd"] == _eur(52000.0, "2024-03-07", "CNY")
    # a multi-item declaration: one record per item
    items = [k for k in recs if k.startswith("cn-530020240000010003-")]
    assert sorted(items) == [f"cn-530020240000010003-{i}" for i in (1, 2, 3)]
    assert recs["cn-530020240000010003-2"]["quantity"] == 42.5
    # an import: the number's 9th digit is 1; no destination given -> CN
    imp = recs["cn-220020241000020001-1"]
    assert (imp["direction"], imp["origin_country"], imp["destination_country"]) == (
        "import", "JP", "CN")  # fmt: skip
    # the customs' older numeric codes: 502 USD / United States, 142 China, 300 EUR, 304 Germany
    old = recs["cn-530020240000010010-1"]
    assert (old["origin_country"], old["destination_country"], old["value_usd"]) == (
        "CN", "US", 11250.0)  # fmt: skip
    held = recs["cn-530020240000010011-1"]
    assert (held["destination_country"], held["status"]) == ("DE", "held")
    assert held["value_usd"] == _eur(2780.0, "2024-03-15")
    assert recs["cn-530020240000010005-1"]["status"] == "inspected"
    assert recs["cn-530020240000010012-1"]["status"] == "rejected"
    # an export with no origin: China
    assert recs["cn-530020240000010015-1"]["origin_country"] == "CN"
    eur_row = next(r for r in _sample().rows if r.line == 3)
    assert (eur_row.currency, eur_row.amount) == ("EUR", 3400.0)


# -- detection and headers -------------------------------------------------------------------------


def test_detects_the_sample_and_english_headers() -> None:
    assert detect(SAMPLE.read_text(encoding="utf-8")) == FMT
    english = (
        "Declaration No.,Item No.,Declaration Date,I/E Flag,Trade Mode,Commodity Code,Quantity,"
        "Total Price,Currency,Origin Country,Destination Country,Status,Modification Time\n"
        "530020240000010001,1,2024/3/4,E,9610 电子商务,6109.10.00.21,200,1250.00,USD,CHN,"
        "USA 美国,Released,2024/03/04 10:12:05\n"
    )
    assert detect(english) == FMT
    a = _adapt(english)
    assert a.counts()["mapped"] == 1
    assert a.records[0] == _records(_sample())["cn-530020240000010001-1"]


def test_other_chinese_spellings() -> None:
    text = (
        "海关编号,项号,申报日期,贸易方式,商品编码,成交数量,总价,币制,原产国（地区）,运抵国（地区）,通关状态\n"
        "530020240000010001,01,20240304,110,61091000,200,1250.00,USD,CHN,USA,结关\n"
    )
    (rec,) = _adapt(text).records
    assert rec["declaration_id"] == "cn-530020240000010001-1"
    assert (rec["regime"], rec["hs_code"], rec["destination_country"]) == ("0110", "610910", "US")
    assert rec["declared_at"] == "2024-03-04T00:00:00"


# -- the simulator's side: export -> adapt ---------------------------------------------------------


def _world() -> pd.DataFrame:
    day = pd.Timestamp
    return pd.DataFrame({
        "declaration_id": ["D000000001", "D000000002", "D000000003", "D000000004", "D000000005"],
        "firm_id": ["F000001"] * 5,
        "declared_at": [day("2024-03-04"), day("2024-03-09"), day("2024-03-29"),
                        day("2024-04-02"), day("2023-12-31")],
        "direction": ["export", "export", "export", "export", "import"],
        "regime": ["9610", "9710", "9810", "1210", "0110"],
        "hs_code": ["610910", "851632", "950300", "330499", "854231"],
        "origin_country": ["CN", "CN", "CN", "CN", "TW"],
        "destination_country": ["US", "DE", "GB", "JP", "CN"],
        "value_usd": [1250.0, 3698.18, 0.01, 7225.76, 8800.5],
        "quantity": [200.0, 120.0, 1.0, 150.0, 1234.5],
        "status": ["cleared", "inspected", "held", "rejected", "cleared"],
        "tax_refund_usd": [0.0, 120.5, 33.0, 0.0, 0.0],
        "tax_refund_status": ["none", "paid", "pending", "none", "none"],
        "tax_refund_settled_at": [pd.NaT, day("2024-04-20"), pd.NaT, pd.NaT, pd.NaT],
    })  # fmt: skip


def _contract(a: Adapted) -> pd.DataFrame:
    f = contract_frame("customs", a.records)
    for c in ("declared_at", "tax_refund_settled_at"):
        f[c] = pd.to_datetime(f[c])
    return f


@pytest.mark.parametrize("rates", [None, RATES])
def test_round_trip(rates: Rates | None) -> None:
    world = _world()
    assert ADAPTER.carries(world).all()
    text = ADAPTER.export(world, rates)
    assert text.splitlines()[0].startswith("报关单号,项号,申报日期")
    a = _adapt(text, rates)
    assert a.counts() == {"read": 5, "mapped": 5, "rejected": 0, "skipped": 0}
    got = _contract(a).drop(columns="declaration_id")
    want = ADAPTER.as_carried(world).drop(columns="declaration_id")
    assert (want["tax_refund_status"] == "none").all() and want[
        "tax_refund_settled_at"
    ].isna().all()
    pd.testing.assert_frame_equal(got, want, check_dtype=False, atol=0.01 if rates else 1e-9)
    # the synthetic numbers are well formed and follow from the simulator's IDs
    ids = [r["declaration_id"] for r in a.records]
    assert ids[0] == "cn-530020240000000001-1" and ids[4] == "cn-530020231000000005-1"


def test_synthetic_numbers_are_deterministic() -> None:
    assert synthetic_number("D000001234", 2024, "export") == "530020240000001234"
    assert synthetic_number("D000001234", 2024, "import") == "530020241000001234"
    other = synthetic_number("not-a-simulator-id", 2024, "export")
    assert other == synthetic_number("not-a-simulator-id", 2024, "export") and len(other) == 18


# -- determinism and overlapping exports -----------------------------------------------------------


def test_same_text_twice_gives_the_same_records() -> None:
    assert _sample().records == _sample().records


def test_overlapping_export_gives_the_same_ids_and_content() -> None:
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    first = _records(_sample())
    # a later download: part of the period again, the amended declaration in its latest
    # version only, and a new declaration
    later = "\n".join([
        lines[0], lines[1], lines[4], lines[10], lines[14],
        "530020240000010016,1,2024-03-25,E,9610,6109100021,棉制针织T恤衫,50,件,50,件,"
        "310.00,USD,CHN,CAN,放行,2024-03-25 09:00:00",
    ]) + "\n"  # fmt: skip
    again = _records(_adapt(later))
    shared = set(first) & set(again)
    assert shared == {"cn-530020240000010001-1", "cn-530020240000010003-2",
                      "cn-530020240000010006-1", "cn-530020240000010010-1"}  # fmt: skip
    assert all(first[k] == again[k] for k in shared)
    assert set(again) - set(first) == {"cn-530020240000010016-1"}


def test_the_latest_modification_wins_whatever_the_line_order() -> None:
    text = (
        f"{HEADER}\n"
        "530020240000010006,1,2024-03-12,9610,6404199000,64,640.00,USD,FRA,放行,2024-03-13 15:42\n"
        "530020240000010006,1,2024-03-12,9610,6404199000,60,600.00,USD,FRA,查验,2024-03-12 09:10\n"
        "530020240000010006,1,2024-03-12,9610,6404199000,64,640.00,USD,FRA,放行,2024-03-13 15:42\n"
    )
    a = _adapt(text)
    assert _by_line(a) == {
        2: ("skipped", "the same declaration item as line 4 (listed twice)"),
        3: ("skipped", "superseded by the amendment on line 4"),
        4: ("mapped", ""),
    }
    assert a.records[0]["value_usd"] == 640.0 and a.records[0]["status"] == "cleared"


# -- rejected rows ---------------------------------------------------------------------------------


def test_bad_rows_are_rejected_with_a_reason() -> None:
    text = (
        f"{HEADER},进出口标志\n"
        "530020240000020001,1,2024-03-04,9610,6109100021,10,12O.00,USD,USA,放行,,\n"
        "530020240000020002,1,2024-02-30,9610,6109100021,10,120.00,USD,USA,放行,,\n"
        "5.30020240000020E+17,1,2024-03-04,9610,6109100021,10,120.00,USD,USA,放行,,\n"
        "530020240000020003,1,2024-03-04,9610,6109100021,10,120.00,USD,USA,放行,,I\n"
        "530020240000020004,1,2024-03-04,9610,6109100021,10,120.00,XYZ,USA,放行,,\n"
        "530020240000020005,1,2024-03-04,9610,6109100021,10,120.00,USD,USA,放行?,,\n"
        "530020240000020006,1,2024-03-04,9610,6109100021,10,120.00,USD,USA,放行,2024-03-05,\n"
        "530020240000020006,1,2024-03-04,9610,6109100021,10,-5.00,USD,USA,放行,2024-03-06,\n"
        "530020240000020007,1,2024-03-04,9610,6109100021,10,120.00,CNY,USA,放行,,\n"
    )
    lines = _by_line(_adapt(text))
    assert lines[2] == ("rejected", "总价 (total price) '12O.00' is not a number (expected e.g. "
                                    "1234.56 or -12.50)")  # fmt: skip
    assert lines[3] == ("rejected", "申报日期 (declaration date) '2024-02-30' is not a date")
    assert lines[4][0] == "rejected" and "turned into a number by a spreadsheet" in lines[4][1]
    assert lines[5][0] == "rejected" and "says import but the declaration number" in lines[5][1]
    assert lines[6][0] == "rejected" and "'XYZ' is not a currency code" in lines[6][1]
    assert lines[7][0] == "rejected" and "unknown 申报状态" in lines[7][1]
    # the latest version is mapped with its bad value: the contract rejects it afterwards;
    # the earlier version is skipped, not used in its place
    assert lines[8] == ("skipped", "superseded by the amendment on line 9")
    assert lines[9][0] == "mapped"
    # without rates a CNY value cannot be converted
    no_rates = _by_line(_adapt(text, None))
    assert no_rates[10][0] == "rejected" and "--fx" in no_rates[10][1]


def test_a_rejected_latest_version_rejects_the_older_ones() -> None:
    text = (
        f"{HEADER}\n"
        "530020240000010006,1,2024-03-12,9610,6404199000,60,600.00,USD,FRA,放行,2024-03-12 09:10\n"
        "530020240000010006,1,2024-03-12,9610,640419,64,640.00,USD,FRA,放行,2024-03-13 15:42\n"
    )
    a = _adapt(text)
    assert a.records == []
    lines = _by_line(a)
    assert lines[3][0] == "rejected" and "commodity code" in lines[3][1]
    assert lines[2][0] == "rejected"
    assert lines[2][1].startswith("its latest version, on line 3, is rejected: 商品编号")
