"""The use cases: score a firm, score posted records, score a batch, make a firm's offers.

Every entry point calls these and nothing else: ``POST /v1/score``, ``/v1/score/batch``,
``GET /v1/firms/{id}/offers``, ``GET /v1/firms/{id}/recourse``, the seller page,
``credit score`` and ``credit offers`` parse their input, call one method of
:class:`CreditService` and render what comes back. The steps of each use case (find the
firm's features, score them with the one scoring core, size and price the offers, record the
decision before anyone sees it) are written here once, so a rule added to "score a firm"
reaches every entry point.

The service reads through small ports, so a use case does not care which store answers:

* a :class:`FeatureSource` gives a firm's features as of a moment: the online store
  (:class:`OnlineFeatures`), records posted with the request or kept in the record store
  (:class:`RecordFeatures` over a :class:`RecordSource`);
* a :class:`RecordSource` gives a firm's trade records before a moment (the DuckDB record
  store, :class:`RecordStore`, or records posted in memory, :class:`PostedRecords`);
* the audit log (:class:`credit.audit.AuditLog`, optional: without one nothing is recorded).

Errors are typed (:mod:`credit.errors`); each entry point maps them once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pandas as pd
from sqlalchemy.exc import SQLAlchemyError

from credit.audit import AuditLog
from credit.consent import (
    Consent,
    ConsentStateError,
    ConsentStore,
    Grant,
    check_terms,
)
from credit.decisioning import evaluate
from credit.decisions import Decision, Explain, decide, outcome_fields, request_hash, to_utc
from credit.errors import (
    AuditUnavailableError,
    InvalidInputError,
    NotFoundError,
    NotSharedError,
    RejectedRecordsError,
    UnavailableError,
    UseCaseError,
)
from credit.fastpath.dbapi import one_connection
from credit.ingest import validate_records
from credit.ledger import Ledger, PushResult, StoredRecord
from credit.lineage import KnownRecords, as_frames, load_known
from credit.links import (
    LinkRecord,
    LinkStore,
    SellerLink,
    link_secret,
    sign_seller_link,
    verify_seller_link,
)
from credit.notices import build_notice
from credit.offers import RECORD_KINDS, OfferError, OfferSet, compute_bases, make_offers
from credit.policy import Policy, PolicyError, policy_for_tenant
from credit.reasons import MISSING_PREFIX, NOT_SHARED_PREFIX
from credit.records import RECORD_TYPES
from credit.recourse import Recourse, RecourseError, find_plans
from credit.reviews import Review, ReviewStore, new_review_id, review_row
from credit.scoring import ScoringInputError, ScoringModel
from credit.settings import Settings
from credit.store import open_store
from credit.webhooks import WebhookStore
from features import catalog
from features.pipeline import build, compute

NO_MODEL = "no model loaded: train and promote one, then POST /v1/admin/reload"
AUDIT_DOWN = "the audit log is unavailable, so no decision was made; retry later"
#: The one answer for a firm the caller may not see, whether or not it exists.
NOT_SHARED = "firm {firm_id} not found or not shared with you"
CREDIT_ASSESSMENT = "credit_assessment"
DB_DOWN = "the service database is unavailable; retry later"


# --------------------------------------------------------------------------------------------
# Ports
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FirmFeatures:
    """One firm's feature vector as of a moment, and where it came from."""

    firm_id: str
    as_of: datetime  # timezone-aware UTC
    values: Mapping[str, Any]
    source: str  # recorded with the decision: online_store, posted, record_store
    #: the values describe the records ingested at or before this moment (``None``: unknown)
    knowledge_at: datetime | None = None
    #: the providers whose records fed the values, those withheld under the consent, and
    #: (computed on the spot) the ingestions of those records
    providers: tuple[str, ...] = ()
    withheld: tuple[str, ...] = ()
    ingestions: tuple[str, ...] | None = None


class FeatureSource(Protocol):
    """Where a firm's features come from."""

    def features(self, firm_id: str, as_of: datetime | None) -> FirmFeatures:
        """The firm's features as of ``as_of`` (``None``: the latest there are).

        Raises :class:`NotFoundError` when the source has none for the firm and
        :class:`UnavailableError` when the source cannot be read.
        """
        ...


class SnapshotStore(Protocol):
    """What the online store offers the service (:class:`features.online.OnlineStore`; a
    store may also offer ``snapshot(firm_id, as_of)``, which adds when the snapshot was
    written)."""

    def get(
        self, firm_id: str, as_of: datetime | None = None
    ) -> tuple[datetime, Mapping[str, float]] | None: ...


class RecordSource(Protocol):
    """Where a firm's trade records come from."""

    def load(self, firm_id: str, as_of: datetime) -> dict[str, Any]:
        """The firm's records whose event time is before ``as_of``: record type -> a frame
        or a list of records; ``firms`` (when present) holds the firm's own row."""
        ...


