"""Consents: lenders and platforms ask for one, sellers give it, anyone party to it may end it.

``POST /v1/firms/{firm_id}/consent-requests`` records a request and returns a signed link for
the seller: the page says who asks, for what, from which sources and until when, and the
seller approves or declines it. A provider may instead attest that the seller agreed on the
provider's own site (``POST /v1/firms/{firm_id}/consents``), for its own records only.
``GET /v1/consents`` lists the consents the caller is party to; ``DELETE
/v1/consents/{consent_id}`` revokes one (its grantee, or the tenant that asked for or attested
it). Every read of a firm's data checks for an active consent in one place
(:meth:`credit.service.CreditService.authorize`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ServiceDep, StateDep
from api.schemas import ErrorOut, FirmId
from api.security import Principal, require
from credit.consent import MAX_MONTHS, PURPOSES, Consent
from credit.records import ID_PATTERN

router = APIRouter(prefix="/v1", tags=["consents"])

Asker = Annotated[Principal, Depends(require("lender", "platform"))]
Provider = Annotated[Principal, Depends(require("platform"))]
Party = Annotated[Principal, Depends(require("lender", "platform", "admin"))]

_ERR: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, invalid or revoked API key."},
    403: {"model": ErrorOut, "description": "The key's role may not call this endpoint."},
    422: {"model": ErrorOut, "description": "Invalid request; `detail` says what."},
    429: {"model": ErrorOut, "description": "Rate limited; see Retry-After."},
    503: {"model": ErrorOut, "description": "The service database is unavailable."},
}

_CONSENT_EXAMPLE = {
    "consent_id": "cns_5b0e6c9d2f8a4e7f",
    "firm_id": "91330100MA2H3K4L5X",
    "grantee": "bank-a",
    "purposes": ["credit_assessment"],
    "sources": ["acme-marketplace", "swiftpay"],
    "state": "active",
    "requested_by": "bank-a",
    "requested_at": "2026-12-03T09:00:00Z",
    "months": 12,
    "granted_at": "2026-12-03T09:05:12Z",
    "expires_at": "2027-12-03T09:05:12Z",
    "decided_at": "2026-12-03T09:05:12Z",
    "revoked_at": None,
    "revoked_by": None,
    "evidence": {
        "kind": "seller_confirmation",
        "link_id": "lnk_3f9a1c0e5b7d2468",
        "at": "2026-12-03T09:05:12+00:00",
        "client": "203.0.113.7",
        "answer": "approved",
    },
}


class ConsentOut(BaseModel):
    consent_id: str
    firm_id: str
    grantee: str = Field(description="The tenant the data is shared with.")
    purposes: list[str]
    sources: list[str] | None = Field(
        description="Providers whose records may be used (a request without sources gets the "
        "firm's providers at approval)."
    )
    state: str = Field(description="requested, active, declined, revoked or expired.")
    requested_by: str
    requested_at: datetime
    months: int
    granted_at: datetime | None
    expires_at: datetime | None
    decided_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None
    evidence: dict[str, Any] | None = Field(
        description="How it was given: seller_confirmation (link id, time, client address) or "
        "provider_attestation (provider, API key id, statement)."
    )


def _out(c: Consent) -> ConsentOut:
    return ConsentOut.model_validate(c.to_dict())


class ConsentRequestIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"purposes": ["credit_assessment"], "months": 12}]},
    )

    purposes: list[str] = Field(
        min_length=1,
        max_length=len(PURPOSES),
        description=f"One or more of {', '.join(PURPOSES)}.",
    )
    months: int = Field(12, ge=1, le=MAX_MONTHS, description="How long it runs once given.")
    sources: list[Annotated[str, Field(pattern=ID_PATTERN)]] | None = Field(
        None,
        max_length=50,
        description="The providers whose records you ask for (default: every provider holding "
        "records of the firm when the seller approves).",
    )
    ttl_seconds: int | None = Field(
        None, ge=60, le=30 * 24 * 3600, description="How long the seller's link stays valid."
    )


class ConsentRequestOut(BaseModel):
    consent: ConsentOut
    link_id: str
    url: str = Field(description="Send this to the seller: the page where they answer.")
    path: str
    link_expires_at: datetime


@router.post(
    "/firms/{firm_id}/consent-requests",
    summary="Ask a seller for consent",
    description="Records a request (state `requested`) and returns a signed link to the "
    "seller's consent page, which shows who asks, for what purposes, from which sources and "
    "until when; the seller approves or declines there. The answer does not depend on whether "
    "the firm's data is held. Roles: lender, platform.",
    status_code=201,
    response_model=ConsentRequestOut,
    responses={
        201: {
            "content": {
                "application/json": {
                    "example": {
                        "consent": {
                            **_CONSENT_EXAMPLE,
                            "state": "requested",
                            "sources": None,
                            "granted_at": None,
                            "expires_at": None,
                            "decided_at": None,
                            "evidence": None,
                        },
                        "link_id": "lnk_3f9a1c0e5b7d2468",
                        "url": "http://127.0.0.1:8000/sellers/91330100MA2H3K4L5X/consents/"
                        "cns_5b0e6c9d2f8a4e7f?token=eyJmIjoiOTEzMyJ9.x",
                        "path": "/sellers/91330100MA2H3K4L5X/consents/cns_5b0e6c9d2f8a4e7f"
                        "?token=eyJmIjoiOTEzMyJ9.x",
                        "link_expires_at": "2026-12-10T09:00:00Z",
                    }
                }
            }
        },
        **_ERR,
    },
)
def request_consent(
    firm_id: FirmId,
    principal: Asker,
    service: ServiceDep,
    state: StateDep,
    request: Request,
    body: Annotated[ConsentRequestIn, Body()],
) -> ConsentRequestOut:
    ttl = body.ttl_seconds or 7 * 24 * 3600
    consent, link = service.request_consent(
        firm_id,
        caller=principal,
        purposes=body.purposes,
        months=body.months,
        sources=body.sources,
        ttl_seconds=ttl,
    )
    path = (
        str(
            request.app.url_path_for(
                "consent_request_page", firm_id=firm_id, consent_id=consent.consent_id
            )
        )
        + f"?token={link.token}"
    )
    return ConsentRequestOut(
        consent=_out(consent),
        link_id=link.link_id,
        url=state.settings.public_base_url + path,
        path=path,
        link_expires_at=link.expires_at,
    )


class AttestationIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "grantee": "bank-a",
                    "purposes": ["credit_assessment"],
                    "months": 12,
                    "statement": "Seller ticked 'share my sales data with Bank A' in Seller "
                    "Central on 2026-12-03 (session 8f2c).",
                }
            ]
        },
    )

    grantee: str = Field(pattern=ID_PATTERN, description="The tenant to share your records with.")
    purposes: list[str] = Field(min_length=1, max_length=len(PURPOSES))
    months: int = Field(12, ge=1, le=MAX_MONTHS)
    statement: str = Field(
        min_length=10,
        max_length=1000,
        description="How and when the seller agreed (kept as the evidence).",
    )


@router.post(
    "/firms/{firm_id}/consents",
    summary="Attest a seller's consent (providers)",
    description="The calling provider attests that the seller agreed, on the provider's own "
    "site, to share **the provider's** records of the firm with `grantee`. The consent is "
    "active at once; its sources are the provider alone and its evidence names the key that "
    "attested it. Only a provider holding records of the firm may attest. Role: platform.",
    status_code=201,
    response_model=ConsentOut,
    responses={
        201: {
            "content": {
                "application/json": {
                    "example": {
                        **_CONSENT_EXAMPLE,
                        "sources": ["acme-marketplace"],
                        "requested_by": "acme-marketplace",
                        "evidence": {
                            "kind": "provider_attestation",
                            "provider": "acme-marketplace",
                            "key_id": "0a1b2c3d4e5f",
                            "statement": "Seller ticked 'share my sales data with Bank A'.",
                            "at": "2026-12-03T09:05:12+00:00",
                        },
                    }
                }
            }
        },
        404: {"model": ErrorOut, "description": "You hold no records of this firm."},
        **_ERR,
    },
)
def attest_consent(
    firm_id: FirmId,
    principal: Provider,
    service: ServiceDep,
    body: Annotated[AttestationIn, Body()],
) -> ConsentOut:
    return _out(
        service.attest_consent(
            firm_id,
            caller=principal,
            grantee=body.grantee,
            purposes=body.purposes,
            months=body.months,
            statement=body.statement,
        )
    )


@router.get(
    "/consents",
    summary="Your consents",
    description="The consents the calling tenant is party to (as grantee, as the tenant that "
    "asked, or as the provider that attested), newest first. Roles: lender, platform, admin.",
    response_model=list[ConsentOut],
    responses={200: {"content": {"application/json": {"example": [_CONSENT_EXAMPLE]}}}, **_ERR},
)
def list_consents(
    principal: Party,
    service: ServiceDep,
    firm_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    state: Annotated[
        str | None, Query(pattern="^(requested|active|declined|revoked|expired)$")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ConsentOut]:
    found = service.list_consents(caller=principal, firm_id=firm_id, state=state, limit=limit)
    return [_out(c) for c in found]


ConsentId = Annotated[str, Path(pattern=r"^cns_[0-9a-f]{16}$", examples=["cns_5b0e6c9d2f8a4e7f"])]


@router.get(
    "/consents/{consent_id}",
    summary="One consent",
    description="A consent the calling tenant is party to; any other is a 404. "
    "Roles: lender, platform, admin.",
    response_model=ConsentOut,
    responses={
        200: {"content": {"application/json": {"example": _CONSENT_EXAMPLE}}},
        404: {"model": ErrorOut, "description": "No such consent of yours."},
        **_ERR,
    },
)
def get_consent(consent_id: ConsentId, principal: Party, service: ServiceDep) -> ConsentOut:
    return _out(service.consent(consent_id, caller=principal))


@router.delete(
    "/consents/{consent_id}",
    summary="Revoke a consent",
    description="Ends the consent now (idempotent; the first revocation is kept): the next "
    "request under it gets 404. Decisions already made stay in the audit log. Its grantee, or "
    "the tenant that asked for or attested it, may revoke; anyone else gets 404. "
    "Roles: lender, platform.",
    response_model=ConsentOut,
    responses={
        200: {"content": {"application/json": {"example": _CONSENT_EXAMPLE}}},
        404: {"model": ErrorOut, "description": "No such consent of yours."},
        **_ERR,
    },
)
def revoke_consent(consent_id: ConsentId, principal: Asker, service: ServiceDep) -> ConsentOut:
    return _out(service.revoke_consent(consent_id, caller=principal))
