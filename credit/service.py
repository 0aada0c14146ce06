"""The use cases: score a firm, score posted records, score a batch, make a firm's offers.

Every entry point calls these and nothing else: ``POST /v1/score``, ``/v1/score/batch``,
``GET /v1/firms/{id}/offers``, the seller page, ``credit score`` and ``credit offers`` parse
their input, call one method of :class:`CreditService` and render what comes back. The
steps of each use case (find the firm's features, score them with the one scoring core,
size and price the offers, record the decision before anyone sees it) are written here once,
so a rule added to "score a firm" reaches every entry point.

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
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
from sqlalchemy.exc import SQLAlchemyError

from credit.audit import AuditLog
from credit.decisions import Decision, Explain, decide, request_hash, to_utc
from credit.errors import (
    AuditUnavailableError,
    InvalidInputError,
    NotFoundError,
    RejectedRecordsError,
    UnavailableError,
    UseCaseError,
)
from credit.ingest import validate_records
from credit.links import (
    LinkRecord,
    LinkStore,
    SellerLink,
    link_secret,
    sign_seller_link,
    verify_seller_link,
)
from credit.offers import OfferError, OfferSet, compute_bases, load_firm_records, make_offers
from credit.policy import Policy, PolicyError, policy_for_tenant
from credit.records import RECORD_TYPES
from credit.scoring import ScoringInputError, ScoringModel
from credit.settings import Settings
from credit.store import open_store
from features.pipeline import compute
from features.pit import SOURCES

NO_MODEL = "no model loaded: train and promote one, then POST /v1/admin/reload"
AUDIT_DOWN = "the audit log is unavailable, so no decision was made; retry later"


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


class FeatureSource(Protocol):
    """Where a firm's features come from."""

    def features(self, firm_id: str, as_of: datetime | None) -> FirmFeatures:
        """The firm's features as of ``as_of`` (``None``: the latest there are).

        Raises :class:`NotFoundError` when the source has none for the firm and
        :class:`UnavailableError` when the source cannot be read.
        """
        ...


