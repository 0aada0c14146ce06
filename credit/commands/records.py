"""``credit records export``: the records providers pushed over HTTP, as Parquet record files."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Records pushed over HTTP (POST /v1/records), kept in the service database.")


@app.command("export")
def export(
    root: Path = typer.Argument(
        ...,
        file_okay=False,
        help="Record folder to write into: <type>_pushed.parquet per record type, beside the "
        "ingested files (the names `credit ingest` and the Spark engine read).",
    ),
) -> None:
    """Write every pushed record as the contract's Parquet record files.

    `credit features build --engine spark --records ROOT` then reads them as it reads
    ingested files. (The DuckDB engine needs no export: `credit features build` and
    `materialize` copy pushed records into the record store themselves.)
    """
    from credit.db import get_engine, upgrade
    from credit.ledger import Ledger
    from credit.lineage import records_frame
    from credit.records import RECORD_TYPES

    engine = get_engine()
    upgrade(engine)
    by_type: dict[str, list[dict[str, object]]] = {name: [] for name in RECORD_TYPES}
    for chunk in Ledger(engine).all_records():
        for r in chunk:
            by_type[r.record_type].append(r.record)
    root.mkdir(parents=True, exist_ok=True)
    frames = {name: records_frame(name, rows) for name, rows in by_type.items()}
    written = 0
    for name, frame in frames.items():
        if frame.empty:
            continue
        frame.to_parquet(root / f"{name}_pushed.parquet", index=False)
        written += len(frame)
        typer.echo(f"{root / f'{name}_pushed.parquet'}: {len(frame):,} {name} record(s)")
    if not written:
        typer.echo("no pushed records")
