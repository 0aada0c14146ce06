"""Validated ingestion of trade-record files into the record store.

``ingest_dir(DIR)`` reads the ``firms``, ``customs``, ``shipments``, ``payments`` and
``loans`` files of a directory (CSV or Parquet, by extension; any subset), validates every
row against the data contract inside DuckDB (vectorised SQL generated from
:mod:`credit.records`, see :mod:`credit.ingest_sql`) and stores the valid rows. Invalid
rows go to the ``rejected`` table with the file, line, field, value and a reason.

Rules worth knowing
-------------------
* Files are recognised by name: ``<type>.csv``, ``<type>.csv.gz``, ``<type>.parquet``, or
  the same with a suffix after ``_`` or ``-`` (``payments_2024-01.parquet``). Anything else
  in the directory is reported as skipped.
* Record types are ingested in dependency order (firms, customs, shipments, payments,
  loans) whatever the file order, so a file may reference firms of the same directory.
* Counts reconcile for every file: ``read = accepted + rejected``. ``accepted`` counts the
  valid rows, among them ``already_present`` rows identical to a stored record, which add
  nothing (re-ingesting a file is a no-op). ``added = accepted - already_present``.
* One transaction per file. A file that cannot be read (empty, not UTF-8, malformed CSV,
  truncated Parquet, a required column missing) is a *file error*: nothing of it is
  written, the files after it are not attempted, and the error names the file and the
  problem. Every file's header is checked before any file is ingested.
* Unexpected extra columns are ignored with a warning (producers may add columns); a
  missing optional column is read as empty.
* CSV: UTF-8, comma separated, ``"`` quoted, header line first; an empty field is empty.
  The line reported for a rejected row is its data row number + 1 (the header is line
  1). Parquet: the line reported is the 1-based row number.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import queue
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from credit.ingest_sql import (
    CheckPlan,
    codes_values,
    known_table,
    lit,
    q,
    safe_error,
    validation_select,
    verdict_select,
)
from credit.records import RECORD_TYPES, RecordType, record_type, vocabulary
from credit.settings import get_settings
from credit.store import MAX_VALUE_CHARS, OPERATOR_SOURCE, open_store

_NAME_RE = re.compile(
    r"^(?P<rt>" + "|".join(RECORD_TYPES) + r")(?:[_-][^/]*)?\.(?P<ext>csv|csv\.gz|parquet)$"
)
TOP_REASONS = 3

#: ``progress(file, stage, done, total)`` is called as a file moves through its stages.
ProgressFn = Callable[[str, str, int, int], None]
_STAGES = ("reading", "validating", "storing", "done")


class IngestError(Exception):
    """A file could not be ingested at all; the message names the file and the problem."""

    def __init__(self, file: str, problem: str) -> None:
        super().__init__(f"{file}: {problem}")
        self.file = file
        self.problem = problem


@dataclass
class ReasonCount:
    """How many rows of a file were rejected for one reason."""

    field: str
    reason: str
    count: int


@dataclass
class FileReport:
    """The outcome of one file.

    ``status`` is ``ingested``, ``failed`` (a file error, nothing written) or
    ``not_attempted`` (an earlier file failed).
    """

    file: str
    record_type: str
    format: str
    status: str = "not_attempted"
    read: int = 0
    accepted: int = 0
    already_present: int = 0
    rejected: int = 0
    top_reasons: list[ReasonCount] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    sha256: str | None = None
    seconds: float = 0.0
    #: the record store's ingestion id (lineage ``file_<n>``), once stored
    ingestion_id: int | None = None
    finished_at: datetime | None = None
    #: the firms whose records this file added (not printed)
    firms: list[str] = field(default_factory=list, repr=False)

    @property
    def added(self) -> int:
        return self.accepted - self.already_present


@dataclass
class IngestReport:
    """Everything ``credit ingest`` prints: per file and per record type."""

    directory: str
    store: str
    ingestion_date: str
    files: list[FileReport] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no file error happened (rejected rows do not make a run fail)."""
        return not self.errors

    def by_record_type(self) -> dict[str, dict[str, Any]]:
        """Counts and top reasons summed over the files of each record type."""
        out: dict[str, dict[str, Any]] = {}
        for rt in RECORD_TYPES:
            files = [f for f in self.files if f.record_type == rt]
            if not files:
                continue
            reasons: Counter[tuple[str, str]] = Counter()
            for f in files:
                for r in f.top_reasons:
                    reasons[(r.field, r.reason)] += r.count
            out[rt] = {
                "files": len(files),
                "read": sum(f.read for f in files),
                "accepted": sum(f.accepted for f in files),
                "added": sum(f.added for f in files),
                "already_present": sum(f.already_present for f in files),
                "rejected": sum(f.rejected for f in files),
                "top_reasons": [
                    {"field": k[0], "reason": k[1], "count": n}
                    for k, n in reasons.most_common(TOP_REASONS)
                ],
                "failed": [f.file for f in files if f.status == "failed"],
            }
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view of the report."""
        files = []
        for f in self.files:
            d = asdict(f)
            d.pop("firms")
            d["added"] = f.added
            d["finished_at"] = None if f.finished_at is None else f.finished_at.isoformat()
            files.append(d)
        return {
            "ok": self.ok,
            "directory": self.directory,
            "store": self.store,
            "ingestion_date": self.ingestion_date,
            "record_types": self.by_record_type(),
            "files": files,
            "skipped": self.skipped,
            "errors": self.errors,
        }

    def raise_for_errors(self) -> None:
        """Raise :class:`IngestError` for the first file error, if any."""
        for f in self.files:
            if f.status == "failed":
                raise IngestError(f.file, f.error or "failed")


@dataclass
class _Source:
    path: Path
    rt: RecordType
    fmt: str
    columns: dict[str, str] = field(default_factory=dict)


def discover(directory: Path) -> tuple[list[_Source], list[str]]:
    """The record files of ``directory`` in dependency order, and the names skipped."""
    found: list[_Source] = []
    skipped: list[str] = []
    order = {name: i for i, name in enumerate(RECORD_TYPES)}
    for p in sorted(directory.iterdir()):
        if p.name.startswith("."):
            continue
        m = _NAME_RE.match(p.name)
        if m is None or not p.is_file():
            skipped.append(p.name)
            continue
        fmt = "parquet" if m["ext"] == "parquet" else "csv"
        found.append(_Source(p, RECORD_TYPES[m["rt"]], fmt))
    found.sort(key=lambda s: (order[s.rt.name], s.path.name))
    return found, skipped


def _reader(src: _Source) -> str:
    path = lit(str(src.path))
    if src.fmt == "parquet":
        return f"read_parquet({path})"
    # The dialect is told, not sniffed: every column is read as text so that a bad value
    # becomes a rejected row rather than a failed file.
    columns = "{" + ", ".join(f"{lit(c)}: 'VARCHAR'" for c in src.columns) + "}"
    return (
        f"read_csv({path}, header = true, columns = {columns}, delim = ',', quote = '\"', "
        "escape = '\"', auto_detect = false, strict_mode = true)"
    )


def _csv_header(path: Path) -> list[str]:
    """The column names on the first line of a CSV file (optionally gzip-compressed)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            first = fh.readline()
    except OSError as exc:
        raise IngestError(path.name, f"cannot be read ({exc})") from None
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise IngestError(
            path.name, "not UTF-8 encoded near line 1; save the file as UTF-8"
        ) from None
    if not text.strip():
        raise IngestError(path.name, "no header line (the first line is empty)")
    return next(csv.reader([text.rstrip("\r\n")]))


