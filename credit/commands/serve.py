"""``credit serve``: run the scoring service under uvicorn."""

from __future__ import annotations

import typer


def serve(
    host: str | None = typer.Option(None, "--host", help="Bind address [settings: 127.0.0.1]."),
    port: int | None = typer.Option(None, "--port", help="Port [settings: 8000]."),
    workers: int | None = typer.Option(None, "--workers", help="Worker processes [settings: 1]."),
    log_level: str | None = typer.Option(None, "--log-level", help="Log level [INFO]."),
) -> None:
    """Start the scoring service (migrates the database, loads the champion, serves HTTP)."""
    import uvicorn

    from credit.db import get_engine, upgrade
    from credit.settings import get_settings

    s = get_settings()
    s.ensure_data_dir()
    h, p, w = host or s.api_host, port or s.api_port, workers or s.api_workers
    upgrade(get_engine())  # once here, so workers starting together find the schema ready
    if w > 1:
        _prepare_tracking_store(s.tracking_uri)
    typer.echo(
        f"tradecredit scoring service on http://{h}:{p} (docs: http://{h}:{p}/docs)", err=True
    )
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=h,
        port=p,
        workers=w,
        access_log=False,  # the service logs each request itself, as JSON, with its request ID
        log_level=(log_level or s.api_log_level).lower(),
    )


def _prepare_tracking_store(tracking_uri: str) -> None:
    """Open the MLflow store once before the workers start.

    An embedded (SQLite) store creates its tables on first use; several workers doing that at
    the same moment race (``table _alembic_tmp_... already exists``) and one of them starts
    without a model.
    """
    if not tracking_uri.startswith("sqlite:"):
        return
    from mlflow.tracking import MlflowClient

    try:
        MlflowClient(tracking_uri=tracking_uri).search_registered_models(max_results=1)
    except Exception as exc:  # the workers will report it through /readyz
        typer.echo(f"warning: MLflow store {tracking_uri}: {exc}", err=True)