class SnapshotStore(Protocol):
    """What the online store offers the service (:class:`features.online.OnlineStore`)."""

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
    command line, a scheduled job."""

    tenant: str = "operator"
    key_id: str | None = None


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
        try:
            found = self.store.get(firm_id, as_of=as_of)
        except Exception as exc:  # the store is down, not the caller's fault
            raise UnavailableError(f"online store unavailable: {type(exc).__name__}") from exc
        if found is None:
            when = f" at or before {as_of:%Y-%m-%d}" if as_of is not None else ""
            raise NotFoundError(
                f"firm {firm_id} has no features in the online store{when}; "
                "run `credit features materialize`"
            )
        feats_as_of, values = found
        return FirmFeatures(firm_id, to_utc(feats_as_of), values, self.source)


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


class RecordStore:
    """The embedded record store (DuckDB), opened read-only for each read.

    ``columns="offers"`` reads the columns the offer engine needs
    (:func:`credit.offers.load_firm_records`); ``"all"`` every record type with every
    contract column and the firm's own row, for computing features.
    """

    def __init__(self, path: Path | Callable[[], Path], columns: str = "offers") -> None:
        self._path = path
        self.columns = columns

    @property
    def path(self) -> Path:
        """The store's file (read at each use: the service's settings may change)."""
        return Path(self._path() if callable(self._path) else self._path)

    def load(self, firm_id: str, as_of: datetime) -> dict[str, Any]:
        try:
            con = open_store(self.path, read_only=True)
        except FileNotFoundError as exc:
            raise UnavailableError(f"record store unavailable: {exc}") from exc
        except Exception as exc:  # locked by a writer, corrupt file: not the caller's fault
            raise UnavailableError(f"record store unavailable: {type(exc).__name__}") from exc
        try:
            if self.columns == "offers":
                return load_firm_records(con, firm_id, as_of)
            return _all_records(con, firm_id, as_of)
        except UseCaseError:
            raise
        except Exception as exc:
            raise UnavailableError(f"record store unreadable: {type(exc).__name__}") from exc
        finally:
            con.close()


def _all_records(con: Any, firm_id: str, as_of: datetime) -> dict[str, pd.DataFrame]:
    t = to_utc(as_of).replace(tzinfo=None)
    out: dict[str, pd.DataFrame] = {}
    for kind in RECORD_TYPES:
        if kind == "firms":  # the firm's own row: the catalog decides what it knows at T
            out[kind] = con.execute("SELECT * FROM firms WHERE firm_id = ?", [firm_id]).df()
            continue
        ev = SOURCES[kind].event_time
        out[kind] = con.execute(
            f"SELECT * FROM {kind} WHERE firm_id = ? AND {ev} < ?",  # noqa: S608 - names are ours
            [firm_id, t],
        ).df()
    return out


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
    """The use cases over the service's model, stores, policies and audit log.

    Parameters
    ----------
    model : returns the model in service (``None`` when none is loaded); called once per
        use case, so a batch is scored by one model version even during a reload.
    features : the firm-by-id feature source (the online store).
    records : the firm's trade records (the record store), for offers.
    audit : where decisions are recorded before they are returned (``None``: not recorded,
        and the decision id is only an identifier of the printed answer).
    policies : tenant -> its lending policy.
    link_secret : the key that signs seller links.
    links : where issued seller links are recorded and checked (``None``: no links).
    observer : told of every recorded decision and audit failure (metrics).
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
    ) -> None:
        self._model = model
        self.features = features
        self.records = records
        self.policies = policies
        self.audit = audit
        self._link_secret = link_secret
        self.links = links
        self.observer = observer

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
        state holds the settings in force). Seller links are recorded in ``links``, by
        default in the audit log's database (none without an audit log).
        """

        def current() -> Settings:
            return settings() if callable(settings) else settings

        return cls(
            model=model,
            features=OnlineFeatures(online, online_error),
            records=RecordStore(lambda: current().store_path),
            policies=lambda tenant: policy_for_tenant(tenant, current().policy_dir),
            audit=audit,
            link_secret=lambda: link_secret(current()),
            observer=observer,
            links=links if links is not None else (LinkStore(audit.engine) if audit else None),
        )

    # ---- steps ---------------------------------------------------------------------------

    def model(self) -> ScoringModel:
        """The model in service, or :class:`UnavailableError`."""
        m = self._model()
        if m is None:
            raise UnavailableError(NO_MODEL)
        return m

    def _decide(
        self, model: ScoringModel, found: Sequence[FirmFeatures], explain: Sequence[Explain]
    ) -> list[Decision]:
        if not found:
            return []
        source = found[0].source
        try:
            return decide(
                model, [(f.firm_id, f.as_of, f.values) for f in found], explain, source=source
            )
        except ScoringInputError as exc:
            raise InvalidInputError(f"the features do not fit the model: {exc}") from exc

    def _record(
        self,
        decisions: Sequence[Decision],
        caller: Caller,
        requests: Sequence[Mapping[str, Any]],
        offers: Sequence[dict[str, Any] | None] | None = None,
    ) -> None:
        """Write the decisions to the audit log, or raise: nothing unrecorded is returned."""
        if self.audit is None or not decisions:
            return
        hashes = [request_hash(r) for r in requests]
        try:
            self.audit.record(decisions, caller.tenant, caller.key_id, hashes, offers=offers)
        except AuditUnavailableError as exc:
            if self.observer is not None:
                self.observer.audit_failed(len(decisions))
            raise AuditUnavailableError(AUDIT_DOWN) from exc
        if self.observer is not None:
            self.observer.decisions_recorded(decisions)

    # ---- use cases -----------------------------------------------------------------------

    def firm_features(self, firm_id: str, as_of: datetime | None = None) -> FirmFeatures:
        """The firm's features from the service's feature source."""
        return self.features.features(firm_id, as_of)

    def decide_firm(
        self,
        firm_id: str,
        as_of: datetime | None = None,
        *,
        caller: Caller,
        explain: Explain = "top",
        request: Mapping[str, Any] | None = None,
    ) -> Decision:
        """Score a firm on its features (latest, or at or before ``as_of``), recorded."""
        return self._decide_one(self.features, firm_id, as_of, caller, explain, request)

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
    ) -> Decision:
        """Score a firm on posted records (features computed on the spot), recorded."""
        source = RecordFeatures(PostedRecords(records, firm), "posted")
        return self._decide_one(source, firm_id, as_of, caller, explain, request)

    def _decide_one(
        self,
        source: FeatureSource,
        firm_id: str,
        as_of: datetime | None,
        caller: Caller,
        explain: Explain,
        request: Mapping[str, Any] | None,
    ) -> Decision:
        model = self.model()
        (decision,) = self._decide(model, [source.features(firm_id, as_of)], [explain])
        self._record([decision], caller, [request or {"firm_id": firm_id}])
        return decision

    def decide_batch(self, items: Sequence[ScoreItem], *, caller: Caller) -> BatchResult:
        """Score each item on its own; an item that fails gets its error, the others are
        scored by one model version and recorded in one transaction.

        Raises :class:`UnavailableError` (no model) or :class:`AuditUnavailableError`
        (nothing recorded, nothing returned) for the batch as a whole.
        """
        model = self.model()
        results: list[Decision | UseCaseError | None] = [None] * len(items)
        found: dict[int, FirmFeatures] = {}
        for i, item in enumerate(items):
            try:
                found[i] = self._item_features(item)
            except UseCaseError as exc:
                results[i] = exc
        # One call to the core per source, so each decision is labelled with its own.
        for source in ("online_store", "posted"):
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
                results[i] = d
        ok = sorted(i for i, r in enumerate(results) if isinstance(r, Decision))
        self._record(
            [results[i] for i in ok],  # type: ignore[misc]
            caller,
            [items[i].request for i in ok],
        )
        return BatchResult(
            model=model.identity(),
            results=[r if r is not None else UnavailableError("not scored") for r in results],
        )

    def _item_features(self, item: ScoreItem) -> FirmFeatures:
        if item.records is not None:
            posted = PostedRecords(item.records, item.firm)
            return RecordFeatures(posted, "posted").features(item.firm_id, item.as_of)
        return self.features.features(item.firm_id, item.as_of)

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
        and record the decision with the offer set it led to."""
        model = self.model()
        found = self.features.features(firm_id, as_of)
        if policy is None:
            try:
                policy = self.policies(caller.tenant)
            except PolicyError as exc:
                raise UnavailableError(
                    f"the lending policy of {caller.tenant} is invalid: {exc}"
                ) from exc
        (decision,) = self._decide(model, [found], ["top"])
        records = self.records.load(firm_id, decision.as_of)
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
        self._record([decision], caller, [request], offers=[offers.model_dump(mode="json")])
        return FirmOffers(decision=decision, offers=offers, records=records)

    def seller_link(self, firm_id: str, *, caller: Caller, ttl_seconds: int) -> SellerLink:
        """A signed link to the firm's seller page for the caller (a platform), recorded with
        the caller's key, so that it dies with that key; an operator's link (no key) lives
        until it is revoked or expires."""
        self.features.features(firm_id, None)  # the firm must be known
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
