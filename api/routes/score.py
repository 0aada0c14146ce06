"""``POST /v1/score`` and ``POST /v1/score/batch``: decisions, recorded before they are returned.

Where the time goes decides where the work runs. A decision by ``firm_id`` is about a
millisecond of CPU (online-store read, TreeSHAP, audit insert): ``POST /v1/score`` does it in
place on the event loop, since a threadpool hop would cost a good part of that again and the
GIL lets only one thread run Python at a time anyway. Features computed from posted records
take ~10 ms and go to the threadpool so that they never hold up the short requests; so does
a batch (``def`` route).
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.deps import SCORE_ROLES, Lender, ServiceDep
from api.errors import error_body, format_validation_errors, use_case_detail
from api.responses import FastJSONResponse
from api.schemas import (
    BatchRequest,
    BatchResponse,
    DecisionOut,
    ErrorOut,
    ScoreRequest,
)
from api.security import (
    SECURITY_REQUIREMENT,
    Principal,
    check_role,
    identify,
    key_from_headers,
)
from credit.decisions import Decision, to_utc
from credit.service import CreditService, ScoreItem

router = APIRouter(prefix="/v1", tags=["score"])

_ERR: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, invalid or revoked API key."},
    403: {"model": ErrorOut, "description": "The key's role may not score (lender or admin)."},
    413: {"model": ErrorOut, "description": "Body too large."},
    429: {"model": ErrorOut, "description": "Rate limited; see Retry-After."},
    503: {"model": ErrorOut, "description": "No model loaded, or the audit log is unavailable."},
}

DECISION_EXAMPLE = {
    "decision_id": "dec_5b0e6c9d2f8a4e7fa1c3d5e7f9a1b3c5",
    "firm_id": "F000123",
    "as_of": "2025-06-30T00:00:00Z",
    "pd": 0.0312,
    "score": 634,
    "grade": "C",
    "reasons": [
        {
            "code": "R07",
            "feature": "late_payment_share_180d",
            "value": 0.31,
            "contribution": 0.42,
            "text": "Many invoices paid late in the last 180 days",
        }
    ],
    "model": {"name": "tradecredit-pd", "version": "3", "run_id": "4f1c2d6e8a9b"},
    "data": {"thin_file": False, "history_months": 27.0},
    "scored_at": "2025-07-01T09:14:03.512Z",
}

_SCORE_EXAMPLES = {
    "by_firm_id": {
        "summary": "A firm from the online store, latest features",
        "value": {"firm_id": "F000123"},
    },
    "as_of_full": {
        "summary": "As of a date, with every SHAP contribution",
        "value": {"firm_id": "F000123", "as_of": "2025-06-30", "explain": "full"},
    },
    "posted_records": {
        "summary": "Posted histories (features computed on the fly)",
        "value": {
            "as_of": "2025-06-30",
            "firm": {
                "firm_id": "F000123",
                "registered_at": "2021-04-12",
                "business_model": "b2c",
                "main_category": "home_furnishings",
                "home_region": "CN-ZJ",
            },
            "records": {
                "customs": [
                    {
                        "declaration_id": "D1",
                        "firm_id": "F000123",
                        "declared_at": "2025-05-02",
                        "direction": "export",
                        "regime": "9610",
                        "hs_code": "940360",
                        "origin_country": "CN",
                        "destination_country": "US",
                        "value_usd": 1840.5,
                        "quantity": 12,
                        "status": "cleared",
                        "tax_refund_usd": 0,
                        "tax_refund_status": "none",
                    }
                ],
                "shipments": [
                    {
                        "shipment_id": "S1",
                        "firm_id": "F000123",
                        "declaration_id": "D1",
                        "shipped_at": "2025-05-03",
                        "closed_at": "2025-05-15",
                        "mode": "express",
                        "origin_country": "CN",
                        "destination_country": "US",
                        "destination_type": "consumer",
                        "weight_kg": 14.2,
                        "declared_value_usd": 1840.5,
                        "status": "delivered",
                    }
                ],
                "payments": [
                    {
                        "payment_id": "P1",
                        "firm_id": "F000123",
                        "kind": "settlement",
                        "direction": "in",
                        "amount_usd": 1712.0,
                        "currency": "USD",
                        "counterparty_id": "amazon",
                        "occurred_at": "2025-05-20",
                        "paid_at": "2025-05-20",
                    }
                ],
            },
        },
    },
}


async def _score_caller(request: Request) -> Principal:
    """The hottest route's caller check: the key, then the role, with the functions behind
    :data:`api.deps.Lender`, as one dependency instead of a chain of four (FastAPI spends
    ~0.2 ms a request solving those). Still a dependency, so a request without a valid key
    gets its 401 before its body is looked at."""
    return check_role(identify(request, key_from_headers(request)), SCORE_ROLES)


ScoreCaller = Annotated[Principal, Depends(_score_caller)]


def _item(req: ScoreRequest) -> ScoreItem:
    """A validated request as the use case takes it."""
    return ScoreItem(
        firm_id=req.target_firm,
        as_of=to_utc(req.as_of) if req.as_of is not None else None,
        explain=req.explain,
        records=req.records.model_dump() if req.records is not None else None,
        firm=req.firm.model_dump() if req.firm is not None else None,
        request=req.model_dump(mode="json"),
        amount=req.amount,
    )


@router.post(
    "/score",
    summary="Score one firm",
    description="PD, score, grade and reason codes for one firm, from the online store "
    "(`firm_id`) or from posted records. The decision is recorded in the audit log before it "
    "is returned; `model` names the version that produced it. Roles: lender, admin.",
    response_model=DecisionOut,
    openapi_extra={"security": SECURITY_REQUIREMENT},
    responses={
        200: {"content": {"application/json": {"example": DECISION_EXAMPLE}}},
        404: {"model": ErrorOut, "description": "The firm has no features in the online store."},
        422: {"model": ErrorOut, "description": "Invalid request; `detail` lists field paths."},
        **_ERR,
    },
)
async def score(
    principal: ScoreCaller,
    request: Request,
    body: ScoreRequest = Body(openapi_examples=_SCORE_EXAMPLES),  # type: ignore[arg-type]
) -> Response:
    service: CreditService = request.app.state.service.credit
    it = _item(body)
    if it.records is None:  # about a millisecond: in place on the event loop
        decision = service.decide_firm(
            it.firm_id,
            it.as_of,
            caller=principal,
            explain=it.explain,
            request=it.request,
            amount=it.amount,
        )
    else:  # ~10 ms of feature computation: off the event loop
        decide = partial(
            service.decide_records,
            caller=principal,
            explain=it.explain,
            request=it.request,
            amount=it.amount,
        )
        decision = await run_in_threadpool(decide, it.firm_id, it.records, it.firm, it.as_of)
    return FastJSONResponse(decision.to_response())


@router.post(
    "/score/batch",
    summary="Score up to 1,000 firms",
    description="Each item has the shape of a `POST /v1/score` body and is validated and scored "
    "on its own: an invalid item gets its own `status` and `error`, the others are scored (one "
    "model version for the whole batch) and recorded in one transaction. Roles: lender, admin.",
    response_model=BatchResponse,
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "scored": 1,
                        "failed": 1,
                        "model": DECISION_EXAMPLE["model"],
                        "results": [
                            {"index": 0, "status": 200, "decision": DECISION_EXAMPLE},
                            {
                                "index": 1,
                                "status": 404,
                                "error": {
                                    "error": "not_found",
                                    "detail": "firm F999 has no features in the online store",
                                },
                            },
                        ],
                    }
                }
            }
        },
        422: {"model": ErrorOut, "description": "Not a list of 1 to 1,000 items."},
        **_ERR,
    },
)
def score_batch(principal: Lender, service: ServiceDep, body: BatchRequest) -> JSONResponse:
    results: list[dict[str, Any] | None] = [None] * len(body.items)
    items: list[ScoreItem] = []
    positions: list[int] = []
    for i, raw in enumerate(body.items):
        try:
            items.append(_item(ScoreRequest.model_validate(raw)))
            positions.append(i)
        except ValidationError as exc:
            results[i] = _failed(i, 422, format_validation_errors(exc.errors(), ("items", i)))
    batch = service.decide_batch(items, caller=principal)
    scored = 0
    for i, out in zip(positions, batch.results, strict=True):
        if isinstance(out, Decision):
            results[i] = {"index": i, "status": 200, "decision": out.to_response()}
            scored += 1
        else:
            results[i] = _failed(i, out.status, use_case_detail(out, f"items.{i}"))
    return JSONResponse(
        {
            "scored": scored,
            "failed": len(results) - scored,
            "model": batch.model,
            "results": results,
        }
    )


def _failed(index: int, status: int, detail: Any) -> dict[str, Any]:
    return {"index": index, "status": status, "error": error_body(status, detail)}
