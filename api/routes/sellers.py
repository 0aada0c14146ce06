"""The seller page: ``GET /sellers/{firm_id}?token=...``.

Server-rendered HTML (Jinja2), no JavaScript, no CDN, no build step: one response holds the
page, its style sheet and its chart (inline SVG drawn here), so it reads on a phone on a slow
line. The token of a signed seller link (:mod:`credit.links`) stands in for an API key: it
names the firm and the platform whose policy prices the offers. An expired, revoked (or made
by a key since revoked) or forged link gets a 403 page, never a stack trace; the decision
behind the page is recorded in the audit log like any other. The page is rate limited per
client address (before the token is looked at) and per link
(``TRADECREDIT_SELLER_PAGE_CLIENT_RATE_PER_MINUTE``, ``TRADECREDIT_SELLER_PAGE_RATE_PER_MINUTE``):
over either, a 429 page and no decision.

A seller that a lender declined sees the adverse-action notices it is owed: the page's section
"Decisions about your application" lists every declined decision about the firm (any
lender's; :meth:`credit.service.CreditService.seller_notices`), each linking to a printable
notice at ``GET /sellers/{firm_id}/notices/{decision_id}?token=...`` (:mod:`api.notices`),
opened with the same token; a notice not about this firm is a 404 page. Reading a notice
records nothing, so only the per-client limit applies to it.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import quote

import pandas as pd
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from api.notices import date_words, html_headers, render_html, stylesheet
from api.ratelimit import TokenBucket
from credit.actions import NOW_DAYS
from credit.errors import NotFoundError, NotSharedError, UseCaseError
from credit.links import LinkError
from credit.offers import Offer, monthly_activity
from credit.records import ID_PATTERN
from credit.recourse import Plan, Recourse
from credit.service import CreditService, Party
from features import catalog

router = APIRouter(tags=["sellers"])

_FIRM_ID = re.compile(ID_PATTERN)
_DECISION_ID = re.compile(r"^dec_[0-9a-f]{32}$")

#: Grade -> (word, what it means for the seller).
GRADE_WORDS: dict[str, tuple[str, str]] = {
    "A": ("Excellent", "Lenders see your business as very likely to repay on time."),
    "B": ("Very good", "Lenders see your business as likely to repay on time."),
    "C": ("Good", "Your business is a sound risk; most financing is open to you."),
    "D": ("Fair", "Some risk shows in your data: offers are smaller and cost more."),
    "E": ("Weak", "Your data shows high risk: few offers are open to you for now."),
    "F": ("Poor", "Your data shows very high risk: financing is not open to you for now."),
}

#: Decline codes in the words of a seller (``None``: the engine's own message reads well).
DECLINE_WORDS: dict[str, str | None] = {
    "pd_above_cutoff": "Your score is below what this product needs for now.",
    "grade_not_eligible": "This product is not offered at your current grade.",
    "thin_file": None,
    "volume_too_small": None,
    "application_declined": "The lender's policy declines your application for now: the "
    'section "Decisions about your application" below says why.',
}

SERIES = (
    # key, label, colour (contrast >= 4.5:1 on white)
    ("sales", "Sales", "#1f4e8c"),
    ("refunds", "Refunds", "#b3261e"),
    ("shipments", "Shipments", "#1b6e3a"),
)


@cache
def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("api", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def _css() -> tuple[str, str]:
    """The style sheet and its CSP hash (one sheet for the seller pages and the notices)."""
    return stylesheet()


def money(x: float, currency: str = "") -> str:
    """``12,345`` (with the currency code in front when given)."""
    s = f"{x:,.0f}"
    return f"{currency} {s}" if currency else s


def _short_money(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.1f}M".replace(".0M", "M")
    if x >= 1e3:
        return f"{x / 1e3:.0f}k"
    return f"{x:.0f}"


def _nice_step(top: float, ticks: int = 4) -> float:
    raw = top / ticks
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag  # pragma: no cover - the loop always returns


def _rows(activity: pd.DataFrame) -> list[tuple[pd.Timestamp, dict[str, float]]]:
    """(month, {series: value}) per row of a :func:`credit.offers.monthly_activity` frame."""
    keys = [k for k, _, _ in SERIES]
    months = [pd.Timestamp(m) for m in activity["month"].tolist()]
    cols = {k: [float(v) for v in activity[k].tolist()] for k in keys}
    return [(m, {k: cols[k][i] for k in keys}) for i, m in enumerate(months)]


def activity_chart(activity: pd.DataFrame, currency: str = "USD") -> Markup:
    """Monthly sales and refunds (bars) and shipments (line) as an accessible inline SVG.

    Parameters
    ----------
    activity : columns ``month``, ``sales``, ``refunds``, ``shipments`` (one row per month).
    currency : the unit shown on the axis.
    """
    # A narrow canvas, so that on a phone (about 350 CSS px wide) one unit is about one pixel
    # and the 12-unit labels stay readable; on a wide screen it simply scales up.
    w, h = 400, 230
    left, right, top, bottom = 40, 6, 10, 26
    pw, ph = w - left - right, h - top - bottom
    n = max(len(activity), 1)
    vmax = (
        float(activity[["sales", "refunds", "shipments"]].to_numpy().max()) if len(activity) else 0
    )
    step = _nice_step(vmax) if vmax > 0 else 1.0
    ymax = step * max(1, math.ceil(vmax / step))

    def y(v: float) -> float:
        return top + ph - ph * (v / ymax)

    parts = [
        f'<svg class="chart" viewBox="0 0 {w} {h}" role="img" '
        'aria-labelledby="chart-title chart-desc" xmlns="http://www.w3.org/2000/svg">',
        '<title id="chart-title">Monthly sales, refunds and shipments</title>',
        f'<desc id="chart-desc">Bars show sales and refunds, the line shows the value shipped, '
        f"in {currency}, for the last {len(activity)} months. The table below lists the "
        "same numbers.</desc>",
    ]
    k = 0.0
    while k <= ymax + 1e-9:
        yy = y(k)
        parts.append(
            f'<line x1="{left}" x2="{w - right}" y1="{yy:.1f}" y2="{yy:.1f}" '
            'stroke="#d0d4da" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{left - 5}" y="{yy + 4:.1f}" text-anchor="end" font-size="12" '
            f'fill="#333">{_short_money(k)}</text>'
        )
        k += step
    slot = pw / n
    bar = slot * 0.32
    line_pts = []
    for i, (month, values) in enumerate(_rows(activity)):
        x0 = left + i * slot + slot * 0.15
        for j, (key, _label, colour) in enumerate(SERIES[:2]):
            yy = y(values[key])
            parts.append(
                f'<rect x="{x0 + j * bar:.1f}" y="{yy:.1f}" width="{bar:.1f}" '
                f'height="{top + ph - yy:.1f}" fill="{colour}"/>'
            )
        cx = left + (i + 0.5) * slot
        line_pts.append((cx, y(values["shipments"])))
        if (n - 1 - i) % 2 == 0 or n <= 6:  # every other month, always the latest
            label = month.strftime("%b") + (f" {month:%y}" if month.month == 1 else "")
            parts.append(
                f'<text x="{cx:.1f}" y="{h - bottom + 17}" text-anchor="middle" '
                f'font-size="12" fill="#333">{label}</text>'
            )
    if line_pts:
        pts = " ".join(f"{x:.1f},{yy:.1f}" for x, yy in line_pts)
        colour = SERIES[2][2]
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, yy in line_pts:
            parts.append(f'<circle cx="{x:.1f}" cy="{yy:.1f}" r="2.5" fill="{colour}"/>')
    parts.append(
        f'<line x1="{left}" x2="{w - right}" y1="{top + ph}" y2="{top + ph}" '
        'stroke="#333" stroke-width="1"/>'
    )
    parts.append("</svg>")
    return Markup("".join(parts))


def _drivers(reasons: Sequence[Mapping[str, Any]]) -> list[dict[str, str | None]]:
    """Reason codes with the catalog's plain-language text and improvement hint."""
    out: list[dict[str, str | None]] = []
    for r in reasons:
        text, hint = str(r.get("text") or r.get("feature")), None
        try:
            f = catalog.get(str(r.get("feature")))
            text, hint = f.reason, f.hint
        except KeyError:
            pass
        if hint and hint.strip().lower().rstrip(".") == "none needed":
            hint = None
        out.append({"code": str(r.get("code")), "text": text, "hint": hint})
    return out


