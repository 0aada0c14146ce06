"""``credit offers``: a firm's financing offers under a policy, or a signed seller link."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from credit.commands import common

if TYPE_CHECKING:  # pragma: no cover
    from credit.offers import OfferSet
    from credit.policy import Policy


def _policy(policy: Path | None, tenant: str | None) -> Policy:
    from credit.policy import PolicyError, load_policy, policy_for_tenant
    from credit.settings import get_settings

    try:
        if policy is not None:
            return load_policy(policy)
        return policy_for_tenant(tenant, get_settings().policy_dir)
    except PolicyError as exc:
        raise common.fail(str(exc), 2) from exc


_SHORT = {
    "working_capital_advance": "working capital",
    "receivables_financing": "receivables",
    "tax_refund_advance": "tax refund",
    "warehouse_inventory_financing": "warehouse stock",
}
_CAP = {"advance_rate": "rate", "holdback": "holdback", "max_amount": "max"}


def _print(result: OfferSet) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    ccy = result.currency
    console.print(
        f"[bold]{result.firm_id}[/bold] as of {result.as_of:%Y-%m-%d}: PD {result.pd:.2%}, "
        f"score {result.score}, grade {result.grade}; policy {result.policy['name']} "
        f"v{result.policy['version']}"
    )
    if result.offers:
        table = Table(title=f"Offers ({ccy})", show_lines=False)
        for col in ("product", "amount", "term", "APR", "cost", "repay", "exp. loss", "cap"):
            table.add_column(col, justify="left" if col == "product" else "right")
        for o in result.offers:
            table.add_row(
                _SHORT.get(o.product, o.product),
                f"{o.amount:,.0f}",
                f"{o.term_days} d",
                f"{o.apr:.2%}",
                f"{o.total_cost:,.0f}",
                f"{o.total_repayable:,.0f}",
                f"{o.expected_loss:,.0f}",
                _CAP[o.limited_by],
            )
        console.print(table)
        for o in result.offers:
            console.print(f"  {o.product}: {o.repayment.summary}")
    for d in result.declines:
        reasons = "; ".join(f"{r.code}: {r.message}" for r in d.reasons)
        console.print(f"[yellow]declined[/yellow] {d.product}: {reasons}")


def _seller_link(firm: str, tenant: str, base_url: str, ttl: int) -> None:
    """Make and record an operator's seller link (no API key: it dies when revoked or
    expired); print it, and its id on standard error."""
    from credit.db import get_engine, upgrade
    from credit.errors import UseCaseError
    from credit.links import LinkStore
    from credit.service import CreditService, Party
    from credit.settings import get_settings

    if ttl <= 0:
        raise common.fail(f"--ttl must be positive, got {ttl}", 2)
    engine = get_engine()
    upgrade(engine)
    svc = CreditService.from_settings(
        get_settings(), model=lambda: None, online=common.online_store(), links=LinkStore(engine)
    )
    try:
        link = svc.seller_link(firm, caller=Party(tenant, operator=True), ttl_seconds=ttl)
    except UseCaseError as exc:
        raise common.exit_for(exc) from exc
    typer.echo(f"{base_url.rstrip('/')}/sellers/{firm}?token={link.token}")
    typer.echo(
        f"link {link.link_id} for {tenant}, valid until {link.expires_at:%Y-%m-%d %H:%M} UTC; "
        f"revoke it with: credit links revoke {link.link_id}",
        err=True,
    )


def offers(
    firm: str = typer.Option(..., "--firm", help="The firm (its features in the online store)."),
    policy: Path | None = typer.Option(
        None,
        "--policy",
        help="A policy YAML file (default: <policy_dir>/<tenant>.yaml with --tenant, else the "
        "policy shipped with the package).",
    ),
    tenant: str | None = typer.Option(
        None,
        "--tenant",
        help="The lender or platform whose policy applies (and who a link is for).",
    ),
    as_of: str | None = typer.Option(
        None, "--as-of", help="Latest features at or before this date (default: latest)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the offers as JSON."),
    seller_link: bool = typer.Option(
        False, "--seller-link", help="Print a signed link to the firm's seller page instead."
    ),
    base_url: str | None = typer.Option(
        None,
        "--base-url",
        help="With --seller-link: the service's public address [settings: "
        "TRADECREDIT_PUBLIC_URL, else http://{api_host}:{api_port}].",
    ),
    ttl: int | None = typer.Option(
        None, "--ttl", help="With --seller-link: seconds the link stays valid (default 900)."
    ),
) -> None:
    """Score a firm with the champion model and print its offers under a lending policy.

    The same engine as GET /v1/firms/{id}/offers: amounts sized on the firm's records.

    Risk-based APR; every declined product with its reasons. The decision is recorded in
    the audit log (under --tenant, else 'operator') before it is printed.

    With --seller-link, print a link to the firm's seller page for --tenant (a platform),
    recorded in the service database: it lives until it expires or `credit links revoke`.
    """
    from credit.settings import get_settings

    settings = get_settings()
    if seller_link:
        if not tenant:
            raise common.fail("--seller-link needs --tenant (the platform the link is for)", 2)
        _seller_link(
            firm,
            tenant,
            base_url or settings.public_base_url,
            settings.seller_link_ttl_seconds if ttl is None else ttl,
        )
        return
    pol = _policy(policy, tenant)

    from credit.service import Party

    when = common.parse_as_of(as_of)
    fo = common.run(
        lambda svc: svc.firm_offers(
            firm,
            when,
            caller=Party(tenant or common.OPERATOR_TENANT, operator=True),
            channel="cli",
            policy=pol,
        )
    )
    decision, result = fo.decision, fo.offers
    if as_json:
        typer.echo(
            json.dumps(
                {"decision": decision.to_response(), **result.model_dump(mode="json")}, indent=2
            )
        )
        return
    _print(result)
