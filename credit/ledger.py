"""Whose records: every ingestion a provider made, and the records pushed over HTTP.

Records reach tradecredit two ways, and both are registered here, in the service database
that every replica of the service shares (SQLite by default, PostgreSQL through
``TRADECREDIT_DATABASE_URL``):

* **files**, ``credit ingest DIR --source TENANT``: the rows go to the DuckDB record store
  (:mod:`credit.store`), which also notes per record the ingestion that added it; each file's
  ingestion is registered here as ``file_<n>``;
* **HTTP pushes**, ``POST /v1/records``: validated by the same contract code as files
  (:func:`credit.ingest.validate_records`), the accepted records are kept here
  (``provided_records``, one row per record with its provider, its ingestion ``push_<hex>``
  and when it was ingested); the push is registered as an ingestion too.

Tables (migration 0005):

``record_batches``
    one row per ingestion: provider, API key, channel (``http`` or ``file``), name, SHA-256,
    when it was ingested, the per-type counts (``read = accepted + rejected``) and every
    rejected row with field and reason.
``provided_records``
    the pushed records: type, ID, firm, provider, ingestion, ingested at, and the record as
    the store holds it (JSON of the contract's typed fields).
``firm_sources``
    per firm and provider, when the provider first and last sent records of it: who holds a
    firm's data (a consent's default sources) and whether a stored feature snapshot predates
    the latest records.

Record IDs are global and records are never overwritten: pushing a record again with the
same content is ``already_present``; with different content it is rejected.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql

from credit.fastpath.dbapi import FastInsert, fast_query
from credit.ingest import validate_records
from credit.records import RECORD_TYPES

#: The most records one ``POST /v1/records`` may carry (all types together).
MAX_PUSH_RECORDS = 5000

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TS = sa.DateTime(timezone=True)
_meta = sa.MetaData()
record_batches = sa.Table(
    "record_batches",
    _meta,
    sa.Column("ingestion_id", sa.String(40), primary_key=True),
    sa.Column("provider", sa.String(64), nullable=False),
    sa.Column("key_id", sa.String(32)),
    sa.Column("channel", sa.String(8), nullable=False),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("ingested_at", _TS, nullable=False),
    sa.Column("counts", _JSON, nullable=False),
    sa.Column("rejected", _JSON, nullable=False),
)
provided_records = sa.Table(
    "provided_records",
    _meta,
    sa.Column("record_type", sa.String(16), primary_key=True),
    sa.Column("record_id", sa.String(64), primary_key=True),
    sa.Column("firm_id", sa.String(64), nullable=False),
    sa.Column("provider", sa.String(64), nullable=False),
    sa.Column("ingestion_id", sa.String(40), nullable=False),
    sa.Column("ingested_at", _TS, nullable=False),
    sa.Column("content", sa.Text, nullable=False),
)
#: every row of an export pushed through an adapter, with its outcome (migration 0009)
source_rows = sa.Table(
    "source_rows",
    _meta,
    sa.Column("ingestion_id", sa.String(40), primary_key=True),
    sa.Column("line", sa.Integer, primary_key=True),
    sa.Column("format", sa.String(32), nullable=False),
    sa.Column("outcome", sa.String(8), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("record_type", sa.String(16)),
    sa.Column("record_id", sa.String(64)),
    sa.Column("currency", sa.String(3)),
    sa.Column("amount", sa.Float),
    sa.Column("usd_rate", sa.Float),
)
firm_sources = sa.Table(
    "firm_sources",
    _meta,
    sa.Column("firm_id", sa.String(64), primary_key=True),
    sa.Column("provider", sa.String(64), primary_key=True),
    sa.Column("first_ingested_at", _TS, nullable=False),
    sa.Column("last_ingested_at", _TS, nullable=False),
)

_CONFLICT = (
    "{id} is already stored with different content "
    "(records are never overwritten; correct the record or use a new ID)"
)


def _utc(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _plain(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, date):
        return v.isoformat()
    return v


def content_json(record: Mapping[str, Any]) -> str:
    """A typed record as stored: JSON of its contract fields in contract order (timestamps
    in ISO 8601 without offset: naive UTC, as the record store holds them)."""
    try:
        return orjson.dumps(record).decode()  # datetimes natively, as isoformat() writes them
    except TypeError:  # a value orjson does not know (a date): the slow way
        return orjson.dumps({k: _plain(v) for k, v in record.items()}).decode()


def decode_content(record_type: str, text: str) -> dict[str, Any]:
    """A stored record back as the contract's typed values (timestamps as naive UTC)."""
    raw = orjson.loads(text)
    rt = RECORD_TYPES[record_type]
    out: dict[str, Any] = {}
    for f in rt.fields:
        v = raw.get(f.name)
        if v is not None and f.dtype == "timestamp":
            v = datetime.fromisoformat(v)
        out[f.name] = v
    return out