def _when(days: int) -> str:
    if days <= NOW_DAYS:
        return "within a week"
    months = round(days / 30)
    return f"in {months} months"


def _plan_card(p: Plan, now_score: int) -> dict[str, Any]:
    cash = p.cash_usd
    return {
        "grade": p.after.grade,
        "score": p.after.score,
        "delta": p.after.score - now_score,
        "when": _when(p.horizon_days),
        "steps": [{"text": a.text, "effort": a.cost.effort} for a in p.actions],
        "cash": money(cash, "USD") if cash >= 1 else None,
        # a plan of actions (not only time): compare it with doing nothing meanwhile
        "acts": bool(p.steps),
        "without": p.without.grade,
        "without_score": p.without.score,
        "side_effects": [catalog.get(e["feature"]).description.rstrip(".") for e in p.side_effects],
        "without_label": "Doing nothing" if p.horizon_days <= NOW_DAYS else "Trading as now",
    }


def recourse_context(found: Recourse | None, now_score: int) -> dict[str, Any]:
    """The recourse section of the seller page: the plans, or why there are none."""
    if found is None:
        return {"recourse": None}
    best = found.best
    return {
        "recourse": {
            "target": found.target_grade,
            "already": found.already,
            "in_a_week": found.status == "in_a_week",
            "plans": [_plan_card(p, now_score) for p in found.plans],
            "best": None if best is None else _plan_card(best, now_score),
        }
    }


