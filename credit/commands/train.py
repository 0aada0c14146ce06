"""``credit train``, ``credit promote``, ``credit models``: fit, compare and promote PD models."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

_METRICS = [
    ("auc", "AUC"),
    ("gini", "Gini"),
    ("ks", "KS"),
    ("brier", "Brier"),
    ("log_loss", "log loss"),
    ("ece", "ECE (10 bins)"),
    ("calibration_slope", "calibration slope"),
    ("calibration_intercept", "calibration intercept"),
    ("psi_score", "PSI score train->eval"),
    ("cv_auc_mean", "CV AUC (mean of folds)"),
    ("cv_auc_std", "CV AUC (std)"),
]


def _fail(msg: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {msg}", err=True)
    return typer.Exit(code)


def _parse_params(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for it in items or []:
        if "=" not in it:
            raise _fail(f"--param expects KEY=VALUE (e.g. learning_rate=0.05), got {it!r}", 2)
        k, v = it.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def train(
    table: Annotated[
        Path | None,
        typer.Option("--table", help="Bring your own features: a CSV or Parquet training table."),
    ] = None,
    target: Annotated[
        str, typer.Option("--target", help="Target column (1/true = default; empty = unknown).")
    ] = "defaulted",
    time_column: Annotated[
        str | None,
        typer.Option("--time-column", help="Application time: time split (else stratified CV)."),
    ] = None,
    id_column: Annotated[str | None, typer.Option("--id-column", help="Row id column.")] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="Column that is not a feature.")
    ] = None,
    categorical: Annotated[
        list[str] | None,
        typer.Option("--categorical", help="Treat this (numeric-coded) column as categorical."),
    ] = None,
    segment: Annotated[
        list[str] | None, typer.Option("--segment", help="Also evaluate by this column.")
    ] = None,
    store: Annotated[
        Path | None,
        typer.Option("--store", help="Record store (default: records.duckdb in the data dir)."),
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option("--truth", help="Simulator truth.parquet: report the oracle AUC beside."),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="Override a parameter: KEY=VALUE (lightgbm or a.b path)."),
    ] = None,
    params_file: Annotated[
        Path | None, typer.Option("--params", help="Parameter file (default models/params.yaml).")
    ] = None,
    cv: Annotated[
        bool, typer.Option("--cv", help="Stratified cross-validation even with a time column.")
    ] = False,
    no_scorecard: Annotated[
        bool, typer.Option("--no-scorecard", help="Skip the scorecard baseline.")
    ] = False,
    register: Annotated[
        bool, typer.Option("--register/--no-register", help="Log to MLflow and register.")
    ] = True,
    promote: Annotated[
        bool,
        typer.Option("--promote", help="Then promote through the gate (first model: always)."),
    ] = False,
    run_name: Annotated[str | None, typer.Option("--run-name", help="MLflow run name.")] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the figures to this JSON file.")
    ] = None,
    tune: Annotated[
        bool,
        typer.Option(
            "--tune",
            help="Search the parameters (Optuna TPE) on the training rows only: nested CV "
            "with --table, the training window with a time split.",
        ),
    ] = False,
    budget: Annotated[
        float | None,
        typer.Option(
            "--budget", help="Tuning budget in minutes, all studies together (default 10)."
        ),
    ] = None,
    trials: Annotated[
        int | None, typer.Option("--trials", help="At most this many trials per study.")
    ] = None,
    tuned_params: Annotated[
        Path | None,
        typer.Option(
            "--tuned-params",
            help="Where --tune writes the chosen parameters (a file for --params); default "
            "tuned/params-<time>.yaml in the data dir.",
        ),
    ] = None,
    predictions: Annotated[
        Path | None,
        typer.Option(
            "--predictions",
            help="Write the evaluation rows' predictions (row, id, target, pd, scorecard_pd) "
            "to this CSV file (out-of-fold with CV, out-of-time with a time split).",
        ),
    ] = None,
) -> None:
    """Train the PD model: LightGBM + calibration + scorecard baseline, evaluate, register.

    Without --table the training set is built from the record store with the feature catalog
    (one row per loan, features as of its application), split by application time.
    """
    from rich.console import Console

    console = Console(stderr=True)
    t_start = time.perf_counter()
    from models.params import load_params

    if not tune and (budget is not None or trials is not None):
        raise _fail("--budget and --trials set the tuning search: add --tune", 2)
    if not tune and tuned_params is not None:
        raise _fail("--tuned-params is where --tune writes its choice: add --tune", 2)
    try:
        cfg = load_params(params_file, _parse_params(param))
    except (ValueError, OSError) as exc:
        raise _fail(f"parameters: {exc}", 2) from exc
    tune_options = None
    if tune:
        from models.tune import TuneOptions

        tcfg = cfg.get("tuning", {})
        try:
            tune_options = TuneOptions(
                budget_minutes=float(
                    budget if budget is not None else tcfg.get("budget_minutes", 10)
                ),
                trials=trials,
                seed=int(tcfg.get("seed", 0)),
                scorecard_share=float(tcfg.get("scorecard_share", 0.15))
                if not no_scorecard
                else 0.0,
            )
        except ValueError as exc:
            raise _fail(str(exc), 2) from exc

    def progress(msg: str) -> None:
        console.log(msg)

    try:
        with console.status("reading the training set"):
            data, extras = _load_data(
                table, target, time_column, id_column, exclude, categorical, store
            )
        progress(
            f"training set: {len(data.y)} rows, {int((data.y >= 0).sum())} labelled, "
            f"{int((data.y == 1).sum())} defaults, {len(data.feature_names)} features"
        )
        segments = list(segment or []) + [
            s for s in extras.get("segments", []) if s not in (segment or [])
        ]
        from models.train import train_cv, train_time_split

        common: dict[str, Any] = {
            "monotone": extras.get("monotone"),
            "reason_texts": extras.get("reason_texts"),
            "catalog_version": extras.get("catalog_version"),
            "segments": segments,
            "with_scorecard": not no_scorecard,
            "progress": progress,
            "tune": tune_options,
        }
        with console.status("training"):
            if data.times is not None and not cv:
                report = train_time_split(data, cfg, horizon=extras.get("horizon"), **common)
            else:
                report = train_cv(data, cfg, **common)
        if truth is not None:
            report.oracle_auc = _oracle_auc(truth, report)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        raise _fail(str(exc), 2) from exc

    tuned_path = None
    if tune_options is not None:
        tuned_path = _write_tuned(report, tuned_params, run_name)
        progress(
            f"tuned parameters written to {tuned_path}; retrain exactly with --params {tuned_path}"
        )
    if predictions is not None:
        _write_predictions(report, predictions)
        progress(f"evaluation predictions written to {predictions}")
    registered = None
    if register:
        from models import registry

        with console.status("logging to MLflow and registering"):
            registered = registry.log_training(report, run_name=run_name, tuned_params=tuned_path)
        progress(
            f"MLflow run {registered.run_id}"
            + (
                f", registered {registry.MODEL_NAME} version {registered.version}"
                if registered.version
                else ""
            )
        )
        if promote and registered.version:
            res = registry.promote(registered.version, cfg=cfg)
            registered.promotion = res
            progress(res.message)
            if res.auc_gain_line:
                progress(res.auc_gain_line)
    _print_report(report, registered)
    total = time.perf_counter() - t_start
    console.log(f"done in {total:.1f}s")
    if json_out is not None:
        out = {
            "mode": report.mode,
            "lightgbm": report.metrics,
            "scorecard": report.scorecard_metrics,
            "oracle_auc": report.oracle_auc,
            "lightgbm_vs_scorecard": report.scorecard_comparison(),
            "folds": report.folds,
            "split": report.split,
            "best_iteration": report.info.best_iteration,
            "calibration": report.info.calibration,
            "seconds_total": total,
            "seconds": report.seconds,
            "params": report.info.params,
            "data_aware": report.auto_params,
            "explain": report.explain,
            "tuning": [_study_json(s) for s in report.tuning],
            "tuned_params": str(tuned_path) if tuned_path else None,
            "run_id": registered.run_id if registered else None,
            "version": registered.version if registered else None,
            "promoted": bool(registered and registered.promotion and registered.promotion.promoted),
        }
        json_out.write_text(json.dumps(out, indent=1, default=str))


def _study_json(study: Any) -> dict[str, Any]:
    return {
        "label": study.label,
        "rows": study.rows,
        "seconds": round(study.seconds, 1),
        "trials": len(study.trials),
        "complete": sum(t.state == "COMPLETE" for t in study.trials),
        "pruned": sum(t.state == "PRUNED" for t in study.trials),
        "configured_inner_auc": study.default_value,
        "standard_error": study.standard_error,
        "recheck_auc": study.recheck_auc,
        "best_inner_auc": study.best_value,
        "best_params": study.best_params,
        "scorecard_params": study.scorecard_params,
    }


def _write_tuned(report: Any, path: Path | None, run_name: str | None) -> Path:
    """The registered model's parameters as a parameter file ``--params`` reads: the tuned
    LightGBM values as the model was finally fitted (after any explanation-cap remedy), one
    candidate, the tuned scorecard binning, and where they came from."""
    import datetime as dt

    import yaml

    from credit.settings import get_settings

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = path or get_settings().data_dir / "tuned" / f"params-{run_name or stamp}.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    cfg = dict(report.config)
    cfg["lightgbm"] = dict(report.info.params)
    cfg["training"] = {**cfg.get("training", {}), "candidates": [{}]}
    final = report.tuning[-1] if report.tuning else None
    cfg["tuned"] = {
        "at": stamp,
        "data": report.fingerprint.get("source", ""),
        "data_sha256": report.fingerprint.get("sha256", ""),
        "studies": len(report.tuning),
        "final_study_inner_auc": final.best_value if final else None,
        "final_study_trials": len(final.trials) if final else 0,
    }
    header = (
        "# Chosen by `credit train --tune`: the registered model's parameters. Retrain it\n"
        "# exactly with `credit train ... --params THIS_FILE` (no --tune).\n"
    )
    out.write_text(header + yaml.safe_dump(cfg, sort_keys=False))
    return out


def _write_predictions(report: Any, path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame(
        {
            "row": report.eval_index,
            "id": report.eval_ids if report.eval_ids is not None else report.eval_index,
            "target": report.eval_y,
            "pd": report.eval_pd,
            "scorecard_pd": report.eval_scorecard_pd
            if report.eval_scorecard_pd is not None
            else float("nan"),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


def _load_data(
    table: Path | None,
    target: str,
    time_column: str | None,
    id_column: str | None,
    exclude: list[str] | None,
    categorical: list[str] | None,
    store: Path | None,
) -> tuple[Any, dict[str, Any]]:
    from models.dataset import from_frame, read_table

    if table is not None:
        frame = read_table(table)
        data = from_frame(
            frame,
            target,
            time_column=time_column,
            id_column=id_column,
            exclude=exclude or (),
            categorical=categorical or (),
            source=str(table),
        )
        return data, {}
    from credit.settings import get_settings
    from features import catalog
    from features.pipeline import store_horizon, training_set

    path = store or get_settings().store_path
    if not Path(path).exists():
        raise FileNotFoundError(
            f"record store {path} not found: ingest records first (credit ingest) or pass "
            "--table FILE to train on your own features"
        )
    frame = training_set(str(path))
    names = catalog.feature_names()
    data = from_frame(
        frame,
        "defaulted",
        time_column="as_of",
        id_column="loan_id",
        features=names,
        source=str(path),
    )
    horizon = store_horizon(str(path))
    return data, {
        "monotone": catalog.monotone_constraints(),
        "reason_texts": {n: catalog.get(n).reason for n in names},
        "catalog_version": catalog.CATALOG_VERSION,
        "segments": [c for c in ("business_model", "main_market", "product") if c in frame],
        "horizon": horizon,
    }


def _oracle_auc(path: Path, report: Any) -> float:
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    if report.eval_ids is None:
        raise ValueError("--truth needs row ids (--id-column, or the record store's loan_id)")
    truth = pd.read_parquet(path) if path.suffix != ".csv" else pd.read_csv(path)
    if "loan_id" not in truth.columns or "true_pd" not in truth.columns:
        raise ValueError(f"{path}: a truth file needs columns loan_id and true_pd")
    tp = truth.set_index(truth["loan_id"].astype(str))["true_pd"]
    ids = report.eval_ids.astype(str)
    pdv = tp.reindex(ids).to_numpy()
    ok = ~pd.isna(pdv)
    if ok.sum() < len(ids) * 0.99:
        raise ValueError(f"{path}: true_pd missing for {int((~ok).sum())} evaluation loans")
    return float(roc_auc_score(report.eval_y[ok], pdv[ok].astype(float)))


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    try:
        return f"{float(v):.4f}"
    except (TypeError, ValueError):
        return str(v)


def _print_report(report: Any, registered: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    set_name = "out-of-time" if report.mode == "time" else "cross-validated (out-of-fold)"
    t = Table(title=f"{set_name} evaluation, {int(report.metrics.get('n', 0))} rows")
    t.add_column("metric")
    t.add_column("LightGBM", justify="right")
    t.add_column("scorecard", justify="right")
    for key, label in _METRICS:
        if key in report.metrics or key in report.scorecard_metrics:
            t.add_row(label, _fmt(report.metrics.get(key)), _fmt(report.scorecard_metrics.get(key)))
    if report.oracle_auc is not None:
        t.add_row("oracle AUC (true PD)", _fmt(report.oracle_auc), "")
    console.print(t)
    comparison = report.scorecard_comparison()
    if comparison is not None:
        from models.evaluate import describe_auc_difference

        console.print(describe_auc_difference(comparison, "LightGBM", "scorecard"))
    for name, table in report.tables.items():
        if name == "by_month" or table.empty:
            continue
        seg = Table(title=f"by {name[3:]}")
        for c in table.columns:
            seg.add_column(str(c), justify="left" if c == "group" else "right")
        for _, r in table.iterrows():
            seg.add_row(*[_fmt(v) if c != "group" and c != "n" else str(v) for c, v in r.items()])
        console.print(seg)
    if registered is not None and registered.version:
        console.print(
            f"registered tradecredit-pd version {registered.version} (run {registered.run_id})"
        )


def promote(
    version: Annotated[str, typer.Option("--version", help="Model version to promote.")],
    force: Annotated[bool, typer.Option("--force", help="Skip the gate (needs --reason).")] = False,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (recorded with the promotion).")
    ] = None,
) -> None:
    """Move the `champion` alias to VERSION if it beats the champion on the same evaluation set."""
    from mlflow.exceptions import MlflowException

    from models import registry

    try:
        res = registry.promote(version, force=force, reason=reason)
    except ValueError as exc:
        raise _fail(str(exc), 2) from exc
    except MlflowException as exc:
        raise _fail(f"cannot promote version {version}: {exc.message}", 1) from exc
    typer.echo(res.message)
    if res.challenger:
        typer.echo(f"challenger: {json.dumps(registry.short_metrics(res.challenger))}")
    if res.champion:
        typer.echo(f"champion:   {json.dumps(registry.short_metrics(res.champion))}")
    if res.auc_gain_line:
        typer.echo(res.auc_gain_line)
    if not res.promoted:
        raise typer.Exit(1)


def models_cmd(
    json_flag: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of a table.")
    ] = False,
) -> None:
    """List registered model versions with their key metrics and aliases."""
    from rich.console import Console
    from rich.table import Table

    from models import registry

    rows = registry.list_versions()
    if json_flag:
        typer.echo(json.dumps(rows, indent=1))
        return
    if not rows:
        typer.echo("no registered versions of tradecredit-pd yet (run `credit train`)")
        return
    t = Table(title="tradecredit-pd")
    columns = (
        "version",
        "aliases",
        "evaluation",
        "auc",
        "ece",
        "brier",
        "catalog_version",
        "trained_at",
    )
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(
            *[
                _fmt(r[c]) if c in ("auc", "ece", "brier") and r[c] else str(r[c] or "")
                for c in columns
            ]
        )
    Console().print(t)
