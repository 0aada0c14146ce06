"""``credit score``: one decision by firm, or a whole feature table / online store in batch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, cast

import typer

from credit.commands import common

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


def _read_table(path: Path) -> pd.DataFrame:
    import pandas as pd

    if not path.is_file():
        raise common.fail(f"no such file {path}", 2)
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path)
    raise common.fail(f"{path}: expected a .parquet or .csv feature table", 2)


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
    policy: Path | None = typer.Option(
        None,
        "--policy",
        help="With --batch: the policy whose rules give each row's outcome (default: shipped).",
    ),
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
    """Score with the champion model, exactly as the API does (same core, same decisions).

    A decision by --firm is recorded in the audit log (tenant 'operator') before it is
    printed, like one the API returns; --batch writes a score table and records nothing.
    """
    if engine == "spark":
        _score_on_spark(input_path, out, master, reasons=not no_reasons)
        return
    if engine != "local":
        raise common.fail(f"--engine must be local or spark, got {engine!r}", 2)
    if (firm is None) == (batch is None):
        raise common.fail("give exactly one of --firm ID or --batch FILE", 2)
    if explain not in ("top", "full", "none"):
        raise common.fail("--explain must be top, full or none", 2)
    from credit.decisions import Explain, score_frame
    from credit.scoring import ScoringInputError
    from credit.service import Party

    if firm is not None:
        when = common.parse_as_of(as_of)
        mode = cast(Explain, explain)
        who = Party(common.OPERATOR_TENANT, operator=True)
        d = common.run(lambda svc: svc.decide_firm(firm, when, caller=who, explain=mode))
        typer.echo(json.dumps(d.to_response(), indent=2))
        return
    if out is None:
        raise common.fail("--batch needs --out FILE (.parquet or .csv)", 2)
    model = common.load_champion()
    if batch == "online":
        frame = common.online_store().latest_frame()
        if frame.empty:
            raise common.fail("the online store is empty (run `credit features materialize`)")
    else:
        frame = _read_table(Path(str(batch)))
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("scoring", total=len(frame))
        try:
            result = score_frame(
                model, frame, reasons=not no_reasons, progress=lambda n: bar.advance(task, n)
            )
        except ScoringInputError as exc:
            raise common.fail(str(exc)) from exc
    from credit.decisioning import judge_frame
    from credit.policy import PolicyError, default_policy, load_policy

    try:
        rules = load_policy(policy) if policy is not None else default_policy()
        result = result.join(judge_frame(rules, model.scale.grades, frame, result))
    except PolicyError as exc:
        raise common.fail(str(exc)) from exc
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        result.to_csv(out, index=False)
    else:
        result.to_parquet(out, index=False)
    grades = result["grade"].value_counts().sort_index().to_dict() if len(result) else {}
    outcomes = result["outcome"].value_counts().to_dict() if len(result) else {}
    typer.echo(
        f"scored {len(result)} firms with model version {model.version} -> {out} "
        f"(grades: {', '.join(f'{g} {n}' for g, n in grades.items())}; under policy "
        f"{rules.name}: {', '.join(f'{o} {n}' for o, n in outcomes.items())})"
    )


def _score_on_spark(input_path: str | None, out: Path | None, master: str, reasons: bool) -> None:
    """``credit score --engine spark``: see :mod:`models.spark_scoring`."""
    from features.spark import SparkUnavailableError, require_pyspark

    try:
        require_pyspark()
    except SparkUnavailableError as exc:
        raise common.fail(str(exc), 2) from None
    if input_path is None or out is None:
        raise common.fail("--engine spark needs --input FEATURES and --out SCORES", 2)
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
        raise common.fail(str(exc)) from exc
    typer.echo(
        f"scored {res.rows} rows on Spark with model version {res.version} -> {res.out} "
        f"(Parquet folder; grades: {', '.join(f'{g} {n}' for g, n in res.grades.items())}) "
        f"in {res.seconds:.1f} s"
    )
