"""``GET /v1/decisions/{decision_id}``: a recorded decision, for the tenant that made it only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Path

from api.deps import AnyRole, StateDep
from api.routes.score import DECISION_EXAMPLE
from api.schemas import DecisionOut, ErrorOut
from credit.audit import AuditUnavailableError

router = APIRouter(prefix="/v1", tags=["decisions"])


class RecordedDecision(DecisionOut):
    source: str
    key_id: str | None
    request_hash: str
    features: dict[str, Any]


_EXAMPLE = {
    **DECISION_EXAMPLE,
    "source": "online_store",
    "key_id": "0a1b2c3d4e5f",
    "request_hash": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "features": {"late_payment_share_180d": 0.31, "months_of_history": 27.0},
}


@router.get(
    "/decisions/{decision_id}",
    summary="A recorded decision",
    description="The decision as the audit log holds it, with the feature vector used. Only the "
    "tenant that made it can read it; any other gets 404. Roles: lender, platform, admin.",
    response_model=RecordedDecision,
    responses={
        200: {"content": {"application/json": {"example": _EXAMPLE}}},
        401: {"model": ErrorOut},
        404: {"model": ErrorOut, "description": "No such decision for this tenant."},
        429: {"model": ErrorOut, "description": "Rate limited; see Retry-After."},
        503: {"model": ErrorOut, "description": "Audit log unavailable."},
    },
)
def get_decision(
    principal: AnyRole,
    state: StateDep,
    decision_id: str = Path(
        pattern=r"^dec_[0-9a-f]{32}$", examples=["dec_5b0e6c9d2f8a4e7fa1c3d5e7f9a1b3c5"]
    ),
) -> dict[str, Any]:
    try:
        found = state.audit.get(principal.tenant, decision_id)
    except AuditUnavailableError as exc:
        raise HTTPException(503, "the audit log is unavailable; retry later") from exc
    if found is None:
        raise HTTPException(404, f"no decision {decision_id} for this tenant")
    return found
