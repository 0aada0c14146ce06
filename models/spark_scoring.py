"""Batch scoring on Apache Spark with the registered champion.

PD, score and grade come from the registered MLflow model itself, applied with
:func:`mlflow.pyfunc.spark_udf` (the pyfunc wraps :class:`credit.scoring.ScoringModel`, so the
numbers are the scoring core's). Reason codes, optional, are computed by the same core's batch
path (:func:`credit.decisions.score_frame`) inside ``mapInPandas``: the model bundle is
broadcast once and loaded once per Python worker.

The alias is resolved to a version *once*, before anything runs, so every partition (and the
reasons) use the same model even if ``champion`` moves during the job.

PySpark is optional (``pip install "tradecredit[spark]"``); it is imported inside functions.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from credit.decisions import TOP_K, score_frame
from credit.scoring import CHAMPION_URI, ModelUnavailableError, ScoringInputError, ScoringModel
from credit.settings import get_settings

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

#: What the pyfunc returns, as a Spark struct.
RESULT_TYPE = "pd double, score bigint, grade string"
#: Columns carried from the feature table to the scores, when present.
KEY_COLUMNS = ("firm_id", "as_of", "loan_id")

# Python workers keep the model they loaded, per version (a worker serves many batches).
_WORKER_MODELS: dict[str, ScoringModel] = {}


def pin(model_uri: str = CHAMPION_URI, tracking_uri: str | None = None) -> tuple[str, str]:
    """Resolve ``models:/NAME@ALIAS`` to ``(models:/NAME/VERSION, VERSION)``.

    A ``models:/NAME/VERSION`` URI is returned as is.

    Raises
    ------
    ModelUnavailableError
        when the URI is malformed or names no registered model version.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    if not model_uri.startswith("models:/"):
        raise ModelUnavailableError(
            f"expected models:/NAME@ALIAS or models:/NAME/N, got {model_uri}"
        )
    rest = model_uri[len("models:/") :].strip("/")
    uri = tracking_uri or get_settings().tracking_uri
    c = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        if "@" in rest:
            name, alias = rest.split("@", 1)
            version = str(c.get_model_version_by_alias(name, alias).version)
        else:
            name, version = rest.rsplit("/", 1)
            c.get_model_version(name, version)
    except (MlflowException, ValueError) as exc:
        raise ModelUnavailableError(f"no registered model for {model_uri}: {exc}") from exc
    return f"models:/{name}/{version}", version


def _bundle_files(model: ScoringModel) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        d = model.to_bundle(Path(tmp) / "bundle")
        return {p.name: p.read_bytes() for p in d.iterdir() if p.is_file()}


def _worker_model(files: dict[str, bytes], version: str, run_id: str | None) -> ScoringModel:
    model = _WORKER_MODELS.get(version)
    if model is None:
        d = Path(tempfile.mkdtemp(prefix=f"tradecredit-bundle-{version}-"))
        for name, data in files.items():
            (d / name).write_bytes(data)
        model = ScoringModel.from_bundle(d, version=version, run_id=run_id)
        _WORKER_MODELS[version] = model
    return model


def _reason_columns(top_k: int) -> list[tuple[str, str]]:
    cols: list[tuple[str, str]] = []
    for k in range(1, top_k + 1):
        cols += [
            (f"reason_{k}", "string"),
            (f"reason_{k}_feature", "string"),
            (f"reason_{k}_contribution", "double"),
        ]
    return cols


