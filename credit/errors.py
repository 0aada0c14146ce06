"""The errors a use case can raise (:mod:`credit.service`), each meaning one thing to a caller.

They know nothing of HTTP or terminals: every entry point maps them once, the API to a status
code (:mod:`api.errors`), the command line to a message and an exit code
(:mod:`credit.commands.common`). The message is written for the person who reads it: what is
wrong and, where there is one, what to do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class UseCaseError(Exception):
    """A use case could not be carried out; ``str(exc)`` says why."""

    #: the HTTP status the API answers with (the API's one mapping reads it)
    status: int = 500
    #: what went wrong item by item, where there is more than one message's worth (the API
    #: renders it as its ``detail`` list)
    details: list[dict[str, Any]] | None = None


class NotFoundError(UseCaseError):
    """The firm (or the thing asked for) is not known."""

    status = 404


class NotSharedError(NotFoundError):
    """The caller has no active consent for the firm: answered exactly as an unknown firm, so
    the answer says nothing about whether the firm exists (only the seller's own pages say
    more)."""


class InvalidInputError(UseCaseError):
    """The input cannot be used: records that break a rule, features that do not fit the
    model, a decision the offer engine cannot price."""

    status = 422


class RejectedRecordsError(InvalidInputError):
    """Posted records break the data contract: ``details`` lists every rejected record as
    ingestion reports it (``record_type``, ``index``, ``record_id``, ``field``, ``reason``)."""

    def __init__(self, rejected: Sequence[Mapping[str, Any]]) -> None:
        self.details = [dict(r) for r in rejected]
        shown = "; ".join(
            f"{r['record_type']}[{r['index']}] {r['field']}: {r['reason']}"
            for r in self.details[:3]
        )
        more = f"; and {len(self.details) - 3} more" if len(self.details) > 3 else ""
        super().__init__(
            f"{len(self.details)} posted record(s) break the data contract: {shown}{more}"
        )


class UnavailableError(UseCaseError):
    """Something the use case needs is unavailable (model, store, policy): not the caller's
    fault, worth a retry later."""

    status = 503


class AuditUnavailableError(UnavailableError):
    """The audit log could not be written; the decision must not be returned."""
