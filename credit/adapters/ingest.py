"""``credit ingest FILE --format NAME``: an export through its adapter into the record store.

The adapter turns the export into contract records (:func:`credit.adapters.adapt`); they are
written as a contract file and ingested by :func:`credit.ingest.ingest_dir`, the same
validation and storage as any contract file, under the provider's name. What the contract
rejects is traced back to the source rows the record came from, so the report accounts for
every source row (``read = mapped + rejected + skipped``) and every record (``records =
accepted + rejected``, ``accepted = added + already_present``).

Each source row's outcome, with its original currency, amount and rate, is kept in the
record store's ``source_rows`` table, under the ingestion it belongs to.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from credit.adapters import FormatError, adapt, detect
from credit.adapters.base import Adapted, Context, contract_frame
from credit.adapters.fx import Rates, RatesError
from credit.ingest import FileReport, IngestReport, ingest_dir
from credit.ingest_sql import safe_error
from credit.settings import get_settings
from credit.store import OPERATOR_SOURCE, open_store

SOURCE_ROWS_SQL = """
CREATE TABLE IF NOT EXISTS source_rows (
  ingestion_id BIGINT NOT NULL,
  source_file VARCHAR NOT NULL,
  format VARCHAR NOT NULL,
  line BIGINT NOT NULL,
  outcome VARCHAR NOT NULL,
  reason VARCHAR,
  record_type VARCHAR,
  record_id VARCHAR,
  currency VARCHAR,
  amount DOUBLE,
  usd_rate DOUBLE
)
"""

TOP_REASONS = 5


@dataclass
class ExportReport:
    """What ``credit ingest FILE --format`` did: the source rows and the records."""

    file: str
    format: str
    firm_id: str
    provider: str
    store: str
    rows: dict[str, int] = field(default_factory=dict)
    records: dict[str, int] = field(default_factory=dict)
    rejected_reasons: list[dict[str, Any]] = field(default_factory=list)
    skipped_reasons: list[dict[str, Any]] = field(default_factory=list)
    ingestion_id: int | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: the underlying contract-file ingestion (None when nothing reached it)
    ingest: IngestReport | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def reconciles(self) -> bool:
        r, c = self.rows, self.records
        return r.get("read", 0) == r.get("mapped", 0) + r.get("rejected", 0) + r.get(
            "skipped", 0
        ) and c.get("made", 0) == c.get("accepted", 0) + c.get("rejected", 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "file": self.file,
            "format": self.format,
            "firm_id": self.firm_id,
            "source": self.provider,
            "store": self.store,
            "ingestion_id": self.ingestion_id,
            "source_rows": self.rows,
            "records": self.records,
            "reconciles": self.reconciles,
            "rejected_reasons": self.rejected_reasons,
            "skipped_reasons": self.skipped_reasons,
            "warnings": self.warnings,
            "errors": self.errors,
        }


def load_rates(fx: Path | None) -> Rates | None:
    """The rates table of ``--fx`` (``None`` without one); :class:`FormatError` if unusable."""
    if fx is None:
        return None
    try:
        return Rates.load(fx)
    except RatesError as exc:
        raise FormatError(f"--fx {exc}") from None


def read_text(path: Path) -> str:
    """An export file's text (UTF-8, with or without a byte-order mark)."""
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FormatError(f"{path.name}: not UTF-8 encoded; save the export as UTF-8") from None
    except OSError as exc:
        raise FormatError(f"{path.name}: cannot be read ({exc})") from None


def trace_rejections(adapted: Adapted, rejected: dict[str, str]) -> None:
    """Turn the rows of each record the contract rejected (ID -> reason) into rejected rows."""
    for rid, reason in rejected.items():
        adapted.reject_record(rid, f"the data contract rejects the record: {reason}")