def _separator_hint(rt: RecordType, header: list[str]) -> str:
    """A hint when a CSV header that lacks columns has them all once split on ';'."""
    line = ",".join(header)
    if ";" not in line:
        return ""
    parts = {c.strip().strip('"') for c in next(csv.reader([line], delimiter=";"))}
    if not set(rt.required_columns) <= parts:
        return ""
    return (
        "; the header splits on ';' into the expected columns, so the file may be "
        "semicolon-separated: save it comma-separated (',')"
    )


def _describe_error(src: _Source, exc: Exception) -> str:
    msg = str(exc)
    if "Invalid unicode" in msg or "utf-8" in msg.lower() and "encod" in msg.lower():
        where = re.search(r"Line: (\d+)", msg)
        at = f" near line {where.group(1)}" if where else ""
        return f"not UTF-8 encoded{at}; save the file as UTF-8"
    if src.fmt == "parquet":
        return f"not a readable Parquet file ({safe_error(msg)})"
    return f"malformed CSV ({safe_error(msg)})"


def _inspect(con: duckdb.DuckDBPyConnection, src: _Source) -> list[str]:
    """Read the file's columns; raise :class:`IngestError` when it cannot be used.

    Returns the warnings (extra columns, missing optional columns).
    """
    name = src.path.name
    if src.path.stat().st_size == 0:
        raise IngestError(name, "file is empty (0 bytes); expected a header line")
    try:
        if src.fmt == "csv":
            header = _csv_header(src.path)
            if len(set(header)) != len(header):
                dupes = sorted({c for c in header if header.count(c) > 1})
                raise IngestError(name, f"duplicate column(s) in the header: {', '.join(dupes)}")
            src.columns = {c: "VARCHAR" for c in header}
        else:
            rows = con.execute(f"DESCRIBE SELECT * FROM {_reader(src)}").fetchall()
            src.columns = {r[0]: r[1] for r in rows}
    except IngestError:
        raise
    except duckdb.Error as exc:
        raise IngestError(name, _describe_error(src, exc)) from None
    if not src.columns:
        raise IngestError(name, "no header line")
    rt = src.rt
    missing = [c for c in rt.required_columns if c not in src.columns]
    if missing:
        raise IngestError(
            name,
            f"missing required column(s): {', '.join(missing)} "
            f"(a {rt.name} file needs {', '.join(rt.required_columns)})"
            + _separator_hint(rt, list(src.columns) if src.fmt == "csv" else []),
        )
    warnings = []
    extra = [c for c in src.columns if c not in rt.columns]
    if extra:
        warnings.append(f"ignored unexpected column(s): {', '.join(extra)}")
    absent = [c for c in rt.columns if c not in src.columns]
    if absent:
        warnings.append(f"optional column(s) absent, read as empty: {', '.join(absent)}")
    return warnings


