"""``POST /v1/score`` of this checkout against another one, in the same run, alternating.

Run ``python benchmarks/bench_ab.py --baseline DIR`` where DIR is a checkout of the baseline
(``git worktree add /tmp/before <rev>``). Each checkout builds its own world with its own code
(``benchmarks/bench_api.py``'s chain: simulate, ingest, train and promote, materialize; same
seed), gets a lender key (and, where the checkout has consents, the seller's consent for the
firm scored), and is served by its own uvicorn worker. Then the load generator alternates
between the two servers, ``--rounds`` times ``--seconds`` seconds at concurrency ``--conc``, so
that both see the same machine: on a shared, noisy machine the drift between two runs minutes
apart is larger than the difference measured. Printed: per round req/s and p99 of each, and
the median ratio this / baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_api import run_load, wait_ready  # noqa: E402

# Run inside a checkout (cwd and PYTHONPATH set to it): build the world, make a key, grant the
# consent where the checkout has consents, print the key and a firm as JSON.
_SETUP = """
import json, os, sys
from pathlib import Path
sys.path.insert(0, os.getcwd())
from benchmarks.bench_api import build_world, _some_firm
build_world(Path(os.environ["TRADECREDIT_DATA_DIR"]), int(sys.argv[1]), [])
from credit.db import get_engine, upgrade
from credit.keys import create_key
from credit.settings import get_settings
from features.online import OnlineStore
upgrade(get_engine())
firm = _some_firm(OnlineStore(get_settings().service_database_url))
_, key = create_key(get_engine(), "bench", "lender")
if Path("credit/consent.py").exists():  # (an editable install would import it from elsewhere)
    from credit.consent import ConsentStore

    ConsentStore(get_engine()).attest(
        firm, "bench", ["credit_assessment"], 12, provider="operator", key_id=None,
        statement="benchmark consent",
    )
print(json.dumps({"key": key, "firm": firm}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--baseline", type=Path, required=True, help="checkout of the baseline")
    ap.add_argument("--firms", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--conc", type=int, default=8)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_ab_"))
    trees = {"baseline": args.baseline.resolve(), "this": ROOT}
    servers: dict[str, tuple[subprocess.Popen[bytes], int, dict[str, str]]] = {}
    try:
        for i, (name, tree) in enumerate(trees.items()):
            env = {
                **os.environ,
                "PYTHONPATH": str(tree),
                "TRADECREDIT_DATA_DIR": str(tmp / name),
                "TRADECREDIT_API_RATE_LIMIT": "0",
                "TRADECREDIT_API_LOG_LEVEL": "WARNING",
            }
            t0 = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", _SETUP, str(args.firms)],
                cwd=tree, env=env, capture_output=True, text=True, check=False,
            )  # fmt: skip
            if out.returncode != 0:
                raise SystemExit(f"{name}: setup failed\n{out.stderr[-3000:]}")
            info = json.loads(out.stdout.strip().splitlines()[-1])
            rev = subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True, text=True
            ).stdout.strip()
            print(f"{name}: {tree} at {rev}, world in {time.perf_counter() - t0:.0f} s", flush=True)
            port = 8771 + i
            log = open(tmp / f"{name}.log", "wb")  # noqa: SIM115
            proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app",
                 "--port", str(port), "--workers", "1", "--no-access-log",
                 "--log-level", "warning"],
                cwd=tree, env=env, stdout=log, stderr=log,
            )  # fmt: skip
            wait_ready(port, "/readyz", proc, 120)
            body = json.dumps({"firm_id": info["firm"]})
            hdr = {"Content-Type": "application/json", "X-API-Key": info["key"]}
            servers[name] = (proc, port, {"body": body, **hdr})
        rows: dict[str, list[tuple[float, float]]] = {n: [] for n in trees}
        print(f"\nPOST /v1/score by firm_id, c={args.conc}, {args.seconds:.0f} s per run")
        print(f"{'round':>5s} {'baseline rps':>13s} {'p99':>7s} {'this rps':>10s} {'p99':>7s} "
              f"{'ratio':>6s}")  # fmt: skip
        for r in range(args.rounds):
            order = list(trees) if r % 2 == 0 else list(reversed(trees))
            for name in order:
                _, port, spec = servers[name]
                hdr = {k: v for k, v in spec.items() if k != "body"}
                res = run_load(
                    port, "POST", "/v1/score", spec["body"], hdr, args.conc, args.seconds
                )
                assert res["errors"] == 0, res
                rows[name].append((res["rps"], res["p99"]))
            (b, bp), (t, tp) = rows["baseline"][-1], rows["this"][-1]
            print(f"{r + 1:5d} {b:13.1f} {bp:7.2f} {t:10.1f} {tp:7.2f} {t / b:6.2f}", flush=True)
        ratios = [t[0] / b[0] for b, t in zip(rows["baseline"], rows["this"], strict=True)]
        med = {n: float(np.median([x[0] for x in v])) for n, v in rows.items()}
        p99 = {n: float(np.median([x[1] for x in v])) for n, v in rows.items()}
        print(
            f"\nmedian req/s: baseline {med['baseline']:.1f}, this {med['this']:.1f}; "
            f"median of the per-round ratios this/baseline {np.median(ratios):.2f} "
            f"(min {min(ratios):.2f}, max {max(ratios):.2f}); median p99 ms: baseline "
            f"{p99['baseline']:.2f}, this {p99['this']:.2f}"
        )
    finally:
        for proc, _, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