def _sentence(text: str) -> str:
    """``text`` as a sentence: a capital first letter and a full stop (the engine's messages
    are clauses; the page lists several in a row)."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def _odds_words(pd_: float) -> str:
    if pd_ < 0.001:
        return "fewer than 1 in 1,000"
    n = max(2, round(1 / pd_))
    return f"about 1 in {n:,}"


def _offer_card(o: Offer) -> dict[str, Any]:
    months = o.term_days / 30.4
    return {
        "title": o.title,
        "amount": money(o.amount, o.currency),
        "term": f"{o.term_days} days (about {months:.0f} months)"
        if months >= 2
        else f"{o.term_days} days",
        "apr": f"{o.apr * 100:.1f}%",
        "total_cost": money(o.total_cost, o.currency),
        "total_repayable": money(o.total_repayable, o.currency),
        "repaid_by": o.repayment.summary[0].upper() + o.repayment.summary[1:],
        "based_on": f"{money(o.base_amount, o.currency)} of {o.base}",
    }


#: LinkError reason -> (page title, why).
_LINK_PROBLEMS: dict[str, tuple[str, str]] = {
    "expired": (
        "This link has expired",
        "For your security, links to this page work for a short time only. ",
    ),
    "revoked": (
        "This link is no longer valid",
        "The platform has withdrawn this link. ",
    ),
    "invalid": ("This link is not valid", "The link may be incomplete or altered. "),
}


@dataclass(frozen=True)
class PageLimits:
    """The seller page's token buckets: per link and per client address."""

    per_link: TokenBucket
    per_client: TokenBucket


_limits_lock = threading.Lock()


def page_limits(app: FastAPI) -> PageLimits:
    """The app's seller-page buckets, made on first use from the service's settings."""
    limits: PageLimits | None = getattr(app.state, "seller_page_limits", None)
    if limits is None:
        with _limits_lock:
            limits = getattr(app.state, "seller_page_limits", None)
            if limits is None:
                s = app.state.service.settings
                limits = PageLimits(
                    per_link=TokenBucket(
                        s.seller_page_rate_per_minute / 60, s.seller_page_link_burst
                    ),
                    per_client=TokenBucket(
                        s.seller_page_client_rate_per_minute / 60, s.seller_page_client_burst
                    ),
                )
                app.state.seller_page_limits = limits
    return limits


def _too_many(retry_after: int) -> HTMLResponse:
    page = _problem(429, "Too many requests", "Please wait a moment and reload the page.")
    page.headers["Retry-After"] = str(retry_after)
    return page


