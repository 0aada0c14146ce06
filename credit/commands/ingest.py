"""``credit ingest DIR``: validate trade-record files and store the valid rows.

``credit ingest FILE --format NAME --firm ID``: the same for one export file as its producer
wrote it (an Amazon settlement report, a Stripe balance CSV...), through its adapter
(:mod:`credit.adapters`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from credit.adapters.ingest import ExportReport
    from credit.ingest import IngestReport


def ingest(
    directory: Annotated[
        Path,
        typer.Argument(
            exists=True,
            file_okay=True,
            dir_okay=True,
            metavar="DIR|FILE",
            help="Folder with firms, customs, shipments, payments and/or loans files "
            "(.csv, .csv.gz or .parquet); or one export file read by its adapter "
            "(--format, --firm).",
        ),
    ],
    store: Annotated[
        Path | None,
        typer.Option(
            "--store",
            help="DuckDB record store to write (default: records.duckdb in the data directory).",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON (nothing else on stdout).")
    ] = False,
    memory_limit: Annotated[
        str | None,
        typer.Option("--memory-limit", help="DuckDB memory limit, e.g. 2GB (spills to disk)."),
    ] = None,
    source: Annotated[
        str,
        typer.Option(
            "--source",
            help="The provider (tenant) whose records these are: kept with every record, "
            "named in consents and in each decision's lineage (default: operator).",
        ),
    ] = "operator",
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="The export's format (amazon-settlement, shopify-payments, stripe-balance, "
            "paypal-activity, aftership-tracking, cn-customs); default: told from its header.",
        ),
    ] = None,
    firm: Annotated[
        str | None,
        typer.Option("--firm", help="The firm whose export FILE is (required with a FILE)."),
    ] = None,
    fx: Annotated[
        Path | None,
        typer.Option(
            "--fx",
            exists=True,
            dir_okay=False,
            help="Exchange rates to USD by day, in the ECB reference-rate CSV layout "
            "(eurofxref-hist.csv); a row in another currency on a day with no rate is rejected.",
        ),
    ] = None,
) -> None:
    """Validate every row against the data contract and store the valid ones.

    Invalid rows go to the store's `rejected` table with file, line, field and reason.

    Re-ingesting a file adds nothing; an ID stored with different content is rejected.

    With a FILE: an export read by its adapter (docs/adapters.md); every source row is mapped,
    rejected or skipped with its reason, and the report reconciles them.

    Exit 0: every file was read (some rows may be rejected). Exit 1: a file failed whole.
    """
    import re

    from credit.commands.common import fail
    from credit.ingest import ingest_dir
    from credit.records import ID_HELP, ID_PATTERN

    if not re.match(ID_PATTERN, source):
        raise fail(f"invalid --source {source!r}: {ID_HELP}", 2)
    err = Console(stderr=True)
    if directory.is_file():
        if firm is None:
            raise fail(f"{directory.name} is an export file: say whose it is with --firm ID", 2)
        if not re.match(ID_PATTERN, firm):
            raise fail(f"invalid --firm {firm!r}: {ID_HELP}", 2)
        _ingest_export(directory, fmt, firm, source, fx, store, as_json, err)
        return
    if fmt is not None or firm is not None or fx is not None:
        raise fail(
            "--format, --firm and --fx read one export file: give its path instead of a folder",
            2,
        )
    if as_json:
        report = ingest_dir(directory, store, memory_limit=memory_limit, provider=source)
    else:
        report = _with_progress(err, directory, store, memory_limit, source)
    registered = register(report, source, err)
    if as_json:
        typer.echo(json.dumps({**report.to_dict(), "source": source}, indent=2))
    else:
        print_summary(Console(), report)
        if registered:
            err.print(
                f"registered {registered} ingestion(s) of {source} in the service database",
                highlight=False,
            )
    for message in report.errors:
        err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    if not report.ok:
        raise typer.Exit(1)


def _ingest_export(
    path: Path,
    fmt: str | None,
    firm: str,
    source: str,
    fx: Path | None,
    store: Path | None,
    as_json: bool,
    err: Console,
) -> None:
    from credit.adapters import FORMATS, FormatError
    from credit.adapters.ingest import ingest_export
    from credit.commands.common import fail

    if fmt is not None and fmt not in FORMATS:
        raise fail(f"unknown --format {fmt!r}; expected one of {', '.join(FORMATS)}", 2)
    try:
        report = ingest_export(path, fmt, firm_id=firm, provider=source, fx=fx, store_path=store)
    except FormatError as exc:
        raise fail(str(exc), 1) from None
    registered = register(report.ingest, source, err) if report.ingest is not None else 0
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        print_export_summary(Console(), report)
        if registered:
            err.print(
                f"registered {registered} ingestion(s) of {source} in the service database",
                highlight=False,
            )
    for message in report.errors:
        err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    if not report.ok:
        raise typer.Exit(1)


def print_export_summary(console: Console, report: ExportReport) -> None:
    """Print what became of an export's source rows and of the records made from them."""
    from rich.table import Table

    r, c = report.rows, report.records
    table = Table(title=f"{Path(report.file).name} ({report.format}), firm {report.firm_id}")
    table.add_column("source rows", justify="left")
    table.add_column("", justify="right")
    table.add_column("records", justify="left")
    table.add_column("", justify="right")
    left = [("read", r["read"]), ("mapped", r["mapped"]), ("rejected", r["rejected"]),
            ("skipped", r["skipped"])]  # fmt: skip
    right = [("made", c["made"]), ("added", c["added"]),
             ("already present", c["already_present"]), ("rejected", c["rejected"])]  # fmt: skip
    for (a, x), (b, y) in zip(left, right, strict=True):
        table.add_row(a, f"{x:,}", b, f"{y:,}")
    console.print(table)
    state = "reconciles" if report.reconciles else "DOES NOT RECONCILE"
    console.print(
        f"{state}: read {r['read']:,} = mapped {r['mapped']:,} + rejected {r['rejected']:,} + "
        f"skipped {r['skipped']:,}; records {c['made']:,} = accepted {c['accepted']:,} + "
        f"rejected {c['rejected']:,}",
        highlight=False,
    )
    for title, reasons in (("rejected", report.rejected_reasons),
                           ("skipped", report.skipped_reasons)):  # fmt: skip
        for why in reasons:
            console.print(f"  {title} {why['count']:,} x {why['reason']}", highlight=False)
    for w in report.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    if report.ingestion_id is not None:
        console.print(
            f"every row's outcome: SELECT * FROM source_rows WHERE ingestion_id = "
            f"{report.ingestion_id}",
            highlight=False,
        )


