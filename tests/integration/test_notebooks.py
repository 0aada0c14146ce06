"""The notebooks run top to bottom on a small simulated world (in order: each needs the last)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

pytestmark = pytest.mark.slow

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
ORDER = ["01_records_and_features", "02_train_and_compare", "03_explain_and_monitor"]
BUDGET_SECONDS = 180


def test_notebooks_are_committed_without_outputs() -> None:
    for name in ORDER:
        nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code, name
        assert all(not c.outputs and c.execution_count is None for c in code), name


def test_notebooks_execute_in_order(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel inherits the environment: the stores go to this test's folder.
    monkeypatch.setenv("TRADECREDIT_DATA_DIR", str(data_dir))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # the kernel imports this checkout's packages even where they are not installed
    paths = [str(NOTEBOOKS.parent), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    started = time.perf_counter()
    seconds = {}
    for name in ORDER:
        t = time.perf_counter()
        nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        client = nbclient.NotebookClient(
            nb,
            timeout=BUDGET_SECONDS,
            kernel_name="python3",
            resources={"metadata": {"path": str(NOTEBOOKS)}},
        )
        client.execute()  # raises CellExecutionError with the failing cell's traceback
        errors = [
            o for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if o.get("output_type") == "error"
        ]  # fmt: skip
        assert not errors, (name, errors)
        seconds[name] = time.perf_counter() - t
    total = time.perf_counter() - started
    assert (data_dir / "records.duckdb").is_file()
    assert total < BUDGET_SECONDS, seconds
