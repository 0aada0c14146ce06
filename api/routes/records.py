"""Providers push trade records over HTTP and read back their own contributions.

``POST /v1/records`` takes a JSON batch of records by type (up to
:data:`credit.ledger.MAX_PUSH_RECORDS`), checks it with the data contract's code (the checks
``credit ingest`` runs on files), stores the valid records as the calling provider's, in the
service database every replica shares, and answers per-type counts (``read = accepted +
rejected``) with every rejected row and the field and reason. Pushing the same records again
adds nothing (``already_present``); a record ID stored with different content is rejected. The
firm's next score computes its features from its records, the new ones included.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from api.deps import ServiceDep
from api.errors import format_validation_errors
from api.schemas import ErrorOut, FirmId
from api.security import Principal, require
from credit.adapters import FORMATS
from credit.errors import InvalidInputError
from credit.ledger import MAX_PUSH_RECORDS, body_digest
from credit.records import ID_PATTERN, RECORD_TYPES

router = APIRouter(prefix="/v1", tags=["records"])

Provider = Annotated[Principal, Depends(require("platform"))]

_ERR: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, invalid or revoked API key."},
    403: {"model": ErrorOut, "description": "Only a provider (platform role) pushes records."},
    429: {"model": ErrorOut, "description": "Rate limited; see Retry-After."},
    503: {"model": ErrorOut, "description": "The service database is unavailable."},
}

_PUSH_EXAMPLE = {
    "records": {
        "firms": [
            {
                "firm_id": "91330100MA2H3K4L5X",
                "registered_at": "2021-04-12",
                "business_model": "b2c",
                "main_category": "home_furnishings",
                "home_region": "CN-ZJ",
            }
        ],
        "payments": [
            {
                "payment_id": "acme-P-000001",
                "firm_id": "91330100MA2H3K4L5X",
                "kind": "settlement",
                "direction": "in",
                "amount_usd": 1712.0,
                "currency": "USD",
                "counterparty_id": "amazon",
                "occurred_at": "2025-05-20T08:00:00Z",
                "paid_at": "2025-05-20T08:00:00Z",
            }
        ],
    }
}

_RESULT_EXAMPLE = {
    "ingestion_id": "push_3f9a1c0e5b7d2468",
    "provider": "acme-marketplace",
    "ingested_at": "2026-12-03T09:14:03.512Z",
    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "counts": {
        "firms": {"read": 1, "accepted": 1, "added": 1, "already_present": 0, "rejected": 0},
        "payments": {"read": 2, "accepted": 1, "added": 1, "already_present": 0, "rejected": 1},
    },
    "rejected": [
        {
            "record_type": "payments",
            "index": 1,
            "record_id": "acme-P-000002",
            "field": "amount_usd",
            "reason": "amount_usd must be a number",
        }
    ],
    "firms": ["91330100MA2H3K4L5X"],
}


class RecordsIn(BaseModel):
    """Records by type; each record has the data contract's fields (docs/data-contract.md)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_PUSH_EXAMPLE]})  # type: ignore[list-item]

    records: dict[str, list[dict[str, Any]]] = Field(
        description=f"Record type ({', '.join(RECORD_TYPES)}) -> records, at most "
        f"{MAX_PUSH_RECORDS:,} in all. A record may reference a firm or customs declaration "
        "given in the same push or stored before."
    )


class ExportIn(BaseModel):
    """One export file as its producer wrote it, read by the adapter of ``format``."""

    model_config = ConfigDict(extra="forbid")

    format: str | None = Field(
        default=None,
        description=f"The export's format: {', '.join(FORMATS)}; null or left out: told from "
        "its header (an ambiguous or unknown header is a 422 naming the candidates).",
        examples=["stripe-balance"],
    )
    firm_id: str = Field(pattern=ID_PATTERN, description="The firm whose export it is.")
    content: str = Field(
        min_length=1, description="The file's text, exactly as exported (CSV, tab-separated)."
    )
    fx: str | None = Field(
        default=None,
        description="Exchange rates to USD by day, as the text of an ECB reference-rate CSV "
        "(eurofxref-hist.csv layout). A row in another currency on a day with no rate is "
        "rejected.",
    )


_EXPORT_EXAMPLE = {
    "format": "stripe-balance",
    "firm_id": "F001",
    "content": "id,Type,Reporting Category,Amount,Fee,Net,Currency,Created (UTC),"
    "Available On (UTC),Status\ntxn_1,charge,charge,120.00,3.78,116.22,usd,"
    "2024-03-04 09:15,2024-03-06 00:00,available\n",
}


class TypeCountsOut(BaseModel):
    read: int
    accepted: int = Field(description="added + already_present")
    added: int
    already_present: int = Field(description="Stored before with the same content.")
    rejected: int


class RejectedOut(BaseModel):
    record_type: str
    index: int = Field(description="Position of the record in its type's list (from 0).")
    record_id: str | None
    field: str
    reason: str


class PushOut(BaseModel):
    ingestion_id: str = Field(description="This push's id: GET /v1/ingestions/{ingestion_id}.")
    provider: str
    ingested_at: str
    sha256: str = Field(description="SHA-256 of the request body.")
    counts: dict[str, TypeCountsOut]
    rejected: list[RejectedOut]
    firms: list[str] = Field(description="Firms that got new records.")


