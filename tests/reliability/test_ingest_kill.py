"""Ingestion killed halfway (SIGKILL, no chance to clean up) and run again ends with exactly
the store one clean run makes: the same rows in every contract table and the same rejections.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pytest

from credit.records import RECORD_TYPES

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@cache
def _files(root: Path) -> Path:
    from credit.simulator import simulate

    d = root / "world"
    simulate(firms=400, start="2022-01", months=24, seed=5).write(d, "csv")
    (d / "truth.parquet").unlink(missing_ok=True)
    # a few rows that must be rejected, so the rejections are compared too
    pay = d / "payments.csv"
    lines = pay.read_text().splitlines(keepends=True)
    bad = lines[1].split(",")
    bad[0] = "has space"
    pay.write_text("".join(lines + [",".join(bad)]))
    return d


def _ingest_cmd(src: Path, store: Path) -> list[str]:
    return [sys.executable, "-m", "credit.cli", "ingest", str(src), "--store", str(store), "--json"]


def _env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "TRADECREDIT_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}


def snapshot(store: Path) -> dict[str, Any]:
    """Every contract table's rows (sorted) and the rejections without run-specific columns."""
    con = duckdb.connect(str(store), read_only=True)
    try:
        out: dict[str, Any] = {}
        for t in RECORD_TYPES:
            out[t] = sorted(map(repr, con.execute(f"SELECT * FROM {t}").fetchall()))
        out["rejected"] = sorted(
            map(
                repr,
                con.execute(
                    "SELECT DISTINCT source_file, line, record_type, record_id, field, value, "
                    "reason FROM rejected"
                ).fetchall(),
            )
        )
        return out
    finally:
        con.close()


def test_ingestion_killed_halfway_then_rerun_equals_one_clean_run(tmp_path: Path) -> None:
    src = _files(tmp_path)
    clean = tmp_path / "clean.duckdb"
    opened, finished = _timed_run(src, clean, tmp_path)
    expected = snapshot(clean)
    assert sum(len(expected[t]) for t in RECORD_TYPES) > 5000
    assert expected["rejected"], "the planted bad row was not rejected"
    killed_mid_run = 0
    for i, fraction in enumerate((0.2, 0.5, 0.8)):
        store = tmp_path / f"killed{i}.duckdb"
        if _kill_at(src, store, tmp_path, opened + fraction * (finished - opened)):
            killed_mid_run += 1
        if i == 0:  # a second kill, during the re-run: recovery must survive that too
            _kill_at(src, store, tmp_path, opened + 0.5 * (finished - opened))
        res = subprocess.run(_ingest_cmd(src, store), env=_env(tmp_path), capture_output=True)
        assert res.returncode == 0, res.stderr.decode()[-2000:]
        assert snapshot(store) == expected, f"store after kill at {fraction:.0%} differs"
        # and one more run adds nothing
        subprocess.run(_ingest_cmd(src, store), env=_env(tmp_path), check=True, capture_output=True)
        assert snapshot(store) == expected
    assert killed_mid_run >= 2, f"ingestion took {finished - opened:.1f} s; kills came too late"


def _timed_run(src: Path, store: Path, tmp_path: Path) -> tuple[float, float]:
    """(seconds until the store is opened, seconds until the run ends) of a clean run."""
    t0 = time.monotonic()
    proc = subprocess.Popen(_ingest_cmd(src, store), env=_env(tmp_path), stdout=subprocess.DEVNULL)
    opened = None
    while proc.poll() is None and time.monotonic() - t0 < 300:
        if opened is None and store.exists():
            opened = time.monotonic() - t0
        time.sleep(0.01)
    assert proc.wait(300) == 0
    finished = time.monotonic() - t0
    return (opened if opened is not None else 0.0), finished


def _kill_at(src: Path, store: Path, tmp_path: Path, at: float) -> bool:
    """Start an ingestion, SIGKILL it ``at`` seconds in; whether it was still running."""
    t0 = time.monotonic()
    proc = subprocess.Popen(
        _ingest_cmd(src, store),
        env=_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(max(0.0, at - (time.monotonic() - t0)))
    running = proc.poll() is None and store.exists()
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    return running
