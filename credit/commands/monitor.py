"""``credit monitor``: drift of the population scored since a date against the training baseline;
``credit monitor portfolio``: re-score every watched firm and raise alerts (docs/portfolio.md).

``credit monitor --since D`` exits 1 when the PSI of the score or of any feature crosses the
alert threshold, so that a scheduler can page someone; 0 otherwise (also when nothing was
scored). ``monitor`` is a command group whose callback runs the drift report when no
subcommand is given (register it with ``app.add_typer(monitor.app, name="monitor")``).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    help="Drift of the scored population (--since), or a portfolio run (portfolio).",
    no_args_is_help=False,
)


def _since(value: str) -> datetime:
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"expected a date like 2025-06-01, got {value!r}") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


@app.callback(invoke_without_command=True)
def monitor(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Decisions scored on or after this date (ISO)."),
    ] = None,
    psi_warn: Annotated[float, typer.Option("--psi-warn", help="PSI warning threshold.")] = 0.1,
    psi_alert: Annotated[
        float, typer.Option("--psi-alert", help="PSI alert threshold (exit status 1).")
    ] = 0.25,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="HTML report (default: monitoring/report.html in data dir)."),
    ] = None,
    outcome_days: Annotated[
        int,
        typer.Option("--outcome-days", help="Match a loan applied this many days after a score."),
    ] = 31,
    top: Annotated[int, typer.Option("--top", help="Features shown in the table.")] = 15,
    alert_on: Annotated[
        str,
        typer.Option("--alert-on", help="Exit 1 when 'any' variable or only the 'score' alerts."),
    ] = "any",
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the figures to this JSON file.")
    ] = None,
) -> None:
    """Drift since --since against the training baseline of the model that scored it.

    PSI of the score and of every feature, grade shift and migration, and (once loans with
    outcomes are ingested) the default rate by grade against the PDs predicted. Also the
    decisions' approval, decline and referral rates by segment with the adverse impact ratio
    (four-fifths rule) and the override rates of the reviews. Writes an HTML
    report; exits 1 when a PSI crosses --psi-alert (the score's or any feature's; only the
    score's with --alert-on score). `credit monitor portfolio` re-scores the watched firms.
    """
    if ctx.invoked_subcommand is not None:
        return
    if since is None:
        typer.echo("error: missing option '--since' (or a subcommand: portfolio)", err=True)
        raise typer.Exit(2)
    from rich.console import Console
    from rich.table import Table

    from models import monitor as mon

    if not 0 < psi_warn <= psi_alert:
        raise typer.BadParameter("need 0 < --psi-warn <= --psi-alert")
    if alert_on not in ("any", "score"):
        raise typer.BadParameter("--alert-on must be 'any' or 'score'")
    start = _since(since)
    rep = mon.monitor(start, psi_warn, psi_alert, outcome_days=outcome_days)
    console = Console()
    if rep.decisions == 0:
        console.print(f"no decisions recorded since {start.isoformat()}")
    for v, why in rep.skipped.items():
        console.print(f"[yellow]version {v} not monitored: {why}[/yellow]")
    style = {"ok": "green", "warn": "yellow", "alert": "bold red", "n/a": "dim"}
    for r in rep.results:
        t = Table(
            title=f"model version {r.model_version}: {r.rows} decisions since {start.date()} "
            f"(warn {psi_warn}, alert {psi_alert})"
        )
        for c in ("variable", "kind", "PSI", "status"):
            t.add_column(c, justify="right" if c == "PSI" else "left")
        shown = r.psi.head(top + 1)
        for _, row in shown.iterrows():
            psi_v = float(row["psi"])
            t.add_row(
                str(row["variable"]),
                str(row["kind"]),
                "-" if not math.isfinite(psi_v) else f"{psi_v:.4f}",
                f"[{style[row['status']]}]{row['status']}[/]",
            )
        if len(r.psi) > len(shown):
            t.caption = f"{len(r.psi) - len(shown)} more features, all below the first shown"
        console.print(t)
        g = Table(title="grades: baseline vs now")
        for c in ("grade", "baseline", "current", "change"):
            g.add_column(c, justify="left" if c == "grade" else "right")
        for _, row in r.grades.iterrows():
            g.add_row(
                str(row["grade"]),
                f"{row['baseline']:.3f}",
                f"{row['current']:.3f}",
                f"{row['change']:+.3f}",
            )
        console.print(g)
        if not r.outcomes.empty:
            o = Table(title="default rate by grade vs predicted PD")
            for c in ("grade", "n", "defaults", "default rate", "mean PD", "status"):
                o.add_column(c, justify="left" if c in ("grade", "status") else "right")
            for _, row in r.outcomes.iterrows():
                o.add_row(
                    str(row["grade"]),
                    str(row["n"]),
                    str(row["defaults"]),
                    f"{row['default_rate']:.3f}",
                    f"{row['mean_pd']:.3f}",
                    str(row["status"]),
                )
            console.print(o)
    if rep.decisioning is not None:
        _print_decisioning(console, rep.decisioning)
    path = out or mon.latest_path().with_name("report.html")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(mon.render_html(rep), encoding="utf-8")
    alerting = rep.alerting(alert_on)
    mon.write_latest(rep, alert=alerting)
    verdict = "ALERT" if alerting else "ok"
    console.print(f"{verdict}: score PSI {rep.score_psi:.4f}; report {path}")
    if json_out is not None:
        body = {
            "since": start.isoformat(),
            "decisions": rep.decisions,
            "alert": alerting,
            "skipped": rep.skipped,
            "versions": {
                r.model_version: {
                    "rows": r.rows,
                    "score_psi": r.score_psi,
                    "alerts": r.alerts,
                    "warnings": r.warnings,
                    "grades": json.loads(r.grades.to_json(orient="records")),
                    "outcomes": json.loads(r.outcomes.to_json(orient="records")),
                    "migration": json.loads(r.migration.to_json(orient="index")),
                    "psi": {
                        str(k): (float(v) if math.isfinite(float(v)) else None)
                        for k, v in zip(r.psi["variable"], r.psi["psi"], strict=True)
                    },
                }
                for r in rep.results
            },
            "decisioning": rep.decisioning.to_dict() if rep.decisioning is not None else None,
        }
        json_out.write_text(json.dumps(body, indent=1))
    if alerting:
        raise typer.Exit(1)


def _pct(v: object) -> str:
    f = float(v) if isinstance(v, int | float) else math.nan
    return "-" if not math.isfinite(f) else f"{f:.1%}"


def _print_decisioning(console: Any, d: Any) -> None:
    """The decisions section: outcome rates, by segment with AIR, overrides."""
    from rich.table import Table

    console.print(
        f"decisions with an outcome under a policy: {d.judged} of {d.decisions}; "
        f"firm row on record for {d.firms_known}"
    )
    if d.judged:
        r = Table(title="decision outcomes")
        for c in ("outcome", "n", "rate"):
            r.add_column(c, justify="left" if c == "outcome" else "right")
        for _, row in d.rates.iterrows():
            r.add_row(str(row["outcome"]), str(row["n"]), _pct(row["rate"]))
        console.print(r)
        t = Table(
            title=f"outcomes by segment (AIR vs the best group of >= {d.min_n}; "
            "four-fifths rule: AIR < 0.8)"
        )
        for c in ("segment", "group", "n", "approved", "declined", "referred", "AIR", "status"):
            t.add_column(
                c,
                justify="left" if c in ("segment", "group", "status") else "right",
                no_wrap=c in ("segment", "status"),
            )
        for _, row in d.segments.iterrows():
            air = float(row["air"])
            st = str(row["status"]).replace("four-fifths", "4/5")
            t.add_row(
                str(row["segment"]),
                str(row["group"]),
                str(row["n"]),
                _pct(row["approval_rate"]),
                _pct(row["decline_rate"]),
                _pct(row["referral_rate"]),
                "-" if not math.isfinite(air) else f"{air:.2f}",
                f"[bold red]{st}[/]" if row["four_fifths_flag"] else st,
            )
        console.print(t)
    if d.reviews:
        o = d.overrides
        t = Table(title=f"overrides by direction ({d.reviews} closed reviews)")
        for c in ("direction", "reviews", "share"):
            t.add_column(c, justify="left" if c == "direction" else "right")
        for _, row in o["by_direction"].iterrows():
            t.add_row(str(row["direction"]), str(row["reviews"]), _pct(row["share"]))
        console.print(t)
        for key, label in (("by_reviewer", "reviewer"), ("by_grade", "grade")):
            t = Table(title=f"override rate by {label}")
            for c in (label, "reviews", "overrides", "rate"):
                t.add_column(c, justify="left" if c == label else "right")
            for _, row in o[key].iterrows():
                t.add_row(
                    str(row[label]),
                    str(row["reviews"]),
                    str(row["overrides"]),
                    _pct(row["override_rate"]),
                )
            console.print(t)
        t = Table(title="loan performance (outcome known once the loan's window closed)")
        for c in ("group", "n", "known", "defaults", "default rate"):
            t.add_column(c, justify="left" if c == "group" else "right")
        for _, row in o["performance"].iterrows():
            t.add_row(
                str(row["group"]),
                str(row["n"]),
                str(row["known"]),
                str(row["defaults"]),
                _pct(row["default_rate"]),
            )
        console.print(t)


@app.command("portfolio")
def portfolio(
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", help="Run this tenant's portfolio (default: every tenant's)."),
    ] = None,
    register_from_loans: Annotated[
        bool,
        typer.Option(
            "--register-from-loans",
            help="With --tenant: first watch every firm with a loan record the tenant "
            "provided (each under its monitoring consent).",
        ),
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="With --tenant: write the HTML portfolio report here."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the runs as JSON.")] = False,
) -> None:
    """Re-score every watched firm as of now (the batch scoring path, with reasons), compare
    with its last run and raise the alerts of the tenant's policy (monitoring section); each
    alert is stored and sent as a monitoring.alert event. See docs/portfolio.md."""
    from credit.commands import common
    from credit.errors import UseCaseError
    from credit.portfolio import Portfolio, render_report
    from credit.service import Party

    if (register_from_loans or report is not None) and not tenant:
        raise common.fail("--register-from-loans and --report need --tenant", 2)
    model = common.load_champion()
    try:
        book = Portfolio.of(common.service(model))
        if register_from_loans and tenant:
            reg = book.register(Party(tenant), from_loans=True)
            typer.echo(
                f"{tenant}: {reg['sent']} firms with loans of the tenant: {reg['registered']} "
                f"watched ({reg['already_watched']} already), {len(reg['rejected'])} rejected "
                "(no monitoring consent)"
            )
        results = book.run_all(tenant)
        if report is not None and tenant:
            report.parent.mkdir(parents=True, exist_ok=True)
            report.write_text(render_report(book.summary(Party(tenant))), encoding="utf-8")
    except UseCaseError as exc:
        raise common.exit_for(exc) from exc
    if json_out:
        typer.echo(json.dumps([r.to_dict() for r in results], indent=1))
    else:
        if not results:
            typer.echo("no tenant watches any firm (POST /v1/portfolio/firms)")
        for r in results:
            rules = ", ".join(f"{k} {n}" for k, n in r.to_dict()["alerts_by_rule"].items())
            typer.echo(
                f"{r.tenant}: run {r.run_id}: {r.scored} of {r.watched} watched firms "
                f"re-scored ({len(r.skipped)} skipped), {len(r.alerts)} alerts"
                f"{f' ({rules})' if rules else ''} in {r.seconds:.2f} s"
            )
    if report is not None:
        typer.echo(f"report {report}")
