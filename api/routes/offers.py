"""Financing offers for platforms and lenders, and the signed links that open a seller's page.

``GET /v1/firms/{firm_id}/offers`` asks the use case
:meth:`credit.service.CreditService.firm_offers`: it scores the firm with the model in
service, sizes the offers on the firm's records as of the decision date and prices them under
the caller's policy (``<policy_dir>/<tenant>.yaml`` or the default). The decision is recorded
in the audit log before anything is returned.

``POST /v1/firms/{firm_id}/seller-link`` gives a platform a link that opens the firm's seller
page for a while (default 15 minutes), so that the seller never sees an API key. The link is
built from the configured public address (``TRADECREDIT_PUBLIC_URL``), never from the
request's ``Host`` header; it dies with the key that asked for it, and
``DELETE /v1/seller-links/{link_id}`` revokes it on its own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from api.deps import AnyRole, ServiceDep, StateDep
from api.schemas import AS_OF_RANGE_DOC, ErrorOut, FirmId, as_of_in_range
from api.security import Principal, require
from credit.decisions import to_utc

router = APIRouter(prefix="/v1", tags=["offers"])

Platform = Annotated[Principal, Depends(require("platform"))]
PlatformOrAdmin = Annotated[Principal, Depends(require("platform", "admin"))]

_ERR: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, invalid or revoked API key."},
    403: {"model": ErrorOut, "description": "The key's role may not call this endpoint."},
    404: {"model": ErrorOut, "description": "The firm has no features in the online store."},
    422: {"model": ErrorOut, "description": "Invalid parameter; `detail` names it."},
    429: {"model": ErrorOut, "description": "Rate limited; see Retry-After."},
    503: {
        "model": ErrorOut,
        "description": "No model, online store, record store or valid policy; or the audit log "
        "is unavailable (no decision is returned unless it was recorded).",
    },
}


_OFFERS_EXAMPLE = {
    "decision": {
        "decision_id": "dec_5b0e6c9d2f8a4e7fa1c3d5e7f9a1b3c5",
        "firm_id": "F000123",
        "as_of": "2025-06-30T00:00:00Z",
        "pd": 0.0152,
        "score": 667,
        "grade": "B",
        "reasons": [],
        "model": {"name": "tradecredit-pd", "version": "3", "run_id": "4f1c2d6e8a9b"},
        "data": {"thin_file": False, "history_months": 27.0},
        "scored_at": "2025-07-01T09:14:03.512Z",
    },
    "policy": {"name": "default", "version": "1"},
    "currency": "USD",
    "offers": [
        {
            "product": "working_capital_advance",
            "title": "Working-capital advance",
            "currency": "USD",
            "amount": 48000.0,
            "term_days": 180,
            "apr": 0.1118,
            "apr_breakdown": {
                "cost_of_funds": 0.055,
                "risk_cost": 0.0068,
                "operating_cost": 0.02,
                "margin": 0.03,
            },
            "total_cost": 2646.3,
            "total_repayable": 50646.3,
            "expected_loss": 326.4,
            "term_pd": 0.0076,
            "lgd": 0.6,
            "base": "platform settlements of the last 180 days",
            "base_amount": 120000.0,
            "limited_by": "advance_rate",
            "repayment": {
                "method": "settlement_holdback",
                "summary": "42% of each platform payout is held back until USD 50,646 is "
                "repaid, expected within about 180 days",
                "total_repayable": 50646.3,
                "due_date": "2025-12-27",
                "holdback_rate": 0.422,
            },
        }
    ],
    "declines": [
        {
            "product": "tax_refund_advance",
            "title": "Export tax-refund advance",
            "reasons": [
                {"code": "volume_too_small", "message": "no pending export tax refunds to finance"}
            ],
        }
    ],
    "bases": {"settlements_180d": 120000.0, "open_receivables": 0.0},
}


@router.get(
    "/firms/{firm_id}/offers",
    summary="Financing offers for one firm",
    description="Scores the firm (latest features, or as of a date) and returns the decision "
    "with an offer or a decline, with its reasons, for each product of the caller's lending "
    "policy: amount, term, APR (cost of funds + expected loss + operating cost + margin), total "
    "cost of credit, expected loss and how it is repaid. The decision is recorded in the audit "
    "log before it is returned. Roles: platform, lender, admin.",
    responses={200: {"content": {"application/json": {"example": _OFFERS_EXAMPLE}}}, **_ERR},
)
def get_offers(
    firm_id: FirmId,
    principal: AnyRole,
    service: ServiceDep,
    as_of: Annotated[
        datetime | None,
        Query(
            description="Use the latest features at or before this date (default: latest). "
            + AS_OF_RANGE_DOC
        ),
        AfterValidator(as_of_in_range),
    ] = None,
) -> JSONResponse:
    when = to_utc(as_of) if as_of is not None else None
    fo = service.firm_offers(firm_id, when, caller=principal, channel="offers")
    body = fo.offers.model_dump(mode="json", exclude={"firm_id", "as_of", "decision_id"})
    for k in ("pd", "score", "grade"):
        body.pop(k)
    return JSONResponse({"decision": fo.decision.to_response(), **body})


class SellerLinkIn(BaseModel):
    """Options of a seller link (the body is optional)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"ttl_seconds": 900}]}
    )

    ttl_seconds: int | None = Field(
        None,
        ge=60,
        le=7 * 24 * 3600,
        description="How long the link stays valid (default: TRADECREDIT_SELLER_LINK_TTL_SECONDS, "
        "15 minutes).",
    )


