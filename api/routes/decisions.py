"""``GET /v1/decisions/{decision_id}``: a recorded decision, for the tenant that made it only;
``GET /v1/decisions/{decision_id}/notice``: the adverse-action notice of a declined one, as
JSON, a printable HTML page or a PDF (:mod:`api.notices`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from api.deps import AnyRole, ServiceDep
from api.notices import html_headers, render_html, render_pdf
from api.routes.score import DECISION_EXAMPLE
from api.schemas import DecisionOut, ErrorOut
from api.security import Principal, require
from credit.audit import AuditUnavailableError

router = APIRouter(prefix="/v1", tags=["decisions"])

DecisionId = Annotated[
    str,
    Path(pattern=r"^dec_[0-9a-f]{32}$", examples=["dec_5b0e6c9d2f8a4e7fa1c3d5e7f9a1b3c5"]),
]


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
    decision_id: DecisionId,
) -> dict[str, Any]:
    try:
        found = service.recorded_decision(decision_id, caller=principal)
    except AuditUnavailableError as exc:
        raise HTTPException(503, "the audit log is unavailable; retry later") from exc
    found.pop("tenant", None)
    found.pop("knowledge_at", None)
    return found


# --- GET /v1/decisions/{decision_id}/notice -------------------------------------------------

NoticeReader = Annotated[Principal, Depends(require("lender", "platform", "admin", "reviewer"))]


class NoticeLender(BaseModel):
    name: str = Field(description="The lender the notice is from (the policy's `lender`).")
    address: str
    email: str
    phone: str
    regulator: str = Field(description="The authority an applicant may complain to.")


class FeatureBasis(BaseModel):
    kind: Literal["feature"]
    feature: str = Field(description="A feature of the decision's explanation ...")
    contribution: float = Field(description="... whose SHAP contribution raised the PD (> 0).")


class RuleBasis(BaseModel):
    kind: Literal["rule"]
    rule: str = Field(description="A decline rule of the policy that fired (in `rules`).")


class ReviewBasis(BaseModel):
    kind: Literal["review"]
    review_id: str | None = Field(description="The review whose reviewer gave this code.")


class NoticeReason(BaseModel):
    code: str = Field(
        examples=["AA03"], description="From the documented list (docs/decisioning.md)."
    )
    text: str = Field(examples=["Late or missed payments to suppliers"])
    details: list[str] = Field(description="What in the applicant's data stands behind it.")
    basis: list[Annotated[FeatureBasis | RuleBasis | ReviewBasis, Field(discriminator="kind")]] = (
        Field(description="Where in the decision's own record the reason comes from.")
    )


class NoticeScore(BaseModel):
    score: int
    grade: str


class NoticeOut(BaseModel):
    decision_id: str
    firm_id: str
    date: str = Field(description="When the decision was made (or the review closed), ISO 8601.")
    lender: NoticeLender
    action: Literal["declined"]
    action_taken: str = Field(description="The action taken, in one sentence.")
    decided_by: Literal["automatic", "review"] = Field(
        description="The policy (automatic) or a reviewer (review)."
    )
    review_id: str | None
    reasons: list[NoticeReason] = Field(
        description="The principal reasons, at most 4: a reviewer's codes first, then the "
        "decline rules that fired, then the features that raised the PD most."
    )
    score: NoticeScore
    rights: list[str] = Field(description="The applicant's rights, one paragraph each.")
    policy: dict[str, str] | None = Field(description="The policy's name and version.")


_NOTICE_EXAMPLE: dict[str, Any] = {
    "decision_id": "dec_5b0e6c9d2f8a4e7fa1c3d5e7f9a1b3c5",
    "firm_id": "F000123",
    "date": "2026-12-03T09:14:03Z",
    "lender": {
        "name": "Tradecredit Demo Lending",
        "address": "1 Example Quay, Hangzhou, China",
        "email": "credit@lender.example",
        "phone": "+86 571 0000 0000",
        "regulator": "The authority that supervises this lender in your jurisdiction.",
    },
    "action": "declined",
    "action_taken": "Your application for 20,000 USD of credit was declined.",
    "decided_by": "automatic",
    "review_id": None,
    "reasons": [
        {
            "code": "AA11",
            "text": "Insufficient data to assess the application",
            "details": ["Too little history, with supplier invoices overdue"],
            "basis": [{"kind": "rule", "rule": "thin_file_overdue"}],
        },
        {
            "code": "AA03",
            "text": "Late or missed payments to suppliers",
            "details": [
                "Too little history, with supplier invoices overdue",
                "Suppliers are paid late",
            ],
            "basis": [
                {"kind": "rule", "rule": "thin_file_overdue"},
                {"kind": "feature", "feature": "supplier_dpd_mean_365d", "contribution": 0.41},
            ],
        },
    ],
    "score": {"score": 547, "grade": "E"},
    "rights": ["You have the right to a statement of the specific reasons for this decision..."],
    "policy": {"name": "default", "version": "1"},
}

NoticeFormat = Literal["json", "html", "pdf"]
_FORMATS: dict[str, NoticeFormat] = {"json": "json", "html": "html", "pdf": "pdf"}
_MEDIA: dict[str, NoticeFormat] = {
    "application/json": "json",
    "text/html": "html",
    "application/pdf": "pdf",
}


def _preferred(accept: str) -> NoticeFormat:
    """The format an ``Accept`` header prefers among JSON, HTML and PDF: the highest ``q``
    (the most specific range matching each decides its ``q``); a tie, no header or nothing
    acceptable: JSON."""
    ranges: list[tuple[str, str, float]] = []
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if "/" not in media:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        kind, _, sub = media.lower().partition("/")
        ranges.append((kind, sub, q))
    best: tuple[float, NoticeFormat] = (0.0, "json")
    for media, fmt in _MEDIA.items():
        kind, _, sub = media.partition("/")
        matches = [
            (2 if (k, s) == (kind, sub) else 1 if (k, s) == (kind, "*") else 0, q)
            for k, s, q in ranges
            if (k, s) in ((kind, sub), (kind, "*"), ("*", "*"))
        ]
        q = max(matches)[1] if matches else 0.0
        if q > best[0]:
            best = (q, fmt)
    return best[1]


@router.get(
    "/decisions/{decision_id}/notice",
    summary="The adverse-action notice of a declined decision",
    description="The notice the applicant is owed when its application is declined, by the "
    "policy or by a reviewer: the lender (the policy's `lender`: name, address, contact, "
    "regulator), the date, the action taken, up to four principal reasons (a reviewer's "
    "reason codes first, then the decline rules that fired, then the features whose SHAP "
    "contribution raised the PD most; each with its details and its `basis` in the decision's "
    "own record), the score, and the applicant's rights.\n\n"
    "As JSON (the default), as a printable HTML page (`?format=html`, or an `Accept` header "
    "that prefers `text/html`) or as a PDF (`?format=pdf`, or `Accept: application/pdf`; "
    "shown inline as `notice-<decision_id>.pdf`). `format` wins over `Accept`.\n\n"
    "A decision that is not declined, or is still under review, owes no notice: 409. Only the "
    "tenant that made the decision can read it; any other gets 404. Roles: lender, platform, "
    "admin, reviewer.",
    response_model=NoticeOut,
    responses={
        200: {
            "description": "The notice, as JSON, HTML or PDF.",
            "content": {
                "application/json": {"example": _NOTICE_EXAMPLE},
                "text/html": {"schema": {"type": "string"}},
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        401: {"model": ErrorOut, "description": "Missing, invalid or revoked API key."},
        403: {"model": ErrorOut, "description": "The key's role may not call this endpoint."},
        404: {"model": ErrorOut, "description": "No such decision for this tenant."},
        409: {
            "model": ErrorOut,
            "description": "The decision is not declined (approved, referred and still under "
            "review, or reviewed and approved): no notice is owed.",
        },
        422: {"model": ErrorOut, "description": "Malformed decision id or unknown format."},
        429: {"model": ErrorOut, "description": "Rate limited; see Retry-After."},
        503: {"model": ErrorOut, "description": "Audit log or the lender's policy unavailable."},
    },
)
def get_notice(
    principal: NoticeReader,
    service: ServiceDep,
    request: Request,
    response: Response,
    decision_id: DecisionId,
    format: str | None = Query(
        None,
        description="json, html or pdf (default: what the Accept header prefers, else json).",
        examples=["pdf"],
    ),
) -> Any:
    if format is None:
        fmt = _preferred(request.headers.get("accept", ""))
    elif format.strip().lower() in _FORMATS:
        fmt = _FORMATS[format.strip().lower()]
    else:
        raise HTTPException(
            422, f"unknown format {format[:20]!r}: use json, html or pdf (or omit it)"
        )
    try:
        notice = service.notice(decision_id, caller=principal)
    except AuditUnavailableError as exc:
        raise HTTPException(503, "the audit log is unavailable; retry later") from exc
    vary = {"Vary": "Accept"}
    if fmt == "html":
        return HTMLResponse(render_html(notice), headers={**html_headers(), **vary})
    if fmt == "pdf":
        return Response(
            render_pdf(notice),
            media_type="application/pdf",
            headers={
                "Content-Disposition": f'inline; filename="notice-{decision_id}.pdf"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
                **vary,
            },
        )
    response.headers["Vary"] = "Accept"
    return notice