def _sha256(path: Path, out: list[str]) -> None:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    out.append(h.hexdigest())


def _load_vocabularies(con: duckdb.DuckDBPyConnection, rts: Iterable[RecordType]) -> None:
    """Load the code lists the record types need into temporary tables ``_vocab_<name>``."""
    names = {f.vocabulary for rt in rts for f in rt.fields if f.vocabulary}
    for name in sorted(names):
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _vocab_{name} AS "
            "SELECT unnest(CAST(? AS VARCHAR[])) AS code",
            [sorted(vocabulary(name))],
        )


def _ingest_file(
    con: duckdb.DuckDBPyConnection,
    src: _Source,
    report: FileReport,
    ingestion_date: date,
    ingestion_id: int,
    progress: ProgressFn | None,
    provider: str = OPERATOR_SOURCE,
) -> None:
    rt = src.rt
    name = src.path.name
    started = datetime.now(UTC).replace(tzinfo=None)
    t0 = time.perf_counter()
    digest: list[str] = []
    hasher = threading.Thread(target=_sha256, args=(src.path, digest), daemon=True)
    hasher.start()

    def step(i: int) -> None:
        if progress is not None:
            progress(name, _STAGES[i], i, len(_STAGES) - 1)

    plan = CheckPlan()
    off = 2 if src.fmt == "csv" else 1  # line of the first data row
    step(0)
    # One pass over the file: parse, type and check every field into a temporary table.
    # It is built before the transaction and in file order, so its rowids count the rows
    # from 0 (inside a transaction they would not).
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _stage AS "
            + validation_select(rt, src.columns, _reader(src), ingestion_date, plan)
        )
    except duckdb.Error as exc:
        con.execute("DROP TABLE IF EXISTS _stage")
        raise IngestError(name, _describe_error(src, exc)) from None
    # From here rows carry their position, so their order no longer matters.
    con.execute("SET preserve_insertion_order = false")
    con.execute("BEGIN TRANSACTION")
    try:
        step(1)
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _late AS " + verdict_select(rt, "_stage", off, plan)
        )
        read, rejected, present = con.execute(
            "SELECT (SELECT count(*) FROM _stage), "
            "(SELECT count(*) FROM _late WHERE _code IS NOT NULL), "
            "(SELECT count(*) FROM _late WHERE _present)"
        ).fetchall()[0]
        accepted = read - rejected
        step(2)
        cols = ", ".join(q(c) for c in rt.columns)
        s_cols = ", ".join(f"s.{q(c)}" for c in rt.columns)
        con.execute(
            f"INSERT INTO {q(rt.name)} ({cols}) SELECT {s_cols} FROM _stage s "
            f"ANTI JOIN _late l ON l._line = s.rowid + {off} WHERE s._code IS NULL"
        )
        firms = [
            str(f)
            for (f,) in con.execute(
                f"SELECT DISTINCT s.firm_id FROM _stage s "
                f"ANTI JOIN _late l ON l._line = s.rowid + {off} WHERE s._code IS NULL"
            ).fetchall()
        ]
        top: list[tuple[int, int]] = []
        if rejected:
            _store_rejected(con, src, plan, ingestion_id, off, started)
            top = con.execute(
                f"SELECT _code, count(*) AS n FROM _late WHERE _code IS NOT NULL "
                f"GROUP BY _code ORDER BY n DESC, _code LIMIT {TOP_REASONS}"
            ).fetchall()
        hasher.join()
        finished = datetime.now(UTC).replace(tzinfo=None)
        # Whose records and since when: the ingestion that added each new row.
        con.execute(
            f"INSERT INTO record_ingestions SELECT {lit(rt.name)}, s.{q(rt.id_field)}, "
            f"'file_{ingestion_id}', ?, ?::TIMESTAMP FROM _stage s "
            f"ANTI JOIN _late l ON l._line = s.rowid + {off} WHERE s._code IS NULL",
            [provider, finished],
        )
        con.execute(
            "INSERT INTO ingestions (ingestion_id, file, sha256, record_type, read, accepted, "
            "already_present, rejected, started_at, finished_at, provider) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                ingestion_id,
                name,
                digest[0] if digest else "",
                rt.name,
                read,
                accepted,
                present,
                rejected,
                started,
                finished,
                provider,
            ],
        )
        con.execute("COMMIT")
    except duckdb.Error as exc:
        con.execute("ROLLBACK")
        raise IngestError(name, f"could not be validated ({safe_error(str(exc))})") from None
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.execute("RESET preserve_insertion_order")
        for t in ("_stage", "_late"):
            con.execute(f"DROP TABLE IF EXISTS {t}")
    report.status = "ingested"
    report.read, report.accepted, report.already_present, report.rejected = (
        int(read),
        int(accepted),
        int(present),
        int(rejected),
    )
    report.top_reasons = [
        ReasonCount(plan.checks[c].field, plan.checks[c].reason, int(n)) for c, n in top
    ]
    report.sha256 = digest[0] if digest else None
    report.ingestion_id = ingestion_id
    report.finished_at = finished.replace(tzinfo=UTC)
    report.firms = firms
    report.seconds = round(time.perf_counter() - t0, 3)
    step(3)