class Caller(Protocol):
    """Who asks: the tenant and the key it used (an API principal; none on the CLI)."""

    @property
    def tenant(self) -> str: ...

    @property
    def key_id(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Party:
    """A caller named by its tenant alone: a seller link acting for its platform, the
    command line, a scheduled job. ``operator=True`` is the operator of the installation (the
    command line): it reads every firm's records without a consent, and its decisions are
    recorded as such."""

    tenant: str = "operator"
    key_id: str | None = None
    operator: bool = False


def is_operator(caller: Caller) -> bool:
    return isinstance(caller, Party) and caller.operator


class DecisionObserver(Protocol):
    """Told of recorded decisions and of audit failures (the service's metrics)."""

    def decisions_recorded(self, decisions: Sequence[Decision]) -> None: ...

    def audit_failed(self, n: int) -> None: ...


# --------------------------------------------------------------------------------------------
# Feature and record sources
# --------------------------------------------------------------------------------------------


class OnlineFeatures:
    """The online store: the latest materialized snapshot at or before the moment asked for.

    ``store`` is ``None`` when the store could not be opened; ``error`` then says why.
    """

    source = "online_store"

    def __init__(self, store: SnapshotStore | None, error: str | None = None) -> None:
        self.store = store
        self.error = error

    def features(self, firm_id: str, as_of: datetime | None) -> FirmFeatures:
        if self.store is None:
            raise UnavailableError(self.error or "online store unavailable")
        snapshot = getattr(self.store, "snapshot", None)
        try:
            found = snapshot(firm_id, as_of) if snapshot else self.store.get(firm_id, as_of=as_of)
        except Exception as exc:  # the store is down, not the caller's fault
            raise UnavailableError(f"online store unavailable: {type(exc).__name__}") from exc
        if found is None:
            when = f" at or before {as_of:%Y-%m-%d}" if as_of is not None else ""
            raise NotFoundError(
                f"firm {firm_id} has no features in the online store{when}; "
                "run `credit features materialize`"
            )
        row: tuple[Any, ...] = tuple(found)
        feats_as_of, values = row[0], row[1]
        written = to_utc(row[2]) if len(row) > 2 and row[2] is not None else None
        return FirmFeatures(firm_id, to_utc(feats_as_of), values, self.source, written)


class PostedRecords:
    """Records that came with a request (record type -> list of records, and the firm).

    They pass the data contract as ingested files do (:func:`credit.ingest.validate_records`:
    the same rules, the same SQL) or :meth:`load` raises :class:`RejectedRecordsError`
    listing every rejected record.
    """

    def __init__(self, records: Mapping[str, Any], firm: Mapping[str, Any] | None) -> None:
        self.records = records
        self.firm = firm

    def load(self, firm_id: str, as_of: datetime) -> dict[str, Any]:
        out = dict(self.records)
        if self.firm is not None:
            out["firms"] = [dict(self.firm)]
        try:
            check = validate_records({k: list(v) for k, v in out.items()})
        except KeyError as exc:  # a record type the contract does not know
            raise InvalidInputError(str(exc.args[0])) from exc
        if check.rejected:
            raise RejectedRecordsError([asdict(r) for r in check.rejected])
        return out


def store_problem(exc: BaseException) -> str:
    """What an unreadable record store means to a caller. The embedded record store is one
    DuckDB file with one writer at a time: while ``credit ingest`` or a feature build writes
    it, other processes cannot open it, and records pushed over HTTP (kept in the service
    database) are unaffected."""
    if "lock" in str(exc).lower():
        return (
            "record store unavailable: it is being written (credit ingest or credit features "
            "is running; the embedded DuckDB store has one writer at a time); retry when it "
            "finishes"
        )
    return f"record store unavailable: {type(exc).__name__}"


class RecordStore:
    """A firm's records from the record store (DuckDB, opened read-only for each read) and,
    with a ``ledger``, the records pushed over HTTP: as known at a moment, from the
    providers a consent covers (:func:`credit.lineage.load_known`).

    ``columns="offers"`` returns the record types the offer engine reads
    (:data:`credit.offers.RECORD_KINDS`); ``"all"`` every record type and the firm's own row,
    for computing features.
    """

    def __init__(
        self,
        path: Path | Callable[[], Path],
        columns: str = "offers",
        ledger: Ledger | None = None,
    ) -> None:
        self._path = path
        self.columns = columns
        self.ledger = ledger

    @property
    def path(self) -> Path:
        """The store's file (read at each use: the service's settings may change)."""
        return Path(self._path() if callable(self._path) else self._path)

    def known(
        self,
        firm_id: str,
        as_of: datetime,
        known_at: datetime | None = None,
        sources: frozenset[str] | None = None,
        strict: bool = True,
    ) -> KnownRecords:
        """The firm's records with their lineage; :class:`UnavailableError` when a store
        cannot be read. ``strict``: a missing record store file is an error unless the firm
        has pushed records (its records may have come in files: unreadable, not empty);
        otherwise it reads as no records."""
        path = self.path
        if strict and not path.exists() and (self.ledger is None or not self._pushed(firm_id)):
            raise UnavailableError(
                f"record store unavailable: record store {path} does not exist; "
                "run `credit ingest DIR` first"
            )
        try:
            return load_known(
                path, self.ledger, firm_id, as_of, known_at or datetime.now(UTC), sources
            )
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc
        except (duckdb.Error, OSError) as exc:  # locked by a writer, corrupt file
            raise UnavailableError(store_problem(exc)) from exc

    def _pushed(self, firm_id: str) -> bool:
        try:
            return self.ledger is not None and self.ledger.has_records(firm_id)
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc

    def load(
        self,
        firm_id: str,
        as_of: datetime,
        known_at: datetime | None = None,
        sources: frozenset[str] | None = None,
    ) -> dict[str, Any]:
        frames = as_frames(self.known(firm_id, as_of, known_at, sources))
        if self.columns == "offers":
            return {k: frames[k] for k in RECORD_KINDS}
        return frames


class RecordFeatures:
    """Features computed on the spot from a firm's records (the online feature path,
    :func:`features.pipeline.compute`): the same catalog query as the batch pipeline."""

    def __init__(self, records: RecordSource, source: str) -> None:
        self.records = records
        self.source = source

    def features(self, firm_id: str, as_of: datetime | None) -> FirmFeatures:
        when = to_utc(as_of) if as_of is not None else datetime.now(UTC)
        loaded = self.records.load(firm_id, when)
        firms = loaded.pop("firms", None)
        firm: Mapping[str, Any] | None = None
        if isinstance(firms, pd.DataFrame) and len(firms):
            firm = {str(k): v for k, v in firms.iloc[0].items()}
        elif isinstance(firms, Sequence) and len(firms):
            firm = firms[0]
        elif self.source == "record_store":
            raise NotFoundError(f"firm {firm_id} is not in the record store")
        try:
            values = compute(loaded, when, firm=firm)
        except ValueError as exc:  # the records break a rule the schema cannot see
            raise InvalidInputError(f"records cannot be turned into features: {exc}") from exc
        return FirmFeatures(firm_id, when, values, self.source)


# --------------------------------------------------------------------------------------------
# Use cases
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreItem:
    """One request to score: by ``firm_id`` from the service's features, or from posted
    ``records`` (with ``firm``). ``request`` is what the caller sent (hashed into the audit
    log)."""

    firm_id: str
    as_of: datetime | None = None
    explain: Explain = "top"
    records: Mapping[str, Any] | None = None
    firm: Mapping[str, Any] | None = None
    request: Mapping[str, Any] = field(default_factory=dict)
    #: the amount applied for, in the caller's policy currency (``None``: not given)
    amount: float | None = None


@dataclass(frozen=True)
class FirmOffers:
    """A recorded decision, its offers and the firm's records behind them."""

    decision: Decision
    offers: OfferSet
    records: dict[str, Any]


@dataclass(frozen=True)
class BatchResult:
    """The model version a batch was scored with, and per item its decision or error."""

    model: dict[str, str | None]
    results: list[Decision | UseCaseError]


class CreditService:
    """The use cases over the service's model, stores, policies, consents and audit log.

    Parameters
    ----------
    model : returns the model in service (``None`` when none is loaded); called once per
        use case, so a batch is scored by one model version even during a reload.
    features : the firm-by-id feature source (the online store).
    records : the firm's trade records (the record store and the pushed records), for
        offers and for features computed on the spot.
    audit : where decisions are recorded before they are returned (``None``: not recorded,
        and the decision id is only an identifier of the printed answer).
    policies : tenant -> its lending policy.
    link_secret : the key that signs seller links.
    links : where issued seller links are recorded and checked (``None``: no links).
    observer : told of every recorded decision and audit failure (metrics).
    consents : the consents (``None``: no service database, so only the operator may read
        firm data).
    ledger : the providers' ingestions and pushed records (``None``: no pushes, and every
        record counts as the operator's).
    webhooks : the tenants' webhook endpoints and events (``None``: no service database).
    """

    def __init__(
        self,
        model: Callable[[], ScoringModel | None],
        features: FeatureSource,
        records: RecordSource,
        policies: Callable[[str], Policy],
        audit: AuditLog | None = None,
        link_secret: Callable[[], str] | None = None,
        observer: DecisionObserver | None = None,
        links: LinkStore | None = None,
        consents: ConsentStore | None = None,
        ledger: Ledger | None = None,
        webhooks: WebhookStore | None = None,
    ) -> None:
        self._model = model
        self.features = features
        self.records = records
        self.policies = policies
        self.audit = audit
        self._link_secret = link_secret
        self.links = links
        self.observer = observer
        self.consents = consents
        self.ledger = ledger
        self.webhooks = webhooks

    @classmethod
    def from_settings(
        cls,
        settings: Settings | Callable[[], Settings],
        model: Callable[[], ScoringModel | None],
        online: SnapshotStore | None,
        online_error: str | None = None,
        audit: AuditLog | None = None,
        observer: DecisionObserver | None = None,
        links: LinkStore | None = None,
    ) -> CreditService:
        """The service as configured: online store, record store, the policy folder.

        ``settings`` may be a function returning them, read at each use (the service's
        state holds the settings in force). Seller links, consents and pushed records live
        in the audit log's database (none without an audit log).
        """

        def current() -> Settings:
            return settings() if callable(settings) else settings

        ledger = Ledger(audit.engine) if audit else None
        return cls(
            model=model,
            features=OnlineFeatures(online, online_error),
            records=RecordStore(lambda: current().store_path, ledger=ledger),
            policies=lambda tenant: policy_for_tenant(tenant, current().policy_dir),
            audit=audit,
            link_secret=lambda: link_secret(current()),
            observer=observer,
            links=links if links is not None else (LinkStore(audit.engine) if audit else None),
            consents=ConsentStore(audit.engine) if audit else None,
            ledger=ledger,
            webhooks=WebhookStore(audit.engine, current) if audit else None,
        )

    # ---- steps ---------------------------------------------------------------------------

    def model(self) -> ScoringModel:
        """The model in service, or :class:`UnavailableError`."""
        m = self._model()
        if m is None:
            raise UnavailableError(NO_MODEL)
        return m

    def authorize(self, caller: Caller, firm_id: str, purpose: str = CREDIT_ASSESSMENT) -> Grant:
        """The one check of who may read a firm's data: the operator always; anyone else
        under an active consent of its own tenant covering ``purpose`` (revocation and expiry
        count from the next call). Otherwise :class:`NotFoundError` with the answer an
        unknown firm gets, so the answer says nothing about whether the firm exists."""
        if is_operator(caller):
            return Grant(None, None)
        if self.consents is None:
            raise NotSharedError(NOT_SHARED.format(firm_id=firm_id))
        try:
            grant = self.consents.active(caller.tenant, firm_id, purpose)
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc
        if grant is None:
            raise NotSharedError(NOT_SHARED.format(firm_id=firm_id))
        return grant

    def _authorize_many(
        self, caller: Caller, firm_ids: Sequence[str], purpose: str = CREDIT_ASSESSMENT
    ) -> dict[str, Grant]:
        """:meth:`authorize` for a batch, in one read: the firms the caller may read."""
        if is_operator(caller):
            return {f: Grant(None, None) for f in firm_ids}
        if self.consents is None or not firm_ids:
            return {}
        try:
            return self.consents.active_many(caller.tenant, firm_ids, purpose)
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc

    def _providers(self, firm_id: str) -> dict[str, datetime]:
        if self.ledger is None:
            return {}
        try:
            return self.ledger.firm_providers(firm_id)
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc

    def _known(
        self,
        firm_id: str,
        as_of: datetime,
        known_at: datetime | None,
        sources: frozenset[str] | None,
        strict: bool = True,
    ) -> KnownRecords:
        known = getattr(self.records, "known", None)
        if known is None:  # a plain record source: every record counts, no lineage
            frames = self.records.load(firm_id, as_of)
            firms = frames.pop("firms", None)
            firm = None
            if isinstance(firms, pd.DataFrame) and len(firms):
                firm = {str(k): v for k, v in firms.iloc[0].items()}
            records: dict[str, list[dict[str, Any]]] = {
                k: (v.to_dict("records") if isinstance(v, pd.DataFrame) else list(v))  # type: ignore[misc]
                for k, v in frames.items()
            }
            return KnownRecords(records=records, firm=firm)
        out: KnownRecords = known(firm_id, as_of, known_at, sources, strict=strict)
        return out

    def scoped_features(self, firm_id: str, as_of: datetime | None, grant: Grant) -> FirmFeatures:
        """The firm's features under ``grant``.

        When the grant covers every provider of the firm and the online store's snapshot was
        written after the firm's latest records, the snapshot is used. Otherwise (records
        pushed or ingested since, or a consent covering only some providers) the features
        are computed on the spot from the records the grant covers, as of ``as_of`` (or now),
        as known now: the next score after a push sees the pushed records.
        """
        providers = grant.providers if grant.providers is not None else self._providers(firm_id)
        allowed = grant.sources
        withheld = () if allowed is None else tuple(sorted(set(providers) - allowed))
        if not withheld:
            try:
                found = self.features.features(firm_id, as_of)
            except NotFoundError:
                if not providers:
                    raise
                found = None
            if found is not None:
                last = max(providers.values(), default=None)
                if last is None or found.knowledge_at is None or found.knowledge_at >= last:
                    return replace(found, providers=tuple(sorted(providers)))
        when = to_utc(as_of) if as_of is not None else datetime.now(UTC)
        knowledge = datetime.now(UTC)
        known = self._known(firm_id, when, knowledge, allowed)
        if known.firm is None and not any(known.records.values()):
            raise NotFoundError(f"firm {firm_id} has no records shared with you")
        try:
            values = compute(known.records, when, firm=known.firm)
        except ValueError as exc:  # pragma: no cover - stored records passed the contract
            raise InvalidInputError(f"records cannot be turned into features: {exc}") from exc
        return FirmFeatures(
            firm_id,
            when,
            values,
            "record_store",
            knowledge,
            tuple(known.providers),
            tuple(withheld) or tuple(known.withheld),
            tuple(known.ingestions),
        )

    def _decide(
        self, model: ScoringModel, found: Sequence[FirmFeatures], explain: Sequence[Explain]
    ) -> list[Decision]:
        if not found:
            return []
        source = found[0].source
        try:
            decisions = decide(
                model, [(f.firm_id, f.as_of, f.values) for f in found], explain, source=source
            )
        except ScoringInputError as exc:
            raise InvalidInputError(f"the features do not fit the model: {exc}") from exc
        return decisions

    @staticmethod
    def _annotate(decision: Decision, found: FirmFeatures, grant: Grant | None) -> Decision:
        """The decision with its consent and lineage; a reason whose feature is missing
        because its records were not shared says so."""
        if grant is None:  # posted records: the caller's own
            return replace(decision, lineage={"providers": ["posted"], "withheld": []})
        if found.withheld:
            for r in decision.reasons:
                text = r.get("text") or ""
                if r.get("value") is None and text.startswith(MISSING_PREFIX):
                    r["text"] = NOT_SHARED_PREFIX + text[len(MISSING_PREFIX) :]
                    r["not_shared"] = True
        lineage: dict[str, Any] = {
            "providers": list(found.providers),
            "withheld": list(found.withheld),
        }
        if found.ingestions is not None:
            lineage["ingestions"] = list(found.ingestions)
        data = {**decision.data, "sources": list(found.providers)}
        if found.withheld:
            data["not_shared"] = list(found.withheld)
        return replace(
            decision,
            consent_id=grant.consent_id,
            lineage=lineage,
            knowledge_at=found.knowledge_at or decision.scored_at,
            data=data,
        )

    def policy(self, caller: Caller) -> Policy:
        """The caller's lending policy, or :class:`UnavailableError` when its file is invalid."""
        try:
            return self.policies(caller.tenant)
        except PolicyError as exc:
            raise UnavailableError(
                f"the lending policy of {caller.tenant} is invalid: {exc}"
            ) from exc

    def _judge(
        self,
        model: ScoringModel,
        decisions: Sequence[Decision],
        amounts: Sequence[float | None],
        caller: Caller,
        policy: Policy | None = None,
    ) -> list[Decision]:
        """Each decision with its outcome under the caller's policy (approve, decline or
        refer, :mod:`credit.decisioning`). A decision that is not approved always carries its
        reason codes (an adverse-action notice needs them), even when none were asked for;
        a referred one opens a review, written with it by :meth:`_record`."""
        if not decisions:
            return []
        policy = policy or self.policy(caller)
        grades = model.scale.grades
        out = []
        for d, amount in zip(decisions, amounts, strict=True):
            try:
                verdict = evaluate(policy, d.pd, d.grade, d.features, amount, grades)
            except PolicyError as exc:
                raise UnavailableError(
                    f"the lending policy of {caller.tenant} does not fit the model: {exc}"
                ) from exc
            reasons = d.reasons
            if verdict.outcome != "approved" and not reasons:
                (explained,) = decide(model, [(d.firm_id, d.as_of, d.features)], "top")
                reasons = explained.reasons
            review_id = (
                new_review_id()
                if verdict.outcome == "referred" and self.audit is not None
                else None
            )
            out.append(replace(d, verdict=verdict, reasons=reasons, review_id=review_id))
        return out

    def _review_rows(
        self, decisions: Sequence[Decision], caller: Caller, policy: Policy | None
    ) -> list[dict[str, Any]]:
        rows = []
        for d in decisions:
            if d.review_id is None or d.verdict is None:
                continue
            policy = policy or self.policy(caller)
            terms = {
                "outcomes": list(policy.decision.review.outcomes),
                "four_eyes_above": policy.decision.review.four_eyes_above,
                "policy": d.verdict.policy,
                "currency": policy.currency,
            }
            rows.append(
                review_row(
                    d.review_id,
                    d.decision_id,
                    caller.tenant,
                    d.firm_id,
                    d.verdict.recommendation,
                    d.grade,
                    d.verdict.exposure,
                    terms,
                    d.scored_at,
                )
            )
        return rows

    def _record(
        self,
        decisions: Sequence[Decision],
        caller: Caller,
        requests: Sequence[Mapping[str, Any]],
        offers: Sequence[dict[str, Any] | None] | None = None,
        policy: Policy | None = None,
    ) -> None:
        """Write the decisions to the audit log, with the reviews the referred ones open, or
        raise: nothing unrecorded is returned. ``policy``: the one the outcomes were judged
        under (default: the caller's)."""
        if self.audit is None or not decisions:
            return
        hashes = [request_hash(r) for r in requests]
        review_rows = self._review_rows(decisions, caller, policy)
        try:
            self.audit.record(
                decisions,
                caller.tenant,
                caller.key_id,
                hashes,
                offers=offers,
                review_rows=review_rows,
            )
        except AuditUnavailableError as exc:
            if self.observer is not None:
                self.observer.audit_failed(len(decisions))
            raise AuditUnavailableError(AUDIT_DOWN) from exc
        if self.observer is not None:
            self.observer.decisions_recorded(decisions)

    # ---- use cases: decisions ------------------------------------------------------------

    def firm_features(
        self, firm_id: str, as_of: datetime | None = None, *, caller: Caller
    ) -> FirmFeatures:
        """The firm's features as the caller may see them."""
        return self.scoped_features(firm_id, as_of, self.authorize(caller, firm_id))

    def decide_firm(
        self,
        firm_id: str,
        as_of: datetime | None = None,
        *,
        caller: Caller,
        explain: Explain = "top",
        request: Mapping[str, Any] | None = None,
        amount: float | None = None,
    ) -> Decision:
        """Score a firm on its features (latest, or at or before ``as_of``), judge it under
        the caller's policy (``amount``: applied for), recorded."""
        # the consent read and the audit write on one pooled connection (credit.fastpath)
        with ExitStack() as block:
            try:  # getting the connection is the first read: down is 503, as for the reads
                block.enter_context(one_connection(self.audit.engine if self.audit else None))
            except SQLAlchemyError as exc:
                raise UnavailableError(DB_DOWN) from exc
            grant = self.authorize(caller, firm_id)
            model = self.model()
            found = self.scoped_features(firm_id, as_of, grant)
            (decision,) = self._decide(model, [found], [explain])
            decision = self._annotate(decision, found, grant)
            (decision,) = self._judge(model, [decision], [amount], caller)
            self._record([decision], caller, [request or {"firm_id": firm_id}])
        return decision

    def decide_records(
        self,
        firm_id: str,
        records: Mapping[str, Any],
        firm: Mapping[str, Any] | None,
        as_of: datetime | None = None,
        *,
        caller: Caller,
        explain: Explain = "top",
        request: Mapping[str, Any] | None = None,
        amount: float | None = None,
    ) -> Decision:
        """Score a firm on records the caller posted with the request (features computed on
        the spot), judged and recorded. No stored record is read, so no consent is needed:
        the records are the caller's own."""
        model = self.model()
        found = RecordFeatures(PostedRecords(records, firm), "posted").features(firm_id, as_of)
        (decision,) = self._decide(model, [found], [explain])
        decision = self._annotate(decision, found, None)
        (decision,) = self._judge(model, [decision], [amount], caller)
        self._record([decision], caller, [request or {"firm_id": firm_id}])
        return decision

    def decide_batch(self, items: Sequence[ScoreItem], *, caller: Caller) -> BatchResult:
        """Score each item on its own; an item that fails gets its error, the others are
        scored by one model version and recorded in one transaction. Each item by firm id
        needs the caller's consent, as one score does.

        Raises :class:`UnavailableError` (no model) or :class:`AuditUnavailableError`
        (nothing recorded, nothing returned) for the batch as a whole.
        """
        model = self.model()
        grants = self._authorize_many(caller, [it.firm_id for it in items if it.records is None])
        results: list[Decision | UseCaseError | None] = [None] * len(items)
        found: dict[int, FirmFeatures] = {}
        for i, item in enumerate(items):
            try:
                if item.records is not None:
                    posted = PostedRecords(item.records, item.firm)
                    found[i] = RecordFeatures(posted, "posted").features(item.firm_id, item.as_of)
                elif item.firm_id not in grants:
                    raise NotSharedError(NOT_SHARED.format(firm_id=item.firm_id))
                else:
                    found[i] = self.scoped_features(item.firm_id, item.as_of, grants[item.firm_id])
            except UseCaseError as exc:
                results[i] = exc
        # One call to the core per source, so each decision is labelled with its own.
        for source in ("online_store", "record_store", "posted"):
            idx = [i for i, f in found.items() if f.source == source]
            if not idx:
                continue
            try:
                ds = self._decide(model, [found[i] for i in idx], [items[i].explain for i in idx])
                results_for = dict(zip(idx, ds, strict=True))
            except InvalidInputError:
                # Find the offending items one by one; the rest still get scored.
                results_for = {}
                for i in idx:
                    try:
                        results_for[i] = self._decide(model, [found[i]], [items[i].explain])[0]
                    except InvalidInputError as exc:
                        results[i] = exc
            for i, d in results_for.items():
                grant = None if source == "posted" else grants[items[i].firm_id]
                results[i] = self._annotate(d, found[i], grant)
        ok = sorted(i for i, r in enumerate(results) if isinstance(r, Decision))
        judged = self._judge(model, [results[i] for i in ok], [items[i].amount for i in ok], caller)  # type: ignore[misc]
        for i, d in zip(ok, judged, strict=True):
            results[i] = d
        self._record(
            [results[i] for i in ok],  # type: ignore[misc]
            caller,
            [items[i].request for i in ok],
        )
        return BatchResult(
            model=model.identity(),
            results=[r if r is not None else UnavailableError("not scored") for r in results],
        )

    def firm_offers(
        self,
        firm_id: str,
        as_of: datetime | None = None,
        *,
        caller: Caller,
        channel: str,
        policy: Policy | None = None,
    ) -> FirmOffers:
        """Score a firm, size and price its offers under the caller's policy (or ``policy``),
        and record the decision with the offer set it led to. The offers read the records
        the caller's consent covers, as the score does."""
        grant = self.authorize(caller, firm_id)
        model = self.model()
        found = self.scoped_features(firm_id, as_of, grant)
        policy = policy or self.policy(caller)
        (decision,) = self._decide(model, [found], ["top"])
        decision = self._annotate(decision, found, grant)
        (decision,) = self._judge(model, [decision], [None], caller, policy)
        known = self._known(firm_id, decision.as_of, decision.knowledge_at, grant.sources)
        frames = as_frames(known)
        records = {k: frames[k] for k in RECORD_KINDS}
        try:
            offers = make_offers(decision, compute_bases(records, decision.as_of), policy)
        except OfferError as exc:
            raise InvalidInputError(f"offers cannot be computed: {exc}") from exc
        request = {
            "channel": channel,
            "firm_id": firm_id,
            "as_of": None if as_of is None else to_utc(as_of).isoformat(),
            "policy": offers.policy,
        }
        self._record(
            [decision], caller, [request], offers=[offers.model_dump(mode="json")], policy=policy
        )
        return FirmOffers(decision=decision, offers=offers, records=records)

    def recourse(
        self,
        firm_id: str,
        target_grade: str | None = None,
        as_of: datetime | None = None,
        *,
        caller: Caller,
    ) -> Recourse:
        """Plans of actions on the firm's own records that reach ``target_grade`` (default:
        one grade better), from the records the caller's consent covers, as of the date its
        score is made (the latest features, or at or before ``as_of``). Nothing is recorded:
        no decision is made; the plans are recomputed from records and scored by the model
        in service (:func:`credit.recourse.find_plans`)."""
        grant = self.authorize(caller, firm_id)
        model = self.model()
        found = self.scoped_features(firm_id, as_of, grant)
        known = self._known(firm_id, found.as_of, datetime.now(UTC), grant.sources)
        if known.firm is None and not any(known.records.values()):
            raise NotFoundError(f"firm {firm_id} has no records shared with you")
        try:
            return find_plans(model, known.records, known.firm, found.as_of, target_grade)
        except RecourseError as exc:
            raise InvalidInputError(str(exc)) from exc
        except ScoringInputError as exc:
            raise InvalidInputError(f"the features do not fit the model: {exc}") from exc

    # ---- use cases: seller links ---------------------------------------------------------

    def seller_link(self, firm_id: str, *, caller: Caller, ttl_seconds: int) -> SellerLink:
        """A signed link to the firm's seller page for the caller (a platform), recorded with
        the caller's key, so that it dies with that key; an operator's link (no key) lives
        until it is revoked or expires. The page shows the firm's data, so the caller needs
        the seller's consent, as for a score."""
        grant = self.authorize(caller, firm_id)
        self.scoped_features(firm_id, None, grant)  # the firm must have data
        return self._sign_link(firm_id, caller, ttl_seconds)

    def _sign_link(self, firm_id: str, caller: Caller, ttl_seconds: int) -> SellerLink:
        secret, links = self._link_secret_value(), self._link_store()
        link = sign_seller_link(firm_id, caller.tenant, secret, ttl_seconds=ttl_seconds)
        try:
            links.record(link, caller.key_id)
        except SQLAlchemyError as exc:
            raise UnavailableError(
                "the service database is unavailable, so no link was made; retry later"
            ) from exc
        return link

    def open_seller_link(self, firm_id: str, token: str | None) -> SellerLink:
        """The link behind a seller page's token, if it may open ``firm_id``'s page now:
        genuine, for this firm, recorded, not revoked, not expired, and the key that made it
        still active.

        Raises :class:`credit.links.LinkError` (the page says why) or
        :class:`UnavailableError`.
        """
        link = verify_seller_link(token, firm_id, self._link_secret_value())
        try:
            self._link_store().check(link)
        except SQLAlchemyError as exc:
            raise UnavailableError("the service database is unavailable") from exc
        return link

    def revoke_seller_link(self, link_id: str, *, caller: Caller | None = None) -> LinkRecord:
        """Revoke one seller link now (idempotent); its page closes at the next view.

        ``caller``: the tenant that made it (another tenant's link is :class:`NotFoundError`,
        as an unknown one); ``None``: the operator, any link.
        """
        links = self._link_store()
        try:
            found = links.get(link_id)
            if found is None or (caller is not None and found.tenant != caller.tenant):
                raise NotFoundError(f"no seller link {link_id!r}")
            revoked = links.revoke(link_id)
        except SQLAlchemyError as exc:
            raise UnavailableError("the service database is unavailable; retry later") from exc
        if revoked is None:  # pragma: no cover - the row was there a moment ago
            raise NotFoundError(f"no seller link {link_id!r}")
        return revoked

    def _link_secret_value(self) -> str:
        if self._link_secret is None:
            raise UnavailableError("seller links are not configured")
        try:
            return self._link_secret()
        except (ValueError, OSError) as exc:
            raise UnavailableError(f"seller links are not configured: {exc}") from exc

    def _link_store(self) -> LinkStore:
        if self.links is None:
            raise UnavailableError("seller links are not configured (no service database)")
        return self.links

    # ---- use cases: records --------------------------------------------------------------

    def _ledger(self) -> Ledger:
        if self.ledger is None:
            raise UnavailableError("records cannot be pushed: no service database")
        return self.ledger

    def _stored_ids(self, record_type: str, ids: set[str]) -> set[str]:
        """Which of ``ids`` the DuckDB record store holds (for references of a push)."""
        path = getattr(self.records, "path", None)
        if path is None or not Path(path).exists():
            return set()
        id_field = RECORD_TYPES[record_type].id_field
        try:
            con = open_store(Path(path), read_only=True)
        except (duckdb.Error, OSError) as exc:
            raise UnavailableError(store_problem(exc)) from exc
        try:
            rows = con.execute(
                f"SELECT {id_field} FROM {record_type} "  # noqa: S608 - our names
                f"WHERE {id_field} IN (SELECT unnest($ids))",
                {"ids": sorted(ids)},
            ).fetchall()
        finally:
            con.close()
        return {str(r[0]) for r in rows}

    def push_records(
        self, records: Mapping[str, Sequence[Mapping[str, Any]]], *, caller: Caller, digest: str
    ) -> PushResult:
        """Store the records a provider pushed (validated as files are, idempotent on record
        IDs), registered as one ingestion of the caller's tenant. The firms' features are
        recomputed from their records at their next score."""
        ledger = self._ledger()
        try:
            return ledger.push(
                caller.tenant,
                caller.key_id,
                records,
                body_sha256=digest,
                known_elsewhere=self._stored_ids,
            )
        except KeyError as exc:
            raise InvalidInputError(str(exc.args[0])) from exc
        except SQLAlchemyError as exc:
            raise UnavailableError(
                "the service database is unavailable, so nothing was stored; retry later"
            ) from exc

    def push_export(
        self,
        content: str,
        *,
        firm_id: str,
        fmt: str | None,
        fx: str | None,
        caller: Caller,
        digest: str,
    ) -> dict[str, Any]:
        """Store a provider's export file (an Amazon settlement report, a Stripe balance
        CSV...) of ``firm_id``: read by its adapter (:mod:`credit.adapters`), the records
        pushed as :meth:`push_records` pushes them, and every source row accounted for
        (mapped, rejected or skipped, with its reason and original currency and amount)."""
        from credit.adapters import FormatError, adapt
        from credit.adapters.base import Context
        from credit.adapters.fx import Rates, RatesError

        try:
            rates = Rates.parse(fx, "the fx table") if fx else None
            adapted = adapt(content, Context(firm_id, rates), fmt, "the export")
        except (FormatError, RatesError) as exc:
            raise InvalidInputError(str(exc)) from exc
        rt = adapted.record_type
        result = self.push_records({rt: adapted.records}, caller=caller, digest=digest)
        id_field = RECORD_TYPES[rt].id_field
        for r in result.rejected:
            rid = str(adapted.records[r["index"]][id_field]) if r["index"] >= 0 else r["record_id"]
            adapted.reject_record(rid, f"the data contract rejects the record: {r['reason']}")
        rows = [
            {k: v for k, v in vars(row).items() if v is not None and v != ""}
            for row in adapted.rows
        ]
        try:
            self._ledger().keep_source_rows(result.ingestion_id, adapted.format, rows)
        except SQLAlchemyError as exc:
            raise UnavailableError(
                f"the records are stored (ingestion {result.ingestion_id}) but their source rows "
                "could not be kept: push the same export again once the database is back (it "
                "adds nothing twice)"
            ) from exc
        counts = adapted.counts()
        made = result.counts[rt]
        rows_add_up = counts["read"] == counts["mapped"] + counts["rejected"] + counts["skipped"]
        return {
            **result.to_dict(),
            "format": adapted.format,
            "firm_id": firm_id,
            "source_rows": counts,
            "reconciles": rows_add_up and made.read == made.accepted + made.rejected,
            "rows": rows,
        }

    def ingestion(self, ingestion_id: str, *, caller: Caller) -> dict[str, Any]:
        """One of the caller's ingestions: counts and every rejected row (another
        provider's is :class:`NotFoundError`, as an unknown one)."""
        try:
            found = self._ledger().batch(ingestion_id)
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc
        if found is None or (not is_operator(caller) and found["provider"] != caller.tenant):
            raise NotFoundError(f"no ingestion {ingestion_id!r} of yours")
        try:
            kept = self._ledger().source_rows(ingestion_id)
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc
        if kept:
            found["source_rows"] = kept
        return found

    def provided_records(
        self, firm_id: str, *, caller: Caller, record_type: str | None = None
    ) -> list[StoredRecord]:
        """The records of ``firm_id`` the caller pushed itself (a provider reads back only its
        own contributions)."""
        try:
            return self._ledger().records(firm_id, provider=caller.tenant, record_type=record_type)
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc

    # ---- use cases: consents -------------------------------------------------------------

    def _reviews(self) -> ReviewStore:
        if self.audit is None:
            raise UnavailableError("no service database, so no reviews")
        return ReviewStore(self.audit.engine)

    def _consent_store(self) -> ConsentStore:
        if self.consents is None:
            raise UnavailableError("consents are not configured (no service database)")
        return self.consents

    def request_consent(
        self,
        firm_id: str,
        *,
        caller: Caller,
        purposes: Sequence[str],
        months: int,
        sources: Sequence[str] | None,
        ttl_seconds: int,
    ) -> tuple[Consent, SellerLink]:
        """Ask the seller for consent: a request the seller approves or declines on a signed
        page (the link returned). The answer is the same whether or not the firm's data is
        held, so asking reveals nothing."""
        try:
            check_terms(purposes, months)
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from exc
        store = self._consent_store()
        link = self._sign_link(firm_id, caller, ttl_seconds)
        try:
            consent = store.request(
                firm_id,
                caller.tenant,
                purposes,
                months,
                requested_by=caller.tenant,
                key_id=caller.key_id,
                sources=sources,
                link_id=link.link_id,
            )
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc
        return consent, link

    def consent_request(self, firm_id: str, consent_id: str, token: str | None) -> Consent:
        """The request a seller's consent link opens: the link must be valid
        (:meth:`open_seller_link`) and be the one made for this request.

        Raises :class:`credit.links.LinkError` or :class:`NotFoundError`."""
        link = self.open_seller_link(firm_id, token)
        store = self._consent_store()
        try:
            consent = store.get(consent_id)
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc
        if consent is None or consent.firm_id != firm_id or consent.link_id != link.link_id:
            raise NotFoundError("no such consent request for this link")
        return consent

    def firm_sources(self, firm_id: str) -> list[str]:
        """The providers holding records of ``firm_id`` now (a consent's default sources)."""
        return sorted(self._providers(firm_id))

    def answer_consent(
        self,
        firm_id: str,
        consent_id: str,
        token: str | None,
        approve: bool,
        *,
        client: str | None = None,
    ) -> Consent:
        """The seller approves or declines a request on its signed page; the approval keeps
        the link, the time and the client address as evidence."""
        consent = self.consent_request(firm_id, consent_id, token)
        now = datetime.now(UTC)
        evidence = {
            "kind": "seller_confirmation",
            "link_id": consent.link_id,
            "at": now.isoformat(),
            "client": client,
            "answer": "approved" if approve else "declined",
        }
        try:
            return self._consent_store().decide(
                consent_id,
                approve,
                firm_providers=self.firm_sources(firm_id),
                evidence=evidence,
                now=now,
            )
        except ConsentStateError as exc:
            raise InvalidInputError(str(exc)) from exc
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc

    def seller_consents(self, firm_id: str, token: str | None) -> list[Consent]:
        """Every active consent of the firm, for the seller's consents page (any valid link
        of the firm opens it)."""
        self.open_seller_link(firm_id, token)
        try:
            found = self._consent_store().list(firm_id=firm_id, state="active")
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc
        return found

    def seller_revoke(self, firm_id: str, token: str | None, consent_id: str) -> Consent:
        """The seller revokes one of the firm's consents from its page."""
        self.open_seller_link(firm_id, token)
        return self._revoke(consent_id, by="seller", firm_id=firm_id)

    def attest_consent(
        self,
        firm_id: str,
        *,
        caller: Caller,
        grantee: str,
        purposes: Sequence[str],
        months: int,
        statement: str,
    ) -> Consent:
        """A provider attests that the seller agreed, on the provider's own site, to share
        the provider's records with ``grantee``. Only a provider holding records of the firm
        may attest, and only for its own records."""
        try:
            check_terms(purposes, months)
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from exc
        if caller.tenant not in self._providers(firm_id):
            raise NotSharedError(NOT_SHARED.format(firm_id=firm_id))
        try:
            return self._consent_store().attest(
                firm_id,
                grantee,
                purposes,
                months,
                provider=caller.tenant,
                key_id=caller.key_id,
                statement=statement,
            )
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc

    def list_consents(
        self,
        *,
        caller: Caller,
        firm_id: str | None = None,
        state: str | None = None,
        limit: int = 1000,
    ) -> list[Consent]:
        """The consents the caller is party to (grantee, requester or attesting provider);
        every consent for the operator."""
        tenant = None if is_operator(caller) else caller.tenant
        try:
            return self._consent_store().list(
                tenant=tenant, firm_id=firm_id, state=state, limit=limit
            )
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc

    def consent(self, consent_id: str, *, caller: Caller) -> Consent:
        """One consent the caller is party to (grantee, requester or attesting provider)."""
        try:
            found = self._consent_store().get(consent_id)
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc
        if found is None or (
            not is_operator(caller) and caller.tenant not in (found.grantee, found.requested_by)
        ):
            raise NotFoundError(f"no consent {consent_id!r}")
        return found

    def revoke_consent(self, consent_id: str, *, caller: Caller) -> Consent:
        """Revoke a consent: its grantee, the provider that attested it (or the tenant that
        asked for it), or the operator. Anyone else gets :class:`NotFoundError`."""
        tenant = None if is_operator(caller) else caller.tenant
        return self._revoke(consent_id, by=caller.tenant, tenant=tenant)

    def _revoke(
        self,
        consent_id: str,
        *,
        by: str,
        tenant: str | None = None,
        firm_id: str | None = None,
    ) -> Consent:
        store = self._consent_store()
        try:
            found = store.get(consent_id)
            if (
                found is None
                or (tenant is not None and tenant not in (found.grantee, found.requested_by))
                or (firm_id is not None and found.firm_id != firm_id)
            ):
                raise NotFoundError(f"no consent {consent_id!r}")
            revoked = store.revoke(consent_id, by)
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc
        assert revoked is not None
        return revoked

    # ---- use cases: lineage and replay ---------------------------------------------------

    # ---- use cases: reviews and notices ---------------------------------------------------

    # ---- use cases: webhooks and events (the tenant's own, never another's) ------------

    def _hooks(self) -> WebhookStore:
        if self.webhooks is None:
            raise UnavailableError("webhooks need the service database")
        return self.webhooks

    def create_webhook(
        self,
        url: str,
        event_types: Sequence[str],
        *,
        caller: Caller,
        description: str | None = None,
    ) -> tuple[dict[str, Any], str]:
        """A new endpoint of the caller's tenant, and its signing secret (shown this once)."""
        return self._hooks().create(
            caller.tenant, url, event_types, description=description, created_by=caller.key_id
        )

    def list_webhooks(self, *, caller: Caller) -> list[dict[str, Any]]:
        return self._hooks().endpoints(caller.tenant)

    def delete_webhook(self, webhook_id: str, *, caller: Caller) -> dict[str, Any]:
        return self._hooks().delete(caller.tenant, webhook_id)

    def test_webhook(self, webhook_id: str, *, caller: Caller) -> dict[str, Any]:
        return self._hooks().test(caller.tenant, webhook_id)

    def events(
        self,
        *,
        caller: Caller,
        type: str | None = None,
        firm_id: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """The caller's tenant's events with their deliveries and attempts."""
        return self._hooks().events(
            caller.tenant, type=type, firm_id=firm_id, after=after, limit=limit
        )

    def redeliver_event(self, event_id: str, *, caller: Caller) -> dict[str, Any]:
        return self._hooks().redeliver(caller.tenant, event_id)

    def reviews(
        self, *, caller: Caller, status: str | None = None, limit: int = 100
    ) -> list[Review]:
        """The caller's tenant's reviews (every tenant's, for the operator), oldest first."""
        tenant = None if is_operator(caller) else caller.tenant
        return self._reviews().find(tenant, status, limit)

    def review(self, review_id: str, *, caller: Caller) -> dict[str, Any]:
        """A review with what a reviewer needs: the recorded decision (reasons, rules), its
        features with the catalog's texts, the offers and a summary of the firm's recent
        records. The offers and the records are firm data: they are read only under an
        active consent (else ``records.shared`` is false and the reason is given); the
        recorded decision is the tenant's own."""
        tenant = None if is_operator(caller) else caller.tenant
        rev = self._reviews().get(review_id, tenant)
        decision = self.recorded_decision(rev.decision_id, caller=caller)
        features = [
            _feature_row(name, value, decision.get("reasons") or [])
            for name, value in (decision.get("features") or {}).items()
        ]
        out: dict[str, Any] = {
            **rev.to_dict(),
            "decision": {k: v for k, v in decision.items() if k not in ("features",)},
            "features": features,
        }
        try:
            grant = self.authorize(caller, rev.firm_id)
        except NotSharedError as exc:
            out["records"] = {"shared": False, "detail": str(exc)}
            out["offers"] = None
            return out
        now = datetime.now(UTC)
        try:
            known = self._known(rev.firm_id, now, now, grant.sources)
        except UnavailableError as exc:  # the record store: the review can still be decided
            out["records"] = {"shared": True, "available": False, "detail": str(exc)}
            out["offers"] = None
            return out
        out["records"] = {"shared": True, "available": True, **records_summary(known, now)}
        frames = as_frames(
            self._known(
                rev.firm_id,
                to_utc(decision["as_of"]),
                to_utc(decision.get("knowledge_at") or decision["scored_at"]),
                grant.sources,
            )
        )
        try:
            offers = make_offers(
                decision,
                compute_bases({k: frames[k] for k in RECORD_KINDS}, to_utc(decision["as_of"])),
                self.policy(Party(rev.tenant)),  # the lender's policy, also for the operator
            )
            out["offers"] = offers.model_dump(mode="json")
        except OfferError as exc:
            out["offers"] = {"error": str(exc)}
        return out

    def decide_review(
        self,
        review_id: str,
        *,
        caller: Caller,
        holder: str | None,
        outcome: str,
        reason_codes: Sequence[str],
        note: str,
        channel: str = "http",
    ) -> Review:
        """A reviewer's decision, recorded before it is returned (four eyes on overrides
        above the policy's amount: :mod:`credit.reviews`)."""
        if not holder:
            raise InvalidInputError(
                "a review decision must name the person making it: use a reviewer key with "
                "a holder (credit keys create --role reviewer --holder NAME)"
            )
        tenant = None if is_operator(caller) else caller.tenant
        return self._reviews().decide(
            review_id,
            tenant,
            holder=holder,
            key_id=caller.key_id,
            channel=channel,
            outcome=outcome,
            reason_codes=reason_codes,
            note=note,
        )

    def _final_review(self, decision: Mapping[str, Any]) -> Review | None:
        review_id = (decision.get("review") or {}).get("review_id")
        return self._reviews().by_decision(decision["decision_id"]) if review_id else None

    def notice(self, decision_id: str, *, caller: Caller) -> dict[str, Any]:
        """The adverse-action notice of a declined decision of the caller's tenant (any,
        for the operator): declined by the policy, or by a reviewer. Any other decision has
        none (:class:`NoticeNotOwedError`)."""
        return self._notice(self._recorded(decision_id, caller))

    def _notice(self, decision: Mapping[str, Any]) -> dict[str, Any]:
        outcome = decision.get("outcome")
        if outcome is None:
            raise NoticeNotOwedError(
                f"decision {decision['decision_id']} was made before decisioning (no outcome)"
            )
        review = self._final_review(decision)
        if outcome == "referred":
            if review is None or review.status != "closed":
                raise NoticeNotOwedError(
                    f"decision {decision['decision_id']} is under review; a notice is owed "
                    "only once it is declined"
                )
            outcome = review.outcome
        if outcome != "declined":
            raise NoticeNotOwedError(
                f"decision {decision['decision_id']} was {outcome}, not declined; an "
                "adverse-action notice is owed only for a declined application"
            )
        tenant = str(decision.get("tenant") or "")
        try:
            policy = self.policies(tenant)
        except PolicyError as exc:
            raise UnavailableError(f"the lending policy of {tenant} is invalid: {exc}") from exc
        return build_notice(decision, policy, review)

    def seller_notice(self, firm_id: str, token: str | None, decision_id: str) -> dict[str, Any]:
        """One notice about the seller's firm, for its printable page (any of its declined
        decisions, not only the latest per lender): :class:`NotFoundError` otherwise."""
        self.open_seller_link(firm_id, token)
        if self.audit is None:
            raise NotFoundError(f"no notice {decision_id} about {firm_id}")
        found = self.audit.get(None, decision_id)
        if found is None or found["firm_id"] != firm_id:
            raise NotFoundError(f"no notice {decision_id} about {firm_id}")
        decision = self._recorded(decision_id, Party(operator=True))
        try:
            return self._notice(decision)
        except NoticeNotOwedError as exc:
            raise NotFoundError(str(exc)) from exc

    def seller_notices(self, firm_id: str, token: str | None) -> list[dict[str, Any]]:
        """The latest notice of each lender that declined the seller's firm, for the seller's
        own page (the signed link is the seller's authority over its own data). Every
        declined decision keeps its own notice (``GET /v1/decisions/{id}/notice``); the page
        shows one per lender, so that opening it again does not pile them up."""
        self.open_seller_link(firm_id, token)
        if self.audit is None:
            return []
        out = []
        lenders: set[str] = set()
        for decision_id, tenant in self.audit.declined_of(firm_id):
            if tenant in lenders:  # the latest notice of each lender (newest first)
                continue
            decision = self._recorded(decision_id, Party(operator=True))
            try:
                out.append(self._notice(decision))
            except NoticeNotOwedError:
                continue
            lenders.add(tenant)
        return out

    def recorded_decision(self, decision_id: str, *, caller: Caller) -> dict[str, Any]:
        """A recorded decision of the caller's tenant (any, for the operator), with its
        lineage: the consent it was made under and the ingestions whose records fed it."""
        found = self._recorded(decision_id, caller)
        found["lineage"] = self._lineage(found)
        return found

    def _recorded(self, decision_id: str, caller: Caller) -> dict[str, Any]:
        """:meth:`recorded_decision` without the lineage (which reads the ingestions and,
        for a snapshot, the records): what notices need."""
        if self.audit is None:
            raise UnavailableError("no audit log")
        tenant = None if is_operator(caller) else caller.tenant
        found = self.audit.get(tenant, decision_id)
        if found is None:
            raise NotFoundError(f"no decision {decision_id} for this tenant")
        verdict = found.pop("verdict")
        review_id = found.pop("review_id")
        found.pop("offers", None)
        if verdict is not None:
            review = self._reviews().by_decision(decision_id) if review_id else None
            found.update(
                outcome_fields(verdict, decision_id, review_id, review.status if review else "open")
            )
            if review is not None:
                found["review"]["outcome"] = review.outcome
                if review.outcome == "declined":
                    found["notice"] = f"/v1/decisions/{decision_id}/notice"
        return found

    def _lineage(self, row: Mapping[str, Any]) -> dict[str, Any]:
        stored = dict(row.get("lineage") or {})
        out: dict[str, Any] = {
            "consent_id": row.get("consent_id"),
            "providers": stored.get("providers", []),
            "withheld": stored.get("withheld", []),
            "knowledge_at": row.get("knowledge_at"),
            "ingestions": [],
        }
        if row.get("source") == "posted" or self.ledger is None:
            return out
        ids = stored.get("ingestions")
        if ids is None and row.get("knowledge_at"):
            # from a snapshot: the ingestions whose records it was computed from are those
            # the bitemporal rule reads for the same firm, moment and knowledge time
            known = self._known(
                row["firm_id"],
                to_utc(row["as_of"]),
                to_utc(row["knowledge_at"]),
                None if row.get("consent_id") is None else frozenset(out["providers"]),
                strict=False,
            )
            ids = known.ingestions
        try:
            details = self.ledger.batches(ids or [])
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc
        out["ingestions"] = [
            {
                "ingestion_id": i,
                **{
                    k: (v.isoformat().replace("+00:00", "Z") if isinstance(v, datetime) else v)
                    for k, v in details.get(i, {}).items()
                    if k != "ingestion_id"
                },
            }
            for i in ids or []
        ]
        return out

    def replay(self, decision_id: str, model: ScoringModel) -> dict[str, Any]:
        """Recompute a recorded decision from the records as they were known when it was made
        (event before its ``as_of``, ingested at or before its knowledge time, from its
        sources), with ``model`` (the version that made it): the features and the PD side by
        side with the recorded ones."""
        if self.audit is None:
            raise UnavailableError("no audit log")
        row = self.audit.get(None, decision_id)
        if row is None:
            raise NotFoundError(f"no decision {decision_id}")
        if row["source"] == "posted":
            raise InvalidInputError(
                "this decision was made on records posted with the request; they were not "
                "stored, so it cannot be replayed (its feature vector is in the audit log)"
            )
        if not row.get("knowledge_at"):
            raise InvalidInputError(
                "this decision predates lineage (no knowledge time recorded); it cannot be replayed"
            )
        as_of, knowledge = to_utc(row["as_of"]), to_utc(row["knowledge_at"])
        stored = row.get("lineage") or {}
        sources = None if row.get("consent_id") is None else frozenset(stored.get("providers", []))
        known = self._known(row["firm_id"], as_of, knowledge, sources)
        if row["source"] == "online_store":
            # the snapshot was built by the batch pipeline: replay on the same engine
            values = _batch_features(known, row["firm_id"], as_of)
        else:
            values = compute(known.records, as_of, firm=known.firm)
        found = FirmFeatures(row["firm_id"], as_of, values, row["source"])
        (again,) = self._decide(model, [found], ["top"])
        recorded = row["features"]
        diffs = []
        for name in model.feature_names:
            a, b = recorded.get(name), again.features.get(name)
            if a is None and b is None:
                continue
            if a is None or b is None or abs(float(a) - float(b)) > 1e-9 * max(1.0, abs(float(a))):
                diffs.append({"feature": name, "recorded": a, "replayed": b})
        return {
            "decision_id": decision_id,
            "firm_id": row["firm_id"],
            "as_of": row["as_of"],
            "knowledge_at": row["knowledge_at"],
            "model_version": row["model"]["version"],
            "recorded_pd": row["pd"],
            "replayed_pd": again.pd,
            "pd_difference": abs(again.pd - row["pd"]),
            "recorded_score": row["score"],
            "replayed_score": again.score,
            "ingestions": known.ingestions,
            "feature_differences": diffs,
        }


class NoticeNotOwedError(UseCaseError):
    """The decision is not (or not yet) declined: no adverse-action notice is owed."""

    status = 409


def _feature_row(name: str, value: Any, reasons: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A feature as a reviewer reads it: value, the catalog's description, and its reason
    text and contribution when it is one of the decision's reasons."""
    try:
        f = catalog.get(name)
        described: dict[str, Any] = {
            "description": f.description,
            "family": f.family,
            "unit": f.unit,
            "risk_direction": f.risk_direction,
        }
    except KeyError:
        described = {"description": name}
    reason = next((r for r in reasons if r.get("feature") == name), None)
    return {
        "feature": name,
        "value": value,
        **described,
        "reason": None if reason is None else reason.get("text"),
        "contribution": None if reason is None else reason.get("contribution"),
    }


def records_summary(known: KnownRecords, now: datetime) -> dict[str, Any]:
    """Per record type: how many records, how many in the last 90 and 365 days, the latest
    event date, and the providers they came from."""
    out: dict[str, Any] = {"providers": list(known.providers), "types": {}}
    for kind, rows in known.records.items():
        spec = RECORD_TYPES.get(kind)
        col = spec.event_time if spec is not None else None
        times = []
        for r in rows:
            v = r.get(col) if col else None
            if v is not None:
                try:
                    times.append(
                        to_utc(v if not isinstance(v, pd.Timestamp) else v.to_pydatetime())
                    )
                except (TypeError, ValueError):
                    continue
        ages = [(now - t).days for t in times]
        out["types"][kind] = {
            "records": len(rows),
            "last_90d": sum(1 for a in ages if a <= 90),
            "last_365d": sum(1 for a in ages if a <= 365),
            "latest": max(times).date().isoformat() if times else None,
        }
    return out


def _batch_features(known: KnownRecords, firm_id: str, as_of: datetime) -> dict[str, float]:
    """The batch pipeline's features of one firm over ``known``'s records (an in-memory
    DuckDB store holding only them)."""
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        frames = as_frames(known)
        for kind, frame in frames.items():
            con.register(f"_{kind}", frame)
            con.execute(f"CREATE TABLE {kind} AS SELECT * FROM _{kind}")  # noqa: S608
            con.unregister(f"_{kind}")
        spine = pd.DataFrame(
            {"firm_id": [firm_id], "as_of": [pd.Timestamp(as_of).tz_convert(None)]}
        )
        row = build(con, spine).iloc[0]
    finally:
        con.close()
    from features.catalog import feature_names

    return {n: float(row[n]) for n in feature_names()}
