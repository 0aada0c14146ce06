"""The AfterShip tracking adapter: checkpoints folded into shipments, and the round trip."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from credit.adapters import adapt, detect
from credit.adapters.aftership import ADAPTER, HEADER, LABEL_ONLY, mode_of
from credit.adapters.base import Adapted, Context, Reject, contract_frame
from credit.adapters.fx import Rates
from credit.records import RECORD_TYPES

FMT = "aftership-tracking"
SAMPLE = Path("samples/adapters/aftership-tracking/checkpoints.csv")
RATES = Rates.load("samples/adapters/fx.csv")
TIMES = ("shipped_at", "closed_at")


def _adapt(text: str, rates: Rates | None = RATES) -> Adapted:
    return adapt(text, Context(firm_id="F000001", rates=rates), FMT)


def _records(a: Adapted) -> dict[str, dict[str, object]]:
    return {r["shipment_id"]: r for r in a.records}


def _rows(a: Adapted) -> dict[int, tuple[str, str, str | None]]:
    return {r.line: (r.outcome, r.reason, r.record_id) for r in a.rows}


def test_sample_outcomes_reconcile() -> None:
    a = _adapt(SAMPLE.read_text(encoding="utf-8"))
    counts = a.counts()
    assert counts == {"read": 32, "mapped": 24, "rejected": 5, "skipped": 3}
    assert counts["read"] == counts["mapped"] + counts["rejected"] + counts["skipped"]
    assert len(a.records) == 7
    assert {r.record_type for r in a.rows} == {"shipments"}


def test_sample_delivered_out_of_order_with_late_scan_and_duplicate() -> None:
    a = _adapt(SAMPLE.read_text(encoding="utf-8"))
    sid = "as-china-post-LX120000001CN"
    r = _records(a)[sid]
    # the first scan (InTransit at +08:00) is the shipping time, though it comes second
    assert r["shipped_at"] == "2024-03-05T01:12:00"
    assert r["closed_at"] == "2024-03-14T19:40:00"
    assert (r["status"], r["mode"], r["origin_country"], r["destination_country"]) == (
        "delivered", "postal", "CN", "US",
    )  # fmt: skip
    assert (r["destination_type"], r["declaration_id"], r["weight_kg"]) == ("consumer", None, 0.42)
    rows = _rows(a)
    assert rows[10] == ("mapped", "", sid)  # the late scan after delivery
    assert rows[28] == ("skipped", "the same checkpoint as line 7 (listed twice)", sid)
    # the declared value in CNY, at the rate of the shipping day, kept on the first scan's row
    first = next(s for s in a.rows if s.line == 3)
    rate = RATES.usd_per_unit("CNY", pd.Timestamp("2024-03-05").date())
    assert (first.currency, first.amount, first.usd_rate) == ("CNY", 350.0, rate)
    assert r["declared_value_usd"] == round(350.0 * rate, 2)
    assert all(s.currency is None for s in a.rows if s.record_id == sid and s.line != 3)


def test_sample_exceptions_expired_and_freight() -> None:
    recs = _records(_adapt(SAMPLE.read_text(encoding="utf-8")))
    returned = recs["as-dhl-JD014600006281230002"]
    assert (returned["status"], returned["closed_at"]) == ("returned", "2024-03-27T06:20:00")
    assert returned["mode"] == "express"
    assert returned["weight_kg"] == pytest.approx(2.5 * 0.45359237, abs=1e-6)  # lb
    lost = recs["as-china-ems-EE100000003CN"]
    assert (lost["status"], lost["closed_at"], lost["mode"]) == (
        "lost", "2024-04-22T08:00:00", "postal",
    )  # fmt: skip
    damaged = recs["as-fedex-771234560004"]
    assert (damaged["status"], damaged["weight_kg"]) == ("damaged", 0.85)  # grams
    assert damaged["shipped_at"] == "2024-03-12T16:00:00"  # no offset: taken as UTC
    customs_hold = recs["as-sf-express-SF1400000000005"]
    assert (customs_hold["status"], customs_hold["closed_at"]) == ("in_transit", None)
    expired = recs["as-china-post-LX120000006CN"]
    assert (expired["status"], expired["closed_at"]) == ("in_transit", None)
    sea = recs["as-cosco-CSLU2024031100010"]
    assert (sea["mode"], sea["status"], sea["destination_country"]) == ("sea", "delivered", "NL")
    eur = RATES.usd_per_unit("EUR", pd.Timestamp("2024-03-11").date())
    assert sea["declared_value_usd"] == round(18500 * eur, 2)


def test_sample_skipped_and_rejected_parcels() -> None:
    a = _adapt(SAMPLE.read_text(encoding="utf-8"))
    rows = _rows(a)
    assert rows[11][:2] == rows[19][:2] == ("skipped", LABEL_ONLY)
    for line in (15, 26):
        outcome, reason, _ = rows[line]
        assert outcome == "rejected"
        assert "'speedy-cargo-xyz'" in reason and "no shipment_type" in reason
    for line in (16, 20, 32):  # the whole parcel goes with its bad row, which is named
        outcome, reason, _ = rows[line]
        assert outcome == "rejected"
        assert reason.startswith("line 20: checkpoint_time '2024-13-45 10:00' is not a date")
    made = _records(a)
    assert "as-dhl-JD014600006281230009" not in made and "as-ups-1Z999AA10000000007" not in made


def test_detection() -> None:
    assert detect(SAMPLE.read_text(encoding="utf-8")) == FMT


def _world() -> pd.DataFrame:
    t = pd.Timestamp
    rows = [
        ("S1", "2024-03-04", "2024-03-15", "postal", "US", "consumer", 0.42, 48.64, "delivered"),
        ("S2", "2024-03-05", "2024-03-28", "express", "DE", "business", 1.25, 120.0, "returned"),
        ("S3", "2024-03-06", "2024-04-25", "air", "GB", "consumer", 12.5, 999.99, "lost"),
        ("S4", "2024-03-07", "2024-04-19", "sea", "NL", "overseas_warehouse", 1250.0, 20144.65,
         "damaged"),
        ("S5", "2024-03-08", None, "rail", "PL", "overseas_warehouse", 830.3, 15000.5,
         "in_transit"),
        ("S6", "2024-03-11", "2024-03-11", "express", "JP", "consumer", 0.1, 1.0, "delivered"),
    ]  # fmt: skip
    frame = pd.DataFrame(
        [
            {
                "shipment_id": sid, "firm_id": "F000001", "declaration_id": f"D-{sid}",
                "shipped_at": t(ship), "closed_at": t(close) if close else pd.NaT, "mode": mode,
                "origin_country": "CN", "destination_country": dest, "destination_type": dtype,
                "weight_kg": kg, "declared_value_usd": usd, "status": status,
            }
            for sid, ship, close, mode, dest, dtype, kg, usd, status in rows
        ]
    )  # fmt: skip
    for c in TIMES:  # the simulator's frames hold nanosecond timestamps
        frame[c] = frame[c].astype("datetime64[ns]")
    return frame[RECORD_TYPES["shipments"].columns]


def _back(records: pd.DataFrame, rates: Rates | None) -> tuple[pd.DataFrame, Adapted]:
    a = _adapt(ADAPTER.export(records, rates), rates)
    got = contract_frame("shipments", a.records)
    for c in TIMES:
        got[c] = pd.to_datetime(got[c]).astype("datetime64[ns]")
    return got, a


def test_round_trip_exact_without_rates() -> None:
    world = _world()
    text = ADAPTER.export(world, None)
    assert text.splitlines()[0] == ",".join(HEADER)
    got, a = _back(world, None)
    assert a.counts()["rejected"] == a.counts()["skipped"] == 0
    want = ADAPTER.as_carried(world)
    assert set(want["destination_type"]) == {"consumer"}
    assert want["declaration_id"].isna().all()
    cols = [c for c in want.columns if c != "shipment_id"]
    pd.testing.assert_frame_equal(
        got[cols].reset_index(drop=True), want[cols].reset_index(drop=True), check_dtype=False
    )
    assert ADAPTER.carries(world).all()


def test_round_trip_with_rates_within_a_cent() -> None:
    world = _world()
    text = ADAPTER.export(world, RATES)
    assert ",CNY," in text
    got, _ = _back(world, RATES)
    want = ADAPTER.as_carried(world)
    money = "declared_value_usd"
    assert (got[money] - want[money]).abs().max() <= 0.01 + 1e-9
    cols = [c for c in want.columns if c not in ("shipment_id", money)]
    pd.testing.assert_frame_equal(
        got[cols].reset_index(drop=True), want[cols].reset_index(drop=True), check_dtype=False
    )


def test_deterministic_and_overlapping_exports() -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    assert _adapt(text).records == _adapt(text).records
    lines = text.splitlines()
    header, body = lines[0], lines[1:]
    # a later export: the parcels of the fedex and sf-express trackings dropped, one added
    kept = [r for r in body if not r.startswith(("771234560004", "SF1400000000005"))]
    new = [
        "UP0000000011,usps,#1011,CHN,USA,,0.2,kg,15.00,USD,2024-04-10T09:00:00+08:00,"
        "InTransit,InTransit_002,Acceptance scan,Accepted,Shenzhen,CHN",
    ]
    later = _records(_adapt("\n".join([header, *new, *kept]) + "\n"))
    first = _records(_adapt(text))
    shared = set(first) & set(later)
    assert shared == set(first) - {"as-fedex-771234560004", "as-sf-express-SF1400000000005"}
    assert all(first[k] == later[k] for k in shared)
    assert set(later) - set(first) == {"as-usps-UP0000000011"}


def _one(**change: str) -> str:
    row = {
        "tracking_number": "LX9", "slug": "china-post", "order_id": "", "origin_country_iso3":
        "CHN", "destination_country_iso3": "USA", "shipment_type": "", "shipment_weight": "1",
        "shipment_weight_unit": "kg", "custom_fields.declared_value": "10.00",
        "custom_fields.declared_currency": "USD", "checkpoint_time": "2024-03-05T10:00:00Z",
        "tag": "InTransit", "subtag": "InTransit_002", "subtag_message": "", "message": "",
        "location": "", "country_iso3": "",
    }  # fmt: skip
    row.update(change)
    return ",".join(HEADER) + "\n" + ",".join(row[c] for c in HEADER) + "\n"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"custom_fields.declared_value": "12.3x"}, "line 2: declared_value '12.3x' is not a"),
        ({"custom_fields.declared_value": ""}, "line 2: declared_value is empty"),
        ({"checkpoint_time": "yesterday"}, "line 2: checkpoint_time 'yesterday' is not a date"),
        ({"shipment_weight_unit": "stone"}, "line 2: shipment_weight_unit 'stone' is not a"),
        ({"destination_country_iso3": "XYZ"}, "line 2: destination_country_iso3 'XYZ' is not"),
        ({"tag": "Lost"}, "line 2: tag 'Lost' is not an AfterShip delivery status"),
        (
            {"custom_fields.declared_currency": "CNY", "checkpoint_time": "2024-03-29T10:00:00Z"},
            "line 2: no CNY reference rate for 2024-03-29",
        ),
        ({"slug": "acme", "shipment_type": "Standard"}, "shipment_type 'Standard' names none"),
    ],
)
def test_bad_values_are_rejected_with_a_reason(change: dict[str, str], reason: str) -> None:
    a = _adapt(_one(**change))
    assert a.records == []
    assert a.rows[0].outcome == "rejected"
    assert reason in a.rows[0].reason


def test_rows_of_one_tracking_must_agree() -> None:
    text = (
        _one() + _one(shipment_weight="2", checkpoint_time="2024-03-06T10:00:00Z").split("\n", 1)[1]
    )
    a = _adapt(text)
    assert a.records == [] and [r.outcome for r in a.rows] == ["rejected", "rejected"]
    assert a.rows[0].reason == (
        "line 3: shipment_weight '2' differs from '1' on line 2 (a tracking has one "
        "shipment_weight)"
    )


def test_later_api_spellings_are_read() -> None:
    header, row = _one().split("\n", 1)
    header = header.replace("origin_country_iso3", "origin_country_region")
    header = header.replace("shipment_weight,", "shipment_weight.value,")
    header = header.replace("shipment_weight_unit", "shipment_weight.unit")
    header = header.replace(",tag,", ",checkpoints.tag,")
    text = header + "\n" + row
    a = _adapt(text)
    assert a.counts()["mapped"] == 1
    assert a.records[0]["origin_country"] == "CN" and a.records[0]["weight_kg"] == 1.0


def test_mode_rule() -> None:
    assert mode_of("dhl", "Air Freight") == "air"  # a freight shipment_type decides
    assert mode_of("china-post", "") == "postal"
    assert mode_of("yunexpress", "Registered Mail") == "postal"
    assert mode_of("acme", "Rail Freight") == "rail"
    with pytest.raises(Reject, match="unknown courier slug 'acme' and no shipment_type"):
        mode_of("acme", "")