def _store_rejected(
    con: duckdb.DuckDBPyConnection,
    src: _Source,
    plan: CheckPlan,
    ingestion_id: int,
    off: int,
    started: datetime,
) -> None:
    """Copy the rejected rows of ``_late`` to ``rejected`` with field, value and reason."""
    rt = src.rt

    def shown(c: str) -> str:
        # The raw text where the file has the column (kept for rows failing a field
        # check), else the typed value (later checks concern IDs, whose text is the same).
        typed = f"CAST(s.{q(c)} AS VARCHAR)"
        return f"coalesce(s.{q('_raw_' + c)}, {typed})" if c in src.columns else typed

    value_case = " ".join(f"WHEN {lit(c)} THEN {shown(c)}" for c in rt.columns)
    value = f"CASE c.field {value_case} END"
    con.execute(
        f"""
        INSERT INTO rejected
        SELECT {ingestion_id}, {lit(src.path.name)}, l._line, {lit(rt.name)},
          left({shown(rt.id_field)}, 64), c.field,
          CASE WHEN length({value}) > {MAX_VALUE_CHARS}
            THEN left({value}, {MAX_VALUE_CHARS - 3}) || '...' ELSE {value} END,
          c.reason, {lit(started.isoformat(sep=" "))}::TIMESTAMP
        FROM (SELECT _line, _code FROM _late WHERE _code IS NOT NULL) l
        JOIN ({codes_values(plan)}) c(code, field, reason) ON l._code = c.code
        JOIN _stage s ON s.rowid = l._line - {off}
        """
    )


