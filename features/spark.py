"""The feature catalog on Apache Spark: the same query, the same point-in-time rule.

The embedded engine (:mod:`features.pipeline`) runs the catalog's generated query on DuckDB.
This module runs *that same query* on Spark: :func:`features.sql.feature_sql` generates it
in DuckDB's dialect and transpiles it with SQLGlot (``dialect="spark"``). No feature is
written twice; the point-in-time rule (:func:`features.pit.known`) is inside the query.

What Spark adds is input and output at scale:

* :func:`read_records` reads the contract's Parquet record files (``<type>.parquet``,
  ``<type>_<suffix>.parquet`` as ``credit ingest`` accepts them, or a folder ``<type>/`` such
  as one partitioned by month, ``payments/month=2025-01/part-0.parquet``), keeps exactly the
  contract's columns with the contract's types and registers them as the views the query
  reads (``firms``, ``customs``, ...). Absent record types act as empty tables.
* :func:`loan_spine` / :func:`monthly_spine` build the spines on Spark, with the same rows as
  their embedded namesakes.
* :func:`build` computes every feature of a spine; :func:`build_to_parquet` is what
  ``credit features build --engine spark`` runs.

PySpark is an optional extra (``pip install "tradecredit[spark]"``); it is imported inside
functions only, and :func:`require_pyspark` says how to install it.

Timestamps are handled as Spark ``TIMESTAMP_NTZ`` holding UTC wall-clock times (the record
store's convention), with the session time zone set to UTC.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from credit.records import RECORD_TYPES
from features.catalog import CATALOG_VERSION, feature_names
from features.pipeline import TRAINING_COLUMNS
from features.pit import Lags
from features.sql import SPINE_TABLE, feature_sql

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

INSTALL_HINT = (
    'PySpark is not installed: pip install "tradecredit[spark]" (Spark also needs Java 17, '
    "e.g. apt-get install openjdk-17-jre-headless)"
)

#: Contract dtype -> Spark SQL type.
SPARK_TYPES: dict[str, str] = {
    "string": "string",
    "timestamp": "timestamp_ntz",
    "float": "double",
    "int": "bigint",
    "bool": "boolean",
}

#: Session settings for a small local session (tests, a laptop); a cluster's own
#: ``spark-defaults.conf`` or ``spark-submit --conf`` take over for ``spark://`` and YARN.
LOCAL_CONF: dict[str, str] = {
    "spark.sql.shuffle.partitions": "4",
    "spark.driver.memory": "2g",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}

#: Settings every session needs for correct results, whatever the master.
REQUIRED_CONF: dict[str, str] = {
    # record times are UTC wall-clock times; any other zone would shift days
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}


class SparkUnavailableError(RuntimeError):
    """PySpark (or Java) is missing; the message says how to install it."""


def require_pyspark() -> None:
    """Raise :class:`SparkUnavailableError` with install instructions when PySpark is absent."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise SparkUnavailableError(INSTALL_HINT) from None


