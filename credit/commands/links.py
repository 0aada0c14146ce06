"""``credit links``: seller links issued by the service (recorded in the service database)."""

from __future__ import annotations

import typer

from credit.commands import common

app = typer.Typer(help="Seller links (recorded in the service database; revoke one at once).")


@app.command("revoke")
def revoke(
    link_id: str = typer.Argument(
        ...,
        help="The link's id (lnk_...): in the answer of POST /v1/firms/{id}/seller-link, or "
        "printed by `credit offers --seller-link`.",
    ),
) -> None:
    """Revoke one seller link of any tenant; its page closes at the next view."""
    from credit.db import get_engine, upgrade
    from credit.errors import UseCaseError
    from credit.links import LinkStore
    from credit.service import CreditService
    from credit.settings import get_settings

    engine = get_engine()
    upgrade(engine)
    svc = CreditService.from_settings(
        get_settings(), model=lambda: None, online=None, links=LinkStore(engine)
    )
    try:
        rec = svc.revoke_seller_link(link_id)  # no caller: the operator, any tenant
    except UseCaseError as exc:
        raise common.exit_for(exc) from exc
    typer.echo(
        f"revoked {rec.link_id} (firm {rec.firm_id}, tenant {rec.tenant}) at "
        f"{rec.revoked_at:%Y-%m-%d %H:%M:%S} UTC"
    )
