"""Load test: the real service under sustained load with the audit log on PostgreSQL.

Run ``python benchmarks/bench_load.py`` (``make bench``): 60 s at concurrency 16 by default
(``--seconds``, ``--concurrency``). It builds a throw-away world in a temporary data
directory (a small LightGBM model over the feature catalog registered as
``models:/tradecredit-pd@champion``, features materialized in the online store, an API key),
creates a fresh PostgreSQL database for the service (``--pg-url``, default the local server's
``test`` database; dropped afterwards), starts ``credit serve`` on loopback with the rate
limiter off and hammers ``POST /v1/score`` from ``--concurrency`` keep-alive connections.

It prints requests, errors, throughput, p50/p99 latency, audit rows against 2xx responses and
the worker's resident memory after warm-up and at the end, and exits 1 when a request failed,
an answered decision is missing from the audit log (or a row has no answer), or the worker's
memory grew more than 10 %. Every loop is bounded in time and count; all traffic stays on
127.0.0.1. ``tests/reliability/test_load.py`` runs the short version in CI.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PG_URL = os.environ.get("TRADECREDIT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
N_FIRMS = 50
MAX_REQUESTS = 2_000_000  # a hard bound on top of the time bound


class PostgresUnavailableError(RuntimeError):
    pass


@contextlib.contextmanager
def fresh_database(pg_url: str = PG_URL) -> Iterator[str]:
    """The URL of a new PostgreSQL database, dropped afterwards."""
    import sqlalchemy as sa

    try:
        admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        raise PostgresUnavailableError(
            f"PostgreSQL not reachable at {pg_url}: {type(exc).__name__}"
        ) from exc
    name = f"tc_load_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.engine.make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(data_dir: Path, database_url: str) -> None:
    """A registered champion and materialized features for ``N_FIRMS`` firms."""
    import pandas as pd

    from credit.settings import Settings
    from features.online import OnlineStore
    from tests.api_support import catalog_frame, register_champion, train_catalog_model

    s = Settings(data_dir=data_dir, database_url=database_url)
    s.ensure_data_dir()
    register_champion(train_catalog_model(), s.tracking_uri, s.data_dir)
    early = catalog_frame(N_FIRMS, "2025-03-31", seed=1)
    late = catalog_frame(N_FIRMS, "2025-06-30", seed=2)
    from credit.db import make_engine, upgrade

    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    OnlineStore(database_url).write(pd.concat([early, late], ignore_index=True))


def _rss(pid: int) -> int:
    import psutil

    return int(psutil.Process(pid).memory_info().rss)


def _hammer(
    port: int, key: str, conc: int, secs: float, max_requests: int
) -> tuple[list[float], list[str], list[str]]:
    """(latencies in ms of 2xx answers, decision IDs answered, error descriptions)."""
    lat: list[list[float]] = [[] for _ in range(conc)]
    ids: list[list[str]] = [[] for _ in range(conc)]
    errs: list[list[str]] = [[] for _ in range(conc)]
    stop = time.perf_counter() + secs
    budget = [max_requests]
    lock = threading.Lock()
    headers = {"X-API-Key": key, "Content-Type": "application/json"}

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        n = 0
        while time.perf_counter() < stop:
            with lock:
                if budget[0] <= 0:
                    break
                budget[0] -= 1
            body = json.dumps({"firm_id": f"F{(i * 7919 + n) % N_FIRMS:05d}"})
            n += 1
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/v1/score", body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException) as exc:
                errs[i].append(f"{type(exc).__name__}: {exc}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            if 200 <= status < 300:
                lat[i].append((time.perf_counter() - t0) * 1000)
                ids[i].append(json.loads(data)["decision_id"])
            else:
                errs[i].append(f"HTTP {status}: {data[:200]!r}")
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(conc)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(secs + 120)
    return (
        [x for xs in lat for x in xs],
        [x for xs in ids for x in xs],
        [x for xs in errs for x in xs],
    )


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


def run_load(
    seconds: float = 60.0,
    concurrency: int = 16,
    database_url: str | None = None,
    data_dir: Path | None = None,
    warmup_seconds: float = 3.0,
    pg_url: str = PG_URL,
) -> dict[str, Any]:
    """Start the service, load it, and return the figures (see the module docstring)."""
    import sqlalchemy as sa

    with contextlib.ExitStack() as stack:
        if database_url is None:
            database_url = stack.enter_context(fresh_database(pg_url))
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tc-load-")))
        prepare(data_dir, database_url)
        from credit.db import make_engine
        from credit.keys import create_key

        engine = make_engine(database_url)
        stack.callback(engine.dispose)
        _, key = create_key(engine, "load-test", "lender")
        port = _free_port()
        env = {
            **os.environ,
            "TRADECREDIT_DATA_DIR": str(data_dir),
            "TRADECREDIT_DATABASE_URL": database_url,
            "TRADECREDIT_API_RATE_LIMIT": "0",
            "TRADECREDIT_API_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
        env.pop("MLFLOW_TRACKING_URI", None)
        log_path = data_dir / "serve.log"
        log = stack.enter_context(open(log_path, "wb"))  # noqa: SIM115 - closed by the stack
        proc = subprocess.Popen(
            [sys.executable, "-m", "credit.cli", "serve", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

        def stop_server() -> None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)

        stack.callback(stop_server)
        _wait_ready(port, proc, log_path)
        t_start = time.perf_counter()
        lat0, ids0, errs0 = _hammer(port, key, concurrency, warmup_seconds, MAX_REQUESTS)
        rss_warm = _rss(proc.pid)
        lat, ids, errs = _hammer(port, key, concurrency, seconds, MAX_REQUESTS)
        wall = time.perf_counter() - t_start - warmup_seconds
        rss_end = _rss(proc.pid)
        with engine.connect() as conn:
            rows = {r[0] for r in conn.execute(sa.text("SELECT decision_id FROM decisions"))}
        answered = set(ids0) | set(ids)
        stop_server()
        server_log = log_path.read_text(errors="replace")
    return {
        "seconds": seconds,
        "concurrency": concurrency,
        "requests": len(lat0) + len(errs0) + len(lat) + len(errs),
        "measured_requests": len(lat) + len(errs),
        "errors": len(errs0) + len(errs),
        "error_samples": (errs0 + errs)[:5],
        "rps": len(lat) / wall if wall > 0 else float("nan"),
        "p50_ms": _percentile(lat, 50),
        "p99_ms": _percentile(lat, 99),
        "max_ms": max(lat) if lat else float("nan"),
        "responses_2xx": len(ids0) + len(ids),
        "audit_rows": len(rows),
        "answered_not_audited": len(answered - rows),
        "audited_not_answered": len(rows - answered),
        "rss_warm_mb": rss_warm / 2**20,
        "rss_end_mb": rss_end / 2**20,
        "memory_growth": (rss_end - rss_warm) / rss_warm,
        "key_in_server_log": key in server_log,
        "server_log_tail": server_log[-2000:],
    }


def _wait_ready(port: int, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the service exited early:\n{log_path.read_text()[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                conn.close()
                return
            conn.close()
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the service was not ready within 120 s:\n{log_path.read_text()[-3000:]}")


def verdict(r: dict[str, Any], max_growth: float = 0.10) -> list[str]:
    """What failed, in words (empty when the run passed)."""
    problems = []
    if r["errors"]:
        problems.append(f"{r['errors']} failed requests, e.g. {r['error_samples'][:2]}")
    if r["audit_rows"] != r["responses_2xx"] or r["answered_not_audited"]:
        problems.append(
            f"audit rows {r['audit_rows']} != 2xx responses {r['responses_2xx']} "
            f"({r['answered_not_audited']} answered but not audited)"
        )
    if r["memory_growth"] > max_growth:
        problems.append(f"worker memory grew {r['memory_growth']:.1%} (> {max_growth:.0%})")
    if r["key_in_server_log"]:
        problems.append("the API key appears in the server log")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--pg-url", default=PG_URL, help="server to create the throw-away DB on")
    args = ap.parse_args()
    try:
        r = run_load(args.seconds, args.concurrency, pg_url=args.pg_url)
    except PostgresUnavailableError as exc:
        print(f"skipped: {exc}")
        return 0
    print(
        f"load: {r['seconds']:.0f} s at concurrency {r['concurrency']}, POST /v1/score, "
        "rate limiter off, audit log on PostgreSQL"
    )
    print(f"  requests        {r['requests']} ({r['measured_requests']} measured after warm-up)")
    print(f"  errors          {r['errors']}")
    print(f"  throughput      {r['rps']:.1f} req/s")
    print(
        f"  latency         p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
        f"max {r['max_ms']:.1f} ms"
    )
    print(
        f"  audit rows      {r['audit_rows']} for {r['responses_2xx']} 2xx responses "
        f"({r['answered_not_audited']} answered but not audited, "
        f"{r['audited_not_answered']} audited but not answered)"
    )
    print(
        f"  worker memory   {r['rss_warm_mb']:.1f} MB after warm-up -> {r['rss_end_mb']:.1f} MB "
        f"({r['memory_growth']:+.1%})"
    )
    problems = verdict(r)
    for p in problems:
        print(f"  FAIL: {p}")
    print("  PASS" if not problems else "  load test failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