class SellerLinkOut(BaseModel):
    link_id: str = Field(description="The link's id: `DELETE /v1/seller-links/{link_id}`.")
    firm_id: str
    url: str = Field(
        description="Absolute link to the seller page, on the configured public address "
        "(TRADECREDIT_PUBLIC_URL)."
    )
    path: str = Field(description="The same link relative to the service root.")
    expires_at: datetime


@router.post(
    "/firms/{firm_id}/seller-link",
    summary="A signed, expiring link to the firm's seller page",
    description="The link opens `/sellers/{firm_id}` without an API key until it expires "
    "(default 15 minutes), the key that asked for it is revoked, or it is revoked itself "
    "(`DELETE /v1/seller-links/{link_id}`); the page shows the offers under the calling "
    "platform's policy. The URL is built from the configured public address, never from the "
    "request's headers. Role: platform.",
    status_code=201,
    response_model=SellerLinkOut,
    responses={
        201: {
            "content": {
                "application/json": {
                    "example": {
                        "link_id": "lnk_3f9a1c0e5b7d2468",
                        "firm_id": "F000123",
                        "url": "http://127.0.0.1:8000/sellers/F000123?token=eyJmIjoiRjAwMDEyMyJ9.x",
                        "path": "/sellers/F000123?token=eyJmIjoiRjAwMDEyMyJ9.x",
                        "expires_at": "2025-07-01T09:29:03Z",
                    }
                }
            }
        },
        **_ERR,
    },
)
def seller_link(
    firm_id: FirmId,
    principal: Platform,
    service: ServiceDep,
    state: StateDep,
    request: Request,
    body: Annotated[SellerLinkIn | None, Body()] = None,
) -> SellerLinkOut:
    ttl = (body.ttl_seconds if body else None) or state.settings.seller_link_ttl_seconds
    link = service.seller_link(firm_id, caller=principal, ttl_seconds=ttl)
    path = str(request.app.url_path_for("seller_page", firm_id=firm_id)) + f"?token={link.token}"
    return SellerLinkOut(
        link_id=link.link_id,
        firm_id=firm_id,
        url=state.settings.public_base_url + path,  # never the request's Host header
        path=path,
        expires_at=link.expires_at,
    )


class SellerLinkRevokedOut(BaseModel):
    link_id: str
    firm_id: str
    expires_at: datetime
    revoked_at: datetime = Field(description="When the link was first revoked.")


@router.delete(
    "/seller-links/{link_id}",
    summary="Revoke one seller link",
    description="The link's page closes at its next view (403 'This link is no longer "
    "valid'); other links of the firm are untouched. Idempotent: revoking again answers the "
    "first revocation. Only the tenant whose key made the link sees it (another tenant's link "
    "is a 404). Roles: platform, admin.",
    response_model=SellerLinkRevokedOut,
    responses={
        **{k: v for k, v in _ERR.items() if k not in (404, 503)},
        404: {"model": ErrorOut, "description": "No such link for the caller's tenant."},
        503: {"model": ErrorOut, "description": "The service database is unavailable."},
    },
)
def revoke_seller_link(
    link_id: Annotated[str, Path(max_length=64, description="From the link's creation.")],
    principal: PlatformOrAdmin,
    service: ServiceDep,
) -> SellerLinkRevokedOut:
    rec = service.revoke_seller_link(link_id, caller=principal)
    if rec.revoked_at is None:  # pragma: no cover - revoke_seller_link sets it
        raise RuntimeError("a revoked link without a revocation time")
    return SellerLinkRevokedOut(
        link_id=rec.link_id,
        firm_id=rec.firm_id,
        expires_at=rec.expires_at,
        revoked_at=rec.revoked_at,
    )
