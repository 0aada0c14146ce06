"""How fast providers can push records, and how soon a score reflects a push.

Run ``python benchmarks/bench_records.py``. It builds a throw-away world with the product's
own chain (``benchmarks/bench_api.py``'s: simulate ``--firms`` firms, ingest, ``credit train
--promote``, ``credit features materialize``), serves the product's app with uvicorn (one
worker, embedded SQLite service database), and measures over loopback:

1. ``POST /v1/records`` in batches of 1,000 payments (for firms of the world), one client and
   four concurrent clients: records per second (wall time, client side, JSON encoding
   included) and per-batch latency p50/p99;
2. push to score: a provider pushes one settlement of a firm, then the lender (under the
   seller's consent, approved on the signed consent page) scores the firm at once; the time
   from the start of the push to the score's answer, p50/p99 over ``--rounds`` rounds. Every
   score is checked afterwards (``GET /v1/decisions/{id}``): its lineage must name the push.
   The same with pushes of 1,000 records spread over many firms.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_api import build_world, wait_ready  # noqa: E402

PROVIDER, LENDER = "acme-market", "bank-a"


class Client:
    """One keep-alive HTTP connection."""

    def __init__(self, port: int, key: str | None = None) -> None:
        self.port, self.key = port, key
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(
        self, method: str, path: str, body: Any = None, form: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        headers = {"X-API-Key": self.key} if self.key else {}
        payload: bytes | None = None
        if form is not None:
            from urllib.parse import urlencode

            payload = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=payload, headers=headers)
        r = self.conn.getresponse()
        raw = r.read()
        ctype = r.getheader("content-type") or ""
        return r.status, (json.loads(raw) if "json" in ctype else raw.decode())


def payment(i: int, firm: str, day: str = "2025-11-20T10:00:00") -> dict[str, Any]:
    return {
        "payment_id": f"bench-P-{i:09d}",
        "firm_id": firm,
        "kind": "settlement",
        "direction": "in",
        "amount_usd": 100.0 + (i % 977),
        "currency": "USD",
        "counterparty_id": "amazon",
        "occurred_at": day,
        "paid_at": day,
    }


def pcts(xs: list[float]) -> str:
    a = np.asarray(xs) * 1000
    p50, p99 = np.percentile(a, 50), np.percentile(a, 99)
    return f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {a.max():.1f} ms"


def main() -> None:  # noqa: C901 - a benchmark reads top to bottom
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--firms", type=int, default=500)
    ap.add_argument("--batches", type=int, default=30, help="batches of 1,000 per client")
    ap.add_argument("--rounds", type=int, default=200, help="push-to-score rounds")
    ap.add_argument("--port", type=int, default=8791)
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="bench_records_")
    data_dir = Path(tmp.name) / "var"
    os.environ["TRADECREDIT_DATA_DIR"] = str(data_dir)
    os.environ["TRADECREDIT_API_RATE_LIMIT"] = "0"
    os.environ["TRADECREDIT_SELLER_PAGE_CLIENT_RATE_PER_MINUTE"] = "100000"
    t0 = time.perf_counter()
    build_world(data_dir, args.firms, [])
    print(f"setup: {time.perf_counter() - t0:.1f} s ({args.firms} firms)", flush=True)

    from credit.db import get_engine, upgrade
    from credit.keys import create_key
    from credit.settings import get_settings
    from credit.store import open_store

    get_settings.cache_clear()
    upgrade(get_engine())
    _, pkey = create_key(get_engine(), PROVIDER, "platform")
    _, lkey = create_key(get_engine(), LENDER, "lender")
    con = open_store(get_settings().store_path, read_only=True)
    firms = [r[0] for r in con.execute("SELECT firm_id FROM firms ORDER BY firm_id").fetchall()]
    con.close()

    log = open(Path(tmp.name) / "serve.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app",
         "--port", str(args.port), "--workers", "1", "--no-access-log", "--log-level", "warning"],
        env={**os.environ, "TRADECREDIT_API_LOG_LEVEL": "WARNING"},
        stdout=log, stderr=log, cwd=ROOT,
    )  # fmt: skip
    try:
        wait_ready(args.port, "/readyz", proc, 120)
        provider = Client(args.port, pkey)
        # 1. push rate ------------------------------------------------------------------
        print("\n## 1. POST /v1/records, batches of 1,000 payments, one worker")
        counter = iter(range(10**9))
        lock = threading.Lock()

        def batch() -> dict[str, Any]:
            with lock:
                ids = [next(counter) for _ in range(1000)]
            return {"records": {"payments": [payment(i, firms[i % len(firms)]) for i in ids]}}

        for conc in (1, 4):
            lat: list[float] = []
            added = [0]

            def worker(n: int, lat: list[float] = lat, added: list[int] = added) -> None:
                c = Client(args.port, pkey)
                for _ in range(n):
                    body = batch()
                    t = time.perf_counter()
                    st, out = c.call("POST", "/v1/records", body)
                    dt = time.perf_counter() - t
                    assert st == 200, out
                    counts = out["counts"]["payments"]
                    assert counts["read"] == counts["accepted"] + counts["rejected"]
                    with lock:
                        lat.append(dt)
                        added[0] += counts["added"]

            threads = [threading.Thread(target=worker, args=(args.batches,)) for _ in range(conc)]
            t = time.perf_counter()
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            wall = time.perf_counter() - t
            print(
                f"  c={conc}: {added[0]:,} records added in {wall:.2f} s = "
                f"{added[0] / wall:,.0f} records/s; per batch {pcts(lat)}",
                flush=True,
            )

        # 2. push to score --------------------------------------------------------------
        lender = Client(args.port, lkey)
        chosen = firms[:20]
        for f in chosen:  # the seller approves on the signed page
            st, asked = lender.call(
                "POST", f"/v1/firms/{f}/consent-requests",
                {"purposes": ["credit_assessment"], "months": 12},
            )  # fmt: skip
            assert st == 201, asked
            page = Client(args.port)
            st, html = page.call("GET", asked["path"])
            token = re.search(r'name="token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
            st, _ = page.call(
                "POST", asked["path"].split("?")[0], form={"token": token, "answer": "approve"}
            )
            assert st == 200
        print(f"\n## 2. push -> score that reflects it ({args.rounds} rounds, one worker)")
        for size in (1, 1000):
            totals, scores, checked = [], [], 0
            decisions: list[tuple[str, str]] = []
            for r in range(args.rounds if size == 1 else max(20, args.rounds // 10)):
                f = chosen[r % len(chosen)]
                if size == 1:
                    body = {"records": {"payments": [payment(next(counter), f)]}}
                else:
                    body = batch()
                    body["records"]["payments"][0]["firm_id"] = f
                t = time.perf_counter()
                st, pushed = provider.call("POST", "/v1/records", body)
                assert st == 200, pushed
                t1 = time.perf_counter()
                st, d = lender.call("POST", "/v1/score", {"firm_id": f})
                t2 = time.perf_counter()
                assert st == 200, d
                totals.append(t2 - t)
                scores.append(t2 - t1)
                decisions.append((d["decision_id"], pushed["ingestion_id"]))
            for did, ing in decisions:  # every score read the push before it
                st, rec = lender.call("GET", f"/v1/decisions/{did}")
                names = {i["ingestion_id"] for i in rec["lineage"]["ingestions"]}
                assert ing in names, (did, ing)
                checked += 1
            print(
                f"  push of {size:,} record(s), then score: {pcts(totals)}; the score alone "
                f"(features recomputed from the firm's records) {pcts(scores)}; "
                f"{checked} lineages checked",
                flush=True,
            )
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
