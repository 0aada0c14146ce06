"""``credit features build | materialize | describe``: the feature pipeline's commands."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from features.pit import Lags

app = typer.Typer(
    help="Point-in-time credit features: training sets, snapshots, the online store, the "
    "data dictionary.",
    no_args_is_help=True,
)

StoreOpt = Annotated[
    Path | None,
    typer.Option(
        "--store",
        help="DuckDB record store (default: records.duckdb in TRADECREDIT_DATA_DIR).",
    ),
]
LagOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--lag",
        help="Availability lag TYPE=DAYS (repeatable), e.g. --lag customs=5. "
        "Defaults: firms 0, customs 3, shipments 1, payments 1, loans 0.",
    ),
]


def _store(store: Path | None) -> Path:
    from credit.settings import get_settings

    path = store or get_settings().store_path
    if not path.exists():
        typer.echo(
            f"error: record store {path} not found; ingest records first "
            "(credit ingest) or pass --store",
            err=True,
        )
        raise typer.Exit(2)
    return path


def copy_pushed(path: Path, database_url: str | None = None) -> None:
    """Copy the records providers pushed over HTTP into the record store first, so the build
    reads them as it reads ingested files (:func:`credit.lineage.sync_pushed`)."""
    from sqlalchemy.exc import SQLAlchemyError

    from credit.db import get_engine, has_table
    from credit.ledger import Ledger
    from credit.lineage import sync_pushed
    from credit.store import open_store

    try:
        engine = get_engine(database_url)
        if not has_table(engine, "provided_records"):
            return
        con = open_store(path)
        try:
            copied = sync_pushed(con, Ledger(engine))
        finally:
            con.close()
    except SQLAlchemyError as exc:
        typer.echo(
            f"warning: pushed records not read (service database: {type(exc).__name__})",
            err=True,
        )
        return
    n = sum(copied.values())
    if n:
        typer.echo(f"copied {n:,} pushed record(s) into {path}", err=True)


def _lags(lag: list[str] | None) -> Lags:
    from features.pit import Lags

    try:
        return Lags.parse(lag)
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


@app.command("build")
def build_cmd(
    out: Annotated[Path, typer.Option("--out", help="Parquet file to write.")],
    spine: Annotated[
        str,
        typer.Option(
            "--spine",
            help="loans: one row per loan application as of applied_at, with outcome "
            "columns (the training set). monthly: month-end snapshots of every firm.",
        ),
    ] = "loans",
    start: Annotated[
        str | None, typer.Option("--from", help="First month YYYY-MM (monthly spine).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Last month YYYY-MM (monthly spine).")
    ] = None,
    store: StoreOpt = None,
    lag: LagOpt = None,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="Execution engine: duckdb (embedded, reads --store) or spark (reads the "
            "Parquet record files of --records; writes a Parquet folder).",
        ),
    ] = "duckdb",
    records: Annotated[
        str | None,
        typer.Option(
            "--records",
            help="--engine spark: folder (local, s3a://, hdfs://...) of Parquet record files: "
            "<type>.parquet, <type>_*.parquet or a folder per type (e.g. partitioned by month).",
        ),
    ] = None,
    master: Annotated[
        str,
        typer.Option(
            "--master",
            help="--engine spark: local[2], spark://host:7077, yarn ... "
            "('' keeps the master given by spark-submit).",
        ),
    ] = "local[2]",
) -> None:
    """Build a feature table from the record store and write it as Parquet."""
    from rich.console import Console

    from features import pipeline
    from features.catalog import CATALOG_VERSION, feature_names

    if engine == "spark":
        _build_on_spark(out, spine, start, end, records, lag, master)
        return
    if engine != "duckdb":
        typer.echo(f"error: --engine must be duckdb or spark, got {engine!r}", err=True)
        raise typer.Exit(2)
    if spine not in ("loans", "monthly"):
        typer.echo(f"error: --spine must be loans or monthly, got {spine!r}", err=True)
        raise typer.Exit(2)
    path = _store(store)
    lags = _lags(lag)
    console = Console(stderr=True)
    t0 = time.perf_counter()
    copy_pushed(path)
    try:
        with console.status(f"building features ({spine} spine) from {path} ..."):
            if spine == "loans":
                df = pipeline.training_set(path, lags=lags)
            else:
                sp = pipeline.monthly_spine(path, start, end)
                df = pipeline.build(path, sp, lags=lags, with_market=True)
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    df.attrs = {}
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), b"tradecredit.catalog_version": CATALOG_VERSION.encode()}
    )
    pq.write_table(table, out)
    secs = time.perf_counter() - t0
    typer.echo(
        f"wrote {out}: {len(df):,} rows x {len(feature_names())} features "
        f"(catalog {CATALOG_VERSION}) in {secs:.1f} s"
    )


@app.command("materialize")
def materialize_cmd(
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Snapshot moment (default: midnight after the latest record in the store).",
        ),
    ] = None,
    store: StoreOpt = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Service database (default: TRADECREDIT_DATABASE_URL or service.db).",
        ),
    ] = None,
    lag: LagOpt = None,
) -> None:
    """Compute every firm's latest features and write them to the online store."""
    from features import pipeline
    from features.online import OnlineStore

    path = _store(store)
    lags = _lags(lag)
    t0 = time.perf_counter()
    read_at = datetime.now(UTC)
    copy_pushed(path, database_url)
    try:
        sp = pipeline.latest_spine(path, as_of)
        df = pipeline.build(path, sp, lags=lags)
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    online = OnlineStore(database_url)
    n = online.write(df, written_at=read_at)
    when = sp["as_of"].iloc[0] if len(sp) else as_of
    typer.echo(
        f"materialized {n:,} firms as of {when} into {online.engine.url.render_as_string()} "
        f"in {time.perf_counter() - t0:.1f} s"
    )