def register(report: IngestReport, source: str, err: Console) -> int:
    """Register each stored file in the service database (:class:`credit.ledger.Ledger`):
    whose records they are, so consents and lineage can name them, and that the firms have
    new records, so the service recomputes their features at the next score."""
    from sqlalchemy.exc import SQLAlchemyError

    from credit.db import get_engine, upgrade
    from credit.ledger import Ledger, file_ingestion_id

    done = [f for f in report.files if f.status == "ingested" and f.ingestion_id is not None]
    if not done:
        return 0
    try:
        engine = get_engine()
        upgrade(engine)
        ledger = Ledger(engine)
        for f in done:
            ledger.register_file(
                file_ingestion_id(f.ingestion_id),  # type: ignore[arg-type]
                source,
                f.file,
                f.sha256 or "",
                f.finished_at,  # type: ignore[arg-type]
                {
                    f.record_type: {
                        "read": f.read,
                        "accepted": f.accepted,
                        "added": f.added,
                        "already_present": f.already_present,
                        "rejected": f.rejected,
                    }
                },
                f.firms,
            )
    except SQLAlchemyError as exc:
        report.errors.append(
            "the records are stored, but the service database could not be told "
            f"({type(exc).__name__}): run the same command again once it is reachable"
        )
        return 0
    return len(done)


def _with_progress(
    console: Console,
    directory: Path,
    store: Path | None,
    memory_limit: str | None,
    source: str = "operator",
) -> IngestReport:
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )

    from credit.ingest import ingest_dir

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(file: str, stage: str, done: int, total: int) -> None:
            if file not in tasks:
                tasks[file] = bar.add_task(file, total=total)
            bar.update(tasks[file], completed=done, description=f"{file}: {stage}")

        return ingest_dir(
            directory, store, progress=progress, memory_limit=memory_limit, provider=source
        )


def print_summary(console: Console, report: IngestReport) -> None:
    """Print the per-record-type summary table of an ingestion."""
    from rich.table import Table

    table = Table(title=f"Ingested {report.directory} into {report.store}")
    for col in ("record type", "read", "accepted", "added", "already present", "rejected"):
        table.add_column(col, justify="left" if col == "record type" else "right")
    table.add_column("top rejection reasons")
    for rt, s in report.by_record_type().items():
        reasons = "\n".join(f"{r['count']} x {r['reason']}" for r in s["top_reasons"])
        if s["failed"]:
            reasons = "\n".join([f"FAILED: {', '.join(s['failed'])}", reasons]).strip()
        table.add_row(
            rt,
            *(f"{s[k]:,}" for k in ("read", "accepted", "added", "already_present", "rejected")),
            reasons,
        )
    console.print(table)
    for f in report.files:
        for w in f.warnings:
            console.print(f"[yellow]warning:[/] {f.file}: {w}", highlight=False)
        if f.status == "not_attempted":
            console.print(f"[yellow]not attempted:[/] {f.file} (an earlier file failed)")
    if report.skipped:
        console.print(f"skipped (not a record file): {', '.join(report.skipped)}", highlight=False)
