"""The short load test: ``credit serve`` on loopback, 10 s at concurrency 8, rate limiter off,
audit log on a fresh PostgreSQL database. Zero errors, one audit row per 2xx answer, worker
memory growth at most 10 %, p99 reported. The full run is ``benchmarks/bench_load.py``."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

from tests.consent_support import grant

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.integration]

SECONDS = float(os.environ.get("TRADECREDIT_LOAD_SECONDS", "10"))
CONCURRENCY = int(os.environ.get("TRADECREDIT_LOAD_CONCURRENCY", "8"))


def _bench() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_load.py"
    spec = importlib.util.spec_from_file_location("bench_load", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _share_the_firms(bench: ModuleType, url: str) -> None:
    """Consents of the load's lender (``load-test``) for every firm it scores, on the database
    the server will use (created before the key the load makes: a consent names a tenant)."""
    from credit.db import make_engine, upgrade

    engine = make_engine(url)
    try:
        upgrade(engine)
        grant(engine, [f"F{i:05d}" for i in range(bench.N_FIRMS)], "load-test")
    finally:
        engine.dispose()


def test_short_load_on_postgresql(tmp_path: Path) -> None:
    bench = _bench()
    try:
        with bench.fresh_database() as url:
            _share_the_firms(bench, url)
            r = bench.run_load(SECONDS, CONCURRENCY, database_url=url, data_dir=tmp_path / "d")
    except bench.PostgresUnavailableError as exc:
        pytest.skip(str(exc))
    print(
        f"\nload {SECONDS:.0f} s x {CONCURRENCY}: {r['requests']} requests, {r['errors']} errors, "
        f"{r['rps']:.1f} req/s, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, audit rows "
        f"{r['audit_rows']} / 2xx {r['responses_2xx']}, memory {r['rss_warm_mb']:.0f} -> "
        f"{r['rss_end_mb']:.0f} MB ({r['memory_growth']:+.1%})"
    )
    assert r["measured_requests"] > 0, r["server_log_tail"]
    assert r["errors"] == 0, r["error_samples"]
    assert r["audit_rows"] == r["responses_2xx"]
    assert r["answered_not_audited"] == 0 and r["audited_not_answered"] == 0
    assert r["memory_growth"] <= 0.10
    assert r["p99_ms"] > 0
    assert not r["key_in_server_log"]
    assert bench.verdict(r) == []
