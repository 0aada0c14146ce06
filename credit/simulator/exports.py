"""A simulated world written as the exports its sellers would hold (``credit simulate --format``).

Each adapter of :mod:`credit.adapters` writes the records it can hold, one file per firm,
under ``exports/<format>/<firm_id>.<ext>``, listed in ``exports/manifest.csv`` (file, format,
firm). What no chosen format holds stays in contract files beside them (firms and loans
always: no seller export carries them), so the whole world can be ingested: the contract
files with ``credit ingest DIR``, each export with ``credit ingest FILE --format --firm
--fx``.

Which payments go to which export is a simulation device, fixed here: the simulator's
marketplaces are not these payment services, so the platform flows (settlements, refunds,
chargebacks, fees) of the firms selling on each platform below are written in that format:

=====================================  ====================
platforms                              export
=====================================  ====================
PLT-AMAZON                             amazon-settlement
PLT-TEMU, PLT-TIKTOKSHOP               shopify-payments
PLT-SHEIN, PLT-SHOPEE, PLT-LAZADA      stripe-balance
PLT-EBAY, PLT-ALLEGRO, PLT-ALIEXPRESS  paypal-activity
=====================================  ====================

(the other platforms' flows stay in the contract files).

Customs declarations go to ``cn-customs`` and shipments to ``aftership-tracking``, all of
them. Amounts are written in each record's original currency, converted at the rates of a
simulated table (``fx.csv``, ECB layout, one rate every calendar day so no row lacks one);
without rates (``rates=None``) every amount is written in US dollars.

:func:`carried_world` gives the same world as the exports carry it (each exported record as
its adapter gives it back, :meth:`credit.adapters.base.Adapter.as_carried`): the round trip's
reference.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from credit.adapters import FORMATS, adapter
from credit.adapters.fx import Rates

PLATFORM_FORMAT = {
    "PLT-AMAZON": "amazon-settlement",
    "PLT-TEMU": "shopify-payments",
    "PLT-TIKTOKSHOP": "shopify-payments",
    "PLT-SHEIN": "stripe-balance",
    "PLT-SHOPEE": "stripe-balance",
    "PLT-LAZADA": "stripe-balance",
    "PLT-EBAY": "paypal-activity",
    "PLT-ALLEGRO": "paypal-activity",
    "PLT-ALIEXPRESS": "paypal-activity",
}
#: the record type every non-payment format carries whole
WHOLE = {"cn-customs": "customs", "aftership-tracking": "shipments"}
MANIFEST = "manifest.csv"

#: Rough units per euro, the simulated table's starting points.
_PER_EUR = {"USD": 1.08, "AED": 3.97, "BRL": 5.40, "CLP": 1010.0, "CNY": 7.80, "IDR": 17000.0,
            "JPY": 160.0, "MXN": 18.5, "MYR": 5.10, "PHP": 60.5, "PLN": 4.32, "SAR": 4.05,
            "SGD": 1.46, "THB": 39.0, "VND": 26500.0}  # fmt: skip


def simulated_rates(first: date, last: date, seed: int = 0) -> Rates:
    """A rates table in the ECB layout with a rate every calendar day from ``first`` to
    ``last`` (a slow random walk around rough real levels)."""
    rng = np.random.default_rng(seed + 4217)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    rates = Rates(source="fx.csv")
    for cur, level in _PER_EUR.items():
        walk = np.exp(np.cumsum(rng.normal(0.0, 0.003, len(days))))
        rates.per_eur[cur] = {d: float(f"{level * w:.6g}") for d, w in zip(days, walk, strict=True)}
    return rates


def _selected(formats: Sequence[str]) -> list[str]:
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(
            f"unknown export format(s) {', '.join(unknown)}; expected {', '.join(FORMATS)}"
        )
    return [f for f in FORMATS if f in formats]


def split(
    frames: dict[str, pd.DataFrame], formats: Sequence[str]
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """The world's records split into what stays in contract files and, per format, what
    its exports hold."""
    chosen = _selected(formats)
    native = {k: v.copy() for k, v in frames.items()}
    exported: dict[str, pd.DataFrame] = {}
    for fmt in chosen:
        a = adapter(fmt)
        table = native[a.record_type]
        if fmt in WHOLE:
            take = a.carries(table)
        else:
            platforms = [p for p, f in PLATFORM_FORMAT.items() if f == fmt]
            take = table["counterparty_id"].isin(platforms) & a.carries(table)
        exported[fmt] = table[take].reset_index(drop=True)
        native[a.record_type] = table[~take].reset_index(drop=True)
    if "customs" in {adapter(f).record_type for f in chosen} and len(native["shipments"]):
        # the declarations get the adapter's IDs: a shipment left in a contract file can no
        # longer name one
        native["shipments"]["declaration_id"] = None
    return native, exported


def carried_world(
    frames: dict[str, pd.DataFrame], formats: Sequence[str]
) -> dict[str, pd.DataFrame]:
    """The world as its exports carry it: each exported record as its adapter gives it
    back, the rest unchanged (record IDs aside: the adapters make their own)."""
    native, exported = split(frames, formats)
    out = {k: v.copy() for k, v in native.items()}
    for fmt, rows in exported.items():
        a = adapter(fmt)
        out[a.record_type] = pd.concat([out[a.record_type], a.as_carried(rows)], ignore_index=True)
    return out


def write_exports(
    frames: dict[str, pd.DataFrame],
    out_dir: Path,
    formats: Sequence[str],
    rates: Rates | None,
    native_format: str = "csv",
) -> dict[str, Path]:
    """Write the world as exports (one file per firm and format) and contract files for the
    rest; return the paths written (``manifest``, ``fx`` when rates are given, and the
    contract files)."""
    import pyarrow as pa

    from credit.records import RECORD_TYPES
    from credit.simulator.writer import contract_schema, write_tables

    native, exported = split(frames, formats)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = {
        name: pa.Table.from_pandas(
            native[name][rt.columns], schema=contract_schema(name), preserve_index=False
        )
        for name, rt in RECORD_TYPES.items()
    }
    paths = write_tables(tables, out_dir, native_format)
    root = out_dir / "exports"
    listed: list[tuple[str, str, str]] = []
    for fmt, rows in exported.items():
        a = adapter(fmt)
        ext = "txt" if a.delimiter == "\t" else "csv"
        (root / fmt).mkdir(parents=True, exist_ok=True)
        for firm, part in rows.groupby("firm_id", sort=True):
            name = f"{fmt}/{firm}.{ext}"
            (root / name).write_text(a.export(part.reset_index(drop=True), rates), "utf-8")
            listed.append((name, fmt, str(firm)))
    with (root / MANIFEST).open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["file", "format", "firm_id"])
        w.writerows(listed)
    paths["manifest"] = root / MANIFEST
    if rates is not None:
        rates.write(out_dir / "fx.csv")
        paths["fx"] = out_dir / "fx.csv"
    return paths
