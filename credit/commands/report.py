"""``credit report --version V``: regenerate the model report of a registered version."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def report(
    version: Annotated[str, typer.Option("--version", help="Registered model version.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Where to write the HTML (default: report-vV.html here)."),
    ] = None,
    log: Annotated[
        bool,
        typer.Option(
            "--log/--no-log",
            help="Also replace report.html (and the decisions-by-segment table) in the run.",
        ),
    ] = False,
) -> None:
    """Rebuild report.html of VERSION from what its training run logged, and write it."""
    from mlflow.exceptions import MlflowException

    from credit.scoring import MODEL_NAME, ModelUnavailableError
    from models import tracking
    from models.report import REPORT_ARTIFACT, PolicyDecisions, build_report, log_decisions

    try:
        uri = tracking.configure()
        mv = tracking.client(uri).get_model_version(MODEL_NAME, str(version))
        figures: dict[str, PolicyDecisions] = {}
        text = build_report(mv.run_id, version=str(version), tracking_uri=uri, collect=figures)
    except (MlflowException, ModelUnavailableError, ValueError) as exc:
        typer.echo(f"error: cannot build the report of version {version}: {exc}", err=True)
        raise typer.Exit(1) from exc
    path = out or Path(f"report-v{version}.html")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    if log:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / REPORT_ARTIFACT
            p.write_text(text, encoding="utf-8")
            tracking.client(uri).log_artifact(mv.run_id, str(p))
        if "decisions" in figures:
            log_decisions(mv.run_id, figures["decisions"], uri)
    typer.echo(f"wrote {path} ({len(text) // 1024} KiB) for {MODEL_NAME} version {version}")
