"""``credit reviews``: the review queue on the command line (list, show, decide).

The operator's view of every tenant's reviews; ``decide`` records the holder named with
``--reviewer`` (four eyes count holders, whichever channel they use). See
``docs/decisioning.md``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer

from credit.commands import common

if TYPE_CHECKING:  # pragma: no cover
    from credit.service import CreditService

app = typer.Typer(help="Referred decisions: list, show and decide reviews (service database).")


def _service() -> CreditService:
    from credit.audit import AuditLog
    from credit.db import get_engine, upgrade
    from credit.service import CreditService
    from credit.settings import get_settings

    engine = get_engine()
    upgrade(engine)
    return CreditService.from_settings(
        get_settings(), model=lambda: None, online=None, audit=AuditLog(engine)
    )


def _operator() -> Any:
    from credit.service import Party

    return Party(operator=True)


@app.command("list")
def list_cmd(
    status: str | None = typer.Option(
        None, "--status", help="open, awaiting_second or closed (default: all)."
    ),
    tenant: str | None = typer.Option(None, "--tenant", help="Only this lender's reviews."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (nothing else on stdout)."),
) -> None:
    """Reviews of every lender, oldest first."""
    from rich.console import Console
    from rich.table import Table

    from credit.errors import UseCaseError

    try:
        found = _service().reviews(caller=_operator(), status=status, limit=10_000)
    except UseCaseError as exc:
        raise common.exit_for(exc) from exc
    if tenant is not None:
        found = [r for r in found if r.tenant == tenant]
    if as_json:
        typer.echo(json.dumps([{**r.to_dict(), "tenant": r.tenant} for r in found], indent=2))
        return
    table = Table(title=f"{len(found)} review(s)")
    for col in ("review", "lender", "firm", "grade", "model says", "exposure", "status", "by"):
        table.add_column(col)
    for r in found:
        holders = ", ".join(a.holder for a in r.actions) or "-"
        table.add_row(
            r.review_id,
            r.tenant,
            r.firm_id,
            r.grade,
            r.recommendation,
            f"{r.exposure:,.0f}",
            r.status + (f" ({r.outcome or r.pending_outcome})" if r.actions else ""),
            holders,
        )
    Console().print(table)


@app.command("show")
def show(
    review_id: str = typer.Argument(..., help="The review's id (rev_...)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (nothing else on stdout)."),
) -> None:
    """One review: the decision, its reasons and rules, features, offers and records."""
    from credit.errors import UseCaseError

    try:
        found = _service().review(review_id, caller=_operator())
    except UseCaseError as exc:
        raise common.exit_for(exc) from exc
    if as_json:
        typer.echo(json.dumps(found, indent=2, default=str))
        return
    d = found["decision"]
    echo = typer.echo
    echo(f"review {found['review_id']}  ({found['status']})")
    echo(f"  firm {found['firm_id']}, decision {d['decision_id']} of {d['scored_at']}")
    echo(
        f"  PD {d['pd']:.4f}, score {d['score']}, grade {d['grade']}; outcome {d.get('outcome')}, "
        f"the model recommends {found['recommendation']}"
    )
    echo(f"  exposure {found['exposure']:,.0f}; four eyes above {found['four_eyes_above']:,.0f}")
    echo("  rules that fired:")
    for r in d.get("rules") or []:
        echo(f"    - [{r['kind']}] {r['rule']}: {r['text']}")
    echo("  reasons (what raised the risk):")
    for r in d.get("reasons") or []:
        echo(f"    - {r['code']} {r['feature']} = {r['value']}: {r['text']}")
    records = found["records"]
    if records.get("shared") and records.get("available"):
        echo("  records:")
        for kind, n in records["types"].items():
            echo(f"    - {kind}: {n['records']} ({n['last_90d']} in 90 days), latest {n['latest']}")
    else:
        echo(f"  records: {records.get('detail', 'not available')}")
    offers = found.get("offers") or {}
    for o in offers.get("offers") or []:
        echo(f"  offer: {o['title']} {o['amount']:,.0f} {offers['currency']}")
    for a in found["actions"]:
        echo(
            f"  {a['at']} {a['holder']} ({a['channel']}): {a['outcome']} "
            f"{','.join(a['reason_codes'])} -> {a['effect']}: {a['note']}"
        )


@app.command("decide")
def decide(
    review_id: str = typer.Argument(..., help="The review's id (rev_...)."),
    outcome: str = typer.Option(..., "--outcome", help="approved or declined."),
    reason: list[str] = typer.Option(
        ..., "--reason", help="A reason code (repeat, up to 4): AA.. to decline, RA.. to approve."
    ),
    note: str = typer.Option(..., "--note", help="Why, in a sentence or two."),
    reviewer: str = typer.Option(..., "--reviewer", help="The person deciding (holder name)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (nothing else on stdout)."),
) -> None:
    """Record a reviewer's decision (four eyes on big overrides: a second --reviewer)."""
    from credit.errors import UseCaseError

    try:
        review = _service().decide_review(
            review_id,
            caller=_operator(),
            holder=" ".join(reviewer.split()),
            outcome=outcome,
            reason_codes=reason,
            note=note,
            channel="cli",
        )
    except UseCaseError as exc:
        raise common.exit_for(exc) from exc
    if as_json:
        typer.echo(json.dumps(review.to_dict(), indent=2))
        return
    if review.status == "awaiting_second":
        typer.echo(
            f"review {review_id}: {reviewer} decided {outcome}; this overrides the model above "
            f"{review.terms.get('four_eyes_above'):,.0f}, so a second reviewer must decide it"
        )
    else:
        typer.echo(f"review {review_id} closed: {review.outcome}")