@app.command("describe")
def describe_cmd(
    out: Annotated[Path, typer.Option("--out", help="Markdown file to write.")] = Path(
        "docs/features.md"
    ),
    check: Annotated[
        bool, typer.Option("--check", help="Fail if the file is not up to date.")
    ] = False,
) -> None:
    """Write the data dictionary (docs/features.md) from the catalog."""
    from features.describe import render_markdown

    text = render_markdown()
    if check:
        current = out.read_text() if out.exists() else ""
        if current != text:
            typer.echo(f"{out} is out of date; run: credit features describe", err=True)
            raise typer.Exit(1)
        typer.echo(f"{out} is up to date")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    typer.echo(f"wrote {out}")


def _build_on_spark(
    out: Path,
    spine: str,
    start: str | None,
    end: str | None,
    records: str | None,
    lag: list[str] | None,
    master: str,
) -> None:
    """``credit features build --engine spark``: see :mod:`features.spark`."""
    from features.catalog import CATALOG_VERSION, feature_names
    from features.spark import SparkUnavailableError, build_to_parquet, require_pyspark

    try:
        require_pyspark()
    except SparkUnavailableError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    if records is None:
        typer.echo("error: --engine spark needs --records FOLDER of Parquet record files", err=True)
        raise typer.Exit(2)
    if spine not in ("loans", "monthly"):
        typer.echo(f"error: --spine must be loans or monthly, got {spine!r}", err=True)
        raise typer.Exit(2)
    lags = _lags(lag)
    try:
        res = build_to_parquet(
            records, out, spine=spine, start=start, end=end, lags=lags, master=master
        )
    except (ValueError, FileNotFoundError, SparkUnavailableError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"wrote {res.out} (Parquet folder): {res.rows:,} rows x {len(feature_names())} features "
        f"(catalog {CATALOG_VERSION}) on Spark {res.master} in {res.seconds:.1f} s"
    )
