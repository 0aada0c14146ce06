"""Seller recourse: what would move a firm to a better grade, from its own records.

``GET /v1/firms/{firm_id}/recourse?target_grade=B`` asks the use case
:meth:`credit.service.CreditService.recourse` (the caller needs the seller's consent, as for
a score). Each plan is a few actions on the firm's records (settle these invoices, ship by
tracked express for three months, ...); it was applied to the records, recomputed by the
online feature path and scored by the model in service before it is returned, so the grade
it shows is the grade those records get. ``docs/recourse.md`` tells how the search works.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import AfterValidator

from api.deps import AnyRole, ServiceDep
from api.schemas import AS_OF_RANGE_DOC, ErrorOut, FirmId, as_of_in_range
from credit.decisions import to_utc

router = APIRouter(prefix="/v1", tags=["offers"])

_ERR: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, invalid or revoked API key."},
    403: {"model": ErrorOut, "description": "The key's role may not call this endpoint."},
    404: {
        "model": ErrorOut,
        "description": "The firm is not found or not shared with you, or has no records.",
    },
    422: {
        "model": ErrorOut,
        "description": "Invalid parameter (an unknown grade, a date out of range); `detail` "
        "names it.",
    },
    429: {"model": ErrorOut, "description": "Rate limited; see Retry-After."},
    503: {"model": ErrorOut, "description": "No model, or a store is unavailable."},
}

_EXAMPLE = {
    "firm_id": "F000123",
    "as_of": "2025-07-01T00:00:00Z",
    "model": {"name": "tradecredit-pd", "version": "3", "run_id": "4f1c2d6e8a9b"},
    "target_grade": "B",
    "current": {"pd": 0.0261, "score": 592, "grade": "C"},
    "reachable": True,
    "plans": [
        {
            "horizon_days": 7,
            "scored_at": "2025-07-08T00:00:00",
            "steps": [{"action": "settle_supplier_arrears", "level": 1.0}],
            "actions": [
                {
                    "action": "settle_supplier_arrears",
                    "params": {"invoices": 3, "amount_usd": 41250.0, "all": True},
                    "text": "Pay all 3 overdue supplier invoices ($41,250) this week.",
                    "cost": {"cash_usd": 41250.0, "days": 0, "effort": "a payment run"},
                }
            ],
            "after": {"pd": 0.0174, "score": 603, "grade": "B"},
            "without_plan": {"pd": 0.0263, "score": 592, "grade": "C"},
            "cost": {"cash_usd": 41250.0, "days": 7},
            "changes": [
                {
                    "feature": "supplier_overdue_unpaid_usd",
                    "now": 41250.0,
                    "without_plan": 41250.0,
                    "after": 0.0,
                    "contribution_change": -0.31,
                    "by": "plan",
                    "description": "Supplier invoices past due and still unpaid.",
                }
            ],
            "side_effects": [],
            "log_odds_change": -0.42,
        }
    ],
    "best_reachable": None,
    "message": "1 plan reaches grade B",
    "search": {
        "compositions_scored": 15,
        "plans_verified": 3,
        "feature_vectors_recomputed": 12,
        "refused_for_side_effects": 0,
        "seconds": 0.041,
    },
}


@router.get(
    "/firms/{firm_id}/recourse",
    summary="Plans that would move a firm to a better grade",
    description="Up to three alternative plans, each of at most three actions on the firm's "
    "own records (settle overdue supplier invoices, collect overdue receivables, repay loans, "
    "pay suppliers on the due date, cut refunds, ship by tracked express, keep trading as now "
    "for some months), with their parameters, cost, and the PD, score and grade the records "
    "would then get, against the same date with nothing done. Every plan was applied to the "
    "records, recomputed and scored before it is returned. When no plan within the actions' "
    "bounds reaches the target, `reachable` is false and `best_reachable` shows the best "
    "plan found. Needs the seller's consent, as a score does. Roles: lender, platform, admin.",
    responses={200: {"content": {"application/json": {"example": _EXAMPLE}}}, **_ERR},
)
def get_recourse(
    firm_id: FirmId,
    principal: AnyRole,
    service: ServiceDep,
    target_grade: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=8,
            description="The grade to reach (or better), one of the model's scale (A best); "
            "default: one grade better than the firm's current grade.",
        ),
    ] = None,
    as_of: Annotated[
        datetime | None,
        Query(
            description="Plan from the firm's state at or before this date (default: the date "
            "of its latest features). " + AS_OF_RANGE_DOC
        ),
        AfterValidator(as_of_in_range),
    ] = None,
) -> JSONResponse:
    when = to_utc(as_of) if as_of is not None else None
    found = service.recourse(firm_id, target_grade, when, caller=principal)
    body = found.as_dict()
    body["as_of"] = found.as_of.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")
    return JSONResponse(
        {"firm_id": firm_id, "model": service.model().identity(), **body},
    )