@dataclass
class TypeCounts:
    """One record type's counts in a push: ``read = accepted + rejected``, ``accepted =
    added + already_present``."""

    read: int = 0
    accepted: int = 0
    added: int = 0
    already_present: int = 0
    rejected: int = 0


@dataclass
class PushResult:
    """What one push did: its ingestion, per-type counts, every rejected row, the firms it
    added records to."""

    ingestion_id: str
    provider: str
    ingested_at: datetime
    sha256: str
    counts: dict[str, TypeCounts]
    rejected: list[dict[str, Any]]
    firms: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ingestion_id": self.ingestion_id,
            "provider": self.provider,
            "ingested_at": self.ingested_at.isoformat().replace("+00:00", "Z"),
            "sha256": self.sha256,
            "counts": {k: vars(v) for k, v in self.counts.items()},
            "rejected": self.rejected,
            "firms": self.firms,
        }


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A pushed record with its lineage."""

    record_type: str
    record_id: str
    provider: str
    ingestion_id: str
    ingested_at: datetime
    record: dict[str, Any]


def new_push_id() -> str:
    return "push_" + secrets.token_hex(8)


def file_ingestion_id(n: int) -> str:
    """The lineage id of the record store's ingestion ``n`` (one file)."""
    return f"file_{int(n)}"


_PROVIDERS = sa.select(firm_sources.c.provider, firm_sources.c.last_ingested_at).where(
    firm_sources.c.firm_id == sa.bindparam("firm_id")
)