def ingest_dir(
    directory: Path | str,
    store_path: Path | None = None,
    *,
    ingestion_date: date | None = None,
    progress: ProgressFn | None = None,
    memory_limit: str | None = None,
    threads: int | None = None,
    provider: str = OPERATOR_SOURCE,
) -> IngestReport:
    """Validate the record files of ``directory`` and store their valid rows.

    Parameters
    ----------
    directory : folder holding ``firms``, ``customs``, ``shipments``, ``payments`` and/or
        ``loans`` files (CSV or Parquet).
    store_path : the DuckDB record store; default ``get_settings().store_path``.
    ingestion_date : timestamps on a later day are rejected; default today (UTC).
    progress : called as ``progress(file, stage, done, total)`` while files are processed.
    memory_limit : DuckDB memory limit for this run (e.g. ``"2GB"``); beyond it DuckDB
        spills to disk.
    threads : DuckDB worker threads (default: one per core).
    provider : the tenant whose records these are (``credit ingest --source``), kept with
        each file's ingestion.

    Returns
    -------
    IngestReport
        Per-file counts (``read = accepted + rejected``), top rejection reasons, skipped
        files and file errors. A file error does not raise: check ``report.ok`` (or call
        ``report.raise_for_errors()``).

    Raises
    ------
    NotADirectoryError
        ``directory`` is not a directory.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise NotADirectoryError(f"{directory} is not a directory")
    if store_path is None:
        store_path = get_settings().store_path
    day = ingestion_date or datetime.now(UTC).date()
    report = IngestReport(str(directory), str(store_path), day.isoformat())
    sources, report.skipped = discover(directory)
    report.files = [FileReport(s.path.name, s.rt.name, s.fmt) for s in sources]
    if not sources:
        report.errors.append(
            f"{directory}: no record files found (expected "
            + ", ".join(f"{n}.csv or {n}.parquet" for n in RECORD_TYPES)
            + ")"
        )
        return report
    try:
        con = open_store(store_path)
    except (duckdb.Error, OSError) as exc:
        report.errors.append(f"{store_path}: cannot open the record store ({safe_error(str(exc))})")
        return report
    try:
        if memory_limit:
            con.execute(f"SET memory_limit = {lit(memory_limit)}")
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        # Check every header before writing anything: a bad file stops the run up front.
        for src, fr in zip(sources, report.files, strict=True):
            try:
                fr.warnings = _inspect(con, src)
            except IngestError as exc:
                fr.status, fr.error = "failed", exc.problem
                report.errors.append(str(exc))
        if report.errors:
            return report
        _load_vocabularies(con, [s.rt for s in sources])
        last = con.execute("SELECT coalesce(max(ingestion_id), 0) FROM ingestions").fetchall()
        next_id = int(last[0][0]) + 1
        for i, (src, fr) in enumerate(zip(sources, report.files, strict=True)):
            try:
                _ingest_file(con, src, fr, day, next_id + i, progress, provider)
            except IngestError as exc:
                fr.status, fr.error = "failed", exc.problem
                report.errors.append(str(exc))
                break
    finally:
        con.close()
    return report


# --------------------------------------------------------------------------------------------
# Records in memory (posted to the API): the same checks, the same SQL
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RejectedRecord:
    """A record that breaks the data contract, as ingestion would reject it.

    ``index`` is its 0-based position in the list of its record type; ``field`` and
    ``reason`` are those ``credit ingest`` writes to the ``rejected`` table.
    """

    record_type: str
    index: int
    record_id: str | None
    field: str
    reason: str


@dataclass
class RecordCheck:
    """The outcome of :func:`validate_records`: the records that pass, and those rejected.

    ``typed`` holds, per record type, the accepted records as the store would hold them
    (contract types: timestamps as naive UTC ``datetime``), keyed by record ID."""

    accepted: dict[str, list[Mapping[str, Any]]]
    rejected: list[RejectedRecord]
    typed: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)


def _as_text(value: Any) -> str | None:
    """A value as a CSV file would hold it (``None``: empty)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def validate_records(
    records: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    ingestion_date: date | None = None,
    known: Mapping[str, Iterable[str]] | None = None,
) -> RecordCheck:
    """Validate records held in memory exactly as ``credit ingest`` validates files.

    ``records`` maps a record type to its records (dicts of contract fields; a missing field
    is empty). They are checked as if they were the files of one directory ingested into an
    empty record store: the same SQL, generated from the contract by
    :mod:`credit.ingest_sql`, run on an in-memory DuckDB database, in dependency order (so
    records may reference firms and customs declarations given with them). Every value is
    passed as text, as a CSV file would hold it (a datetime in ISO 8601 with its offset).

    Parameters
    ----------
    records : record type -> list of records.
    ingestion_date : timestamps on a later day are rejected (unless ``future_ok``); default
        today (UTC).
    known : record type -> IDs already stored elsewhere that the records may reference
        (``firms``, ``customs``): records pushed to ``POST /v1/records`` may name a firm a
        provider sent before.

    Returns
    -------
    RecordCheck
        The records that pass, per record type, and every rejected record with its record
        type, index, ID, field and reason (the first check it fails, as in ingestion).

    Raises
    ------
    KeyError
        An unknown record type.
    """
    rts = [record_type(name) for name in records]
    order = list(RECORD_TYPES)
    rts.sort(key=lambda rt: order.index(rt.name))
    day = ingestion_date or datetime.now(UTC).date()
    check = RecordCheck(accepted={}, rejected=[])
    con = _memory_store()
    try:
        for ref, ids in (known or {}).items():
            values = sorted({str(k) for k in ids})
            if values:  # one Arrow column: DuckDB's executemany costs ~0.1 ms a row
                import pyarrow as pa

                con.register("_known", pa.table({"k": pa.array(values, pa.string())}))
                try:
                    con.execute(f"INSERT INTO {known_table(ref)} SELECT k FROM _known")
                finally:
                    con.unregister("_known")
        for rt in rts:
            rows = list(records[rt.name])
            check.accepted[rt.name] = []
            if not rows:
                continue
            bad = _validate_in_memory(con, rt, rows, day, known_refs=known is not None)
            for i, (code_field, reason) in sorted(bad.items()):
                rid = rows[i].get(rt.id_field)
                check.rejected.append(
                    RejectedRecord(
                        rt.name, i, None if rid is None else str(rid), code_field, reason
                    )
                )
            check.accepted[rt.name] = [r for i, r in enumerate(rows) if i not in bad]
            stored = con.execute(f"SELECT * FROM {q(rt.name)}")  # noqa: S608 - our names
            names = [d[0] for d in stored.description]
            check.typed[rt.name] = {
                str(row[names.index(rt.id_field)]): dict(zip(names, row, strict=True))
                for row in stored.fetchall()
            }
        for name in RECORD_TYPES:
            con.execute(f"DELETE FROM {q(name)}")
        for ref in _REFERENCED:
            con.execute(f"DELETE FROM {known_table(ref)}")
    except BaseException:
        con.close()
        raise
    _IDLE.put(con)
    return check