def _page(
    template: str, status: int, context: Mapping[str, Any], forms: bool = False
) -> HTMLResponse:
    """A rendered page with its security headers; ``forms``: the page posts forms to this
    service (the consent pages), so ``form-action`` allows ``'self'``."""
    css, _ = _css()
    html = _env().get_template(template).render(css=Markup(css), **context)
    # The token is in the URL: never send it on as a referrer, never cache the page.
    return HTMLResponse(html, status_code=status, headers=html_headers(forms))


def _problem(status: int, title: str, message: str) -> HTMLResponse:
    return _page("problem.html", status, {"status": status, "title": title, "message": message})


@router.get(
    "/sellers/{firm_id}",
    name="seller_page",
    response_class=HTMLResponse,
    summary="The seller's page (HTML)",
    description="Opened from a link made by `POST /v1/firms/{firm_id}/seller-link`: the grade "
    "and score in plain words, the offers, what drives the score and how to improve it, and a "
    "chart of monthly sales, refunds and shipments. An expired, revoked or forged link, or one "
    "made by a key since revoked, gets a 403 page. Rate limited per link and per client.",
    responses={
        403: {"description": "Expired, revoked or forged link (HTML page)."},
        404: {"description": "No such seller page, or no data for the firm yet (HTML page)."},
        429: {
            "description": "Too many requests on this link or from this client; see "
            "Retry-After (HTML page)."
        },
        503: {"description": "Temporarily unavailable (HTML page)."},
    },
)
def seller_page(
    firm_id: str,
    request: Request,
    token: str | None = Query(None, description="The signed token of a seller link."),
) -> HTMLResponse:
    if not _FIRM_ID.match(firm_id):
        return _problem(404, "Page not found", "There is no seller page at this address.")
    state = request.app.state.service
    limits = page_limits(request.app)
    # Per client first, before any work on the token: guessing and crawling cost a token too.
    allowed, retry_after = limits.per_client.acquire(
        request.client.host if request.client else "unknown"
    )
    if not allowed:
        return _too_many(retry_after)
    service = state.credit
    try:
        link = service.open_seller_link(firm_id, token)
    except LinkError as exc:
        title, why = _LINK_PROBLEMS[exc.reason]
        return _problem(
            403, title, why + "Open the page again from your seller dashboard to get a new link."
        )
    except UseCaseError:
        return _problem(503, "Temporarily unavailable", "Please try again in a few minutes.")
    # A link is a credential like a key: its own bucket, so one leaked link cannot be
    # replayed into thousands of recorded decisions.
    allowed, retry_after = limits.per_link.acquire(link.link_id)
    if not allowed:
        return _too_many(retry_after)
    try:
        scale = service.model().scale
        fo = service.firm_offers(
            firm_id, None, caller=Party(tenant=link.tenant), channel="seller_page"
        )
    except NotSharedError:
        return _problem(
            404,
            "You do not share your data with this platform",
            "You have not agreed to share your trade data with this platform, or you stopped "
            "sharing it, so it cannot show you offers. Ask the platform for a consent link.",
        )
    except NotFoundError:
        return _problem(
            404,
            "We do not have your data yet",
            "Your trade data has not reached us yet. Please check again tomorrow.",
        )
    except UseCaseError:
        return _problem(503, "Temporarily unavailable", "Please try again in a few minutes.")
    d, offers = fo.decision, fo.offers
    try:  # the page still shows the offers when the plans cannot be made
        plans: Recourse | None = service.recourse(
            firm_id, None, d.as_of, caller=Party(tenant=link.tenant)
        )
    except UseCaseError:
        plans = None
    word, meaning = GRADE_WORDS.get(d.grade, (f"Grade {d.grade}", ""))
    activity = monthly_activity(fo.records, d.as_of, months=12)
    declines = [
        {
            "title": x.title,
            "reasons": [_sentence(DECLINE_WORDS.get(r.code) or r.message) for r in x.reasons],
        }
        for x in offers.declines
    ]
    context = {
        "firm_id": firm_id,
        "grade": d.grade,
        "grade_word": word,
        "grade_meaning": meaning,
        "score": d.score,
        "score_min": int(scale.min_score),
        "score_max": int(scale.max_score),
        "odds_words": _odds_words(d.pd),
        "data_date": f"{d.as_of.day} {d.as_of:%B %Y}",
        "thin_file": bool(d.data.get("thin_file")),
        "offers": [_offer_card(o) for o in offers.offers],
        "declines": declines,
        "drivers": _drivers(d.reasons),
        **recourse_context(plans, d.score),
        "chart": activity_chart(activity, offers.currency),
        "activity": [
            {"month": f"{month:%b %Y}", **{k: money(v) for k, v in values.items()}}
            for month, values in _rows(activity)
        ],
        "series": SERIES,
        "currency": offers.currency,
        "expires_at": f"{link.expires_at:%H:%M} UTC",
        "decision_id": d.decision_id,
        "consents_path": str(request.app.url_path_for("seller_consents_page", firm_id=firm_id))
        + f"?token={token}",
        **_notices_context(request, service, firm_id, token),
    }
    return _page("seller.html", 200, context)


