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
    base_url: str = typer.Option(
        "http://127.0.0.1:8000", "--base-url", help="With --seller-link: the service's address."
    ),
    ttl: int | None = typer.Option(
        None, "--ttl", help="With --seller-link: seconds the link stays valid (default 900)."
    ),
) -> None:
    """Score a firm with the champion model and print its offers under a lending policy.

    The same engine as GET /v1/firms/{id}/offers: amounts sized on the firm's records.

    Risk-based APR; every declined product with its reasons. The decision is recorded in
    the audit log (under --tenant, else 'operator') before it is printed.

    With --seller-link, print a link to the firm's seller page for --tenant (a platform).
    """
    from credit.settings import get_settings

    settings = get_settings()
    if seller_link:
        from credit.links import link_secret, sign_seller_link

        if not tenant:
            raise common.fail("--seller-link needs --tenant (the platform the link is for)", 2)
        try:
            link = sign_seller_link(
                firm, tenant, link_secret(settings), ttl or settings.seller_link_ttl_seconds
            )
        except ValueError as exc:
            raise common.fail(str(exc), 2) from exc
        typer.echo(f"{base_url.rstrip('/')}/sellers/{firm}?token={link.token}")
        return
    pol = _policy(policy, tenant)

    from credit.service import Party

    when = common.parse_as_of(as_of)
    fo = common.run(
        lambda svc: svc.firm_offers(
            firm, when, caller=Party(tenant or common.OPERATOR_TENANT), channel="cli", policy=pol
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
