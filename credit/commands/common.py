"""What the commands share: the champion model, the use cases, and one way to fail.

A command parses its options, calls a use case of :class:`credit.service.CreditService`
(built here by :func:`service`) and prints the answer. A use case's typed error
(:mod:`credit.errors`) becomes one line on standard error and exit code 1 through
:func:`exit_for`; a bad option is exit code 2 (:func:`fail`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

import typer

from credit.errors import UseCaseError

if TYPE_CHECKING:  # pragma: no cover
    from credit.scoring import ScoringModel
    from credit.service import CreditService
    from features.online import OnlineStore

T = TypeVar("T")

#: The tenant a command's decisions are recorded under when it names none.
OPERATOR_TENANT = "operator"


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on standard error; return the exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def exit_for(exc: UseCaseError) -> typer.Exit:
    """The command line's one mapping of a use case's error: its message, exit code 1."""
    return fail(str(exc), 1)


def load_champion() -> ScoringModel:
    """The registry's champion (or its cached copy), or exit 1 saying why."""
    from credit.scoring import CHAMPION_URI, ModelUnavailableError, ScoringModel
    from credit.settings import get_settings

    try:
        settings = get_settings()
        return ScoringModel.load(
            CHAMPION_URI,
            tracking_uri=settings.tracking_uri,
            registry_timeout=settings.registry_timeout_seconds,
        )
    except ModelUnavailableError as exc:
        raise fail(str(exc)) from exc


def online_store() -> OnlineStore:
    """The online store of the configured service database."""
    from credit.settings import get_settings
    from features.online import OnlineStore

    return OnlineStore(get_settings().service_database_url)


def service(model: ScoringModel) -> CreditService:
    """The use cases as the command line runs them: the configured stores and policies,
    ``model`` in service, and the service's audit log, so a decision the command prints is
    recorded like one the API returns (``GET /v1/decisions/{id}`` finds it)."""
    from credit.audit import AuditLog
    from credit.db import get_engine, upgrade
    from credit.service import CreditService
    from credit.settings import get_settings

    engine = get_engine()
    upgrade(engine)
    return CreditService.from_settings(
        get_settings(), model=lambda: model, online=online_store(), audit=AuditLog(engine)
    )


def parse_as_of(value: str | None, option: str = "--as-of") -> datetime | None:
    """An ``--as-of`` value as a UTC datetime (``None`` when not given), or exit 2 when it is
    not ISO 8601 or lies outside the range the core accepts
    (:func:`credit.decisions.checked_as_of`)."""
    from credit.decisions import AsOfRangeError, checked_as_of

    if not value:
        return None
    try:
        return checked_as_of(value, option)
    except AsOfRangeError as exc:  # it names the option and the range
        raise fail(str(exc), 2) from exc
    except ValueError as exc:
        raise fail(f"{option}: {exc}", 2) from exc


def run(use_case: Callable[[CreditService], T]) -> T:
    """Run one use case with the champion in service; its typed error exits 1."""
    model = load_champion()
    try:
        return use_case(service(model))
    except UseCaseError as exc:
        raise exit_for(exc) from exc
