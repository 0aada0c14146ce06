"""THE scoring core: a feature matrix in; calibrated PD, score, grade and reason codes out.

The MLflow pyfunc (``models/pyfunc.py``), the API, ``credit score`` and batch scoring all call
:class:`ScoringModel`; nothing else computes a score.

A model travels as a *bundle*, a folder of plain files (no pickle)::

    model.txt        the LightGBM booster (text format)
    calibrator.json  raw log-odds -> calibrated PD (strictly increasing)
    scale.json       the score scale and grade bands (credit.scale.ScoreScale)
    meta.json        feature names, reason codes and texts, categories, name, catalog version,
                     out-of-time metrics, training time

The bundle is the ``bundle`` artifact of the registered MLflow model; :meth:`ScoringModel.load`
fetches it from the registry (``models:/tradecredit-pd@champion``) and keeps a local copy under
the data directory so that a restart works while the registry is unreachable.

The hot path is numpy only: :meth:`ScoringModel.predict` and :meth:`ScoringModel.explain`
take a 2-D float64 array whose columns are :attr:`ScoringModel.feature_names`; categorical
columns hold category codes (see :meth:`ScoringModel.encode` for DataFrames). One row (a
decision) goes to LightGBM through :mod:`credit.fastpath.lightgbm_row`, the same numbers as
``Booster.predict`` without its per-call Python set-up; more rows go through ``Booster.predict``.
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import numpy.typing as npt

from credit.fastpath.lightgbm_row import SingleRowPredictor, predict_threads, single_row_predictor
from credit.reasons import Reason, reason_codes, top_reasons
from credit.scale import ScoreScale

if TYPE_CHECKING:  # pragma: no cover
    import lightgbm as lgb
    import pandas as pd

log = logging.getLogger(__name__)

MODEL_NAME = "tradecredit-pd"
CHAMPION_URI = f"models:/{MODEL_NAME}@champion"
BUNDLE_FORMAT = 1

FloatArray = npt.NDArray[np.float64]
_T = TypeVar("_T")


class ModelUnavailableError(RuntimeError):
    """No model could be loaded (registry unreachable and no local copy, or no such model)."""


class ScoringInputError(ValueError):
    """The feature matrix does not match the model (shape, columns, types)."""


# --------------------------------------------------------------------------------------------
# Calibration map (applied here; fitted in models/calibrate.py)
# --------------------------------------------------------------------------------------------


def _sigmoid(z: FloatArray) -> FloatArray:
    out: FloatArray = 0.5 * (1.0 + np.tanh(0.5 * z))
    return out


@dataclass(frozen=True)
class Calibrator:
    """Raw log-odds -> calibrated PD, strictly increasing (so ranking and AUC are unchanged).

    ``method="platt"``: ``pd = sigmoid(a * z + b)`` with ``a > 0``.
    ``method="isotonic"``: centred isotonic regression. The isotonic fit's blocks become knots
    ``(x, logit(y))`` at the blocks' mean log-odds, joined by straight lines (strictly increasing,
    so no ties that plain isotonic steps would create), and continued beyond the end knots with the
    Platt slope ``a``. ``method="identity"``: ``pd = sigmoid(z)``.
    """

    method: str = "identity"
    a: float = 1.0
    b: float = 0.0
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()  # logit of the calibrated PD at each knot

    def __post_init__(self) -> None:
        if self.method not in ("identity", "platt", "isotonic"):
            raise ValueError(f"unknown calibration method {self.method!r}")
        if self.a <= 0:
            raise ValueError(f"calibrator slope must be positive to keep the ranking, got {self.a}")
        if self.method == "isotonic":
            xs, ys = np.asarray(self.x), np.asarray(self.y)
            if len(xs) < 2 or len(xs) != len(ys):
                raise ValueError("isotonic calibrator needs at least two knots (x, y)")
            if np.any(np.diff(xs) <= 0) or np.any(np.diff(ys) <= 0):
                raise ValueError("isotonic calibrator knots must increase strictly in x and y")
        object.__setattr__(self, "_xs", np.asarray(self.x, dtype=np.float64))
        object.__setattr__(self, "_ys", np.asarray(self.y, dtype=np.float64))

    def logit(self, z: npt.ArrayLike) -> FloatArray:
        """Calibrated log-odds of default for raw log-odds ``z``."""
        zz = np.asarray(z, dtype=np.float64)
        if self.method == "identity":
            return zz
        if self.method == "platt":
            out: FloatArray = self.a * zz + self.b
            return out
        xs: FloatArray = self._xs  # type: ignore[attr-defined]
        ys: FloatArray = self._ys  # type: ignore[attr-defined]
        inner = np.interp(zz, xs, ys)
        lo = ys[0] + self.a * (zz - xs[0])
        hi = ys[-1] + self.a * (zz - xs[-1])
        res: FloatArray = np.where(zz < xs[0], lo, np.where(zz > xs[-1], hi, inner))
        return res

    def __call__(self, z: npt.ArrayLike) -> FloatArray:
        """Calibrated PD for raw log-odds ``z``."""
        return _sigmoid(self.logit(z))

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "a": self.a,
            "b": self.b,
            "x": list(self.x),
            "y": list(self.y),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Calibrator:
        return cls(
            method=str(d["method"]),
            a=float(d.get("a", 1.0)),
            b=float(d.get("b", 0.0)),
            x=tuple(float(v) for v in d.get("x", ())),
            y=tuple(float(v) for v in d.get("y", ())),
        )


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scores:
    """Vectors, one entry per input row."""

    pd: FloatArray  # calibrated probability of default
    score: npt.NDArray[np.int64]  # points, rounded and clamped
    grade: npt.NDArray[np.str_]
    raw: FloatArray  # the booster's raw log-odds (before calibration)

    def __len__(self) -> int:
        return int(self.pd.shape[0])


@dataclass(frozen=True)
class Explanation:
    """Scores plus exact TreeSHAP contributions and ranked reasons."""

    scores: Scores
    contributions: FloatArray  # (n, n_features) in log-odds
    base_value: FloatArray  # (n,) expected raw log-odds
    reasons: list[list[Reason]] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------


class ScoringModel:
    """A booster + calibrator + score scale + feature metadata: the unit that is scored.

    Parameters
    ----------
    booster : a trained LightGBM binary booster.
    calibrator : raw log-odds -> PD.
    scale : score scale and grade bands.
    feature_names : column order of the matrix the booster expects.
    reason_texts : feature -> text (default: the feature name).
    categories : categorical feature -> labels; the matrix holds the label's index (float),
        NaN for missing or unseen labels.
    name, version, run_id : registry identity (version and run id are filled by :meth:`load`).
    catalog_version : version of the feature catalog the model was trained on (``None`` for
        bring-your-own tables).
    metadata : anything else worth keeping with the model (metrics, training window...).
    """

    def __init__(
        self,
        booster: lgb.Booster,
        calibrator: Calibrator,
        scale: ScoreScale,
        feature_names: Sequence[str],
        reason_texts: Mapping[str, str] | None = None,
        categories: Mapping[str, Sequence[str]] | None = None,
        name: str = MODEL_NAME,
        version: str | None = None,
        run_id: str | None = None,
        catalog_version: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        names = [str(f) for f in feature_names]
        if len(set(names)) != len(names):
            raise ValueError("feature names must be unique")
        if booster.num_feature() != len(names):
            raise ValueError(
                f"booster expects {booster.num_feature()} features, {len(names)} names given"
            )
        self.booster = booster
        self.calibrator = calibrator
        self.scale = scale
        self.feature_names: list[str] = names
        texts = dict(reason_texts or {})
        self.reason_texts: list[str] = [texts.get(f) or f for f in names]
        self.reason_codes: list[str] = reason_codes(names)
        self.categories: dict[str, list[str]] = {k: list(v) for k, v in (categories or {}).items()}
        unknown = set(self.categories) - set(names)
        if unknown:
            raise ValueError(f"categories given for unknown features {sorted(unknown)}")
        self._cat_by_index: dict[int, list[str]] = {
            names.index(k): v for k, v in self.categories.items()
        }
        self._cat_lookup: dict[str, dict[str, int]] = {
            k: {lab: i for i, lab in enumerate(v)} for k, v in self.categories.items()
        }
        self.name = name
        self.version = version
        self.run_id = run_id
        self.catalog_version = catalog_version
        self.metadata: dict[str, Any] = dict(metadata or {})
        #: where :meth:`load` found the model: "registry", "cache" (registry unreachable) or None
        self.loaded_from: str | None = None
        #: one row through LightGBM's C API (credit.fastpath.lightgbm_row); None: Booster.predict
        self._fast: SingleRowPredictor | None = single_row_predictor(booster, len(names))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_fast"] = None  # C handles do not travel; rebuilt on unpickling
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._fast = single_row_predictor(self.booster, self.n_features)

    # ---- identity ---------------------------------------------------------------------------

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def identity(self) -> dict[str, str | None]:
        """``{name, version, run_id}`` for responses and audit rows."""
        return {"name": self.name, "version": self.version, "run_id": self.run_id}

    def card(self) -> dict[str, Any]:
        """A JSON-ready description of the model (for ``GET /v1/model`` and ``credit models``)."""
        return {
            **self.identity(),
            "catalog_version": self.catalog_version,
            "features": self.feature_names,
            "categorical_features": sorted(self.categories),
            "scale": self.scale.to_dict(),
            "calibration": self.calibrator.method,
            **{k: v for k, v in self.metadata.items() if k not in ("name", "version", "run_id")},
        }

    # ---- input ------------------------------------------------------------------------------

    def _check(self, X: npt.ArrayLike) -> FloatArray:
        arr = np.asarray(X, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        if arr.ndim != 2 or arr.shape[1] != self.n_features:
            raise ScoringInputError(
                f"expected a matrix with {self.n_features} columns "
                f"({', '.join(self.feature_names[:5])}{', ...' if self.n_features > 5 else ''}), "
                f"got shape {arr.shape}"
            )
        return arr

    def encode(self, frame: pd.DataFrame | Mapping[str, Any]) -> FloatArray:
        """A feature matrix in model order from a DataFrame (or one mapping = one row).

        Categorical columns are mapped to their category index (unknown labels -> missing);
        other columns are converted to float (missing -> NaN). Extra columns are ignored.

        Raises
        ------
        ScoringInputError
            when a model feature is absent or a numeric column holds text.
        """
        import pandas as pd  # local: keep the hot path free of pandas

        df = pd.DataFrame([dict(frame)]) if isinstance(frame, Mapping) else frame
        missing = [f for f in self.feature_names if f not in df.columns]
        if missing:
            raise ScoringInputError(f"missing feature columns: {', '.join(missing)}")
        out = np.empty((len(df), self.n_features), dtype=np.float64)
        numeric = [j for j, f in enumerate(self.feature_names) if f not in self._cat_lookup]
        cols = [self.feature_names[j] for j in numeric]
        if all(pd.api.types.is_numeric_dtype(df[c]) for c in cols):
            # one block copy for the numeric columns: the common case (a feature table)
            out[:, numeric] = df[cols].to_numpy(dtype=np.float64, na_value=np.nan)
            done = set(numeric)
        else:
            done = set()
        for j, f in enumerate(self.feature_names):
            if j in done:
                continue
            col = df[f]
            if f in self._cat_lookup:
                # vectorised label -> index; unknown labels and missing values -> NaN
                codes = pd.Categorical(col.astype(str), categories=self.categories[f]).codes
                enc = codes.astype(np.float64)
                enc[(codes < 0) | col.isna().to_numpy()] = np.nan
                out[:, j] = enc
            else:
                try:
                    out[:, j] = pd.to_numeric(col, errors="raise").astype("float64").to_numpy()
                except (ValueError, TypeError) as exc:
                    raise ScoringInputError(f"feature {f!r} must be numeric: {exc}") from exc
        return out

    # ---- scoring ----------------------------------------------------------------------------

    def raw(self, X: npt.ArrayLike) -> FloatArray:
        """The booster's raw log-odds."""
        return self._raw(self._check(X))

    def _raw(self, arr: FloatArray) -> FloatArray:
        if arr.shape[0] == 1 and self._fast is not None:  # one decision: the fast path
            return self._fast.raw(arr[0])
        out: FloatArray = np.asarray(
            self.booster.predict(arr, raw_score=True, **predict_threads(arr.shape[0])),
            dtype=np.float64,
        )
        return out

    def _contrib(self, arr: FloatArray) -> FloatArray:
        if arr.shape[0] == 1 and self._fast is not None:
            return self._fast.contrib(arr[0])
        out: FloatArray = np.asarray(
            self.booster.predict(arr, pred_contrib=True, **predict_threads(arr.shape[0])),
            dtype=np.float64,
        )
        return out

    def _scores_from_raw(self, raw: FloatArray) -> Scores:
        logit = self.calibrator.logit(raw)
        p = _sigmoid(logit)
        return Scores(
            pd=p, score=self.scale.score_from_logit(logit), grade=self.scale.grade(p), raw=raw
        )

    def predict(self, X: npt.ArrayLike) -> Scores:
        """Calibrated PD, score and grade for each row of ``X``."""
        return self._scores_from_raw(self.raw(X))

    def contributions(self, X: npt.ArrayLike) -> FloatArray:
        """Exact TreeSHAP contributions in log-odds: ``(n, n_features + 1)``, base value last."""
        return self._contrib(self._check(X))

    def explain(
        self, X: npt.ArrayLike, top_k: int | None = 4, reason_objects: bool = True
    ) -> Explanation:
        """Scores plus reasons: up to ``top_k`` features raising the risk most, per row.

        ``top_k=None`` (or 0) returns every feature with a positive contribution; the full
        contribution matrix is always in :attr:`Explanation.contributions`.
        ``reason_objects=False`` leaves :attr:`Explanation.reasons` empty (batch scoring
        ranks the contribution matrix with :func:`credit.reasons.top_k_matrix` instead).
        """
        arr = self._check(X)
        raw, contrib = self._raw(arr), self._contrib(arr)
        phi, base = contrib[:, :-1], contrib[:, -1]
        k = top_k or 0
        reasons = [
            top_reasons(
                phi[i],
                arr[i],
                self.feature_names,
                self.reason_codes,
                self.reason_texts,
                top_k=k,
                categories=self._cat_by_index,
            )
            for i in range(arr.shape[0] if reason_objects else 0)
        ]
        return Explanation(
            scores=self._scores_from_raw(raw), contributions=phi, base_value=base, reasons=reasons
        )

    # ---- persistence ------------------------------------------------------------------------

    def to_bundle(self, path: str | Path) -> Path:
        """Write the bundle folder (created; existing files overwritten)."""
        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(d / "model.txt"))
        (d / "calibrator.json").write_text(json.dumps(self.calibrator.to_dict(), indent=1))
        (d / "scale.json").write_text(json.dumps(self.scale.to_dict(), indent=1))
        meta = {
            "format": BUNDLE_FORMAT,
            "name": self.name,
            "feature_names": self.feature_names,
            "reason_texts": dict(zip(self.feature_names, self.reason_texts, strict=True)),
            "categories": self.categories,
            "catalog_version": self.catalog_version,
            "metadata": _jsonable(self.metadata),
        }
        (d / "meta.json").write_text(json.dumps(meta, indent=1))
        return d

    @classmethod
    def from_bundle(
        cls, path: str | Path, version: str | None = None, run_id: str | None = None
    ) -> ScoringModel:
        """Read a bundle folder written by :meth:`to_bundle`."""
        import lightgbm as lgb

        d = Path(path)
        needed = ["model.txt", "calibrator.json", "scale.json", "meta.json"]
        absent = [n for n in needed if not (d / n).is_file()]
        if absent:
            raise ModelUnavailableError(f"{d} is not a model bundle: missing {', '.join(absent)}")
        meta = json.loads((d / "meta.json").read_text())
        if int(meta.get("format", 0)) > BUNDLE_FORMAT:
            raise ModelUnavailableError(
                f"bundle format {meta['format']} is newer than this code ({BUNDLE_FORMAT})"
            )
        _check_model_file(d / "model.txt")
        booster = lgb.Booster(model_file=str(d / "model.txt"))
        return cls(
            booster=booster,
            calibrator=Calibrator.from_dict(json.loads((d / "calibrator.json").read_text())),
            scale=ScoreScale.from_dict(json.loads((d / "scale.json").read_text())),
            feature_names=meta["feature_names"],
            reason_texts=meta.get("reason_texts"),
            categories=meta.get("categories"),
            name=meta.get("name", MODEL_NAME),
            version=version,
            run_id=run_id,
            catalog_version=meta.get("catalog_version"),
            metadata=meta.get("metadata"),
        )

    @classmethod
    def load(
        cls,
        model_uri: str = CHAMPION_URI,
        tracking_uri: str | None = None,
        cache_dir: str | Path | None = None,
        registry_timeout: float | None = None,
    ) -> ScoringModel:
        """Load a registered model, e.g. ``models:/tradecredit-pd@champion`` or ``.../3``.

        The model is downloaded into ``cache_dir`` (default ``<data_dir>/model_cache``) and a
        pointer for ``model_uri`` is written there; when the registry cannot be reached the last
        cached copy for the same URI is used (and a warning logged).

        ``registry_timeout`` bounds the whole registry call (lookup and download) in seconds;
        past it the registry counts as unreachable. MLflow's own HTTP client retries a refused
        or failing request 7 times with backoff (about 4 minutes) before giving up, so the
        service passes its ``registry_timeout_seconds`` here. ``None``: no bound (commands).

        Raises
        ------
        ModelUnavailableError
            when the registry fails and there is no cached copy, or the URI names no model.
        """
        from credit.settings import get_settings

        settings = get_settings()
        cache = Path(cache_dir) if cache_dir else settings.data_dir / "model_cache"
        name, ref = _parse_models_uri(model_uri)
        pointer = cache / name / f"{_safe(ref)}.json"
        uri = tracking_uri or settings.tracking_uri
        try:
            if registry_timeout is None:
                version, run_id, bundle = _download(name, ref, uri, cache / name)
            else:
                log.info(
                    "waiting up to %g s for the model registry at %s (%s); then the cached copy",
                    registry_timeout,
                    redact_uri(uri),
                    model_uri,
                )
                version, run_id, bundle = _with_deadline(
                    lambda: _download(name, ref, uri, cache / name),
                    registry_timeout,
                    f"model registry at {redact_uri(uri)} did not answer "
                    f"within {registry_timeout:g} s",
                )
        except ModelUnavailableError:
            raise
        except Exception as exc:  # registry unreachable: fall back to the local copy
            if pointer.is_file():
                info = json.loads(pointer.read_text())
                log.warning(
                    "model registry unavailable (%s); using cached %s version %s",
                    exc,
                    model_uri,
                    info["version"],
                )
                cached = cls.from_bundle(
                    info["bundle"], version=info["version"], run_id=info["run_id"]
                )
                cached.loaded_from = "cache"
                return cached
            raise ModelUnavailableError(
                f"cannot load {model_uri}: registry unavailable ({exc}) "
                f"and no cached copy in {cache}"
            ) from exc
        pointer.parent.mkdir(parents=True, exist_ok=True)
        tmp = pointer.with_suffix(".tmp")
        tmp.write_text(json.dumps({"version": version, "run_id": run_id, "bundle": str(bundle)}))
        tmp.replace(pointer)
        fresh = cls.from_bundle(bundle, version=version, run_id=run_id)
        fresh.loaded_from = "registry"
        return fresh


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def redact_uri(uri: str) -> str:
    """``uri`` without its user part (``scheme://***@host/...``: it may hold a password or a
    token), for logs and /readyz."""
    return re.sub(r"(?<=://)[^/@]*@", "***@", uri)


