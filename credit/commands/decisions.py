"""``credit decisions``: recorded decisions, their lineage, and replay."""

from __future__ import annotations

import json

import typer

from credit.commands import common

app = typer.Typer(help="Recorded decisions: lineage and replay.")


@app.command("show")
def show(decision_id: str = typer.Argument(..., help="The decision's id (dec_...).")) -> None:
    """A recorded decision (any tenant's) with its lineage, as JSON."""
    from credit.commands.consents import _service
    from credit.errors import UseCaseError
    from credit.service import Party

    try:
        found = _service().recorded_decision(decision_id, caller=Party(operator=True))
    except UseCaseError as exc:
        raise common.exit_for(exc) from exc
    typer.echo(json.dumps(found, indent=2, default=str))


@app.command("replay")
def replay(
    decision_id: str = typer.Argument(..., help="The decision's id (dec_...)."),
    model_uri: str | None = typer.Option(
        None,
        "--model",
        help="The model to replay with (default: the registered version that made it, "
        "models:/tradecredit-pd/<version>).",
    ),
    tolerance: float = typer.Option(
        1e-12, "--tolerance", help="Largest PD difference that counts as the same decision."
    ),
) -> None:
    """Recompute a decision from the records as they were known when it was made.

    A record counts when its event happened before the decision's as_of and it was ingested
    at or before the decision (from the sources of its consent): a record pushed later with a
    back-dated event time changes new decisions, not the replay. Exit 0 when the replayed PD
    equals the recorded one within --tolerance, 1 otherwise.
    """
    from credit.commands.consents import _service
    from credit.errors import UseCaseError
    from credit.scoring import MODEL_NAME, ModelUnavailableError, ScoringModel
    from credit.service import Party
    from credit.settings import get_settings

    svc = _service()
    try:
        row = svc.recorded_decision(decision_id, caller=Party(operator=True))
    except UseCaseError as exc:
        raise common.exit_for(exc) from exc
    version = row["model"]["version"]
    uri = model_uri or f"models:/{MODEL_NAME}/{version}"
    if model_uri is None and version in (None, "unregistered"):
        raise common.fail("the model that made this decision is not registered; pass --model")
    settings = get_settings()
    try:
        model = ScoringModel.load(
            uri,
            tracking_uri=settings.tracking_uri,
            registry_timeout=settings.registry_timeout_seconds,
        )
    except ModelUnavailableError as exc:
        raise common.fail(str(exc)) from exc
    try:
        out = svc.replay(decision_id, model)
    except UseCaseError as exc:
        raise common.exit_for(exc) from exc
    typer.echo(json.dumps(out, indent=2, default=str))
    same = out["pd_difference"] <= tolerance and not out["feature_differences"]
    typer.echo(
        f"{'same' if same else 'DIFFERENT'}: recorded PD {out['recorded_pd']!r}, replayed "
        f"{out['replayed_pd']!r} (difference {out['pd_difference']:.3g})",
        err=True,
    )
    if not same:
        raise typer.Exit(1)
