"""``GET /v1/decisions/{decision_id}``: a recorded decision, for the tenant that made it only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, Field

from api.deps import AnyRole, ServiceDep
from api.routes.score import DECISION_EXAMPLE
from api.schemas import DecisionOut, ErrorOut
from credit.audit import AuditUnavailableError

router = APIRouter(prefix="/v1", tags=["decisions"])


class IngestionRef(BaseModel):
    ingestion_id: str
    provider: str | None = None
    channel: str | None = Field(None, description="http (a push) or file (credit ingest).")
    name: str | None = None
    sha256: str | None = None
    ingested_at: str | None = None


class Lineage(BaseModel):
    consent_id: str | None = Field(description="The consent it was made under.")
    providers: list[str] = Field(description="The providers whose records it used.")
    withheld: list[str] = Field(description="Providers whose records the consent left out.")
    knowledge_at: str | None = Field(
        description="It used the records ingested at or before this moment (replay reads the same)."
    )
    ingestions: list[IngestionRef] = Field(description="The ingestions whose records fed it.")


class RecordedDecision(DecisionOut):
    source: str
    key_id: str | None
    request_hash: str
    features: dict[str, Any]
    lineage: Lineage


_EXAMPLE = {
    **DECISION_EXAMPLE,
    "source": "online_store",
    "key_id": "0a1b2c3d4e5f",
    "request_hash": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "features": {"late_payment_share_180d": 0.31, "months_of_history": 27.0},
    "consent_id": "cns_5b0e6c9d2f8a4e7f",
    "lineage": {
        "consent_id": "cns_5b0e6c9d2f8a4e7f",
        "providers": ["acme-marketplace"],
        "withheld": [],
        "knowledge_at": "2026-12-03T09:14:03Z",
        "ingestions": [
            {
                "ingestion_id": "push_3f9a1c0e5b7d2468",
                "provider": "acme-marketplace",
                "channel": "http",
                "name": "POST /v1/records",
                "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                "ingested_at": "2026-12-03T09:14:03Z",
            }
        ],
    },
}


@router.get(
    "/decisions/{decision_id}",
    summary="A recorded decision",
    description="The decision as the audit log holds it, with the feature vector used and its "
    "lineage: the consent it was made under, the providers whose records it used and the "
    "ingestions (pushes and files, with their SHA-256) those records came from. Only the "
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
    service: ServiceDep,
    decision_id: str = Path(
        pattern=r"^dec_[0-9a-f]{32}$", examples=["dec_5b0e6c9d2f8a4e7fa1c3d5e7f9a1b3c5"]
    ),
) -> dict[str, Any]:
    try:
        found = service.recorded_decision(decision_id, caller=principal)
    except AuditUnavailableError as exc:
        raise HTTPException(503, "the audit log is unavailable; retry later") from exc
    found.pop("tenant", None)
    found.pop("knowledge_at", None)
    return found
