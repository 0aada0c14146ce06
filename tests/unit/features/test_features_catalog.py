"""The catalog as a contract: what the models, the API and the docs derive from it."""

from __future__ import annotations

import re

import pytest

from features import catalog
from features.catalog import (
    CATALOG,
    CATALOG_VERSION,
    FAMILIES,
    feature_names,
    get,
    monotone_constraints,
    reason_texts,
)
from features.sql import feature_sql


def test_at_least_60_features_over_every_family() -> None:
    assert len(CATALOG) >= 60
    assert {f.family for f in CATALOG} == set(FAMILIES)


def test_names_are_unique_snake_case_and_ordered() -> None:
    names = feature_names()
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", n) for n in names)
    assert names == [f.name for f in CATALOG]


def test_monotone_constraints_follow_risk_direction() -> None:
    mc = monotone_constraints()
    assert len(mc) == len(feature_names())
    assert set(mc) <= {-1, 0, 1}
    assert mc[feature_names().index("supplier_dpd_max_365d")] == 1
    assert mc[feature_names().index("inflow_90d")] == -1


def test_every_feature_has_texts_for_people() -> None:
    texts = reason_texts()
    for f in CATALOG:
        assert f.description and f.reason and f.hint and f.missing, f.name
        assert texts[f.name] == f.reason


def test_required_families_have_their_key_features() -> None:
    for name in (
        "worst_loan_dpd_ever",  # worst past loan DPD
        "supplier_dpd_max_365d",  # supplier DPD
        "thin_file_flag",
        "us_low_value_b2c_share_365d",
        "eu_consumer_goods_share_365d",
        "export_growth_90d",  # 90d vs prior 90d
        "refund_ratio_trend_90d",
        "supplier_dpd_trend_90d",
        "inflow_outflow_ratio_90d",
    ):
        assert get(name).name == name


def test_get_unknown_suggests() -> None:
    with pytest.raises(KeyError, match="did you mean"):
        get("inflow_90")


def test_version_is_a_stable_hash_of_the_definitions() -> None:
    assert re.fullmatch(r"[0-9a-f]{12}", CATALOG_VERSION)
    assert catalog._version() == CATALOG_VERSION


def test_invalid_declarations_are_refused() -> None:
    ok = dict(
        name="x", family="cash_flow", source="payments", aggregation="sum", description="d",
        risk_direction=1, reason="r", hint="h", missing="m",
    )  # fmt: skip
    catalog.Feature(**ok)  # type: ignore[arg-type]
    for bad in ({"family": "misc"}, {"source": "emails"}, {"risk_direction": 2}):
        with pytest.raises(ValueError):
            catalog.Feature(**{**ok, **bad})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs a key"):
        catalog.Feature(**{**ok, "aggregation": "hhi"})  # type: ignore[arg-type]


def test_one_query_names_every_feature() -> None:
    sql = feature_sql()
    for name in feature_names():
        assert f" AS {name}" in sql or f", {name}" in sql


def test_the_query_transpiles_to_spark_sql() -> None:
    spark = feature_sql(dialect="spark")
    assert "WITH" in spark
    assert "date_diff('day'" not in spark  # DuckDB's spelling did not leak through
