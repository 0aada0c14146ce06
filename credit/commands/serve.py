"""``credit serve``: run the scoring service under uvicorn.

Forwarded headers (``X-Forwarded-For``, ``X-Forwarded-Proto``) are honoured only from the
reverse proxies named in ``TRADECREDIT_TRUSTED_PROXIES``; by default from nobody, so a client
cannot choose the address that the per-client limits see. (uvicorn's own default trusts
127.0.0.1, and ``FORWARDED_ALLOW_IPS``: both are overridden here.)
"""

from __future__ import annotations

import os

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

    try:
        s = get_settings()
        if host or port:
            # The service's settings (and so the default public address of seller links)
            # name the address actually bound, in this process and in every worker.
            os.environ["TRADECREDIT_API_HOST"] = host or s.api_host
            os.environ["TRADECREDIT_API_PORT"] = str(port or s.api_port)
            get_settings.cache_clear()
            s = get_settings()
    except ValueError as exc:  # pydantic's ValidationError: a setting is invalid
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    s.ensure_data_dir()
    h, p, w = s.api_host, s.api_port, workers or s.api_workers
    proxies = s.trusted_proxy_list
    upgrade(get_engine())  # once here, so workers starting together find the schema ready
    if w > 1:
        _prepare_tracking_store(s.tracking_uri)
    typer.echo(
        f"tradecredit scoring service on http://{h}:{p} (docs: http://{h}:{p}/docs); "
        f"seller links point at {s.public_base_url}; forwarded headers trusted from: "
        f"{', '.join(proxies) or 'nobody'}",
        err=True,
    )
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=h,
        port=p,
        workers=w,
        access_log=False,  # the service logs each request itself, as JSON, with its request ID
        log_level=(log_level or s.api_log_level).lower(),
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or [],
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
