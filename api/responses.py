"""A JSON response rendered by orjson (the decision routes: ~10x faster than ``json.dumps``)."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from credit.db import json_bytes


class FastJSONResponse(JSONResponse):
    """``JSONResponse`` with orjson; NaN and infinities become ``null`` (never invalid JSON)."""

    def render(self, content: Any) -> bytes:
        return json_bytes(content)