def score(
    spark: SparkSession,
    features: DataFrame,
    model_uri: str = CHAMPION_URI,
    tracking_uri: str | None = None,
    reasons: bool = False,
) -> DataFrame:
    """Score a Spark feature table with a registered model.

    Parameters
    ----------
    spark : the session.
    features : one row per firm (and moment): ``firm_id``, optionally ``as_of`` / ``loan_id``,
        and every model feature (other columns are ignored).
    model_uri : ``models:/tradecredit-pd@champion`` (default) or a version URI.
    tracking_uri : MLflow tracking/registry URI (default: the settings').
    reasons : add up to four reason codes per row, as ``credit score --batch`` writes them.

    Returns
    -------
    pyspark.sql.DataFrame
        The key columns, ``pd``, ``score``, ``grade``, ``model_version`` and, with reasons,
        ``reason_k`` / ``reason_k_feature`` / ``reason_k_contribution`` for k = 1..4.
    """
    import mlflow
    from pyspark.sql import functions as sf

    uri = tracking_uri or get_settings().tracking_uri
    pinned, version = pin(model_uri, uri)
    model = ScoringModel.load(pinned, tracking_uri=uri)
    if "firm_id" not in features.columns:
        raise ScoringInputError("the feature table needs a firm_id column")
    missing = [f for f in model.feature_names if f not in features.columns]
    if missing:
        raise ScoringInputError(f"missing feature columns: {', '.join(missing)}")
    keys = [c for c in KEY_COLUMNS if c in features.columns]
    # the pyfunc's signature: numbers as double, categorical features as their labels
    typed = [
        sf.col(f"`{f}`").cast("string" if f in model.categories else "double").alias(f)
        for f in model.feature_names
    ]
    frame = features.select(*[sf.col(k) for k in keys], *typed)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    predict = mlflow.pyfunc.spark_udf(spark, pinned, result_type=RESULT_TYPE, env_manager="local")
    scored = frame.withColumn(
        "_s", predict(sf.struct(*[sf.col(f"`{f}`") for f in model.feature_names]))
    )
    base = [sf.col(k) for k in keys] + [
        sf.col("_s.pd").alias("pd"),
        sf.col("_s.score").alias("score"),
        sf.col("_s.grade").alias("grade"),
        sf.lit(version).alias("model_version"),
    ]
    if not reasons:
        return scored.select(*base)

    with_scores = scored.select(*base, *[sf.col(f"`{f}`") for f in model.feature_names])
    files = spark.sparkContext.broadcast(_bundle_files(model))
    run_id = model.run_id
    reason_cols = _reason_columns(TOP_K)
    out_fields = [(k, with_scores.schema[k].dataType.simpleString()) for k in keys]
    out_fields += [("pd", "double"), ("score", "bigint"), ("grade", "string")]
    out_fields += [("model_version", "string"), *reason_cols]
    ddl = ", ".join(f"`{n}` {t}" for n, t in out_fields)
    out_names = [n for n, _ in out_fields]

    def explain(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        core = _worker_model(files.value, version, run_id)
        for pdf in batches:
            res = score_frame(core, pdf, reasons=True, chunk_size=max(len(pdf), 1))
            out = pdf[[*keys, "pd", "score", "grade", "model_version"]].reset_index(drop=True)
            for name, _ in reason_cols:
                out[name] = res[name].to_numpy()
            yield out[out_names]

    return with_scores.mapInPandas(explain, ddl)


@dataclass(frozen=True)
class ScoreResult:
    """What :func:`score_to_parquet` wrote."""

    out: str
    rows: int
    version: str
    seconds: float
    grades: dict[str, int] = field(default_factory=dict)


def score_to_parquet(
    features: str | Path,
    out: str | Path,
    master: str = "local[2]",
    model_uri: str = CHAMPION_URI,
    tracking_uri: str | None = None,
    reasons: bool = False,
    spark: SparkSession | None = None,
) -> ScoreResult:
    """Read a Parquet feature table (file or folder), score it on Spark, write Parquet.

    ``out`` becomes a Parquet folder (overwritten if it exists).
    """
    from features.spark import session  # imports PySpark (optional, heavy)

    t0 = time.perf_counter()
    spark = spark or session(master)
    src = str(features)
    if "://" not in src and not Path(src).exists():
        raise FileNotFoundError(f"feature table {src} does not exist")
    frame = spark.read.parquet(src)
    result = score(spark, frame, model_uri=model_uri, tracking_uri=tracking_uri, reasons=reasons)
    target = str(out)
    result.write.mode("overwrite").parquet(target)
    written = spark.read.parquet(target)
    grades = {r["grade"]: int(r["count"]) for r in written.groupBy("grade").count().collect()}
    rows = sum(grades.values())
    first = written.select("model_version").first()
    version = str(first[0]) if first is not None else pin(model_uri, tracking_uri)[1]
    return ScoreResult(
        out=target,
        rows=rows,
        version=version,
        seconds=time.perf_counter() - t0,
        grades=dict(sorted(grades.items())),
    )
