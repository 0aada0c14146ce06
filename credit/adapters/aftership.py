"""AfterShip tracking checkpoints, one row per checkpoint, into ``shipments``.

AfterShip keeps one *tracking* per parcel (``tracking_number`` and courier ``slug``, the
tracking-level fields of the shipment) holding an array of *checkpoints*, the carrier's scan
events (``checkpoint_time``, ``tag``, ``subtag``, ``message``, ``location``...). The file this
adapter reads is that tracking object flattened one row per checkpoint, the tracking-level
columns repeated on every row of the parcel: the common aggregator shape. Its columns, in
order (the ones marked * are required):

==================================  ====================================================
column                              AfterShip field
==================================  ====================================================
tracking_number *                   tracking ``tracking_number``
slug *                              tracking ``slug`` (courier code)
order_id                            tracking ``order_id``
origin_country_iso3 *               tracking ``origin_country_iso3`` (ISO alpha-3)
destination_country_iso3 *          tracking ``destination_country_iso3``
shipment_type                       tracking ``shipment_type`` (carrier service type)
shipment_weight *                   tracking ``shipment_weight`` (value)
shipment_weight_unit *              tracking ``shipment_weight_unit`` (kg, g, lb, oz)
custom_fields.declared_value *      tracking ``custom_fields`` key ``declared_value``
custom_fields.declared_currency *   tracking ``custom_fields`` key ``declared_currency``
checkpoint_time *                   checkpoint ``checkpoint_time``
tag *                               checkpoint ``tag`` (delivery status)
subtag *                            checkpoint ``subtag`` (delivery sub-status)
subtag_message                      checkpoint ``subtag_message``
message                             checkpoint ``message``
location                            checkpoint ``location``
country_iso3                        checkpoint ``country_iso3``
==================================  ====================================================

Later API versions spell the countries ``origin_country_region``,
``destination_country_region`` and (checkpoint) ``country_region``, and give the weight as an
object (``shipment_weight.value``, ``shipment_weight.unit``); a flattener may prefix the
checkpoint columns (``checkpoints.tag``), and the custom fields may come without their
prefix (``declared_value``). All these spellings are read as the names above.
The tracking-level ``tag``/``subtag`` (the parcel's current status, which is its latest
checkpoint's) are not part of the shape: ``tag`` and ``subtag`` are the checkpoint's.

AfterShip's tracking object has no value field: the declared value is read from the
tracking's ``custom_fields`` (AfterShip's object of string fields for the merchant's own
data), keys ``declared_value`` and ``declared_currency`` (ISO 4217). No declared value is
no record: the contract requires one.

How the checkpoints of one parcel make one record
-------------------------------------------------
The rows of one parcel (same slug and tracking number) are put in ``checkpoint_time`` order
(they may come in any order). AfterShip's delivery statuses
(https://www.aftership.com/docs/tracking/enum/delivery-statuses) are ``Pending``,
``InfoReceived``, ``InTransit``, ``OutForDelivery``, ``AttemptFail``, ``Delivered``,
``AvailableForPickup``, ``Exception`` and ``Expired``; its sub-statuses
(https://www.aftership.com/docs/tracking/enum/delivery-sub-statuses) tell the exceptions
apart: ``Exception_010`` returning to sender, ``Exception_011`` returned to sender,
``Exception_012`` shipment damaged, ``Exception_013`` shipment lost.

* ``shipped_at`` is the carrier's first scan: the first checkpoint that is not ``Pending``,
  ``InfoReceived`` (label created, the carrier told) or ``Expired``. A parcel with no such
  checkpoint was never handed over: its rows are skipped ("label created, not shipped yet").
* The first final checkpoint decides the status and ``closed_at`` (its time): ``Delivered``
  -> delivered, ``Exception_011`` -> returned, ``Exception_013`` -> lost, ``Exception_012``
  -> damaged. Checkpoints after it (a late scan after delivery) are part of the parcel and
  mapped, but do not change its status.
* With no final checkpoint the parcel is in_transit (``closed_at`` empty), whatever its last
  checkpoint: ``InTransit``, ``OutForDelivery``, ``AttemptFail``, ``AvailableForPickup``,
  another exception (a customs delay, ``Exception_010`` returning to sender) or ``Expired``
  (AfterShip stopped tracking after 30 days without news: the parcel's fate is not known, so
  it stays in transit).
* A checkpoint time with a UTC offset is converted to UTC; one without (the carrier's local
  time, as AfterShip often gives it) is taken as UTC.

A row that is the same checkpoint as an earlier one (same time, tag, subtag, message and
location) is skipped. A bad checkpoint row (a time that is not a date, an unknown tag) or a
bad tracking-level value rejects every row of its parcel, with the reason naming the line;
the tracking-level columns must hold the same value on every row of a parcel. The declared
value's original amount, currency and rate are kept on the source row of the first scan only
(every row repeats it), so a parcel's money is counted once.

The simulator's side (:meth:`AfterShipTracking.export`) writes each shipment as an
InfoReceived checkpoint the day before ``shipped_at``, an InTransit one at ``shipped_at`` and
the final one (Delivered_001, Exception_011, _012, _013) at ``closed_at``; a postal shipment
as ``china-post``, an express one as ``dhl``, freight as ``dhl-global-forwarding`` with an
Air, Ocean or Rail Freight ``shipment_type``; the declared value in CNY when rates are given,
else in USD. What comes back differs only where the format cannot say:
``destination_type`` is ``consumer``, ``declaration_id`` empty.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pycountry

from credit.adapters.base import (
    Adapted,
    Adapter,
    Context,
    Mapping_,
    Reject,
    Skip,
    SourceRow,
    amount,
    fmt_money,
    record_id,
    timestamp,
)
from credit.adapters.fx import Rates

#: what a shipment's receiver is taken to be: AfterShip does not say
DESTINATION_TYPE = "consumer"
LABEL_ONLY = "label created, not shipped yet"
_NO_NUMBER = "tracking_number is empty: every AfterShip tracking has one"
#: the columns that make a checkpoint row the same checkpoint as another
_CHECKPOINT_KEY = ("checkpoint_time", "tag", "subtag", "message", "location")

_ALIASES = {
    "origin_country_region": "origin_country_iso3",
    "destination_country_region": "destination_country_iso3",
    "country_region": "country_iso3",
    "shipment_weight.value": "shipment_weight",
    "shipment_weight.unit": "shipment_weight_unit",
    "declared_value": "custom_fields.declared_value",
    "declared_currency": "custom_fields.declared_currency",
}
_PREFIXES = ("checkpoints.", "checkpoint.")

#: AfterShip's delivery statuses (tags), lower case -> as AfterShip spells them
TAGS = {t.lower(): t for t in ("Pending", "InfoReceived", "InTransit", "OutForDelivery",
        "AttemptFail", "Delivered", "AvailableForPickup", "Exception", "Expired")}  # fmt: skip
#: checkpoints that are not a carrier's scan of the parcel
_NOT_SCANS = frozenset({"Pending", "InfoReceived", "Expired"})
#: sub-statuses that close a parcel, and the status they give
_FINAL_SUBTAGS = {"exception_011": "returned", "exception_012": "damaged",
                  "exception_013": "lost"}  # fmt: skip

#: courier slug -> mode (shipment_type names the freight modes, see _FREIGHT)
SLUG_MODES: dict[str, str] = {
    **dict.fromkeys(("china-post", "china-ems", "usps", "royal-mail", "deutsch-post",
                     "canada-post", "australia-post", "japan-post", "singapore-post",
                     "postnl"), "postal"),
    **dict.fromkeys(("dhl", "fedex", "ups", "tnt", "sf-express", "aramex", "dpd"), "express"),
}  # fmt: skip
#: shipment_type words that name a freight mode (they decide over the slug)
_FREIGHT = (
    ("sea", re.compile(r"\b(ocean|sea|fcl|lcl|vessel)\b", re.I)),
    ("rail", re.compile(r"\b(rail\w*|train)\b", re.I)),
    ("air", re.compile(r"\b(air\s*freight|air\s*cargo)\b", re.I)),
)
#: shipment_type words that name a parcel mode (used when the slug is not in the table)
_PARCEL = (
    ("postal", re.compile(r"\b(post|postal|mail|e?packet|ems|registered)\b", re.I)),
    ("express", re.compile(r"\b(express|courier)\b", re.I)),
)

#: weight unit -> kg per unit (AfterShip's units)
KG_PER_UNIT = {"kg": 1.0, "g": 0.001, "lb": 0.45359237, "oz": 0.028349523125}

#: the tracking-level columns: one value per parcel
_TRACKING_COLUMNS = ("origin_country_iso3", "destination_country_iso3", "shipment_type",
                     "shipment_weight", "shipment_weight_unit", "custom_fields.declared_value",
                     "custom_fields.declared_currency")  # fmt: skip

#: the export's header, in the order the columns are written
HEADER = ("tracking_number", "slug", "order_id", "origin_country_iso3",
          "destination_country_iso3", "shipment_type", "shipment_weight",
          "shipment_weight_unit", "custom_fields.declared_value",
          "custom_fields.declared_currency", "checkpoint_time", "tag", "subtag",
          "subtag_message", "message", "location", "country_iso3")  # fmt: skip
#: mode -> (slug, shipment_type) the simulator writes, chosen so the mode comes back
_EXPORT_MODE = {
    "postal": ("china-post", ""),
    "express": ("dhl", ""),
    "air": ("dhl-global-forwarding", "Air Freight"),
    "sea": ("dhl-global-forwarding", "Ocean Freight FCL"),
    "rail": ("dhl-global-forwarding", "Rail Freight"),
}
#: final status -> the checkpoint the simulator writes for it
_FINAL_EVENT = {
    "delivered": ("Delivered", "Delivered_001", "Delivered"),
    "returned": ("Exception", "Exception_011", "Returned to sender"),
    "damaged": ("Exception", "Exception_012", "Shipment damage"),
    "lost": ("Exception", "Exception_013", "Shipment lost"),
}


@dataclass(frozen=True)
class _Checkpoint:
    line: int
    at: str
    tag: str
    subtag: str


def mode_of(slug: str, shipment_type: str) -> str:
    """The transport mode of a tracking, from its ``shipment_type`` and courier ``slug``."""
    for mode, words in _FREIGHT:
        if words.search(shipment_type):
            return mode
    if slug in SLUG_MODES:
        return SLUG_MODES[slug]
    for mode, words in _PARCEL:
        if words.search(shipment_type):
            return mode
    given = f"shipment_type {shipment_type!r} names none" if shipment_type else "no shipment_type"
    raise Reject(
        f"unknown courier slug {slug!r} and {given}: the mode cannot be told (a known slug, or a "
        "shipment_type naming it: ocean/sea, rail, air freight, post/mail or express)"
    )


def country(code: str, what: str) -> str:
    """An ISO 3166 alpha-3 (or alpha-2) country code as alpha-2."""
    c = code.strip().upper()
    if not c:
        raise Reject(f"{what} is empty")
    found = pycountry.countries.get(alpha_3=c) if len(c) == 3 else None
    if found is None and len(c) == 2:
        found = pycountry.countries.get(alpha_2=c)
    if found is None:
        raise Reject(f"{what} {code!r} is not an ISO 3166 country code (expected e.g. CHN, USA)")
    return str(found.alpha_2)


def weight_kg(value: str, unit: str) -> float:
    """A weight in kilograms from AfterShip's value and unit."""
    w = amount(value, "shipment_weight")
    u = unit.strip().lower()
    if u not in KG_PER_UNIT:
        raise Reject(
            f"shipment_weight_unit {unit!r} is not a weight unit (expected "
            f"{', '.join(KG_PER_UNIT)})"
        )
    return w if u == "kg" else round(w * KG_PER_UNIT[u], 6)


