"""The review queue: referred decisions, decided by named reviewers.

``GET /v1/reviews?status=open`` lists the tenant's reviews; ``GET /v1/reviews/{id}`` gives one
with the decision, its reasons and rules, the features with the catalog's texts, the offers
and a summary of the firm's recent records (those two only under an active consent);
``POST /v1/reviews/{id}/decision`` records a reviewer's outcome, reason codes and note. Only
keys with role ``reviewer`` (which name their holder) may decide; an override of the model
above the policy's amount needs a second reviewer (four eyes). See ``docs/decisioning.md``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ServiceDep
from api.schemas import ErrorOut
from api.security import Principal, require

router = APIRouter(prefix="/v1", tags=["reviews"])

Reader = Annotated[Principal, Depends(require("reviewer", "lender", "admin"))]
Reviewer = Annotated[Principal, Depends(require("reviewer"))]
ReviewId = Annotated[
    str, Path(pattern=r"^rev_[0-9a-f]{32}$", examples=["rev_0123456789abcdef0123456789abcdef"])
]

_ERR: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, invalid or revoked API key."},
    403: {"model": ErrorOut, "description": "The key's role may not call this endpoint."},
    404: {"model": ErrorOut, "description": "No such review for this tenant."},
    429: {"model": ErrorOut, "description": "Rate limited; see Retry-After."},
    503: {"model": ErrorOut, "description": "The service database is unavailable."},
}


class ActionOut(BaseModel):
    holder: str
    key_id: str | None
    channel: str
    outcome: str
    reason_codes: list[str]
    note: str
    effect: Literal["closed", "awaiting_second"]
    at: str


class ReviewOut(BaseModel):
    review_id: str
    decision_id: str
    firm_id: str
    status: Literal["open", "awaiting_second", "closed"]
    recommendation: str = Field(description="What the model's score says under the policy.")
    grade: str
    exposure: float = Field(description="The amount applied for, else the approval limit.")
    four_eyes_above: float | None
    allowed_outcomes: list[str] | None
    opened_at: str
    pending_outcome: str | None = Field(
        description="The outcome awaiting a second reviewer (four eyes)."
    )
    outcome: str | None
    override: bool | None = Field(description="Whether the outcome went against the model.")
    closed_at: str | None
    actions: list[ActionOut]


class ReviewList(BaseModel):
    reviews: list[ReviewOut]


class ReviewDetail(ReviewOut):
    decision: dict[str, Any]
    features: list[dict[str, Any]]
    offers: dict[str, Any] | None
    records: dict[str, Any]


class ReviewDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Literal["approved", "declined"] = Field(
        description="The reviewer's outcome (the policy may allow only some)."
    )
    reason_codes: list[str] = Field(
        min_length=1,
        max_length=4,
        description="From the documented lists (docs/decisioning.md): AA.. for a decline, "
        "RA.. for an approval.",
        examples=[["RA01"]],
    )
    note: str = Field(min_length=1, max_length=2000, examples=["Bank statements verified."])


@router.get(
    "/reviews",
    summary="The review queue",
    description="The tenant's reviews, oldest first; `status` filters (open, "
    "awaiting_second, closed). Roles: reviewer, lender, admin.",
    response_model=ReviewList,
    responses=_ERR,
)
def list_reviews(
    principal: Reader,
    service: ServiceDep,
    status: Literal["open", "awaiting_second", "closed"] | None = Query(None),
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    found = service.reviews(caller=principal, status=status, limit=limit)
    return {"reviews": [r.to_dict() for r in found]}


@router.get(
    "/reviews/{review_id}",
    summary="One review, with what a reviewer needs",
    description="The review, the decision (reasons, rules), its features with the catalog's "
    "descriptions, the offers and a summary of the firm's recent records (the last two only "
    "under an active consent of the seller). Roles: reviewer, lender, admin.",
    response_model=ReviewDetail,
    responses=_ERR,
)
def get_review(principal: Reader, service: ServiceDep, review_id: ReviewId) -> dict[str, Any]:
    return service.review(review_id, caller=principal)


@router.post(
    "/reviews/{review_id}/decision",
    summary="Decide a review",
    description="Record the reviewer's outcome, reason codes and note; the key's holder is "
    "recorded with it. Overriding the model for more than the policy's `four_eyes_above` "
    "leaves the review `awaiting_second` until another holder decides. Role: reviewer.",
    response_model=ReviewOut,
    responses={
        **_ERR,
        409: {"model": ErrorOut, "description": "Closed already, or the same holder again."},
        422: {"model": ErrorOut, "description": "Outcome or reason codes not allowed."},
    },
)
def decide_review(
    principal: Reviewer, service: ServiceDep, review_id: ReviewId, body: ReviewDecisionIn
) -> dict[str, Any]:
    review = service.decide_review(
        review_id,
        caller=principal,
        holder=principal.holder,
        outcome=body.outcome,
        reason_codes=body.reason_codes,
        note=body.note,
    )
    return review.to_dict()