def _with_deadline(fn: Callable[[], _T], seconds: float, message: str) -> _T:
    """``fn()`` on a daemon thread; ``TimeoutError(message)`` when it takes over ``seconds``.

    A thread blocked in the registry client cannot be interrupted: past the deadline it is left
    to finish (or fail) on its own, and being a daemon it never holds the process open.
    """
    out: list[_T] = []
    err: list[BaseException] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as exc:  # handed to the caller
            err.append(exc)

    t = threading.Thread(target=run, name="model-registry", daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        raise TimeoutError(message)
    if err:
        raise err[0]
    return out[0]


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _safe(ref: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in ref)


def _parse_models_uri(uri: str) -> tuple[str, str]:
    """``models:/name@alias`` -> (name, "@alias"); ``models:/name/3`` -> (name, "3")."""
    if not uri.startswith("models:/"):
        raise ModelUnavailableError(
            f"model URI must look like models:/NAME@ALIAS or models:/NAME/VERSION, got {uri!r}"
        )
    rest = uri[len("models:/") :].strip("/")
    if "@" in rest:
        name, alias = rest.split("@", 1)
        if name and alias:
            return name, "@" + alias
    elif "/" in rest:
        name, version = rest.split("/", 1)
        if name and version.isdigit():
            return name, version
    raise ModelUnavailableError(
        f"model URI must look like models:/NAME@ALIAS or models:/NAME/VERSION, got {uri!r}"
    )


def _download(name: str, ref: str, tracking_uri: str, cache: Path) -> tuple[str, str | None, Path]:
    import os

    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        mv = (
            client.get_model_version_by_alias(name, ref[1:])
            if ref.startswith("@")
            else client.get_model_version(name, ref)
        )
    except MlflowException as exc:
        if (
            "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", ""))
            or "not found" in str(exc).lower()
        ):
            raise ModelUnavailableError(f"no registered model {name} {ref}: {exc}") from exc
        raise
    version = str(mv.version)
    target = cache / version
    bundle = _find_bundle(target)
    if bundle is None:
        # A folder of this call's own: a download abandoned past its deadline (see
        # ScoringModel.load) may still be writing into another one.
        cache.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{version}.", suffix=".partial", dir=cache))
        try:
            # Resolve the version's storage location through this client: a bare models:/ URI
            # would be resolved against MLflow's process-wide registry URI instead.
            source = client.get_model_version_download_uri(name, version)
            download_artifacts(artifact_uri=source, dst_path=str(tmp), tracking_uri=tracking_uri)
            if _find_bundle(tmp) is None:
                raise ModelUnavailableError(f"models:/{name}/{version} holds no scoring bundle")
            if _find_bundle(target) is None:  # another download may have finished meanwhile
                if target.exists():
                    shutil.rmtree(target)
                tmp.replace(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        bundle = _find_bundle(target)
    if bundle is None:  # pragma: no cover - just written
        raise ModelUnavailableError(f"models:/{name}/{version} holds no scoring bundle")
    return version, mv.run_id, bundle


def _check_model_file(path: Path) -> None:
    """Refuse a LightGBM model file whose trees are not all there.

    LightGBM parses trees at the offsets its ``tree_sizes`` header announces; on a truncated
    file (an interrupted upload or copy) it reads past the end and crashes the process
    (seen with lightgbm 4.7) instead of raising. Walking the offsets first turns that into
    a clear :class:`ModelUnavailableError`.
    """
    data = path.read_bytes()
    m = re.search(rb"^tree_sizes=([0-9 ]*)$", data, re.M)
    if m is None:  # an older writer without offsets: LightGBM reads it sequentially
        return
    start = data.find(b"\nTree=0\n")
    pos = start + 1
    for i, size in enumerate(int(x) for x in m.group(1).split()):
        if start < 0 or not data.startswith(b"Tree=%d\n" % i, pos):
            raise ModelUnavailableError(f"{path} is truncated or corrupt: tree {i} is missing")
        pos += size
    if not data.startswith(b"end of trees", pos):
        raise ModelUnavailableError(f"{path} is truncated or corrupt: no end of trees")


def _find_bundle(root: Path) -> Path | None:
    if not root.is_dir():
        return None
    return next(
        (p.parent for p in sorted(root.rglob("meta.json")) if (p.parent / "model.txt").is_file()),
        None,
    )
