"""``credit score``: one decision by firm, or a whole feature table / online store in batch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer


def _load_model():
    from credit.scoring import CHAMPION_URI, ModelUnavailableError, ScoringModel
    from credit.settings import get_settings

    try:
        return ScoringModel.load(CHAMPION_URI, tracking_uri=get_settings().tracking_uri)
    except ModelUnavailableError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


def _online_store():
    from credit.settings import get_settings

    try:
        from features.online import OnlineStore
    except ImportError as exc:
        typer.echo(f"error: the online store is not available ({exc})", err=True)
        raise typer.Exit(1) from exc
    return OnlineStore(get_settings().service_database_url)


def _read_table(path: Path):
    import pandas as pd

    if not path.is_file():
        typer.echo(f"error: no such file {path}", err=True)
        raise typer.Exit(2)
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path)
    typer.echo(f"error: {path}: expected a .parquet or .csv feature table", err=True)
    raise typer.Exit(2)


def _online_frame():
    """The latest snapshot of every firm in the online store, as a feature table."""
    import pandas as pd
    import sqlalchemy as sa

    from features.online import online_features

    store = _online_store()
    t = online_features.c
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(t.firm_id, t.as_of, t.features)).all()
    if not rows:
        typer.echo("error: the online store is empty (run `credit features materialize`)", err=True)
        raise typer.Exit(1)
    latest: dict[str, tuple[Any, str]] = {}
    for firm_id, as_of, blob in rows:
        if firm_id not in latest or as_of > latest[firm_id][0]:
            latest[firm_id] = (as_of, blob)
    feats = pd.DataFrame.from_records([json.loads(blob) for _, blob in latest.values()]).astype(
        "float64"
    )
    feats.insert(0, "as_of", [a for a, _ in latest.values()])
    feats.insert(0, "firm_id", list(latest))
    return feats


def score(
    firm: str | None = typer.Option(None, "--firm", help="Score one firm from the online store."),
    as_of: str | None = typer.Option(
        None, "--as-of", help="With --firm: latest features at or before this date."
    ),
    batch: str | None = typer.Option(
        None,
        "--batch",
        help="A feature table (.parquet/.csv: firm_id, as_of, features) or 'online' for "
        "the whole online store.",
    ),
    out: Path | None = typer.Option(None, "--out", help="With --batch: output .parquet or .csv."),
    explain: str = typer.Option("top", "--explain", help="top, full or none (--firm)."),
    no_reasons: bool = typer.Option(False, "--no-reasons", help="With --batch: skip SHAP."),
    engine: str = typer.Option(
        "local",
        "--engine",
        help="local (in this process) or spark: score --input on Spark with the registered "
        "champion (mlflow spark_udf), write a Parquet folder to --out.",
    ),
    input_path: str | None = typer.Option(
        None, "--input", help="--engine spark: Parquet feature table (file or folder)."
    ),
    master: str = typer.Option(
        "local[2]", "--master", help="--engine spark: local[2], spark://host:7077, yarn ..."
    ),
) -> None:
    """Score with the champion model, exactly as the API does (same core, same decisions)."""
    if engine == "spark":
        _score_on_spark(input_path, out, master, reasons=not no_reasons)
        return
    if engine != "local":
        typer.echo(f"error: --engine must be local or spark, got {engine!r}", err=True)
        raise typer.Exit(2)
    if (firm is None) == (batch is None):
        typer.echo("error: give exactly one of --firm ID or --batch FILE", err=True)
        raise typer.Exit(2)
    if explain not in ("top", "full", "none"):
        typer.echo("error: --explain must be top, full or none", err=True)
        raise typer.Exit(2)
    from credit.decisions import decide, score_frame, to_utc
    from credit.scoring import ScoringInputError

    model = _load_model()
    if firm is not None:
        try:
            when = to_utc(as_of) if as_of else None
        except ValueError as exc:
            typer.echo(f"error: --as-of: {exc}", err=True)
            raise typer.Exit(2) from exc
        found = _online_store().get(firm, as_of=when)
        if found is None:
            typer.echo(f"error: firm {firm} has no features in the online store", err=True)
            raise typer.Exit(1)
        feats_as_of, feats = found
        try:
            (d,) = decide(model, [(firm, to_utc(feats_as_of), dict(feats))], explain=explain)  # type: ignore[arg-type]
        except ScoringInputError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc
        typer.echo(json.dumps(d.to_response(), indent=2))
        return
    if out is None:
        typer.echo("error: --batch needs --out FILE (.parquet or .csv)", err=True)
        raise typer.Exit(2)
    frame = _online_frame() if batch == "online" else _read_table(Path(str(batch)))
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("scoring", total=len(frame))
        try:
            result = score_frame(
                model, frame, reasons=not no_reasons, progress=lambda n: bar.advance(task, n)
            )
        except ScoringInputError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        result.to_csv(out, index=False)
    else:
        result.to_parquet(out, index=False)
    grades = result["grade"].value_counts().sort_index().to_dict() if len(result) else {}
    typer.echo(
        f"scored {len(result)} firms with model version {model.version} -> {out} "
        f"(grades: {', '.join(f'{g} {n}' for g, n in grades.items())})"
    )


def _score_on_spark(input_path: str | None, out: Path | None, master: str, reasons: bool) -> None:
    """``credit score --engine spark``: see :mod:`models.spark_scoring`."""
    from features.spark import SparkUnavailableError, require_pyspark

    try:
        require_pyspark()
    except SparkUnavailableError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if input_path is None or out is None:
        typer.echo("error: --engine spark needs --input FEATURES and --out SCORES", err=True)
        raise typer.Exit(2)
    from credit.scoring import ModelUnavailableError, ScoringInputError
    from credit.settings import get_settings
    from models.spark_scoring import score_to_parquet

    try:
        res = score_to_parquet(
            input_path,
            out,
            master=master,
            tracking_uri=get_settings().tracking_uri,
            reasons=reasons,
        )
    except (ModelUnavailableError, ScoringInputError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"scored {res.rows} rows on Spark with model version {res.version} -> {res.out} "
        f"(Parquet folder; grades: {', '.join(f'{g} {n}' for g, n in res.grades.items())}) "
        f"in {res.seconds:.1f} s"
    )