#: The record types some field references (their IDs may be given as ``known``).
_REFERENCED = sorted(
    {f.references[0] for rt in RECORD_TYPES.values() for f in rt.fields if f.references}
)

#: Empty in-memory record stores, ready for :func:`validate_records` (one per concurrent call).
_IDLE: queue.SimpleQueue[duckdb.DuckDBPyConnection] = queue.SimpleQueue()


def _memory_store() -> duckdb.DuckDBPyConnection:
    """An empty in-memory record store with every table and the code lists.

    Reused between calls: setting one up costs more than checking a request's records.
    """
    try:
        return _IDLE.get_nowait()
    except queue.Empty:
        pass
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET threads = 1")  # a few records: planning, not scanning, is the cost
        for rt in RECORD_TYPES.values():  # every table: references and the store check join them
            con.execute(rt.create_table_sql(primary_key=False))
        for ref in _REFERENCED:
            con.execute(f"CREATE TABLE {known_table(ref)} (k VARCHAR)")
        _load_vocabularies(con, RECORD_TYPES.values())
    except BaseException:
        con.close()
        raise
    return con


def _validate_in_memory(
    con: duckdb.DuckDBPyConnection,
    rt: RecordType,
    rows: list[Mapping[str, Any]],
    day: date,
    known_refs: bool = False,
) -> dict[int, tuple[str, str]]:
    """Check ``rows`` of ``rt`` and store the valid ones; return index -> (field, reason)."""
    import pyarrow as pa

    table = pa.table(
        {c: pa.array([_as_text(r.get(c)) for r in rows], pa.string()) for c in rt.columns}
    )
    con.register("_posted", table)
    plan = CheckPlan()
    columns = dict.fromkeys(rt.columns, "VARCHAR")
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _stage AS "
            + validation_select(rt, columns, "_posted", day, plan)
        )
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _late AS "
            + verdict_select(rt, "_stage", 0, plan, known_refs=known_refs)
        )
        cols = ", ".join(q(c) for c in rt.columns)
        s_cols = ", ".join(f"s.{q(c)}" for c in rt.columns)
        con.execute(
            f"INSERT INTO {q(rt.name)} ({cols}) SELECT {s_cols} FROM _stage s "
            "ANTI JOIN _late l ON l._line = s.rowid WHERE s._code IS NULL"
        )
        found = con.execute(
            "SELECT _line, _code FROM _late WHERE _code IS NOT NULL ORDER BY _line"
        ).fetchall()
    finally:
        con.unregister("_posted")
        for t in ("_stage", "_late"):
            con.execute(f"DROP TABLE IF EXISTS {t}")
    return {int(line): (plan.checks[code].field, plan.checks[code].reason) for line, code in found}
