"""Structured JSON logs with request IDs.

Log lines carry the request ID, route, status, latency, tenant and key ID; never an API key,
a seller token or a posted record (nothing here ever formats a request body or a header).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id and any ``extra``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id_var.get()
        if rid is not None:
            out["request_id"] = rid
        for k, v in record.__dict__.items():
            if k not in _RESERVED and not k.startswith("_"):
                out[k] = v
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


_HANDLER_FLAG = "_tradecredit_json"


def configure_logging(level: str = "INFO") -> None:
    """Send the ``tradecredit`` and ``api`` loggers to stderr as JSON (idempotent)."""
    for name in ("tradecredit", "api", "credit"):
        logger = logging.getLogger(name)
        logger.setLevel(level.upper())
        if not any(getattr(h, _HANDLER_FLAG, False) for h in logger.handlers):
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(JsonFormatter())
            setattr(handler, _HANDLER_FLAG, True)
            logger.addHandler(handler)
