"""A firm's records as known at a moment, from the providers a consent covers.

The point-in-time rule is bitemporal: for a decision about ``as_of`` made at ``known_at``, a
record counts when its event happened before ``as_of`` (the catalog then applies each source's
availability lag, :mod:`features.pit`) **and** it was ingested at or before ``known_at``. A
record pushed later with a back-dated event time changes the decisions made after it arrived,
never the replay of one made before.

Records come from the two places they are kept: the DuckDB record store (files, and pushed
records copied there by the feature build; ``record_ingestions`` says whose each one is and
since when it is known) and the service database (records pushed over HTTP,
:class:`credit.ledger.Ledger`). A record held by both is the same record (IDs are global and
never overwritten); it is counted once.

The firm's own row (registration date, business model, category) is the seller's identity:
it is read whoever provided it. Every other record is read only when its provider is among
the consent's sources; the providers left out are reported, so a decision can say its data
was not shared rather than that the firm has no history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from credit.ledger import Ledger, StoredRecord
from credit.records import RECORD_TYPES
from credit.store import OPERATOR_SOURCE, open_store
from features.pit import SOURCES

#: Known time of the records stored before lineage was kept (they count as known all along).
BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class KnownRecords:
    """A firm's records as known at a moment, within a consent's sources."""

    records: dict[str, list[dict[str, Any]]]
    firm: dict[str, Any] | None
    #: the ingestions that contributed at least one of these records (lineage)
    ingestions: list[str] = field(default_factory=list)
    #: the providers whose records were used
    providers: list[str] = field(default_factory=list)
    #: the firm's providers whose records were held but are outside the consent's sources
    withheld: list[str] = field(default_factory=list)


def _naive(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t


def _store_rows(
    con: duckdb.DuckDBPyConnection, firm_id: str, as_of: datetime, known_at: datetime
) -> dict[str, list[tuple[dict[str, Any], str, str]]]:
    """type -> (record, ingestion, provider) from the record store, known at ``known_at``."""
    out: dict[str, list[tuple[dict[str, Any], str, str]]] = {}
    t, k = _naive(as_of), _naive(known_at)
    for kind, rt in RECORD_TYPES.items():
        event = "" if kind == "firms" else f" AND r.{SOURCES[kind].event_time} < $as_of"
        cur = con.execute(
            f"SELECT r.*, coalesce(i.ingestion, '') AS _ingestion, "  # noqa: S608 - our names
            f"coalesce(i.provider, '{OPERATOR_SOURCE}') AS _provider FROM {kind} r "
            f"LEFT JOIN record_ingestions i ON i.record_type = '{kind}' "
            f"AND i.record_id = r.{rt.id_field} "
            f"WHERE r.firm_id = $firm{event} AND (i.known_at IS NULL OR i.known_at <= $known)",
            {"firm": firm_id, "known": k, **({} if kind == "firms" else {"as_of": t})},
        )
        names = [d[0] for d in cur.description]
        rows = []
        for row in cur.fetchall():
            rec = dict(zip(names, row, strict=True))
            ing, prov = rec.pop("_ingestion"), rec.pop("_provider")
            rows.append((rec, ing, prov))
        out[kind] = rows
    return out


def load_known(
    store_path: Path | None,
    ledger: Ledger | None,
    firm_id: str,
    as_of: datetime,
    known_at: datetime,
    sources: Iterable[str] | None,
) -> KnownRecords:
    """The firm's records with an event before ``as_of``, ingested at or before ``known_at``,
    from the providers ``sources`` (``None``: all).

    Raises whatever opening the record store raises (``duckdb.Error``, ``OSError``): the
    caller decides what an unreadable store means. A missing store reads as empty.
    """
    allowed = None if sources is None else set(sources)
    rows: dict[str, list[tuple[dict[str, Any], str, str]]] = {k: [] for k in RECORD_TYPES}
    if store_path is not None and Path(store_path).exists():
        con = open_store(Path(store_path), read_only=True)
        try:
            rows = _store_rows(con, firm_id, as_of, known_at)
        finally:
            con.close()
    seen = {(k, str(r[RECORD_TYPES[k].id_field])) for k, rs in rows.items() for r, _, _ in rs}
    if ledger is not None:
        pushed: list[StoredRecord] = ledger.records(firm_id, known_at=known_at)
        t = _naive(as_of)
        for p in pushed:
            if (p.record_type, p.record_id) in seen:
                continue
            if p.record_type != "firms":
                when = p.record.get(SOURCES[p.record_type].event_time)
                if when is None or when >= t:
                    continue
            rows[p.record_type].append((p.record, p.ingestion_id, p.provider))
    out = KnownRecords(records={}, firm=None)
    used: set[str] = set()
    ingestions: set[str] = set()
    withheld: set[str] = set()
    for kind, rs in rows.items():
        if kind == "firms":
            if rs:
                rec, ing, _ = rs[0]
                out.firm = rec
                if ing:
                    ingestions.add(ing)
            continue
        keep = []
        for rec, ing, prov in rs:
            if allowed is not None and prov not in allowed:
                withheld.add(prov)
                continue
            keep.append(rec)
            used.add(prov)
            if ing:
                ingestions.add(ing)
        out.records[kind] = keep
    out.ingestions = sorted(ingestions)
    out.providers = sorted(used)
    out.withheld = sorted(withheld)
    return out


def as_frames(known: KnownRecords) -> dict[str, pd.DataFrame]:
    """The records as the offer engine reads them: one frame per type, ``firms`` included."""
    out: dict[str, pd.DataFrame] = {}
    for kind in RECORD_TYPES:
        rows = ([known.firm] if known.firm else []) if kind == "firms" else known.records[kind]
        out[kind] = records_frame(kind, rows)
    return out


def records_frame(record_type: str, rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Typed records as a frame with the contract's columns and types (as the record store
    gives them)."""
    rt = RECORD_TYPES[record_type]
    frame = pd.DataFrame(list(rows), columns=list(rt.columns))
    for f in rt.fields:
        if f.dtype == "timestamp":
            frame[f.name] = pd.to_datetime(frame[f.name])
        elif f.dtype == "float":
            frame[f.name] = pd.to_numeric(frame[f.name]).astype("float64")
        elif f.dtype == "int":
            frame[f.name] = pd.to_numeric(frame[f.name]).astype("Int64")
        elif f.dtype == "bool":
            frame[f.name] = frame[f.name].astype("boolean")
    return frame


