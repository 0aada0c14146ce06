"""``credit offers``: a firm's financing offers under a policy, or a signed seller link."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _policy(policy: Path | None, tenant: str | None) -> Any:
    from credit.policy import PolicyError, load_policy, policy_for_tenant
    from credit.settings import get_settings

    try:
        if policy is not None:
            return load_policy(policy)
        return policy_for_tenant(tenant, get_settings().policy_dir)
    except PolicyError as exc:
        raise _fail(str(exc), 2) from exc


_SHORT = {
    "working_capital_advance": "working capital",
    "receivables_financing": "receivables",
    "tax_refund_advance": "tax refund",
    "warehouse_inventory_financing": "warehouse stock",
}
_CAP = {"advance_rate": "rate", "holdback": "holdback", "max_amount": "max"}


def _print(result: Any) -> None:
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

    Risk-based APR; every declined product with its reasons.

    With --seller-link, print a link to the firm's seller page for --tenant (a platform).
    """
    from credit.settings import get_settings

    settings = get_settings()
    if seller_link:
        from credit.links import link_secret, sign_seller_link

        if not tenant:
            raise _fail("--seller-link needs --tenant (the platform the link is for)", 2)
        try:
            link = sign_seller_link(
                firm, tenant, link_secret(settings), ttl or settings.seller_link_ttl_seconds
            )
        except ValueError as exc:
            raise _fail(str(exc), 2) from exc
        typer.echo(f"{base_url.rstrip('/')}/sellers/{firm}?token={link.token}")
        return
    pol = _policy(policy, tenant)

    from credit.commands.score import _load_model, _online_store
    from credit.decisions import decide, to_utc
    from credit.offers import OfferError, compute_bases, load_firm_records, make_offers
    from credit.scoring import ScoringInputError
    from credit.store import open_store

    try:
        when = to_utc(as_of) if as_of else None
    except ValueError as exc:
        raise _fail(f"--as-of: {exc}", 2) from exc
    model = _load_model()
    found = _online_store().get(firm, as_of=when)
    if found is None:
        raise _fail(f"firm {firm} has no features in the online store")
    feats_as_of, feats = found
    try:
        (decision,) = decide(model, [(firm, to_utc(feats_as_of), dict(feats))])
    except ScoringInputError as exc:
        raise _fail(str(exc)) from exc
    try:
        con = open_store(read_only=True)
    except FileNotFoundError as exc:
        raise _fail(str(exc)) from exc
    try:
        records = load_firm_records(con, firm, decision.as_of)
    finally:
        con.close()
    try:
        result = make_offers(decision.to_response(), compute_bases(records, decision.as_of), pol)
    except OfferError as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        typer.echo(
            json.dumps(
                {"decision": decision.to_response(), **result.model_dump(mode="json")}, indent=2
            )
        )
        return
    _print(result)
