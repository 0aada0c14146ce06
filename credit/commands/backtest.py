"""``credit backtest``: expanding-window retraining, out-of-time AUC and calibration per period."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def backtest(
    start: Annotated[str, typer.Option("--from", help="First period, YYYY-MM.")],
    end: Annotated[str, typer.Option("--to", help="Last period, YYYY-MM.")],
    step: Annotated[str, typer.Option("--step", help="month or quarter.")] = "month",
    table: Annotated[
        Path | None,
        typer.Option("--table", help="A CSV/Parquet training table instead of the record store."),
    ] = None,
    target: Annotated[
        str, typer.Option("--target", help="Target column of --table.")
    ] = "defaulted",
    time_column: Annotated[
        str | None, typer.Option("--time-column", help="Application time column of --table.")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="Column of --table that is no feature.")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="Override a parameter: KEY=VALUE (lightgbm or a.b path)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for backtest.csv and backtest.png (default: data dir)."),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the table to this JSON file.")
    ] = None,
) -> None:
    """Retrain each month (or quarter) on every outcome known by then; score the next period.

    Uses the training code of `credit train` with fewer trees (400 rounds, early stopping
    after 50; `--param` overrides). The frozen column scores the first period's model on every
    later period: the gap to the retrained AUC is the decay without retraining.
    """
    from rich.console import Console
    from rich.table import Table

    from credit.commands.train import _fail, _load_data, _parse_params
    from credit.settings import get_settings
    from models import backtest as bt
    from models.params import load_params

    console = Console(stderr=True)
    try:
        cfg = load_params(None, {**bt.FAST, **_parse_params(param)})
        data, extras = _load_data(table, target, time_column, None, exclude, None, None)
        res = bt.backtest(
            data,
            cfg,
            start,
            end,
            step,
            monotone=extras.get("monotone"),
            horizon=extras.get("horizon"),
            progress=lambda m: console.log(m),
        )
    except (ValueError, FileNotFoundError, KeyError) as exc:
        raise _fail(str(exc), 2) from exc
    folder = out or get_settings().data_dir / "backtest"
    folder.mkdir(parents=True, exist_ok=True)
    res.table.to_csv(folder / "backtest.csv", index=False)
    png = bt.plot(res, folder / "backtest.png")
    t = Table(title=f"backtest by {step}, outcome window {res.outcome_window_months} months")
    cols = ["period", "train_rows", "test_rows", "default_rate", "mean_pd", "auc", "frozen_auc",
            "ece", "calibration_slope", "note"]  # fmt: skip
    heads = ["period", "train", "test", "def. rate", "mean PD", "AUC", "frozen AUC", "ECE",
             "slope", "note"]  # fmt: skip
    for c, h in zip(cols, heads, strict=True):
        t.add_column(h, justify="left" if c in ("period", "note") else "right")
    for _, r in res.table.iterrows():
        t.add_row(
            *[
                (f"{float(r[c]):.3f}" if r[c] == r[c] else "-")
                if c not in ("period", "note", "train_rows", "test_rows")
                else str(r[c])
                for c in cols
            ]
        )
    Console().print(t)
    s = res.summary()
    console.log(
        f"mean AUC {s['mean_auc']:.3f} retrained vs {s['mean_frozen_auc']:.3f} frozen over "
        f"{int(s['evaluated'])} periods; wrote {folder / 'backtest.csv'} and {png}"
    )
    if json_out is not None:
        body = {"summary": s, "rows": json.loads(res.table.to_json(orient="records"))}
        json_out.write_text(json.dumps(body, indent=1))
