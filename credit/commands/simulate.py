"""``credit simulate``: write a simulated world's record files and print its summary."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # pragma: no cover
    from credit.simulator import World


NATIVE = ("parquet", "csv")
#: ``--format exports``: every adapter format
ALL_EXPORTS = "exports"


def simulate(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the files into.")],
    firms: Annotated[int, typer.Option("--firms", min=1, help="Number of firms.")] = 20000,
    start: Annotated[
        str, typer.Option("--start", help="First simulated month, YYYY-MM.")
    ] = "2023-01",
    months: Annotated[int, typer.Option("--months", min=2, help="Number of months.")] = 36,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed.")] = 0,
    fmt: Annotated[
        list[str] | None,
        typer.Option(
            "--format",
            help="parquet or csv (the contract files), and/or export formats to write the "
            "world as its sellers' exports: amazon-settlement, shopify-payments, "
            "stripe-balance, paypal-activity, aftership-tracking, cn-customs, or 'exports' for "
            "all six (repeat the option). Default: parquet.",
        ),
    ] = None,
) -> None:
    """Simulate cross-border e-commerce firms, their trade records and their loans.

    Writes firms, customs, shipments, payments and loans files that `credit ingest`
    accepts, plus truth.parquet (each loan's true PD and latent state, for evaluation
    only), then prints a summary with the oracle AUC.

    With export formats, the records those exports hold are written as one file per firm
    under OUT/exports/ (listed in exports/manifest.csv, with the rates in OUT/fx.csv) and the
    rest as contract files (see docs/adapters.md).
    """
    from rich.console import Console
    from rich.table import Table

    from credit.adapters import FORMATS
    from credit.simulator import simulate as run
    from credit.simulator.summary import summarize

    console = Console()
    chosen = list(fmt or ["parquet"])
    if ALL_EXPORTS in chosen:
        chosen = [f for f in chosen if f != ALL_EXPORTS] + list(FORMATS)
    bad = [f for f in chosen if f not in (*NATIVE, *FORMATS)]
    natives = [f for f in chosen if f in NATIVE]
    if bad or len(set(natives)) > 1:
        console.print(
            f"[red]error:[/red] --format takes one of {', '.join(NATIVE)} and any of "
            f"{', '.join(FORMATS)} or {ALL_EXPORTS}"
            + (f" (unknown: {', '.join(bad)})" if bad else " (parquet or csv, not both)"),
            soft_wrap=True,
        )
        raise typer.Exit(2)
    native = natives[0] if natives else ("csv" if len(chosen) > len(natives) else "parquet")
    exports = [f for f in chosen if f in FORMATS]
    t0 = time.perf_counter()
    try:
        with console.status(f"simulating {firms:,} firms over {months} months..."):
            world = run(firms=firms, start=start, months=months, seed=seed)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    t_sim = time.perf_counter() - t0
    with console.status(f"writing {', '.join(chosen)} files to {out}..."):
        write = _write_exports if exports else None
        paths = write(world, out, exports, native) if write else world.write(out, native)
    t_write = time.perf_counter() - t0 - t_sim
    s = summarize(world)

    table = Table(title=f"simulated world {s['start']} to {s['end']} (seed {seed})")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("firms", f"{s['firms']:,}")
    for name, n in s["records"].items():
        if name != "firms":
            table.add_row(f"{name} records", f"{n:,}")
    table.add_row("records, total", f"{s['records_total']:,}")
    table.add_row(
        "loans: applied / disbursed / outcome known",
        f"{s['loans']:,} / {s['loans_disbursed']:,} / {s['loans_outcome_known']:,}",
    )
    table.add_row("loans with a closed 365-day window", f"{s['loans_matured']:,}")
    table.add_row("default rate (closed window)", f"{s['default_rate']:.2%}")
    for bm, rate in s["default_rate_by_business_model"].items():
        table.add_row(f"  default rate, {bm}", f"{rate:.2%}")
    table.add_row("B2B share of export value", f"{s['b2b_value_share']:.1%}")
    table.add_row("oracle AUC (true PD)", f"{s['oracle_auc']:.3f}")
    table.add_row("worst past DPD heuristic AUC", f"{s['worst_dpd_auc']:.3f}")
    table.add_row("seconds: simulate / write", f"{t_sim:.1f} / {t_write:.1f}")
    console.print(table)
    for name, path in paths.items():
        console.print(f"  {name:<10} {path}")


def _write_exports(world: World, out: Path, exports: list[str], native: str) -> dict[str, Path]:
    from credit.simulator.exports import simulated_rates, write_exports
    from credit.simulator.writer import write_tables

    rates = simulated_rates(world.start - timedelta(days=1), world.end, world.seed)
    paths = write_exports(world.frames(), out, exports, rates, native)
    paths.update(write_tables({"truth": world.tables["truth"]}, out))
    return paths
