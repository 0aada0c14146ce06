"""The seller's consent pages: answer a request, see who can see your data, stop sharing.

Server-rendered like the seller page (:mod:`api.routes.sellers`), no JavaScript: plain HTML
forms posted back here. A signed link stands in for a login:

* ``GET /sellers/{firm_id}/consents/{consent_id}?token=...`` (the link a lender or platform got
  from ``POST /v1/firms/{firm_id}/consent-requests``) shows who asks, for what, from which
  sources and until when, with *Yes* and *No* buttons (``POST`` to the same address);
* ``GET /sellers/{firm_id}/consents?token=...`` (any valid link of the firm: a consent link or
  a seller-page link) lists every active consent with a one-click *Stop sharing* button
  (``POST /sellers/{firm_id}/consents/{consent_id}/revoke``).

The forms carry the link's token, which a third-party site does not know, so a form cannot be
posted on the seller's behalf. Rate limits are the seller page's (per client, per link).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.routes.sellers import _FIRM_ID, _LINK_PROBLEMS, _page, _problem, _too_many, page_limits
from credit.consent import PURPOSE_WORDS, Consent
from credit.errors import InvalidInputError, NotFoundError, UseCaseError
from credit.links import LinkError

router = APIRouter(tags=["sellers"])

_MAX_FORM_BYTES = 4096

_PAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "Expired, revoked or forged link (HTML page)."},
    404: {"description": "No such request for this link (HTML page)."},
    429: {"description": "Too many requests; see Retry-After (HTML page)."},
    503: {"description": "Temporarily unavailable (HTML page)."},
}


def _day(t: datetime | None) -> str:
    return "" if t is None else f"{t.day} {t:%B %Y}"


def _refused(firm_id: str, request: Request) -> HTMLResponse | None:
    """The page every request gets before any work: 404 for a malformed firm id, 429 past
    the client's rate (the seller page's bucket); ``None`` to go on."""
    if not _FIRM_ID.match(firm_id):
        return _problem(404, "Page not found", "There is no page at this address.")
    allowed, retry_after = page_limits(request.app).per_client.acquire(
        request.client.host if request.client else "unknown"
    )
    return None if allowed else _too_many(retry_after)


def _link_problem(exc: LinkError) -> HTMLResponse:
    title, why = _LINK_PROBLEMS[exc.reason]
    return _problem(403, title, why + "Ask the lender or platform for a new link.")


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > _MAX_FORM_BYTES:
        return {}
    parsed = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=10)
    return {k: v[0] for k, v in parsed.items() if v}


def _consents_path(request: Request, firm_id: str, token: str) -> str:
    return (
        str(request.app.url_path_for("seller_consents_page", firm_id=firm_id)) + f"?token={token}"
    )


def _request_context(
    request: Request, c: Consent, sources: list[str], token: str, link_expires: str
) -> dict[str, Any]:
    from dateutil.relativedelta import relativedelta

    until = c.expires_at or (datetime.now().astimezone() + relativedelta(months=c.months))
    return {
        "grantee": c.grantee,
        "purposes": [PURPOSE_WORDS.get(p, p) for p in c.purposes],
        "sources": sources,
        "months": c.months,
        "until": _day(until),
        "state": c.state(),
        "token": token,
        "consent_id": c.consent_id,
        "answer_path": str(
            request.app.url_path_for(
                "consent_request_page", firm_id=c.firm_id, consent_id=c.consent_id
            )
        ),
        "consents_path": _consents_path(request, c.firm_id, token),
        "link_expires": link_expires,
    }


@router.get(
    "/sellers/{firm_id}/consents/{consent_id}",
    name="consent_request_page",
    response_class=HTMLResponse,
    summary="A consent request, for the seller to answer (HTML)",
    description="Opened from the link `POST /v1/firms/{firm_id}/consent-requests` returned: "
    "who asks, for what, from which sources and until when, with Yes and No buttons.",
    responses=_PAGE_RESPONSES,
)
def consent_request_page(
    firm_id: str,
    consent_id: str,
    request: Request,
    token: str | None = Query(None, description="The signed token of the consent link."),
) -> HTMLResponse:
    if (refused := _refused(firm_id, request)) is not None:
        return refused
    service = request.app.state.service.credit
    try:
        c = service.consent_request(firm_id, consent_id, token)
        link = service.open_seller_link(firm_id, token)
        sources = list(c.sources) if c.sources is not None else service.firm_sources(firm_id)
    except LinkError as exc:
        return _link_problem(exc)
    except NotFoundError:
        return _problem(404, "Request not found", "This link does not belong to a request.")
    except UseCaseError:
        return _problem(503, "Temporarily unavailable", "Please try again in a few minutes.")
    context = _request_context(
        request, c, sources, token or "", f"{link.expires_at:%d %B %Y %H:%M} UTC"
    )
    return _page("consent_request.html", 200, context, forms=True)


@router.post(
    "/sellers/{firm_id}/consents/{consent_id}",
    response_class=HTMLResponse,
    summary="The seller's answer to a consent request (HTML form)",
    description="Form fields `token` (the link's) and `answer` (`approve` or `decline`). An "
    "approval keeps the link id, the time and the client address as the evidence.",
    responses={
        **_PAGE_RESPONSES,
        400: {"description": "No answer (`approve` or `decline`) in the form (HTML page)."},
        409: {"description": "The request was already answered (HTML page)."},
    },
)
async def answer_consent(firm_id: str, consent_id: str, request: Request) -> HTMLResponse:
    if (refused := _refused(firm_id, request)) is not None:
        return refused
    form = await _form(request)
    token, answer = form.get("token"), form.get("answer")
    if answer not in ("approve", "decline"):
        return _problem(400, "Please choose an answer", "Go back and press Yes or No.")
    service = request.app.state.service.credit
    client = request.client.host if request.client else None
    try:
        c = service.answer_consent(firm_id, consent_id, token, answer == "approve", client=client)
    except LinkError as exc:
        return _link_problem(exc)
    except NotFoundError:
        return _problem(404, "Request not found", "This link does not belong to a request.")
    except InvalidInputError as exc:
        return _problem(409, "Already answered", f"{str(exc).capitalize()}.")
    except UseCaseError:
        return _problem(503, "Temporarily unavailable", "Please try again in a few minutes.")
    if c.state() == "active":
        title = f"You share your data with {c.grantee}"
        message = (
            f"{c.grantee} may now use your records from {', '.join(c.sources or ()) or 'none yet'}"
            f" until {_day(c.expires_at)}. You can stop this at any time."
        )
    else:
        title = "You declined"
        message = f"{c.grantee} will not see your data."
    context = {
        "title": title,
        "message": message,
        "consent_id": c.consent_id,
        "consents_path": _consents_path(request, firm_id, token or ""),
    }
    return _page("consent_answered.html", 200, context)


def _how(c: Consent) -> str:
    ev = c.evidence or {}
    if ev.get("kind") == "seller_confirmation":
        return f"You said yes on a link, on {_day(c.granted_at)}"
    if ev.get("kind") == "provider_attestation":
        return f"{ev.get('provider')} confirmed you agreed on its site, on {_day(c.granted_at)}"
    return "-"


@router.get(
    "/sellers/{firm_id}/consents",
    name="seller_consents_page",
    response_class=HTMLResponse,
    summary="Who can see the seller's data (HTML)",
    description="Every active consent of the firm with a one-click *Stop sharing* button. Any "
    "valid link of the firm opens it (a consent link or a seller-page link).",
    responses=_PAGE_RESPONSES,
)
def seller_consents_page(
    firm_id: str,
    request: Request,
    token: str | None = Query(None, description="The signed token of a link of the firm."),
    notice: str | None = Query(None, max_length=20, pattern="^[a-z_]+$"),
) -> HTMLResponse:
    if (refused := _refused(firm_id, request)) is not None:
        return refused
    service = request.app.state.service.credit
    try:
        found = service.seller_consents(firm_id, token)
    except LinkError as exc:
        return _link_problem(exc)
    except UseCaseError:
        return _problem(503, "Temporarily unavailable", "Please try again in a few minutes.")
    consents = [
        {
            "grantee": c.grantee,
            "purposes": [PURPOSE_WORDS.get(p, p) for p in c.purposes],
            "sources": list(c.sources or ()),
            "granted": _day(c.granted_at),
            "until": _day(c.expires_at),
            "how": _how(c),
            "revoke_path": str(
                request.app.url_path_for(
                    "seller_revoke_consent", firm_id=firm_id, consent_id=c.consent_id
                )
            ),
        }
        for c in found
    ]
    context = {
        "consents": consents,
        "token": token or "",
        "notice": "Done: that lender can no longer use your data." if notice == "revoked" else "",
    }
    return _page("consents.html", 200, context, forms=True)


@router.post(
    "/sellers/{firm_id}/consents/{consent_id}/revoke",
    name="seller_revoke_consent",
    summary="The seller stops sharing (HTML form)",
    description="Form field `token`. Revokes the consent now and goes back to the list (303).",
    responses={303: {"description": "Back to the list of consents."}, **_PAGE_RESPONSES},
)
async def seller_revoke_consent(firm_id: str, consent_id: str, request: Request) -> Response:
    if (refused := _refused(firm_id, request)) is not None:
        return refused
    form = await _form(request)
    token = form.get("token") or ""
    service = request.app.state.service.credit
    try:
        service.seller_revoke(firm_id, token, consent_id)
    except LinkError as exc:
        return _link_problem(exc)
    except NotFoundError:
        return _problem(404, "Not found", "There is no such consent of yours.")
    except UseCaseError:
        return _problem(503, "Temporarily unavailable", "Please try again in a few minutes.")
    target = _consents_path(request, firm_id, token) + "&notice=revoked"
    return RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})
