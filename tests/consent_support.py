"""Support for the consent tests: a simulated firm's records as two providers push them."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import pandas as pd

from credit.consent import ConsentStore
from credit.records import RECORD_TYPES

#: Who pushes what: the marketplace its sales (payments) and the firm's row, the customs data
#: service the declarations and shipments.
MARKET, CUSTOMS = "acme-market", "customs-data"
KEYS = [
    ("lender_a", "bank-a", "lender"),
    ("lender_b", "bank-b", "lender"),
    ("market", MARKET, "platform"),
    ("customs", CUSTOMS, "platform"),
    ("admin", "ops", "admin"),
]


def _plain(v: Any) -> Any:
    if v is None or v is pd.NaT:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, pd.Timestamp | datetime):
        return v.isoformat()
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    return v


def as_json(frame: pd.DataFrame, record_type: str) -> list[dict[str, Any]]:
    """Contract records as a push carries them (timestamps in ISO 8601, no NaN)."""
    cols = list(RECORD_TYPES[record_type].columns)
    return [{c: _plain(v) for c, v in row.items()} for row in frame[cols].to_dict("records")]


def firm_records(frames: dict[str, pd.DataFrame], firm_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every record type of one firm, as JSON records."""
    return {
        name: as_json(frames[name][frames[name]["firm_id"] == firm_id], name)
        for name in RECORD_TYPES
    }


def h(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def grant(engine: Any, firm_ids: Any, grantee: str, provider: str = "test-provider") -> None:
    """Active consents of ``grantee`` for ``firm_ids``, attested by ``provider`` (tests that
    are not about consent)."""
    store = ConsentStore(engine)
    for f in firm_ids:
        store.attest(
            f,
            grantee,
            ["credit_assessment", "monitoring"],
            12,
            provider=provider,
            key_id=None,
            statement="granted for a test",
        )


def grant_all(engine: Any, firm_ids: Any, grantees: Any, provider: str = "test-provider") -> None:
    """:func:`grant` for each of ``grantees``."""
    firm_ids = list(firm_ids)
    for grantee in grantees:
        grant(engine, firm_ids, grantee, provider=provider)
