"""``credit keys``: create, list and revoke API keys of the scoring service."""

from __future__ import annotations

import json

import typer

app = typer.Typer(help="API keys of the scoring service (only their hashes are stored).")


def _engine():
    from credit.db import get_engine, upgrade

    engine = get_engine()
    upgrade(engine)
    return engine


@app.command("create")
def create(
    tenant: str = typer.Option(..., "--tenant", help="Lender or platform the key belongs to."),
    role: str = typer.Option(
        ..., "--role", help="lender, platform, admin or reviewer (a person deciding reviews)."
    ),
    note: str | None = typer.Option(None, "--note", help="Free text shown by `keys list`."),
    holder: str | None = typer.Option(
        None, "--holder", help="The person the key belongs to (required for a reviewer)."
    ),
) -> None:
    """Create a key and print it once: it cannot be shown again."""
    from credit.keys import create_key

    try:
        key, plaintext = create_key(_engine(), tenant, role, note, holder)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(
        f"created key {key.key_id} for tenant {key.tenant} (role {key.role}); "
        "store it now, it is not shown again:",
        err=True,
    )
    typer.echo(plaintext)


@app.command("list")
def list_cmd(
    tenant: str | None = typer.Option(None, "--tenant", help="Only this tenant's keys."),
    as_json: bool = typer.Option(False, "--json", help="JSON lines instead of a table."),
) -> None:
    """List keys (id, tenant, role, created, revoked); never the keys themselves."""
    from credit.keys import list_keys

    keys = list_keys(_engine(), tenant)
    if as_json:
        for k in keys:
            typer.echo(
                json.dumps(
                    {
                        "key_id": k.key_id,
                        "tenant": k.tenant,
                        "role": k.role,
                        "created_at": k.created_at.isoformat(),
                        "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
                        "note": k.note,
                        "holder": k.holder,
                    }
                )
            )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("key_id", "tenant", "role", "holder", "created (UTC)", "status", "note")
    for k in keys:
        table.add_row(
            k.key_id,
            k.tenant,
            k.role,
            k.holder or "",
            k.created_at.strftime("%Y-%m-%d %H:%M"),
            "active" if k.active else f"revoked {k.revoked_at:%Y-%m-%d %H:%M}",
            k.note or "",
        )
    Console().print(table)


@app.command("revoke")
def revoke(
    key_id: str = typer.Argument(..., help="The key's id (see `credit keys list`)."),
) -> None:
    """Revoke a key; it is refused from the next request on."""
    from credit.keys import revoke_key

    try:
        key = revoke_key(_engine(), key_id)
    except KeyError as exc:
        typer.echo(f"error: {exc.args[0]}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"revoked {key.key_id} (tenant {key.tenant}, role {key.role})")
