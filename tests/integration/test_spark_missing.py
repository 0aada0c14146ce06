"""Without PySpark the Spark commands say how to install it (and nothing else breaks).

Runs everywhere: PySpark is hidden from the import system for each test.
"""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

from credit.cli import app

HINT = 'pip install "tradecredit[spark]"'


@pytest.fixture
def no_pyspark(monkeypatch: pytest.MonkeyPatch) -> None:
    # a None entry in sys.modules makes `import pyspark` raise ImportError
    for name in [m for m in sys.modules if m == "pyspark" or m.startswith("pyspark.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pyspark", None)


def test_features_build_on_spark_says_how_to_install(no_pyspark, tmp_path) -> None:
    res = CliRunner().invoke(
        app,
        ["features", "build", "--engine", "spark", "--records", str(tmp_path),
         "--out", str(tmp_path / "f")],
    )  # fmt: skip
    assert res.exit_code == 2
    assert HINT in res.output


def test_score_on_spark_says_how_to_install(no_pyspark, tmp_path) -> None:
    res = CliRunner().invoke(
        app,
        ["score", "--engine", "spark", "--input", str(tmp_path / "x.parquet"),
         "--out", str(tmp_path / "s")],
    )  # fmt: skip
    assert res.exit_code == 2
    assert HINT in res.output


def test_spark_session_raises_with_the_hint(no_pyspark) -> None:
    from features.spark import SparkUnavailableError, session

    with pytest.raises(SparkUnavailableError, match=r"tradecredit\[spark\]"):
        session()


def test_modules_import_without_pyspark(no_pyspark, monkeypatch) -> None:
    import importlib

    for name in ("features.spark", "models.spark_scoring"):
        monkeypatch.delitem(sys.modules, name, raising=False)
        importlib.import_module(name)