class AfterShipTracking(Adapter):
    name = "aftership-tracking"
    title = "AfterShip tracking checkpoints (one row per checkpoint)"
    reference = "https://www.aftership.com/docs/tracking/model/tracking"
    record_type = "shipments"
    signature = frozenset({"tracking_number", "slug", "checkpoint_time", "tag"})
    required = ("tracking_number", "slug", "origin_country_iso3", "destination_country_iso3",
                "shipment_weight", "shipment_weight_unit", "custom_fields.declared_value",
                "custom_fields.declared_currency", "checkpoint_time", "tag", "subtag")  # fmt: skip
    mapping = (
        Mapping_(
            "shipment_id",
            "slug, tracking_number",
            "`as-<slug>-<tracking_number>`; the checkpoint rows of one parcel (same slug and "
            "tracking number) make one shipment",
        ),
        Mapping_("firm_id", "-", "the firm named at ingestion (--firm)"),
        Mapping_("declaration_id", "-", "empty: AfterShip does not carry a customs declaration"),
        Mapping_(
            "shipped_at",
            "checkpoint_time, tag",
            "the time of the carrier's first scan: the earliest checkpoint whose tag is not "
            "Pending, InfoReceived or Expired (UTC; a time without an offset is taken as UTC); "
            "a parcel with no such checkpoint is skipped (label created, not shipped yet)",
        ),
        Mapping_(
            "closed_at",
            "checkpoint_time, tag, subtag",
            "the time of the first final checkpoint (Delivered; Exception_011, _012, _013); "
            "empty while there is none",
        ),
        Mapping_(
            "status",
            "tag, subtag",
            "the first final checkpoint in time order: Delivered -> delivered, Exception_011 "
            "(returned to sender) -> returned, Exception_013 (lost) -> lost, Exception_012 "
            "(damaged) -> damaged; later checkpoints (a late scan) do not change it; with none, "
            "in_transit whatever the last checkpoint (InTransit, OutForDelivery, AttemptFail, "
            "AvailableForPickup, another Exception such as Exception_010 returning to sender, "
            "or Expired: no news for 30 days, fate unknown); an unknown tag rejects the parcel",
        ),
        Mapping_(
            "mode",
            "shipment_type, slug",
            "a shipment_type naming ocean/sea/FCL/LCL/vessel -> sea, rail/train -> rail, air "
            "freight/air cargo -> air; else the slug: china-post, china-ems, usps, royal-mail, "
            "deutsch-post, canada-post, australia-post, japan-post, singapore-post, postnl -> "
            "postal; dhl, fedex, ups, tnt, sf-express, aramex, dpd -> express; another slug: a "
            "shipment_type naming post/mail/ePacket/EMS/registered -> postal, express/courier "
            "-> express; else rejected, naming the slug and shipment_type",
        ),
        Mapping_(
            "origin_country",
            "origin_country_iso3 (origin_country_region)",
            "ISO 3166 alpha-3 to alpha-2 (an alpha-2 code is taken as it is)",
        ),
        Mapping_(
            "destination_country",
            "destination_country_iso3 (destination_country_region)",
            "ISO 3166 alpha-3 to alpha-2 (an alpha-2 code is taken as it is)",
        ),
        Mapping_("destination_type", "-", f"`{DESTINATION_TYPE}` (AfterShip does not say)"),
        Mapping_(
            "weight_kg",
            "shipment_weight, shipment_weight_unit",
            "in kg: g x 0.001, lb x 0.45359237, oz x 0.028349523125 (to the milligram)",
        ),
        Mapping_(
            "declared_value_usd",
            "custom_fields.declared_value, custom_fields.declared_currency",
            "converted to USD at the rate of the shipped_at day (--fx); the original amount "
            "and currency are kept on the source row of the first scan",
        ),
    )
    unused = ("order_id", "shipment_type (other than for the mode)", "subtag_message",
              "message", "location", "country_iso3", "title, order_date, order_number",
              "shipment_pickup_date, shipment_delivery_date", "delivery_type",
              "other custom_fields")  # fmt: skip
    not_carried = {
        "declaration_id": "empty: no customs declaration is named by a tracking",
        "destination_type": f"`{DESTINATION_TYPE}`: a tracking does not say who receives the "
        "parcel (delivery_type is door_to_door or a pickup, not the receiver)",
    }

    def canonical(self, column: str) -> str:
        c = re.sub(r"\s+", "_", column.strip().lower())
        for prefix in _PREFIXES:
            if c.startswith(prefix):
                c = c[len(prefix) :]
        return _ALIASES.get(c, c)

    def adapt(self, rows: Iterable[tuple[int, dict[str, str]]], ctx: Context) -> Adapted:
        out = self.new()
        parcels: dict[tuple[str, str], list[tuple[int, dict[str, str]]]] = {}
        for line, row in rows:
            number = row.get("tracking_number", "")
            if not number:
                out.rows.append(SourceRow(line, "rejected", _NO_NUMBER))
                continue
            parcels.setdefault((row.get("slug", "").lower(), number), []).append((line, row))
        for (slug, number), items in parcels.items():
            self._parcel(slug, number, items, ctx, out)
        out.rows.sort(key=lambda r: r.line)
        return out

    def _parcel(
        self,
        slug: str,
        number: str,
        items: list[tuple[int, dict[str, str]]],
        ctx: Context,
        out: Adapted,
    ) -> None:
        """The checkpoint rows of one parcel: one record, or all rejected, or all skipped."""
        sid = record_id("as", slug, number)
        rt = self.record_type
        seen: dict[tuple[str, ...], int] = {}
        events: list[tuple[int, dict[str, str]]] = []
        for line, row in items:
            key = tuple(row.get(c, "") for c in _CHECKPOINT_KEY)
            if key in seen:
                twice = f"the same checkpoint as line {seen[key]} (listed twice)"
                out.rows.append(SourceRow(line, "skipped", twice, rt, sid))
                continue
            seen[key] = line
            events.append((line, row))
        try:
            record, first, money = self._record(sid, slug, events, ctx)
        except Reject as exc:
            out.rows.extend(SourceRow(line, "rejected", str(exc), rt, sid) for line, _ in events)
            return
        except Skip as exc:
            out.rows.extend(SourceRow(line, "skipped", str(exc), rt, sid) for line, _ in events)
            return
        out.records.append(record)
        for line, _ in events:
            cur, amt, rate = money if line == first else (None, None, None)
            out.rows.append(SourceRow(line, "mapped", "", rt, sid, cur, amt, rate))

    def _record(
        self, sid: str, slug: str, events: list[tuple[int, dict[str, str]]], ctx: Context
    ) -> tuple[dict[str, Any], int, tuple[str, float, float]]:
        """The parcel's record, the line of its first scan and the declared value's money
        (currency, amount, rate). :class:`Reject` (a reason naming the line) or :class:`Skip`."""
        checkpoints = [self._checkpoint(line, row) for line, row in events]
        checkpoints.sort(key=lambda c: (c.at, c.line))
        scans = [c for c in checkpoints if c.tag not in _NOT_SCANS]
        if not scans:
            raise Skip(LABEL_ONLY)
        shipped = scans[0]
        status, closed_at = "in_transit", None
        for c in scans:
            final = "delivered" if c.tag == "Delivered" else None
            if c.tag == "Exception":
                final = _FINAL_SUBTAGS.get(c.subtag.lower())
            if final is not None:
                status, closed_at = final, c.at
                break
        line0 = events[0][0]
        value = _tracking_values(events)
        currency = value["custom_fields.declared_currency"].upper()
        try:
            mode = mode_of(slug, value["shipment_type"])
            origin = country(value["origin_country_iso3"], "origin_country_iso3")
            dest = country(value["destination_country_iso3"], "destination_country_iso3")
            kg = weight_kg(value["shipment_weight"], value["shipment_weight_unit"])
            declared = amount(value["custom_fields.declared_value"], "declared_value")
            usd, rate = ctx.usd(declared, currency, shipped.at)
        except Reject as exc:
            raise Reject(f"line {line0}: {exc}") from None
        record = {
            "shipment_id": sid,
            "firm_id": ctx.firm_id,
            "declaration_id": None,
            "shipped_at": shipped.at,
            "closed_at": closed_at,
            "mode": mode,
            "origin_country": origin,
            "destination_country": dest,
            "destination_type": DESTINATION_TYPE,
            "weight_kg": kg,
            "declared_value_usd": usd,
            "status": status,
        }
        return record, shipped.line, (currency, declared, rate)

    @staticmethod
    def _checkpoint(line: int, row: dict[str, str]) -> _Checkpoint:
        try:
            at = timestamp(row.get("checkpoint_time", ""), "checkpoint_time")
        except Reject as exc:
            raise Reject(f"line {line}: {exc}") from None
        tag = TAGS.get(row.get("tag", "").lower())
        if tag is None:
            raise Reject(
                f"line {line}: tag {row.get('tag', '')!r} is not an AfterShip delivery status "
                f"(expected one of {', '.join(TAGS.values())})"
            )
        return _Checkpoint(line, at, tag, row.get("subtag", ""))

    # -- the simulator's side -------------------------------------------------------------

    def carries(self, records: pd.DataFrame) -> pd.Series:
        return pd.Series(True, index=records.index)

    def as_carried(self, records: pd.DataFrame) -> pd.DataFrame:
        out = records.copy()
        out["declaration_id"] = None
        out["destination_type"] = DESTINATION_TYPE
        out["declared_value_usd"] = out["declared_value_usd"].round(2)
        return out

    def export(self, records: pd.DataFrame, rates: Rates | None) -> str:
        """One row per checkpoint: InfoReceived the day before shipped_at, InTransit (the
        first scan) at shipped_at, and the final checkpoint at closed_at. Declared values
        are written in CNY (the sellers' currency) when rates are given, else in USD."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(HEADER)
        currency = "CNY" if rates is not None and "CNY" in rates.per_eur else "USD"
        for r in records.to_dict("records"):
            shipped: pd.Timestamp = r["shipped_at"]
            slug, shipment_type = _EXPORT_MODE[r["mode"]]
            origin, dest = _alpha3(r["origin_country"]), _alpha3(r["destination_country"])
            per_unit = rates.usd_per_unit(currency, shipped.date()) if rates else 1.0
            value = fmt_money(r["declared_value_usd"] / per_unit, currency)
            weight = repr(float(r["weight_kg"]))
            tracking = [r["shipment_id"], slug, "", origin, dest, shipment_type, weight, "kg",
                        value, currency]  # fmt: skip
            events = [
                (shipped - pd.Timedelta(days=1), "InfoReceived", "InfoReceived_001",
                 "Info Received", origin),
                (shipped, "InTransit", "InTransit_001", "In Transit", origin),
            ]  # fmt: skip
            if r["status"] != "in_transit":
                events.append((r["closed_at"], *_FINAL_EVENT[r["status"]], dest))
            for at, tag, subtag, message, where in events:
                when = at.strftime("%Y-%m-%dT%H:%M:%S+00:00")
                w.writerow([*tracking, when, tag, subtag, message, message, "", where])
        return buf.getvalue()


def _tracking_values(events: list[tuple[int, dict[str, str]]]) -> dict[str, str]:
    """The tracking-level values of a parcel; :class:`Reject` when two rows disagree."""
    line0, row0 = events[0]
    values = {c: row0.get(c, "") for c in _TRACKING_COLUMNS}
    for line, row in events[1:]:
        for c in _TRACKING_COLUMNS:
            if row.get(c, "") != values[c]:
                raise Reject(
                    f"line {line}: {c} {row.get(c, '')!r} differs from {values[c]!r} on line "
                    f"{line0} (a tracking has one {c})"
                )
    return values


def _alpha3(alpha2: str) -> str:
    found = pycountry.countries.get(alpha_2=alpha2)
    return str(found.alpha_3) if found is not None else alpha2


ADAPTER = AfterShipTracking()
