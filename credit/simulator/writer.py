"""Turn the simulator's arrays into contract tables and write them.

Tables are built in Arrow straight from numpy (identifiers are formatted without a Python
loop), sorted by event time so identifiers increase with time, and converted to pandas
with the contract's dtypes: ``str`` for strings, ``datetime64[ns]`` for timestamps
(``NaT`` when empty), ``float64``, ``int64`` and the nullable ``boolean``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from credit.records import (
    BUSINESS_MODELS,
    CATEGORIES,
    CUSTOMS_REGIMES,
    CUSTOMS_STATUSES,
    DESTINATION_TYPES,
    LOAN_PRODUCTS,
    PAYMENT_DIRECTION,
    RECORD_TYPES,
    SHIPMENT_MODES,
    SHIPMENT_STATUSES,
    TAX_REFUND_STATUSES,
)
from credit.simulator.calendar import Calendar
from credit.simulator.loans import observe_outcomes, truth_columns
from credit.simulator.payments import CURRENCIES, KINDS
from credit.simulator.population import HS_CODES, REGIONS
from credit.simulator.trade import COUNTRY_VOCAB, Trade
from credit.simulator.world import Latent

FORMATS = ("parquet", "csv")
TRUTH_FILE = "truth.parquet"
HS_VOCAB = tuple(code for codes in HS_CODES for code in codes)
_ARROW_TYPES = {"string": pa.string(), "timestamp": pa.timestamp("ns"), "float": pa.float64(),
                "int": pa.int64(), "bool": pa.bool_()}  # fmt: skip


def format_ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """``prefix`` followed by ``numbers`` zero-padded to ``width`` digits, as an Arrow array.

    Examples
    --------
    >>> format_ids("F", np.array([7, 123]), 4).to_pylist()
    ['F0007', 'F0123']
    """
    numbers = np.asarray(numbers, dtype=np.int64)
    if numbers.size and (numbers.min() < 0 or numbers.max() >= 10**width):
        raise ValueError(f"identifiers for {prefix!r} do not fit in {width} digits")
    p = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    digits = ((numbers[:, None] // powers[None, :]) % 10 + 48).astype(np.uint8)
    chars = np.concatenate([np.broadcast_to(p, (numbers.size, p.size)), digits], axis=1)
    size = p.size + width
    offsets = np.arange(numbers.size + 1, dtype=np.int32) * size
    return pa.StringArray.from_buffers(
        numbers.size, pa.py_buffer(offsets.tobytes()), pa.py_buffer(chars.tobytes())
    )


def categorical(vocab: Sequence[str], codes: np.ndarray) -> pa.Array:
    """Strings from a vocabulary and integer codes into it."""
    return pa.array(list(vocab), type=pa.string()).take(pa.array(np.asarray(codes, np.int64)))


def timestamps(cal: Calendar, days: np.ndarray, missing: np.ndarray | None = None) -> pa.Array:
    """Day offsets as Arrow timestamps; ``missing`` (or a negative day) becomes null."""
    days = np.asarray(days, dtype=np.int64)
    mask = days < 0 if missing is None else (missing | (days < 0))
    values = cal.timestamps(np.where(mask, 0, days))
    return pa.array(values, type=pa.timestamp("ns"), mask=mask)


def contract_schema(name: str) -> pa.Schema:
    """The Arrow schema of a contract table (its columns in order, their contract types)."""
    return pa.schema([pa.field(f.name, _ARROW_TYPES[f.dtype]) for f in RECORD_TYPES[name].fields])


def _table(name: str, columns: dict[str, pa.Array]) -> pa.Table:
    rt = RECORD_TYPES[name]
    if list(columns) != rt.columns:
        raise RuntimeError(f"simulator built {name} columns {list(columns)}, contract {rt.columns}")
    return pa.Table.from_arrays(list(columns.values()), schema=contract_schema(name))


def _order(*keys: np.ndarray) -> np.ndarray:
    """Stable order by the keys, the first key most significant."""
    return np.lexsort(tuple(reversed(keys)))


def build_tables(
    w: Latent, tr: Trade, pay: dict[str, np.ndarray], counterparties: list[str]
) -> dict[str, pa.Table]:
    """The five contract tables and ``truth``, as Arrow tables."""
    cal, pop = w.cal, w.pop
    n = pop.n
    tables: dict[str, pa.Table] = {}

    # firms, in id order
    firm_ids = format_ids("F", np.arange(1, n + 1), 6)
    tables["firms"] = _table("firms", {
        "firm_id": firm_ids,
        # registration may precede the start (negative offsets), so no null convention here
        "registered_at": pa.array(cal.timestamps(pop.registered_day), type=pa.timestamp("ns")),
        "business_model": categorical(BUSINESS_MODELS, pop.bm),
        "main_category": categorical(CATEGORIES, pop.category),
        "home_region": categorical(REGIONS, pop.region),
    })  # fmt: skip

    def firm_col(firm: np.ndarray) -> pa.Array:
        return firm_ids.take(pa.array(firm))

    cu = tr.customs
    o = _order(cu["day"], cu["firm"], np.arange(cu["day"].size))
    rank = np.empty_like(o)
    rank[o] = np.arange(o.size)
    c = {k: v[o] for k, v in cu.items()}
    tables["customs"] = _table("customs", {
        "declaration_id": format_ids("D", np.arange(1, o.size + 1), 9),
        "firm_id": firm_col(c["firm"]),
        "declared_at": timestamps(cal, c["day"]),
        "direction": categorical(("export", "import"), c["direction"]),
        "regime": categorical(CUSTOMS_REGIMES, c["regime"]),
        "hs_code": categorical(HS_VOCAB, c["hs"]),
        "origin_country": categorical(COUNTRY_VOCAB, c["origin"]),
        "destination_country": categorical(COUNTRY_VOCAB, c["destination"]),
        "value_usd": pa.array(np.maximum(c["value"], 0.01)),
        "quantity": pa.array(c["quantity"]),
        "status": categorical(CUSTOMS_STATUSES, c["status"]),
        "tax_refund_usd": pa.array(c["refund"]),
        "tax_refund_status": categorical(TAX_REFUND_STATUSES, c["refund_status"]),
        "tax_refund_settled_at": timestamps(cal, c["refund_day"]),
    })  # fmt: skip

    sh = tr.shipments
    o = _order(sh["day"], sh["firm"], np.arange(sh["day"].size))
    s = {k: v[o] for k, v in sh.items()}
    tables["shipments"] = _table("shipments", {
        "shipment_id": format_ids("S", np.arange(1, o.size + 1), 9),
        "firm_id": firm_col(s["firm"]),
        "declaration_id": format_ids("D", rank[s["declaration"]] + 1, 9),
        "shipped_at": timestamps(cal, s["day"]),
        "closed_at": timestamps(cal, s["close_day"]),
        "mode": categorical(SHIPMENT_MODES, s["mode"]),
        "origin_country": categorical(COUNTRY_VOCAB, np.full(o.size, COUNTRY_VOCAB.index("CN"))),
        "destination_country": categorical(COUNTRY_VOCAB, s["destination"]),
        "destination_type": categorical(DESTINATION_TYPES, s["dest_type"]),
        "weight_kg": pa.array(s["weight"]),
        "declared_value_usd": pa.array(s["value"]),
        "status": categorical(SHIPMENT_STATUSES, s["status"]),
    })  # fmt: skip

    o = _order(pay["day"], pay["firm"], np.arange(pay["day"].size))
    p = {k: v[o] for k, v in pay.items()}
    direction = np.array([PAYMENT_DIRECTION[k] == "out" for k in KINDS])[p["kind"]]
    tables["payments"] = _table("payments", {
        "payment_id": format_ids("P", np.arange(1, o.size + 1), 10),
        "firm_id": firm_col(p["firm"]),
        "kind": categorical(KINDS, p["kind"]),
        "direction": categorical(("in", "out"), direction.astype(np.int64)),
        "amount_usd": pa.array(p["amount"]),
        "currency": categorical(CURRENCIES, p["currency"]),
        "counterparty_id": categorical(counterparties, p["counterparty"]),
        "occurred_at": timestamps(cal, p["day"]),
        "due_at": timestamps(cal, p["due_day"]),
        "paid_at": timestamps(cal, p["paid_day"]),
    })  # fmt: skip

    lb = w.loans
    out = observe_outcomes(w)
    o = _order(lb.applied_day, lb.firm, np.arange(lb.n))
    loan_ids = format_ids("L", np.arange(1, o.size + 1), 8)
    tables["loans"] = _table("loans", {
        "loan_id": loan_ids,
        "firm_id": firm_col(lb.firm[o]),
        "product": categorical(LOAN_PRODUCTS, lb.product[o]),
        "applied_at": timestamps(cal, lb.applied_day[o]),
        "disbursed_at": timestamps(cal, lb.disbursed_day[o]),
        "amount_usd": pa.array(lb.amount[o].astype(np.float64)),
        "term_days": pa.array(lb.term[o].astype(np.int64)),
        "defaulted": pa.array(out.defaulted[o], type=pa.bool_(), mask=~out.defaulted_known[o]),
        "default_at": timestamps(cal, out.default_day[o]),
    })  # fmt: skip

    truth: dict[str, pa.Array] = {"loan_id": loan_ids, "firm_id": firm_col(lb.firm[o])}
    for k, v in truth_columns(w).items():
        truth[k] = pa.array(v[o])
    latent_default = np.where(lb.will_default, lb.default_day, -1)[o]
    truth["latent_default_at"] = timestamps(cal, latent_default)
    tables["truth"] = pa.Table.from_pydict(truth)
    return tables


def to_frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow table as a DataFrame with the contract's pandas dtypes."""
    return table.to_pandas(types_mapper={pa.bool_(): pd.BooleanDtype()}.get)


def write_tables(
    tables: dict[str, pa.Table], out_dir: Path, fmt: str = "parquet"
) -> dict[str, Path]:
    """Write the five contract files as ``<name>.<fmt>`` and ``truth.parquet``.

    Parquet timestamps are stored in microseconds; CSV dates are written as ``YYYY-MM-DD``
    (every simulated timestamp is a midnight), booleans as ``true``/``false`` and empty
    values as empty fields. The bytes depend only on the tables, so equal seeds give equal
    files.
    """
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is not supported; use one of {', '.join(FORMATS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, table in tables.items():
        if name == "truth":
            path = out_dir / TRUTH_FILE
            pq.write_table(table, path, compression="zstd", coerce_timestamps="us")
        elif fmt == "parquet":
            path = out_dir / f"{name}.parquet"
            pq.write_table(table, path, compression="zstd", coerce_timestamps="us")
        else:
            path = out_dir / f"{name}.csv"
            cols = [
                col.cast(pa.date32()) if pa.types.is_timestamp(col.type) else col
                for col in table.columns
            ]
            pacsv.write_csv(pa.Table.from_arrays(cols, names=table.column_names), path)
        paths[name] = path
    return paths