def session(
    master: str = "local[2]",
    app_name: str = "tradecredit",
    conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """A Spark session for tradecredit (an existing one is reused, as Spark does).

    Parameters
    ----------
    master : ``local[N]``, ``spark://host:7077``, ``yarn``, ``k8s://...``; ``""`` keeps the
        master given by ``spark-submit``.
    app_name : the application's name in the cluster manager.
    conf : extra Spark settings (override the defaults).

    Raises
    ------
    SparkUnavailableError
        when PySpark is not installed.
    """
    require_pyspark()
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    settings = dict(REQUIRED_CONF)
    if master:
        builder = builder.master(master)
        if master.startswith("local"):
            settings = {**LOCAL_CONF, **settings}
            # local workers run this interpreter (the venv with tradecredit), not python3
            # on PATH; PySpark reads the variable when the context starts
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    settings.update(conf or {})
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: most often no Java
        raise SparkUnavailableError(
            f"cannot start Spark ({exc}); Spark needs Java 17 (JAVA_HOME or java on PATH)"
        ) from exc
    # a reused session may predate these; they are runtime settings
    for key, value in REQUIRED_CONF.items():
        spark.conf.set(key, value)
    spark.sparkContext.setLogLevel("ERROR")
    return spark


# --- records -------------------------------------------------------------------------------


def _is_local(root: str) -> bool:
    return "://" not in root or root.startswith("file://")


def _local_path(root: str) -> Path:
    return Path(root[len("file://") :] if root.startswith("file://") else root)


def record_paths(root: str | Path) -> dict[str, list[str]]:
    """The Parquet inputs of each record type under ``root``.

    A local folder is listed: ``<type>.parquet``, ``<type>_*.parquet``, ``<type>-*.parquet``
    (the names ``credit ingest`` accepts) and a sub-folder ``<type>/`` (for instance
    partitioned by month). A remote root (``s3a://``, ``hdfs://``, ``gs://``...) is read as one
    folder per record type, ``<root>/<type>/``. Record types without files are absent.
    """
    text = str(root)
    if not _is_local(text):
        return {name: [f"{text.rstrip('/')}/{name}"] for name in RECORD_TYPES}
    base = _local_path(text)
    if not base.is_dir():
        raise FileNotFoundError(f"record folder {base} does not exist")
    out: dict[str, list[str]] = {}
    for name in RECORD_TYPES:
        files = [base / f"{name}.parquet"]
        files += sorted(base.glob(f"{name}_*.parquet")) + sorted(base.glob(f"{name}-*.parquet"))
        found = [str(p) for p in files if p.is_file()]
        if (base / name).is_dir():
            found.append(str(base / name))
        if found:
            out[name] = found
    if not out:
        raise FileNotFoundError(
            f"no Parquet record files in {base}; expected "
            + ", ".join(f"{n}.parquet" for n in RECORD_TYPES)
            + " or one folder per record type"
        )
    return out


def _empty(spark: SparkSession, name: str) -> DataFrame:
    rt = RECORD_TYPES[name]
    ddl = ", ".join(f"`{f.name}` {SPARK_TYPES[f.dtype]}" for f in rt.fields)
    return spark.createDataFrame([], ddl)


def _conform(df: DataFrame, name: str, where: str) -> DataFrame:
    """Exactly the contract's columns, in order, with the contract's types."""
    from pyspark.sql import functions as sf

    rt = RECORD_TYPES[name]
    present = set(df.columns)
    missing = [f.name for f in rt.fields if f.required and f.name not in present]
    if missing:
        raise ValueError(f"{name} records in {where} lack required column(s): {', '.join(missing)}")
    cols = []
    for f in rt.fields:
        typ = SPARK_TYPES[f.dtype]
        src = sf.col(f"`{f.name}`") if f.name in present else sf.lit(None)
        cols.append(src.cast(typ).alias(f.name))
    return df.select(*cols)


def read_records(spark: SparkSession, root: str | Path) -> dict[str, DataFrame]:
    """Read the record files under ``root`` (see :func:`record_paths`) as contract tables.

    Extra columns (e.g. a ``month`` partition column) are dropped, absent optional columns
    are null, absent record types are empty. The records are taken as valid: validation is
    ``credit ingest``'s job (at scale, run it per monthly partition before building).
    """
    paths = record_paths(root)
    remote = not _is_local(str(root))
    out: dict[str, DataFrame] = {}
    for name in RECORD_TYPES:
        if name not in paths:
            out[name] = _empty(spark, name)
            continue
        try:
            df = spark.read.option("mergeSchema", "true").parquet(*paths[name])
        except Exception as exc:
            if remote and "PATH_NOT_FOUND" in str(exc):
                out[name] = _empty(spark, name)
                continue
            raise ValueError(f"cannot read {name} records from {paths[name]}: {exc}") from exc
        out[name] = _conform(df, name, ", ".join(paths[name]))
    return out


def register(tables: Mapping[str, DataFrame]) -> None:
    """Register record tables as the temporary views the generated query reads."""
    for name, df in tables.items():
        df.createOrReplaceTempView(name)


# --- spines --------------------------------------------------------------------------------


def loan_spine(spark: SparkSession) -> DataFrame:
    """One row per loan application, ``as_of = applied_at``, with its outcome columns.

    Same rows and order as :func:`features.pipeline.loan_spine`; reads the registered views.
    """
    return spark.sql(
        "SELECT l.loan_id, l.firm_id, l.applied_at AS as_of, l.product, l.amount_usd, "
        "l.disbursed_at, l.defaulted, l.default_at, f.business_model, f.main_category "
        "FROM loans l LEFT JOIN firms f ON f.firm_id = l.firm_id "
        "ORDER BY l.applied_at, l.loan_id"
    )


def horizon(spark: SparkSession) -> Any:
    """Midnight after the latest event time (``None`` when there are no records).

    The same moment as :func:`features.pipeline.store_horizon`.
    """
    import pandas as pd

    row = spark.sql(
        "SELECT greatest((SELECT max(declared_at) FROM customs), "
        "(SELECT max(shipped_at) FROM shipments), (SELECT max(occurred_at) FROM payments), "
        "(SELECT max(applied_at) FROM loans)) AS t"
    ).first()
    if row is None or row["t"] is None:
        return None
    return pd.Timestamp(row["t"]).normalize() + pd.Timedelta(days=1)


def monthly_spine(
    spark: SparkSession, start: str | None = None, end: str | None = None
) -> DataFrame:
    """Month-end snapshots of every firm registered before the snapshot.

    Same rows and order as :func:`features.pipeline.monthly_spine` (by default the 12 months
    ending with the last complete month of data).
    """
    import pandas as pd

    from features.pipeline import month_ends

    if start is None or end is None:
        h = horizon(spark)
        if h is None:
            raise ValueError("the records are empty; nothing to snapshot")
        # the embedded engine's default window: the last complete month and the 11 before it
        last_day = h - pd.Timedelta(days=1)
        last = pd.Period(last_day, freq="M")
        if not last_day.is_month_end:
            last = last - 1
        end = end or str(last)
        start = start or str(pd.Period(end, freq="M") - 11)
    moments = [t.to_pydatetime() for t in month_ends(start, end)]
    snaps = spark.createDataFrame([(t,) for t in moments], "as_of timestamp_ntz")
    snaps.createOrReplaceTempView("_tc_moments")
    return spark.sql(
        "SELECT f.firm_id, m.as_of FROM _tc_moments m JOIN firms f "
        "ON f.registered_at < m.as_of ORDER BY m.as_of, f.firm_id"
    )


# --- features ------------------------------------------------------------------------------


def build(
    spark: SparkSession,
    spine: DataFrame,
    lags: Lags | None = None,
    with_market: bool = False,
) -> DataFrame:
    """Features of every spine row, as of that row's ``as_of``, on the registered records.

    Parameters
    ----------
    spark : the session holding the record views (see :func:`register`).
    spine : Spark DataFrame with ``firm_id`` and ``as_of``; other columns are passed through.
        Rows keep their order.
    lags : availability lags per record type (default :class:`features.pit.Lags`).
    with_market : also return ``main_market``.

    Returns
    -------
    pyspark.sql.DataFrame
        The spine's columns followed by every catalog feature in catalog order (double,
        null where the embedded engine gives NaN), then ``main_market`` if asked.
    """
    from pyspark.sql import functions as sf

    missing = [c for c in ("firm_id", "as_of") if c not in spine.columns]
    if missing:
        raise ValueError(f"spine lacks column(s) {', '.join(missing)}; it needs firm_id, as_of")
    if "row_id" in spine.columns:
        raise ValueError("spine must not have a row_id column (the engine numbers the rows)")
    # Number the rows once and freeze them: the query reads the spine several times, and a
    # recomputed monotonically_increasing_id need not give the same numbers twice.
    numbered = (
        spine.withColumn("firm_id", sf.col("firm_id").cast("string"))
        .withColumn("as_of", sf.col("as_of").cast("timestamp_ntz"))
        .withColumn("row_id", sf.monotonically_increasing_id())
        .localCheckpoint(eager=True)
    )
    bad = numbered.filter(sf.col("firm_id").isNull() | sf.col("as_of").isNull()).limit(1).count()
    if bad:
        raise ValueError("spine has rows without firm_id or as_of")
    numbered.select("row_id", "firm_id", "as_of").createOrReplaceTempView(SPINE_TABLE)
    feats = spark.sql(feature_sql(lags or Lags(), dialect="spark"))
    names = feature_names()
    cols = [sf.col(f"f.{n}").cast("double").alias(n) for n in names]
    if with_market:
        cols.append(sf.col("f.main_market"))
    passthrough = [sf.col(f"s.`{c}`") for c in spine.columns]
    return (
        numbered.alias("s")
        .join(feats.alias("f"), sf.col("s.row_id") == sf.col("f.row_id"), "left")
        .orderBy(sf.col("s.row_id"))
        .select(*passthrough, *cols)
    )


def training_set(spark: SparkSession, lags: Lags | None = None) -> DataFrame:
    """The loan spine with every feature as of ``applied_at`` (columns as the embedded
    :func:`features.pipeline.training_set`)."""
    out = build(spark, loan_spine(spark), lags=lags, with_market=True)
    return out.select(*TRAINING_COLUMNS, *feature_names())


@dataclass(frozen=True)
class BuildResult:
    """What :func:`build_to_parquet` wrote."""

    out: str
    rows: int
    seconds: float
    master: str


def build_to_parquet(
    records: str | Path,
    out: str | Path,
    spine: str = "loans",
    start: str | None = None,
    end: str | None = None,
    lags: Lags | None = None,
    master: str = "local[2]",
    conf: Mapping[str, str] | None = None,
    spark: SparkSession | None = None,
) -> BuildResult:
    """Read record files, build a feature table on Spark and write it as Parquet.

    ``out`` becomes a Parquet *folder* (one part file per task, as Spark writes), overwritten
    if it exists, with a ``_tradecredit.json`` beside the parts naming the catalog version
    when it is local. ``spine`` is ``loans`` (the training set) or ``monthly``.
    """
    if spine not in ("loans", "monthly"):
        raise ValueError(f"spine must be loans or monthly, got {spine!r}")
    t0 = time.perf_counter()
    spark = spark or session(master, conf=conf)
    register(read_records(spark, records))
    if spine == "loans":
        df = training_set(spark, lags=lags)
    else:
        df = build(spark, monthly_spine(spark, start, end), lags=lags, with_market=True)
    target = str(out)
    df.write.mode("overwrite").parquet(target)
    rows = spark.read.parquet(target).count()
    secs = time.perf_counter() - t0
    if _is_local(target):
        meta = {
            "catalog_version": CATALOG_VERSION,
            "engine": "spark",
            "master": str(spark.sparkContext.master),
            "spark_version": spark.version,
            "spine": spine,
            "rows": rows,
        }
        (_local_path(target) / "_tradecredit.json").write_text(json.dumps(meta, indent=1) + "\n")
    return BuildResult(out=target, rows=rows, seconds=secs, master=str(spark.sparkContext.master))


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``spark-submit`` (the master and resources come from spark-submit).

    Example::

        spark-submit --master spark://head:7077 --conf spark.sql.shuffle.partitions=400 \\
            "$(python -c 'import features.spark as m; print(m.__file__)')" \\
            --records s3a://lake/records --out s3a://lake/features/monthly-2025-12 \\
            --spine monthly --from 2025-01 --to 2025-12
    """
    import argparse

    ap = argparse.ArgumentParser(prog="features/spark.py", description=main.__doc__)
    ap.add_argument("--records", required=True, help="folder of Parquet record files")
    ap.add_argument("--out", required=True, help="Parquet folder to write")
    ap.add_argument("--spine", choices=("loans", "monthly"), default="loans")
    ap.add_argument("--from", dest="start", help="first month YYYY-MM (monthly spine)")
    ap.add_argument("--to", dest="end", help="last month YYYY-MM (monthly spine)")
    ap.add_argument("--lag", action="append", help="TYPE=DAYS, repeatable (e.g. customs=5)")
    args = ap.parse_args(argv)
    res = build_to_parquet(
        args.records,
        args.out,
        spine=args.spine,
        start=args.start,
        end=args.end,
        lags=Lags.parse(args.lag),
        master="",
    )
    print(f"wrote {res.out}: {res.rows:,} rows on {res.master} in {res.seconds:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