def _parse(raw: bytes) -> dict[str, list[dict[str, Any]]] | ExportIn:
    try:
        data = orjson.loads(raw)
        if isinstance(data, dict) and ("format" in data or "content" in data):
            return ExportIn.model_validate(data)
        body = RecordsIn.model_validate(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"the body is not JSON: {exc}") from exc
    except ValidationError as exc:
        err = InvalidInputError("the body does not have the shape of a push")
        err.details = format_validation_errors(exc.errors(), ("body",))
        raise err from exc
    unknown = sorted(set(body.records) - set(RECORD_TYPES))
    if unknown:
        raise InvalidInputError(
            f"unknown record type(s) {', '.join(unknown)}; expected {', '.join(RECORD_TYPES)}"
        )
    n = sum(len(v) for v in body.records.values())
    if n == 0:
        raise InvalidInputError("the push holds no records")
    if n > MAX_PUSH_RECORDS:
        raise InvalidInputError(
            f"a push holds at most {MAX_PUSH_RECORDS:,} records (got {n:,}); split it"
        )
    return body.records


@router.post(
    "/records",
    summary="Push trade records (providers)",
    description="A JSON batch of records by type, at most "
    f"{MAX_PUSH_RECORDS:,} records, validated by the data contract's code (the checks `credit "
    "ingest` runs on files) and stored as the calling provider's. Idempotent on record IDs: a "
    "record pushed again with the same content counts as `already_present`, with different "
    "content it is rejected. The answer has per-type counts (`read = accepted + rejected`) and "
    "every rejected row with its field and reason; rows being rejected is not an error (200). "
    "The firm's next score reads the new records. Role: platform (a provider).\n\n"
    "Or one **export file** as its producer wrote it (`format`, `firm_id`, `content`, "
    "optional `fx`: see docs/adapters.md): read by its adapter, its records stored as above, "
    "and the answer adds `source_rows` (read = mapped + rejected + skipped), `reconciles` and "
    "`rows` (every source row's outcome, reason, original currency and amount).",
    response_model=PushOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "anyOf": [RecordsIn.model_json_schema(), ExportIn.model_json_schema()]
                    },
                    "examples": {
                        "records": {"summary": "Contract records", "value": _PUSH_EXAMPLE},
                        "export": {"summary": "An export file", "value": _EXPORT_EXAMPLE},
                    },
                }
            },
        }
    },
    responses={
        200: {"content": {"application/json": {"example": _RESULT_EXAMPLE}}},
        422: {"model": ErrorOut, "description": "Not a push: not JSON, wrong shape, too big."},
        **_ERR,
    },
)
async def push_records(principal: Provider, service: ServiceDep, request: Request) -> JSONResponse:
    raw = await request.body()
    records = _parse(raw)
    if isinstance(records, ExportIn):
        body = records
        answer = await run_in_threadpool(
            lambda: service.push_export(
                body.content,
                firm_id=body.firm_id,
                fmt=body.format,
                fx=body.fx,
                caller=principal,
                digest=body_digest(raw),
            )
        )
        return JSONResponse(answer)
    result = await run_in_threadpool(
        lambda: service.push_records(records, caller=principal, digest=body_digest(raw))
    )
    return JSONResponse(result.to_dict())


@router.get(
    "/ingestions/{ingestion_id}",
    summary="One of your ingestions",
    description="A push (or a file ingested with `credit ingest --source`) of the calling "
    "provider: its counts and every rejected row. Another provider's ingestion is a 404. "
    "Role: platform.",
    responses={
        200: {"content": {"application/json": {"example": _RESULT_EXAMPLE}}},
        404: {"model": ErrorOut, "description": "No such ingestion of yours."},
        **_ERR,
    },
)
def get_ingestion(
    principal: Provider,
    service: ServiceDep,
    ingestion_id: Annotated[str, Path(max_length=40, examples=["push_3f9a1c0e5b7d2468"])],
) -> dict[str, Any]:
    found = service.ingestion(ingestion_id, caller=principal)
    found["ingested_at"] = found["ingested_at"].isoformat().replace("+00:00", "Z")
    found.pop("key_id", None)
    return found


@router.get(
    "/firms/{firm_id}/records",
    summary="The records you provided for a firm",
    description="Every record of the firm that the calling provider pushed, with its "
    "ingestion: a provider reads back only its own contributions (another provider's records "
    "are never listed). Role: platform.",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "firm_id": "91330100MA2H3K4L5X",
                        "records": [
                            {
                                "record_type": "payments",
                                "record_id": "acme-P-000001",
                                "ingestion_id": "push_3f9a1c0e5b7d2468",
                                "ingested_at": "2026-12-03T09:14:03.512Z",
                                "record": _PUSH_EXAMPLE["records"]["payments"][0],  # type: ignore[index]
                            }
                        ],
                    }
                }
            }
        },
        **_ERR,
    },
)
def firm_records(
    firm_id: FirmId,
    principal: Provider,
    service: ServiceDep,
    record_type: Annotated[
        str | None, Query(description="Only this record type.", pattern="^[a-z]{1,16}$")
    ] = None,
) -> dict[str, Any]:
    found = service.provided_records(firm_id, caller=principal, record_type=record_type)
    return {
        "firm_id": firm_id,
        "records": [
            {
                "record_type": r.record_type,
                "record_id": r.record_id,
                "ingestion_id": r.ingestion_id,
                "ingested_at": r.ingested_at.isoformat().replace("+00:00", "Z"),
                "record": {
                    k: (v.isoformat() if hasattr(v, "isoformat") else v)
                    for k, v in r.record.items()
                },
            }
            for r in found
        ],
    }
