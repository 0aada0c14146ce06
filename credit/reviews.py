"""The review queue: referred decisions, decided by named people, four eyes on big overrides.

A decision the policy refers opens a review in the same transaction that records the decision
(:meth:`credit.audit.AuditLog.record`), so no referred decision exists without its review.
A reviewer (a key with role ``reviewer`` and a holder name, or the operator on the command
line naming the holder) decides ``approved`` or ``declined`` (as the policy allows), with
reason codes from the documented lists (:mod:`credit.adverse`) and a note.

Deciding against the model's recommendation is an **override**. An override for more than the
policy's ``review.four_eyes_above`` (the amount applied for, else the automatic-approval limit)
needs a second holder: the first decision leaves the review ``awaiting_second``; a different
holder confirming it closes the review; deciding the other way closes it with that outcome
when that needs no second reviewer, or starts the wait again. The same holder cannot decide
twice.

Every action is a row in ``review_actions`` (insert-only); the review's state changes in the
same transaction, guarded by a version number so that two reviewers acting at once cannot both
win. Nothing is returned that was not recorded.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import SQLAlchemyError

from credit.adverse import ADVERSE_REASONS, APPROVAL_REASONS
from credit.errors import InvalidInputError, NotFoundError, UnavailableError, UseCaseError
from credit.events import emit, event_row, written

Status = Literal["open", "awaiting_second", "closed"]
STATUSES: tuple[Status, ...] = ("open", "awaiting_second", "closed")
MAX_NOTE = 2000
MAX_HOLDER = 80

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TS = sa.DateTime(timezone=True)
_meta = sa.MetaData()
reviews = sa.Table(
    "reviews",
    _meta,
    sa.Column("review_id", sa.String(40), primary_key=True),
    sa.Column("decision_id", sa.String(40), nullable=False, unique=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("firm_id", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("recommendation", sa.String(16), nullable=False),
    sa.Column("grade", sa.String(8), nullable=False),
    sa.Column("exposure", sa.Float, nullable=False),
    sa.Column("terms", _JSON, nullable=False),
    sa.Column("opened_at", _TS, nullable=False),
    sa.Column("pending_outcome", sa.String(16)),
    sa.Column("outcome", sa.String(16)),
    sa.Column("closed_at", _TS),
    sa.Column("version", sa.Integer, nullable=False),
)
review_actions = sa.Table(
    "review_actions",
    _meta,
    sa.Column("action_id", sa.String(40), primary_key=True),
    sa.Column("review_id", sa.String(40), nullable=False),
    sa.Column("holder", sa.String(80), nullable=False),
    sa.Column("key_id", sa.String(32)),
    sa.Column("channel", sa.String(8), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("reason_codes", _JSON, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    # what the action did: closed the review, or awaits a second reviewer
    sa.Column("effect", sa.String(16), nullable=False),
    sa.Column("at", _TS, nullable=False),
)


class ReviewConflictError(UseCaseError):
    """The review cannot take this action now (closed, or the same holder again)."""

    status = 409


def new_review_id() -> str:
    return "rev_" + secrets.token_hex(16)


def _utc(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _iso(dt: datetime | None) -> str | None:
    u = _utc(dt)
    return None if u is None else u.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Action:
    holder: str
    key_id: str | None
    channel: str
    outcome: str
    reason_codes: list[str]
    note: str
    effect: str
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "holder": self.holder,
            "key_id": self.key_id,
            "channel": self.channel,
            "outcome": self.outcome,
            "reason_codes": self.reason_codes,
            "note": self.note,
            "effect": self.effect,
            "at": _iso(self.at),
        }


@dataclass(frozen=True)
class Review:
    """A review and its actions, oldest first."""

    review_id: str
    decision_id: str
    tenant: str
    firm_id: str
    status: Status
    recommendation: str
    grade: str
    exposure: float
    terms: dict[str, Any]
    opened_at: datetime
    pending_outcome: str | None
    outcome: str | None
    closed_at: datetime | None
    version: int
    actions: tuple[Action, ...] = ()

    @property
    def override(self) -> bool | None:
        """Whether the final outcome went against the model (``None`` while open)."""
        return None if self.outcome is None else self.outcome != self.recommendation

    def to_dict(self) -> dict[str, Any]:
        return {
            "review_id": self.review_id,
            "decision_id": self.decision_id,
            "firm_id": self.firm_id,
            "status": self.status,
            "recommendation": self.recommendation,
            "grade": self.grade,
            "exposure": self.exposure,
            "four_eyes_above": self.terms.get("four_eyes_above"),
            "allowed_outcomes": self.terms.get("outcomes"),
            "opened_at": _iso(self.opened_at),
            "pending_outcome": self.pending_outcome,
            "outcome": self.outcome,
            "override": self.override,
            "closed_at": _iso(self.closed_at),
            "actions": [a.to_dict() for a in self.actions],
        }


def review_row(
    review_id: str,
    decision_id: str,
    tenant: str,
    firm_id: str,
    recommendation: str,
    grade: str,
    exposure: float,
    terms: dict[str, Any],
    opened_at: datetime,
) -> dict[str, Any]:
    """The ``reviews`` row a referred decision opens (written with the decision)."""
    return {
        "review_id": review_id,
        "decision_id": decision_id,
        "tenant": tenant,
        "firm_id": firm_id,
        "status": "open",
        "recommendation": recommendation,
        "grade": grade,
        "exposure": exposure,
        "terms": terms,
        "opened_at": opened_at,
        "pending_outcome": None,
        "outcome": None,
        "closed_at": None,
        "version": 0,
    }


def reason_list(outcome: str) -> dict[str, str]:
    """The reason codes a reviewer may give for ``outcome``."""
    return ADVERSE_REASONS if outcome == "declined" else APPROVAL_REASONS


def check_action(
    review: Review, outcome: str, reason_codes: Sequence[str], note: str, holder: str
) -> None:
    """:class:`InvalidInputError` (422) for an outcome the policy does not allow, reason codes
    not in the documented list, a missing note or holder; nothing is recorded."""
    allowed = list(review.terms.get("outcomes") or ["approved", "declined"])
    if outcome not in allowed:
        raise InvalidInputError(
            f"outcome {outcome!r} is not allowed by the policy for this review; "
            f"allowed: {', '.join(allowed)}"
        )
    if not holder or len(holder) > MAX_HOLDER:
        raise InvalidInputError(
            f"a review action must name its holder (1 to {MAX_HOLDER} characters)"
        )
    codes = reason_list(outcome)
    if not reason_codes:
        raise InvalidInputError(
            f"give at least one reason code for {outcome}: {', '.join(codes)} (docs/decisioning.md)"
        )
    if len(reason_codes) > 4:
        raise InvalidInputError("give at most four reason codes")
    bad = [c for c in reason_codes if c not in codes]
    if bad:
        raise InvalidInputError(
            f"reason code(s) {', '.join(map(repr, bad))} not in the documented list for "
            f"{outcome}: {', '.join(codes)} (docs/decisioning.md)"
        )
    if len(set(reason_codes)) != len(reason_codes):
        raise InvalidInputError("reason codes must not repeat")
    if not note.strip() or len(note) > MAX_NOTE:
        raise InvalidInputError(f"note must be 1 to {MAX_NOTE} characters")


class ReviewStore:
    """Reviews and their actions on the service database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _read(self, conn: sa.Connection, where: Any) -> list[Review]:
        rows = conn.execute(sa.select(reviews).where(where)).mappings().all()
        if not rows:
            return []
        ids = [r["review_id"] for r in rows]
        acts: dict[str, list[Action]] = {i: [] for i in ids}
        q = (
            sa.select(review_actions)
            .where(review_actions.c.review_id.in_(ids))
            .order_by(review_actions.c.at, review_actions.c.action_id)
        )
        for a in conn.execute(q).mappings():
            acts[a["review_id"]].append(
                Action(
                    holder=a["holder"],
                    key_id=a["key_id"],
                    channel=a["channel"],
                    outcome=a["outcome"],
                    reason_codes=list(a["reason_codes"]),
                    note=a["note"],
                    effect=a["effect"],
                    at=_utc(a["at"]),  # type: ignore[arg-type]
                )
            )
        return [
            Review(
                review_id=r["review_id"],
                decision_id=r["decision_id"],
                tenant=r["tenant"],
                firm_id=r["firm_id"],
                status=r["status"],
                recommendation=r["recommendation"],
                grade=r["grade"],
                exposure=float(r["exposure"]),
                terms=dict(r["terms"]),
                opened_at=_utc(r["opened_at"]),  # type: ignore[arg-type]
                pending_outcome=r["pending_outcome"],
                outcome=r["outcome"],
                closed_at=_utc(r["closed_at"]),
                version=int(r["version"]),
                actions=tuple(acts[r["review_id"]]),
            )
            for r in rows
        ]

    def get(self, review_id: str, tenant: str | None) -> Review:
        """The review if ``tenant`` owns it (``None``: anyone's), else :class:`NotFoundError`."""
        where = reviews.c.review_id == review_id
        if tenant is not None:
            where = sa.and_(where, reviews.c.tenant == tenant)
        try:
            with self.engine.connect() as conn:
                found = self._read(conn, where)
        except SQLAlchemyError as exc:
            raise UnavailableError("the service database is unavailable; retry later") from exc
        if not found:
            raise NotFoundError(f"no review {review_id!r} for you (see GET /v1/reviews)")
        return found[0]

    def by_decision(self, decision_id: str) -> Review | None:
        with self.engine.connect() as conn:
            found = self._read(conn, reviews.c.decision_id == decision_id)
        return found[0] if found else None

    def find(self, tenant: str | None, status: str | None = None, limit: int = 100) -> list[Review]:
        """Reviews of ``tenant`` (``None``: all), oldest first, optionally in one status."""
        if status is not None and status not in STATUSES:
            raise InvalidInputError(f"status must be one of {', '.join(STATUSES)}; got {status!r}")
        conds = []
        if tenant is not None:
            conds.append(reviews.c.tenant == tenant)
        if status is not None:
            conds.append(reviews.c.status == status)
        where = sa.and_(sa.true(), *conds)
        try:
            with self.engine.connect() as conn:
                out = self._read(conn, where)
        except SQLAlchemyError as exc:
            raise UnavailableError("the service database is unavailable; retry later") from exc
        out.sort(key=lambda r: (r.opened_at, r.review_id))
        return out[:limit]

    def all_closed(self) -> list[Review]:
        """Every closed review (for reports)."""
        with self.engine.connect() as conn:
            return self._read(conn, reviews.c.status == "closed")

    def decide(
        self,
        review_id: str,
        tenant: str | None,
        *,
        holder: str,
        key_id: str | None,
        channel: str,
        outcome: str,
        reason_codes: Sequence[str],
        note: str,
    ) -> Review:
        """Record a reviewer's decision and move the review on (see the module's docstring).

        Raises :class:`NotFoundError` (unknown review), :class:`ReviewConflictError` (closed,
        the same holder again, or changed meanwhile), :class:`InvalidInputError` (outcome or
        codes not allowed) and :class:`UnavailableError` (not recorded).
        """
        review = self.get(review_id, tenant)
        if review.status == "closed":
            raise ReviewConflictError(
                f"review {review_id} is already closed (outcome {review.outcome}); "
                "a closed review cannot be decided again"
            )
        check_action(review, outcome, list(reason_codes), note, holder)
        if review.status == "awaiting_second":
            first = review.actions[-1].holder if review.actions else None
            if holder == first:
                raise ReviewConflictError(
                    f"{holder} already decided this review; the override of the model needs "
                    "a second reviewer (four eyes): another holder must decide it"
                )
        override = outcome != review.recommendation
        four_eyes = float(review.terms.get("four_eyes_above", float("inf")))
        needs_two = override and review.exposure > four_eyes
        confirmed = review.status == "awaiting_second" and outcome == review.pending_outcome
        now = datetime.now(UTC)
        values: dict[str, Any]
        if needs_two and not confirmed:
            values = {"status": "awaiting_second", "pending_outcome": outcome}
            effect = "awaiting_second"
        else:
            values = {
                "status": "closed",
                "pending_outcome": None,
                "outcome": outcome,
                "closed_at": now,
            }
            effect = "closed"
        try:
            with self.engine.begin() as conn:
                done = conn.execute(
                    reviews.update()
                    .where(
                        reviews.c.review_id == review_id,
                        reviews.c.version == review.version,
                    )
                    .values(**values, version=review.version + 1)
                )
                if done.rowcount != 1:
                    raise ReviewConflictError(
                        f"review {review_id} changed while you decided it; read it again"
                    )
                conn.execute(
                    review_actions.insert().values(
                        action_id="act_" + secrets.token_hex(12),
                        review_id=review_id,
                        holder=holder,
                        key_id=key_id,
                        channel=channel,
                        outcome=outcome,
                        reason_codes=list(reason_codes),
                        note=note,
                        effect=effect,
                        at=now,
                    )
                )
                if effect == "closed":  # the outbox: the event goes in with the outcome
                    emit(conn, [review_event(review, holder, outcome, reason_codes, override, now)])
        except SQLAlchemyError as exc:
            raise UnavailableError(
                "the service database is unavailable, so the review decision was not "
                "recorded; retry later"
            ) from exc
        if effect == "closed":
            written()
        return self.get(review_id, tenant)


def review_event(
    review: Review,
    holder: str,
    outcome: str,
    reason_codes: Sequence[str],
    override: bool,
    at: datetime,
) -> dict[str, Any]:
    """The ``review.completed`` event of a review closed with ``outcome``."""
    data = {
        "review_id": review.review_id,
        "decision_id": review.decision_id,
        "firm_id": review.firm_id,
        "outcome": outcome,
        "recommendation": review.recommendation,
        "override": override,
        "reason_codes": list(reason_codes),
        "decided_by": holder,
        "closed_at": at.isoformat(),
    }
    return event_row(review.tenant, "review.completed", data, firm_id=review.firm_id, now=at)