def _notice_path(request: Request, firm_id: str, decision_id: str, token: str | None) -> str:
    path = request.app.url_path_for("seller_notice_page", firm_id=firm_id, decision_id=decision_id)
    return f"{path}?token={quote(token or '', safe='')}"


def _notices_context(
    request: Request, service: CreditService, firm_id: str, token: str | None
) -> dict[str, Any]:
    """The page's section "Decisions about your application": every declined decision about
    the firm (any lender's) with its notice. Not to be had right now (the audit log is down,
    the link died a moment ago): the page still shows the offers, and says so."""
    try:
        notices = service.seller_notices(firm_id, token)
    except (LinkError, UseCaseError):
        return {"notices": [], "notices_unavailable": True}
    return {
        "notices": [
            {
                "lender": n["lender"]["name"],
                "date": date_words(n["date"]),
                "action": n["action_taken"],
                "by_review": n["decided_by"] == "review",
                "reasons": [r["text"] for r in n["reasons"]],
                "path": _notice_path(request, firm_id, n["decision_id"], token),
            }
            for n in notices
        ],
        "notices_unavailable": False,
    }


@router.get(
    "/sellers/{firm_id}/notices/{decision_id}",
    name="seller_notice_page",
    response_class=HTMLResponse,
    summary="An adverse-action notice for the seller (printable HTML)",
    description='Opened from the seller page\'s section "Decisions about your application", '
    "with the same signed link token: the notice of one declined decision about the firm (the "
    "lender, the date, the action taken, the principal reasons, the seller's rights and the "
    "lender's regulator), laid out to print. A decision that is not about this firm, or that "
    "owes no notice, gets a 404 page; an expired, revoked or forged link a 403 page. Rate "
    "limited per client; it records no decision.",
    responses={
        403: {"description": "Expired, revoked or forged link (HTML page)."},
        404: {"description": "No such notice for this firm (HTML page)."},
        429: {"description": "Too many requests from this client; see Retry-After (HTML page)."},
        503: {"description": "Temporarily unavailable (HTML page)."},
    },
)
def seller_notice_page(
    firm_id: str,
    decision_id: str,
    request: Request,
    token: str | None = Query(None, description="The signed token of a seller link."),
) -> HTMLResponse:
    if not _FIRM_ID.match(firm_id) or not _DECISION_ID.match(decision_id):
        return _problem(404, "Page not found", "There is no notice at this address.")
    limits = page_limits(request.app)
    allowed, retry_after = limits.per_client.acquire(
        request.client.host if request.client else "unknown"
    )
    if not allowed:
        return _too_many(retry_after)
    service = request.app.state.service.credit
    try:
        notice = service.seller_notice(firm_id, token, decision_id)
    except LinkError as exc:
        title, why = _LINK_PROBLEMS[exc.reason]
        return _problem(
            403, title, why + "Open the page again from your seller dashboard to get a new link."
        )
    except NotFoundError:
        return _problem(
            404,
            "Notice not found",
            "There is no notice with this reference about your business. Open your page "
            "again to see the decisions about your application.",
        )
    except UseCaseError:
        return _problem(503, "Temporarily unavailable", "Please try again in a few minutes.")
    back = str(request.app.url_path_for("seller_page", firm_id=firm_id))
    html = render_html(notice, back_href=f"{back}?token={quote(token or '', safe='')}")
    return HTMLResponse(html, status_code=200, headers=html_headers())
