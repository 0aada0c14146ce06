"""A JSON response rendered by orjson (the decision routes: ~10x faster than ``json.dumps``)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse


class FastJSONResponse(JSONResponse):
    """``JSONResponse`` with orjson; NaN and infinities become ``null`` (never invalid JSON)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
