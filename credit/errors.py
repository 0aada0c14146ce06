"""The errors a use case can raise (:mod:`credit.service`), each meaning one thing to a caller.

They know nothing of HTTP or terminals: every entry point maps them once, the API to a status
code (:mod:`api.errors`), the command line to a message and an exit code
(:mod:`credit.commands.common`). The message is written for the person who reads it: what is
wrong and, where there is one, what to do.
"""

from __future__ import annotations


class UseCaseError(Exception):
    """A use case could not be carried out; ``str(exc)`` says why."""

    #: the HTTP status the API answers with (the API's one mapping reads it)
    status: int = 500


class NotFoundError(UseCaseError):
    """The firm (or the thing asked for) is not known."""

    status = 404


class InvalidInputError(UseCaseError):
    """The input cannot be used: records that break a rule, features that do not fit the
    model, a decision the offer engine cannot price."""

    status = 422


class UnavailableError(UseCaseError):
    """Something the use case needs is unavailable (model, store, policy): not the caller's
    fault, worth a retry later."""

    status = 503


class AuditUnavailableError(UnavailableError):
    """The audit log could not be written; the decision must not be returned."""
