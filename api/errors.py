"""Error bodies and handlers: every error is JSON ``{error, detail, request_id}``.

Validation errors name the field path and what is wrong (the offending input is not echoed);
an unexpected exception becomes a plain 500 with the request ID, its traceback going only to
the server log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.logging import request_id_var
from credit.errors import UseCaseError

log = logging.getLogger("tradecredit.api")

ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


def error_body(status: int, detail: Any) -> dict[str, Any]:
    return {
        "error": ERROR_CODES.get(status, "error"),
        "detail": detail,
        "request_id": request_id_var.get(),
    }


def format_validation_errors(
    errors: Iterable[Mapping[str, Any]], prefix: tuple[Any, ...] = ()
) -> list[dict[str, str]]:
    """``[{"loc": "body.records.payments.3.amount_usd", "msg": ..., "type": ...}]``."""
    out = []
    for e in errors:
        loc = prefix + tuple(e.get("loc", ()))
        out.append(
            {
                "loc": ".".join(str(p) for p in loc),
                "msg": str(e.get("msg", "invalid value")),
                "type": str(e.get("type", "value_error")),
            }
        )
    return out


def _json(status: int, detail: Any, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, detail), status_code=status, headers=dict(headers or {}))


async def _validation(_: Request, exc: Exception) -> JSONResponse:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    return _json(422, format_validation_errors(errors))


#: What FastAPI says when a body cannot be decoded at all (not UTF-8, not JSON).
_UNPARSABLE_BODY = "There was an error parsing the body"


async def _http(_: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, StarletteHTTPException):  # pragma: no cover - registered for it only
        return _json(500, "internal error")
    if exc.status_code == 400 and exc.detail == _UNPARSABLE_BODY:
        # An undecodable body is invalid input like any other: the documented 422.
        issue = {"loc": "body", "msg": "the body is not valid UTF-8 JSON", "type": "json_invalid"}
        return _json(422, [issue])
    return _json(exc.status_code, exc.detail, exc.headers)


def use_case_detail(exc: UseCaseError, prefix: str = "body") -> Any:
    """The ``detail`` of a use case's error: its message, or, when it carries ``details`` (posted
    records that break the data contract), a list in the shape of every 422: ``loc`` (the
    record's path in the body under ``prefix``), ``msg``, ``type``, and the record's
    ``record_type``, ``index``, ``record_id``, ``field`` and ``reason`` as ingestion reports
    them."""
    if not exc.details:
        return str(exc)
    out = []
    for d in exc.details:
        where = "firm" if d.get("record_type") == "firms" else f"records.{d.get('record_type')}"
        if where != "firm":
            where += f".{d.get('index')}"
        loc = ".".join(str(p) for p in (prefix, where, d.get("field")) if p)
        out.append({"loc": loc, "msg": str(d.get("reason")), "type": "data_contract", **d})
    return out


async def _use_case(_: Request, exc: Exception) -> JSONResponse:
    """A use case's typed error (:mod:`credit.errors`): its status, its message (or details)."""
    if not isinstance(exc, UseCaseError):  # pragma: no cover - registered for it only
        return _json(500, str(exc))
    return _json(exc.status, use_case_detail(exc))


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc)
    return _json(500, "internal error; quote the request_id when reporting it")


#: The body every 422 really has (FastAPI's default schema says ``loc`` is an array).
VALIDATION_ERROR_SCHEMA: dict[str, Any] = {
    "title": "HTTPValidationError",
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "examples": ["validation_error"]},
        "detail": {
            "anyOf": [
                {"type": "string"},
                {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["loc", "msg", "type"],
                        "properties": {
                            "loc": {"type": "string", "examples": ["body.firm_id"]},
                            "msg": {"type": "string"},
                            "type": {"type": "string"},
                            # a posted record that breaks the data contract (type data_contract)
                            "record_type": {"type": "string", "examples": ["payments"]},
                            "index": {"type": "integer"},
                            "record_id": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                            "field": {"type": "string", "examples": ["paid_at"]},
                            "reason": {
                                "type": "string",
                                "examples": ["paid_at is before occurred_at"],
                            },
                        },
                    },
                },
            ]
        },
        "request_id": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
}


def install(app: FastAPI) -> None:
    """Register the handlers on ``app`` and document the 422 body they send."""
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(UseCaseError, _use_case)
    app.add_exception_handler(Exception, _unexpected)
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schemas = schema.get("components", {}).get("schemas", {})
            if "HTTPValidationError" in schemas:
                schemas["HTTPValidationError"] = VALIDATION_ERROR_SCHEMA
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
