"""``credit events``: the outbox on the command line (dispatch, list, redeliver).

``credit events dispatch`` runs the webhook dispatcher as a process of its own, for
deployments that run ``credit serve`` with ``TRADECREDIT_WEBHOOKS_DISPATCH=false``; several
may run against one PostgreSQL database (they share the work, never the same attempt).
See ``docs/webhooks.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from typing import Any

import typer

from credit.commands import common

app = typer.Typer(help="Events and webhook deliveries (service database).")


def _engine() -> Any:
    from credit.db import get_engine, upgrade

    engine = get_engine()
    upgrade(engine)
    return engine


@app.command("dispatch")
def dispatch(
    until_idle: bool = typer.Option(
        False, "--until-idle", help="Stop once nothing is pending or in flight (else run on)."
    ),
    name: str | None = typer.Option(None, "--name", help="This dispatcher's name in the log."),
) -> None:
    """Deliver events to the webhook endpoints until stopped (SIGINT or SIGTERM)."""
    from credit.settings import get_settings
    from credit.webhooks import Dispatcher

    engine = _engine()
    dispatcher = Dispatcher(engine, get_settings, name=name)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await dispatcher.run(stop, until_idle=until_idle)

    typer.echo(f"dispatcher {dispatcher.name}: delivering (stop with Ctrl-C)", err=True)
    asyncio.run(main())
    typer.echo(
        f"dispatcher {dispatcher.name}: {dispatcher.sent} attempts, "
        f"{dispatcher.delivered} delivered",
        err=True,
    )


@app.command("list")
def list_cmd(
    tenant: str = typer.Option(..., "--tenant", help="Whose events."),
    type: str | None = typer.Option(None, "--type", help="Only this event type."),
    limit: int = typer.Option(50, "--limit", min=1, max=10_000),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (nothing else on stdout)."),
) -> None:
    """A tenant's events, oldest first, with the state of each delivery."""
    from credit.errors import UseCaseError
    from credit.settings import get_settings
    from credit.webhooks import WebhookStore

    try:
        found = WebhookStore(_engine(), get_settings).events(tenant, type=type, limit=limit)
    except UseCaseError as exc:
        raise common.exit_for(exc) from exc
    if as_json:
        typer.echo(json.dumps(found, indent=2, default=str))
        return
    for e in found:
        states = ", ".join(
            f"{d['webhook_id']} {d['status']} after {d['attempts']}" for d in e["deliveries"]
        )
        typer.echo(f"{e['event_id']}  {e['type']:<18} {e['firm_id'] or '-':<12} {states or '-'}")


@app.command("redeliver")
def redeliver(
    event_id: str = typer.Argument(..., help="The event id (msg_...)."),
    tenant: str = typer.Option(..., "--tenant", help="Whose event."),
) -> None:
    """Queue an event's deliveries again (a fresh set of attempts)."""
    from credit.errors import UseCaseError
    from credit.settings import get_settings
    from credit.webhooks import WebhookStore

    try:
        out = WebhookStore(_engine(), get_settings).redeliver(tenant, event_id)
    except UseCaseError as exc:
        raise common.exit_for(exc) from exc
    queued = sum(d["status"] in ("pending", "delivering") for d in out["deliveries"])
    typer.echo(f"{out['event_id']}: {queued} of {len(out['deliveries'])} deliveries queued")
