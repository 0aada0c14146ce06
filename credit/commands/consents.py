"""``credit consents``: the operator's view of consents (list, revoke)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from credit.commands import common

if TYPE_CHECKING:  # pragma: no cover
    from credit.service import CreditService

app = typer.Typer(help="Consents: who may use which firm's records (service database).")


def _service() -> CreditService:
    """The use cases on the configured service database (no model: none of these scores)."""
    from credit.audit import AuditLog
    from credit.db import get_engine, upgrade
    from credit.service import CreditService
    from credit.settings import get_settings

    engine = get_engine()
    upgrade(engine)
    return CreditService.from_settings(
        get_settings(), model=lambda: None, online=None, audit=AuditLog(engine)
    )


@app.command("list")
def list_cmd(
    firm: str | None = typer.Option(None, "--firm", help="Only this firm's consents."),
    grantee: str | None = typer.Option(None, "--grantee", help="Only consents to this tenant."),
    state: str | None = typer.Option(
        None, "--state", help="requested, active, declined, revoked or expired."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (nothing else on stdout)."),
) -> None:
    """Every consent (all tenants), newest first."""
    from rich.console import Console
    from rich.table import Table

    from credit.errors import UseCaseError
    from credit.service import Party

    try:
        found = _service().list_consents(
            caller=Party(operator=True), firm_id=firm, state=state, limit=10_000
        )
    except UseCaseError as exc:
        raise common.exit_for(exc) from exc
    if grantee is not None:
        found = [c for c in found if c.grantee == grantee]
    if as_json:
        typer.echo(json.dumps([c.to_dict() for c in found], indent=2))
        return
    table = Table(title=f"{len(found)} consent(s)")
    for col in ("consent", "firm", "grantee", "state", "purposes", "sources", "expires", "how"):
        table.add_column(col)
    for c in found:
        d = c.to_dict()
        table.add_row(
            c.consent_id,
            c.firm_id,
            c.grantee,
            d["state"],
            ", ".join(c.purposes),
            ", ".join(c.sources or ()) or "-",
            (d["expires_at"] or "-")[:10],
            (c.evidence or {}).get("kind", "-"),
        )
    Console().print(table)


@app.command("revoke")
def revoke(consent_id: str = typer.Argument(..., help="The consent's id (cns_...).")) -> None:
    """Revoke a consent now (any tenant's); the next request under it gets 404."""
    from credit.errors import UseCaseError
    from credit.service import Party

    try:
        c = _service().revoke_consent(consent_id, caller=Party(operator=True))
    except UseCaseError as exc:
        raise common.exit_for(exc) from exc
    typer.echo(
        f"revoked {c.consent_id} (firm {c.firm_id}, grantee {c.grantee}) at "
        f"{c.revoked_at:%Y-%m-%d %H:%M:%S} UTC"
    )