def ingest_export(
    path: Path | str,
    fmt: str | None = None,
    *,
    firm_id: str,
    provider: str = OPERATOR_SOURCE,
    fx: Path | None = None,
    store_path: Path | None = None,
    ingestion_date: date | None = None,
) -> ExportReport:
    """Ingest one export file of ``firm_id`` through the adapter of ``fmt`` (detected from
    the header when ``None``).

    Raises :class:`FormatError` when the format is unknown or ambiguous, a required column is
    missing or the rates table cannot be used: nothing is then written.
    """
    path = Path(path)
    store_path = store_path or get_settings().store_path
    day = ingestion_date or datetime.now(UTC).date()
    text = read_text(path)
    name = fmt or detect(text, path.name)
    adapted = adapt(text, Context(firm_id, load_rates(fx), day), name, path.name)
    report = ExportReport(str(path), name, firm_id, provider, str(store_path))
    rt = adapted.record_type
    made = len(adapted.records)
    rejected_ids: dict[str, str] = {}
    fr: FileReport | None = None
    if adapted.records:
        with tempfile.TemporaryDirectory(prefix="credit-adapt-") as tmp:
            staged = Path(tmp) / f"{rt}_{path.stem}.csv"
            contract_frame(rt, adapted.records).to_csv(staged, index=False)
            report.ingest = ingest_dir(tmp, store_path, ingestion_date=day, provider=provider)
        report.errors.extend(report.ingest.errors)
        fr = report.ingest.files[0] if report.ingest.files else None
        if fr is not None and fr.status == "ingested" and fr.ingestion_id is not None:
            report.ingestion_id = fr.ingestion_id
            rejected_ids = _rejected_ids(store_path, fr.ingestion_id)
            report.warnings.extend(w for w in fr.warnings if "optional column" not in w)
    trace_rejections(adapted, rejected_ids)
    report.rows = adapted.counts()
    report.rejected_reasons = adapted.reasons("rejected", TOP_REASONS)
    report.skipped_reasons = adapted.reasons("skipped", TOP_REASONS)
    report.records = {
        "made": made,
        "accepted": fr.accepted if fr else 0,
        "added": fr.added if fr else 0,
        "already_present": fr.already_present if fr else 0,
        "rejected": fr.rejected if fr else 0,
    }
    if fr is None or report.ingestion_id is None:
        report.records["rejected"] = 0 if fr is None else made
    if report.ok:
        _keep_rows(store_path, report.ingestion_id, path.name, adapted, report)
    return report


def _rejected_ids(store_path: Path, ingestion_id: int) -> dict[str, str]:
    con = open_store(store_path)
    try:
        found = con.execute(
            "SELECT record_id, field, reason FROM rejected WHERE ingestion_id = ? ORDER BY line",
            [ingestion_id],
        ).fetchall()
    finally:
        con.close()
    out: dict[str, str] = {}
    for rid, fld, reason in found:
        out.setdefault(str(rid), f"{fld}: {reason}" if fld and fld not in reason else reason)
    return out


def _keep_rows(
    store_path: Path, ingestion_id: int | None, file: str, adapted: Adapted, report: ExportReport
) -> None:
    """Write every source row's outcome to ``source_rows`` (ingestion 0: nothing was stored
    from the file, its rows were all rejected or skipped)."""
    import pyarrow as pa

    rows = adapted.rows
    table = pa.table({
        "ingestion_id": pa.array([ingestion_id or 0] * len(rows), pa.int64()),
        "source_file": pa.array([file] * len(rows), pa.string()),
        "format": pa.array([adapted.format] * len(rows), pa.string()),
        "line": pa.array([r.line for r in rows], pa.int64()),
        "outcome": pa.array([r.outcome for r in rows], pa.string()),
        "reason": pa.array([r.reason or None for r in rows], pa.string()),
        "record_type": pa.array([r.record_type for r in rows], pa.string()),
        "record_id": pa.array([r.record_id for r in rows], pa.string()),
        "currency": pa.array([r.currency for r in rows], pa.string()),
        "amount": pa.array([r.amount for r in rows], pa.float64()),
        "usd_rate": pa.array([r.usd_rate for r in rows], pa.float64()),
    })  # fmt: skip
    try:
        con = open_store(store_path)
    except (duckdb.Error, OSError) as exc:
        report.errors.append(
            f"{store_path}: cannot record the source rows ({safe_error(str(exc))})"
        )
        return
    try:
        con.execute(SOURCE_ROWS_SQL)
        con.register("_rows", table)
        con.execute("INSERT INTO source_rows SELECT * FROM _rows")
    finally:
        con.close()
