"""Hand-written contract records for unit tests."""

from __future__ import annotations

from typing import Any

from credit.records import PAYMENT_DIRECTION


def payment(
    pid: str,
    kind: str,
    amount: float,
    occurred: str,
    due: str | None = None,
    paid: str | None = None,
    cp: str = "CP1",
    firm_id: str = "F1",
) -> dict[str, Any]:
    """One payment of ``firm_id`` in USD, its direction the one its kind has."""
    return {
        "payment_id": pid,
        "firm_id": firm_id,
        "kind": kind,
        "direction": PAYMENT_DIRECTION[kind],
        "amount_usd": amount,
        "currency": "USD",
        "counterparty_id": cp,
        "occurred_at": occurred,
        "due_at": due,
        "paid_at": paid,
    }