class Ledger:
    """Ingestions, pushed records and firm sources in the service database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = FastInsert(engine, provided_records)

    # ---- who holds a firm's data ----------------------------------------------------------

    def firm_providers(self, firm_id: str) -> dict[str, datetime]:
        """provider -> when it last sent records of ``firm_id`` (empty: none known)."""
        rows = fast_query(self.engine, "firm_providers", _PROVIDERS).all({"firm_id": firm_id})
        return {p: _utc(t) for p, t in rows}  # type: ignore[misc]

    def has_records(self, firm_id: str) -> bool:
        """Whether any record of ``firm_id`` was pushed over HTTP."""
        c = provided_records.c
        with self.engine.connect() as conn:
            q = sa.select(c.record_id).where(c.firm_id == firm_id).limit(1)
            return conn.execute(q).first() is not None

    def known_firms(self, firm_ids: Iterable[str]) -> set[str]:
        ids = sorted(set(firm_ids))
        found: set[str] = set()
        with self.engine.connect() as conn:
            for i in range(0, len(ids), 500):
                part = ids[i : i + 500]
                found.update(
                    conn.execute(
                        sa.select(firm_sources.c.firm_id)
                        .where(firm_sources.c.firm_id.in_(part))
                        .distinct()
                    ).scalars()
                )
        return found

    def _note_sources(
        self, conn: sa.Connection, provider: str, firms: Iterable[str], when: datetime
    ) -> None:
        ids = sorted(set(firms))
        fs = firm_sources.c
        have: set[str] = set()
        for i in range(0, len(ids), 500):
            have.update(
                conn.execute(
                    sa.select(fs.firm_id).where(
                        fs.provider == provider, fs.firm_id.in_(ids[i : i + 500])
                    )
                ).scalars()
            )
        if have:
            for i in range(0, len(sorted(have)), 500):
                conn.execute(
                    firm_sources.update()
                    .where(fs.provider == provider, fs.firm_id.in_(sorted(have)[i : i + 500]))
                    .values(last_ingested_at=when)
                )
        new = [f for f in ids if f not in have]
        if new:
            conn.execute(
                firm_sources.insert(),
                [
                    {
                        "firm_id": f,
                        "provider": provider,
                        "first_ingested_at": when,
                        "last_ingested_at": when,
                    }
                    for f in new
                ],
            )

    # ---- pushes ---------------------------------------------------------------------------

    def push(
        self,
        provider: str,
        key_id: str | None,
        records: Mapping[str, Sequence[Mapping[str, Any]]],
        *,
        body_sha256: str,
        known_elsewhere: Callable[[str, set[str]], set[str]] | None = None,
        now: datetime | None = None,
    ) -> PushResult:
        """Validate and store one push; register it; note the firms' new source.

        ``known_elsewhere(record_type, ids)`` returns which of ``ids`` the record store holds
        (records ingested from files), so a push may reference them. A push racing another
        that stores one of its records first is checked again (that record is then
        ``already_present`` or a conflict).

        Raises ``KeyError`` for an unknown record type.
        """
        try:
            return self._push(provider, key_id, records, body_sha256, known_elsewhere, now)
        except sa.exc.IntegrityError:
            return self._push(provider, key_id, records, body_sha256, known_elsewhere, now)

    def _push(
        self,
        provider: str,
        key_id: str | None,
        records: Mapping[str, Sequence[Mapping[str, Any]]],
        body_sha256: str,
        known_elsewhere: Callable[[str, set[str]], set[str]] | None,
        now: datetime | None,
    ) -> PushResult:
        for name in records:
            if name not in RECORD_TYPES:
                raise KeyError(f"unknown record type {name!r}; expected {', '.join(RECORD_TYPES)}")
        now = now or datetime.now(UTC)
        known = self._known_references(records, known_elsewhere)
        check = validate_records(records, known=known)
        counts = {name: TypeCounts(read=len(rows)) for name, rows in records.items()}
        rejected: list[dict[str, Any]] = [
            {
                "record_type": r.record_type,
                "index": r.index,
                "record_id": r.record_id,
                "field": r.field,
                "reason": r.reason,
            }
            for r in check.rejected
        ]
        ingestion_id = new_push_id()
        rows: list[dict[str, Any]] = []
        firms: set[str] = set()
        stored = self._stored(check.typed)
        for name, typed in check.typed.items():
            rt = RECORD_TYPES[name]
            index = {str(r.get(rt.id_field)): i for i, r in enumerate(records[name])}
            for rid, rec in typed.items():
                text = content_json(rec)
                before = stored.get((name, rid))
                if before is None:
                    rows.append(
                        {
                            "record_type": name,
                            "record_id": rid,
                            "firm_id": str(rec["firm_id"]),
                            "provider": provider,
                            "ingestion_id": ingestion_id,
                            "ingested_at": now,
                            "content": text,
                        }
                    )
                    firms.add(str(rec["firm_id"]))
                    counts[name].added += 1
                elif before == text:
                    counts[name].already_present += 1
                else:
                    rejected.append(
                        {
                            "record_type": name,
                            "index": index.get(rid, -1),
                            "record_id": rid,
                            "field": rt.id_field,
                            "reason": _CONFLICT.format(id=rt.id_field),
                        }
                    )
        for r in rejected:
            counts[r["record_type"]].rejected += 1
        for c in counts.values():
            c.accepted = c.read - c.rejected
        rejected.sort(key=lambda r: (list(RECORD_TYPES).index(r["record_type"]), r["index"]))
        result = PushResult(
            ingestion_id, provider, now, body_sha256, counts, rejected, sorted(firms)
        )
        with self.engine.begin() as conn:
            if rows:  # one executemany of SQL rendered once (compiling 1,000 rows costs more)
                conn.exec_driver_sql(self._insert.sql, [self._insert.params(r) for r in rows])
            conn.execute(
                record_batches.insert().values(
                    ingestion_id=ingestion_id,
                    provider=provider,
                    key_id=key_id,
                    channel="http",
                    name="POST /v1/records",
                    sha256=body_sha256,
                    ingested_at=now,
                    counts={k: vars(v) for k, v in counts.items()},
                    rejected=rejected,
                )
            )
            if firms:
                self._note_sources(conn, provider, firms, now)
        return result

    def _known_references(
        self,
        records: Mapping[str, Sequence[Mapping[str, Any]]],
        known_elsewhere: Callable[[str, set[str]], set[str]] | None,
    ) -> dict[str, set[str]]:
        """The referenced IDs (firms, declarations) that are stored already."""
        wanted: dict[str, set[str]] = {}
        for name, rows in records.items():
            for f in RECORD_TYPES[name].fields:
                if f.references is None:
                    continue
                ref, _ = f.references
                wanted.setdefault(ref, set()).update(
                    str(r[f.name]) for r in rows if r.get(f.name) is not None
                )
        known: dict[str, set[str]] = {}
        for ref, ids in wanted.items():
            have = {k for (_, k) in self._stored_ids(ref, ids)}
            if ref == "firms":
                have |= self.known_firms(ids - have)
            if known_elsewhere is not None and ids - have:
                have |= known_elsewhere(ref, ids - have)
            known[ref] = have
        return known

    def _stored_ids(self, record_type: str, ids: Iterable[str]) -> set[tuple[str, str]]:
        return set(self._stored({record_type: {i: {} for i in ids}}))

    def _stored(self, typed: Mapping[str, Mapping[str, Any]]) -> dict[tuple[str, str], str]:
        """(type, id) -> stored content, for the records of ``typed`` that are stored."""
        out: dict[tuple[str, str], str] = {}
        c = provided_records.c
        with self.engine.connect() as conn:
            for name, recs in typed.items():
                ids = sorted(recs)
                for i in range(0, len(ids), 500):
                    for rid, text in conn.execute(
                        sa.select(c.record_id, c.content).where(
                            c.record_type == name, c.record_id.in_(ids[i : i + 500])
                        )
                    ):
                        out[(name, rid)] = text
        return out

    # ---- files ----------------------------------------------------------------------------

    def register_file(
        self,
        ingestion_id: str,
        provider: str,
        name: str,
        sha256: str,
        ingested_at: datetime,
        counts: Mapping[str, Mapping[str, int]],
        firms: Iterable[str],
    ) -> None:
        """Register a file ingested into the record store (idempotent on its id)."""
        with self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(record_batches.c.ingestion_id).where(
                    record_batches.c.ingestion_id == ingestion_id
                )
            ).first()
            if exists is None:
                conn.execute(
                    record_batches.insert().values(
                        ingestion_id=ingestion_id,
                        provider=provider,
                        key_id=None,
                        channel="file",
                        name=name[:300],
                        sha256=sha256,
                        ingested_at=ingested_at,
                        counts=dict(counts),
                        rejected=[],
                    )
                )
            self._note_sources(conn, provider, firms, ingested_at)

    # ---- reads ----------------------------------------------------------------------------

    def keep_source_rows(
        self, ingestion_id: str, fmt: str, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Keep every source row of an export pushed through an adapter (its outcome,
        reason, record, and original currency and amount) under its ingestion."""
        if not rows:
            return
        cols = [c.name for c in source_rows.columns if c.name not in ("ingestion_id", "format")]
        with self.engine.begin() as conn:
            conn.execute(
                source_rows.insert(),
                [
                    {"ingestion_id": ingestion_id, "format": fmt, **{c: r.get(c) for c in cols}}
                    for r in rows
                ],
            )

    def source_rows(self, ingestion_id: str) -> list[dict[str, Any]]:
        """The source rows kept for an ingestion, in line order (none for a plain push)."""
        c = source_rows.c
        q = sa.select(source_rows).where(c.ingestion_id == ingestion_id).order_by(c.line)
        with self.engine.connect() as conn:
            return [
                {k: v for k, v in row.items() if k != "ingestion_id" and v is not None}
                for row in conn.execute(q).mappings()
            ]

    def batch(self, ingestion_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(record_batches).where(record_batches.c.ingestion_id == ingestion_id)
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        out = dict(row)
        out["ingested_at"] = _utc(out["ingested_at"])
        return out

    def batches(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Lineage: the ingestions ``ids`` (provider, channel, name, SHA-256, when)."""
        ids = sorted(set(ids))
        b = record_batches.c
        out: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(ids), 500):
                q = sa.select(
                    b.ingestion_id, b.provider, b.channel, b.name, b.sha256, b.ingested_at
                )
                for row in conn.execute(q.where(b.ingestion_id.in_(ids[i : i + 500]))).mappings():
                    d = dict(row)
                    d["ingested_at"] = _utc(d["ingested_at"])
                    out[d["ingestion_id"]] = d
        return out

    def records(
        self,
        firm_id: str,
        *,
        known_at: datetime | None = None,
        provider: str | None = None,
        record_type: str | None = None,
    ) -> list[StoredRecord]:
        """A firm's pushed records ingested at or before ``known_at`` (default: all),
        optionally of one provider or one type, oldest first."""
        c = provided_records.c
        q = sa.select(
            c.record_type, c.record_id, c.provider, c.ingestion_id, c.ingested_at, c.content
        ).where(c.firm_id == firm_id)
        if known_at is not None:
            q = q.where(c.ingested_at <= known_at)
        if provider is not None:
            q = q.where(c.provider == provider)
        if record_type is not None:
            q = q.where(c.record_type == record_type)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(c.ingested_at, c.record_type, c.record_id)).all()
        return [
            StoredRecord(t, rid, p, ing, _utc(at), decode_content(t, text))  # type: ignore[arg-type]
            for t, rid, p, ing, at, text in rows
        ]

    def all_records(self, after: datetime | None = None) -> Iterable[list[StoredRecord]]:
        """Every pushed record (ingested after ``after``), in chunks: for the feature build."""
        c = provided_records.c
        q = sa.select(
            c.record_type, c.record_id, c.provider, c.ingestion_id, c.ingested_at, c.content
        ).order_by(c.ingested_at, c.record_type, c.record_id)
        if after is not None:
            q = q.where(c.ingested_at > after)
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(q)
            while chunk := result.fetchmany(10_000):
                yield [
                    StoredRecord(t, rid, p, ing, _utc(at), decode_content(t, text))  # type: ignore[arg-type]
                    for t, rid, p, ing, at, text in chunk
                ]


def body_digest(body: bytes) -> str:
    """The SHA-256 of a push's body, as registered with its ingestion."""
    return hashlib.sha256(body).hexdigest()