def sync_pushed(con: duckdb.DuckDBPyConnection, ledger: Ledger) -> dict[str, int]:
    """Copy the records pushed over HTTP into the record store, with their lineage, so the
    batch feature build (DuckDB or Spark) reads them as it reads ingested files. Idempotent:
    a record already copied is skipped. Returns the number copied per record type."""
    copied = dict.fromkeys(RECORD_TYPES, 0)
    last = con.execute(
        "SELECT max(known_at) FROM record_ingestions WHERE ingestion LIKE 'push_%'"
    ).fetchall()[0][0]
    after = None if last is None else last.replace(tzinfo=UTC)
    # Records ingested in the same instant as the last copied one are checked one by one.
    if after is not None:
        after = after - pd.Timedelta(seconds=1)
    for chunk in ledger.all_records(after=after):
        by_type: dict[str, list[StoredRecord]] = {}
        for r in chunk:
            by_type.setdefault(r.record_type, []).append(r)
        for kind, recs in by_type.items():
            rt = RECORD_TYPES[kind]
            ids = [r.record_id for r in recs]
            have = {
                str(x)
                for (x,) in con.execute(
                    f"SELECT {rt.id_field} FROM {kind} WHERE {rt.id_field} IN "  # noqa: S608
                    f"(SELECT unnest($ids))",
                    {"ids": ids},
                ).fetchall()
            }
            new = [r for r in recs if r.record_id not in have]
            if not new:
                continue
            frame = pd.DataFrame([r.record for r in new], columns=list(rt.columns))
            lineage = pd.DataFrame(
                {
                    "record_type": kind,
                    "record_id": [r.record_id for r in new],
                    "ingestion": [r.ingestion_id for r in new],
                    "provider": [r.provider for r in new],
                    "known_at": [_naive(r.ingested_at) for r in new],
                }
            )
            con.register("_pushed", frame)
            con.register("_lineage", lineage)
            try:
                cols = ", ".join(rt.columns)
                con.execute(f"INSERT INTO {kind} ({cols}) SELECT {cols} FROM _pushed")
                con.execute("INSERT INTO record_ingestions SELECT * FROM _lineage")
            finally:
                con.unregister("_pushed")
                con.unregister("_lineage")
            copied[kind] += len(new)
    return copied
