"""Financing offers for platforms and lenders, and the signed links that open a seller's page.

``GET /v1/firms/{firm_id}/offers`` scores the firm with the model in service (the one scoring
core, through :func:`credit.decisions.decide`), sizes the offers on the firm's records as of
the decision date and prices them under the caller's policy (``<policy_dir>/<tenant>.yaml`` or
the default). The decision is recorded in the audit log before anything is returned.

``POST /v1/firms/{firm_id}/seller-link`` gives a platform a link that opens the firm's seller
page for a while (default 15 minutes), so that the seller never sees an API key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from credit.audit import AuditUnavailableError
from api.deps import AnyRole, ModelDep, ServiceState, StateDep
from api.schemas import ErrorOut, FirmId
from api.security import Principal, require
from credit.decisions import Decision, decide, request_hash, to_utc
from credit.links import link_secret, sign_seller_link
from credit.offers import (
    OfferError,
    OfferSet,
    compute_bases,
    load_firm_records,
    make_offers,
)
from credit.policy import PolicyError, policy_for_tenant
from credit.scoring import ScoringInputError, ScoringModel

router = APIRouter(prefix="/v1", tags=["offers"])

Platform = Annotated[Principal, Depends(require("platform"))]

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


class StoreUnavailableError(Exception):
    """Something the service needs is unavailable (answered as 503)."""


@dataclass(frozen=True)
class FirmOffers:
    """A recorded decision, its offers and the firm's records behind them."""

    decision: Decision
    offers: OfferSet
    records: dict[str, pd.DataFrame]


def records_for(state: ServiceState, firm_id: str, as_of: datetime) -> dict[str, pd.DataFrame]:
    """The firm's records before ``as_of``, from the record store.

    A test or an installation may set ``state.records`` to any object with
    ``load(firm_id, as_of) -> {type: DataFrame}``; by default the DuckDB record store is
    opened read-only for the request.
    """
    source = getattr(state, "records", None)
    if source is not None:
        loaded: dict[str, pd.DataFrame] = source.load(firm_id, as_of)
        return loaded
    from credit.store import open_store

    try:
        con = open_store(state.settings.store_path, read_only=True)
    except FileNotFoundError as exc:
        raise StoreUnavailableError(f"record store unavailable: {exc}") from exc
    except Exception as exc:  # locked by a writer, corrupt file: not the client's fault
        raise StoreUnavailableError(f"record store unavailable: {type(exc).__name__}") from exc
    try:
        return load_firm_records(con, firm_id, as_of)
    except Exception as exc:
        raise StoreUnavailableError(f"record store unreadable: {type(exc).__name__}") from exc
    finally:
        con.close()


def firm_offers(
    state: ServiceState,
    model: ScoringModel,
    firm_id: str,
    as_of: datetime | None,
    tenant: str,
    key_id: str | None,
    channel: str,
) -> FirmOffers:
    """Score a firm, size and price its offers under the tenant's policy, record the decision.

    Raises
    ------
    HTTPException
        404 unknown firm, 422 features that do not fit the model, 503 a store, the
        policy or the audit log unavailable.
    """
    if state.online is None:
        raise HTTPException(503, state.online_error or "online store unavailable")
    try:
        found = state.online.get(firm_id, as_of=to_utc(as_of) if as_of else None)
    except Exception as exc:
        raise HTTPException(503, f"online store unavailable: {type(exc).__name__}") from exc
    if found is None:
        when = f" at or before {as_of:%Y-%m-%d}" if as_of else ""
        raise HTTPException(
            404,
            f"firm {firm_id} has no features in the online store{when}; "
            "run `credit features materialize`",
        )
    feat_as_of, feats = found
    try:
        policy = policy_for_tenant(tenant, state.settings.policy_dir)
    except PolicyError as exc:
        raise HTTPException(503, f"the lending policy of {tenant} is invalid: {exc}") from exc
    try:
        decision = decide(model, [(firm_id, to_utc(feat_as_of), dict(feats))], explain="top")[0]
    except ScoringInputError as exc:
        raise HTTPException(422, f"the features do not fit the model: {exc}") from exc
    try:
        records = records_for(state, firm_id, decision.as_of)
        offers = make_offers(decision.to_response(), compute_bases(records, decision.as_of), policy)
    except StoreUnavailableError as exc:
        raise HTTPException(503, str(exc)) from exc
    except OfferError as exc:
        raise HTTPException(422, f"offers cannot be computed: {exc}") from exc
    request = {
        "channel": channel,
        "firm_id": firm_id,
        "as_of": None if as_of is None else to_utc(as_of).isoformat(),
        "policy": offers.policy,
    }
    try:
        state.audit.record(
            [decision],
            tenant,
            key_id,
            [request_hash(request)],
            offers=[offers.model_dump(mode="json")],
        )
    except AuditUnavailableError as exc:
        state.metrics.audit_failures.inc()
        raise HTTPException(
            503, "the audit log is unavailable, so no decision was made; retry later"
        ) from exc
    state.metrics.observe_decisions(
        [(decision.score, decision.grade, decision.model["version"] or "unregistered")]
    )
    return FirmOffers(decision=decision, offers=offers, records=records)


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
    model: ModelDep,
    state: StateDep,
    as_of: Annotated[
        datetime | None,
        Query(description="Use the latest features at or before this date (default: latest)."),
    ] = None,
) -> JSONResponse:
    fo = firm_offers(state, model, firm_id, as_of, principal.tenant, principal.key_id, "offers")
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
    firm_id: str
    url: str = Field(description="Absolute link to the seller page.")
    path: str = Field(description="The same link relative to the service root.")
    expires_at: datetime


@router.post(
    "/firms/{firm_id}/seller-link",
    summary="A signed, expiring link to the firm's seller page",
    description="The link opens `/sellers/{firm_id}` without an API key until it expires "
    "(default 15 minutes); the page shows the offers under the calling platform's policy. "
    "Role: platform.",
    status_code=201,
    response_model=SellerLinkOut,
    responses={
        201: {
            "content": {
                "application/json": {
                    "example": {
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
    state: StateDep,
    request: Request,
    body: Annotated[SellerLinkIn | None, Body()] = None,
) -> SellerLinkOut:
    if state.online is None:
        raise HTTPException(503, state.online_error or "online store unavailable")
    try:
        found = state.online.get(firm_id)
    except Exception as exc:
        raise HTTPException(503, f"online store unavailable: {type(exc).__name__}") from exc
    if found is None:
        raise HTTPException(404, f"firm {firm_id} has no features in the online store")
    ttl = (body.ttl_seconds if body else None) or state.settings.seller_link_ttl_seconds
    try:
        secret = link_secret(state.settings)
    except (ValueError, OSError) as exc:
        raise HTTPException(503, f"seller links are not configured: {exc}") from exc
    link = sign_seller_link(firm_id, principal.tenant, secret, ttl_seconds=ttl)
    path = str(request.app.url_path_for("seller_page", firm_id=firm_id)) + f"?token={link.token}"
    return SellerLinkOut(
        firm_id=firm_id,
        url=str(request.base_url).rstrip("/") + path,
        path=path,
        expires_at=link.expires_at,
    )
