"""Where a credit decision's time goes: booster floor, scoring core, HTTP, batch.

Run ``python benchmarks/bench_api.py`` (``make bench``). It builds a throw-away world in a
temporary data directory with the product's own chain, as ``make demo`` does: a simulated
world (``--firms``, default 2,000), ingested, ``credit train --promote`` (the champion
``models:/tradecredit-pd@champion`` with the parameters of ``models/params.yaml``; ``--param
KEY=VALUE`` overrides, e.g. to compare tree shapes) and ``credit features materialize``. Pass
``--data-dir`` to use an existing data directory with a champion and online store instead.

Measured in one run, side by side:

1. floor: the booster's raw ``predict`` + ``pred_contrib`` on one numpy row;
   the scoring core in process (``ScoringModel.explain`` with 4 reasons), and the whole
   decision by firm_id (online store lookup + core + shaping), p50/p99 and ratio to the floor;
2. HTTP on loopback, load generator in another process, concurrency 1 and 8:
   ``POST /v1/score`` by firm_id with reasons (audit row written per request), a same-work
   route (``POST /bench/same-work``: the same key check, body and audit write, no features and
   no model; ``benchmarks/bench_app.py``), a hello-world route of the same app
   (``GET /healthz``) and ``mlflow models serve`` of the same registered model (PD only);
3. batch scoring of N firms (default 100,000): ``score_frame`` with and without reasons vs the
   booster's own multi-threaded ``predict`` / ``pred_contrib`` on the same matrix;
4. startup time to ready and resident memory of one worker.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
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

SAME_WORK_PATH = "/bench/same-work"  # benchmarks/bench_app.py


# --------------------------------------------------------------------------------------------
# load generator (runs in its own process: `bench_api.py --loadgen ...`)
# --------------------------------------------------------------------------------------------


def loadgen(
    port: int, method: str, path: str, body: str, headers: dict[str, str], conc: int, secs: float
) -> dict[str, Any]:
    lat: list[list[float]] = [[] for _ in range(conc)]
    errors = [0] * conc
    stop = time.perf_counter() + secs
    payload = body.encode() if body else None

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            t0 = time.perf_counter()
            if t0 >= stop:
                break
            try:
                conn.request(method, path, body=payload, headers=headers)
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            t1 = time.perf_counter()
            if ok:
                lat[i].append(t1 - t0)
            else:
                errors[i] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(conc)]
    t_start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t_start
    all_lat = np.array([x for xs in lat for x in xs]) * 1000
    return {
        "n": int(all_lat.size),
        "errors": int(sum(errors)),
        "rps": float(all_lat.size / wall),
        "p50": float(np.percentile(all_lat, 50)) if all_lat.size else float("nan"),
        "p99": float(np.percentile(all_lat, 99)) if all_lat.size else float("nan"),
    }


def run_load(
    port: int, method: str, path: str, body: str, headers: dict[str, str], conc: int, secs: float
) -> dict[str, Any]:
    spec = json.dumps([port, method, path, body, headers, conc, secs])
    out = subprocess.run(
        [sys.executable, __file__, "--loadgen", spec], capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# --------------------------------------------------------------------------------------------
# setup
# --------------------------------------------------------------------------------------------


def percentiles(fn: Any, n: int) -> tuple[float, float]:
    for _ in range(min(50, n)):
        fn()
    times = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - t0
    return float(np.percentile(times, 50) * 1000), float(np.percentile(times, 99) * 1000)


def build_world(data_dir: Path, n_firms: int, params: list[str]) -> None:
    """The product's own chain in ``data_dir``: simulate ``n_firms`` firms over 36 months,
    ingest, ``credit train --promote`` (the champion, with ``models/params.yaml`` unless
    ``params`` override it) and ``credit features materialize``: the model and online store
    the service really runs with."""
    env = {**os.environ, "TRADECREDIT_DATA_DIR": str(data_dir)}
    credit = [sys.executable, "-m", "credit.cli"]
    world = data_dir / "world"
    steps = [
        ["simulate", "--firms", str(n_firms), "--start", "2023-01", "--months", "36",
         "--seed", "7", "--out", str(world)],
        ["ingest", str(world)],
        ["train", "--promote", *[a for p in params for a in ("--param", p)]],
        ["features", "materialize"],
    ]  # fmt: skip
    for step in steps:
        done = subprocess.run([*credit, *step], env=env, cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stdout + done.stderr)[-3000:]
            raise SystemExit(f"credit {step[0]} failed:\n{tail}")


def wait_ready(port: int, path: str, proc: subprocess.Popen[bytes], limit: float) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            if c.getresponse().status == 200:
                return time.perf_counter() - t0
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"not ready on :{port}{path} within {limit} s")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------


def main() -> None:  # noqa: C901 - a benchmark script reads top to bottom
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data-dir", type=Path, help="use this data dir's champion and online store")
    ap.add_argument("--firms", type=int, default=2000, help="firms in the simulated world")
    ap.add_argument(
        "--param",
        action="append",
        default=[],
        help="training parameter override KEY=VALUE for the champion (repeatable)",
    )
    ap.add_argument(
        "--sections", default="core,http,batch", help="comma-separated: core, http, batch"
    )
    ap.add_argument("--seconds", type=float, default=10.0, help="per HTTP run")
    ap.add_argument("--batch-rows", type=int, default=100_000)
    ap.add_argument("--batch-repeats", type=int, default=3, help="batch runs; the best counts")
    ap.add_argument("--reps", type=int, default=1000, help="in-process repetitions per path")
    ap.add_argument("--no-mlflow-serve", action="store_true")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument(
        "--workers", type=int, default=1, help="uvicorn workers for the service (default 1)"
    )
    args = ap.parse_args()
    sections = set(args.sections.split(","))
    tmp = tempfile.TemporaryDirectory(prefix="bench_api_")
    data_dir = args.data_dir or Path(tmp.name) / "var"
    os.environ["TRADECREDIT_DATA_DIR"] = str(data_dir)
    os.environ["TRADECREDIT_API_RATE_LIMIT"] = "0"
    from credit.settings import get_settings

    get_settings.cache_clear()
    t0 = time.perf_counter()
    if args.data_dir is None:
        build_world(data_dir, args.firms, args.param)
    print(f"setup: {time.perf_counter() - t0:.1f} s (data dir {data_dir})", flush=True)

    from credit.db import get_engine, upgrade
    from credit.decisions import decide, score_frame
    from credit.keys import create_key
    from credit.scoring import ScoringModel
    from features.online import OnlineStore
    from models.fitting import tree_depth

    s = get_settings()
    model = ScoringModel.load(tracking_uri=s.tracking_uri)
    info = model.booster.dump_model(num_iteration=-1)
    n_trees = len(info["tree_info"])
    depth = max(tree_depth(t["tree_structure"]) for t in info["tree_info"])
    print(
        f"model: version {model.version}, {n_trees} trees, max depth {depth}, "
        f"{model.n_features} features",
        flush=True,
    )
    store = OnlineStore(s.service_database_url)
    firm = _some_firm(store)
    as_of, feats = store.get(firm)  # type: ignore[misc]
    from credit.decisions import encode

    row = encode(model, [feats])
    booster = model.booster

    # 1. floor vs core --------------------------------------------------------------------
    if "core" in sections:
        n = args.reps
        floor_mt = percentiles(
            lambda: (booster.predict(row, raw_score=True), booster.predict(row, pred_contrib=True)),
            n,
        )
        floor = percentiles(
            lambda: (
                booster.predict(row, raw_score=True, num_threads=1),
                booster.predict(row, pred_contrib=True, num_threads=1),
            ),
            n,
        )
        core = percentiles(lambda: model.explain(row, top_k=4), n)
        full = percentiles(lambda: decide(model, [(firm, as_of, store.get(firm)[1])]), n)  # type: ignore[index]
        core_rows = [
            ("floor: booster predict(raw) + pred_contrib, 1 row, 1 thread", floor),
            ("same, LightGBM default threads (OpenMP)", floor_mt),
            ("scoring core: ScoringModel.explain(top_k=4)", core),
            ("decision by firm_id: online store + core + shaping", full),
        ]
        try:  # the use-case layer, where this checkout has one (not recorded: no audit log)
            from credit.service import CreditService, Party

            svc = CreditService.from_settings(s, model=lambda: model, online=store)
            who = Party("bench")
            if _grant(firm, "bench"):  # this checkout checks consents: give the lender one
                from credit.consent import ConsentStore

                svc.consents = ConsentStore(get_engine())
            case = percentiles(lambda: svc.decide_firm(firm, caller=who), n)
            core_rows.append(("use case: CreditService.decide_firm (no audit write)", case))
        except ImportError:
            pass
        print("\n## 1. one decision in process (ms)")
        print(f"{'path':58s} {'p50':>8s} {'p99':>8s} {'p50/floor':>10s}")
        for name, (p50, p99) in core_rows:
            print(f"{name:58s} {p50:8.3f} {p99:8.3f} {p50 / floor[0]:10.2f}")
        sys.stdout.flush()

    # 2. HTTP ----------------------------------------------------------------------------
    log = open(Path(tmp.name) / "serve.log", "wb")  # noqa: SIM115
    if "http" in sections:
        upgrade(get_engine())
        _, key = create_key(get_engine(), "bench", "lender")
        _grant(firm, "bench")
        env = {**os.environ, "TRADECREDIT_API_LOG_LEVEL": "INFO"}
        t_start = time.perf_counter()
        # The product's app as `credit serve` runs it (uvicorn, its factory, no access log),
        # plus the same-work route of benchmarks/bench_app.py.
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "benchmarks.bench_app:create_app",
                "--port",
                str(args.port),
                "--workers",
                str(args.workers),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=log,
            stderr=log,
            cwd=ROOT,
        )
        http_rows: list[tuple[str, int, dict[str, Any]]] = []
        try:
            startup = wait_ready(args.port, "/readyz", proc, 120)
            body = json.dumps({"firm_id": firm})
            hdr = {"Content-Type": "application/json", "X-API-Key": key}
            for conc in (1, 8):
                r = run_load(args.port, "POST", "/v1/score", body, hdr, conc, args.seconds)
                http_rows.append(("POST /v1/score by firm_id, 4 reasons, audited", conc, r))
                print(f"  score c={conc}: {r}", flush=True)
                w = run_load(args.port, "POST", SAME_WORK_PATH, body, hdr, conc, args.seconds)
                http_rows.append(("POST /bench/same-work (key, audit; no model)", conc, w))
                print(f"  same-work c={conc}: {w}", flush=True)
                h = run_load(args.port, "GET", "/healthz", "", {}, conc, args.seconds)
                http_rows.append(("GET /healthz (hello-world route, same app)", conc, h))
                print(f"  hello c={conc}: {h}", flush=True)
            # one worker's memory: the server itself, or its largest worker process
            kids = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            mem = max([rss_mb(proc.pid)] + [rss_mb(int(k)) for k in kids])
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        startup_note = (
            f"{startup:.2f} s from process start to /readyz 200 "
            f"(uvicorn, {args.workers} worker{'s' if args.workers > 1 else ''})"
        )
        del t_start

        if not args.no_mlflow_serve:
            mport = args.port + 1
            menv = {
                **os.environ,
                "MLFLOW_TRACKING_URI": s.tracking_uri,
                # mlflow execs `uvicorn` from PATH; models/pyfunc_model.py imports the checkout
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
                "PYTHONPATH": str(ROOT),
            }
            mproc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mlflow",
                    "models",
                    "serve",
                    "-m",
                    "models:/tradecredit-pd@champion",
                    "-p",
                    str(mport),
                    "--env-manager",
                    "local",
                ],
                env=menv,
                stdout=log,
                stderr=log,
                cwd=data_dir,
            )
            try:
                wait_ready(mport, "/ping", mproc, 180)
                vals = [
                    None if (isinstance(v, float) and np.isnan(v)) else v for v in row[0].tolist()
                ]
                mbody = json.dumps(
                    {"dataframe_split": {"columns": model.feature_names, "data": [vals]}}
                )
                for conc in (1, 8):
                    r = run_load(
                        mport,
                        "POST",
                        "/invocations",
                        mbody,
                        {"Content-Type": "application/json"},
                        conc,
                        args.seconds,
                    )
                    http_rows.append(("mlflow models serve /invocations (PD only)", conc, r))
                    print(f"  mlflow c={conc}: {r}", flush=True)
            except (RuntimeError, TimeoutError) as exc:
                print(f"  mlflow models serve unavailable: {exc}")
            finally:
                mproc.terminate()
                try:
                    mproc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    mproc.kill()

        print(
            f"\n## 2. HTTP on loopback, {args.seconds:.0f} s per run (load generator in another "
            "process)"
        )
        print(
            f"{'endpoint':50s} {'conc':>4s} {'req/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s} "
            f"{'errors':>6s}"
        )
        for name, conc, r in http_rows:
            print(
                f"{name:50s} {conc:4d} {r['rps']:9.1f} {r['p50']:8.2f} {r['p99']:8.2f} "
                f"{r['errors']:6d}"
            )
        by = {(nm.split()[1], c): r for nm, c, r in http_rows}
        for conc in (1, 8):
            sc = by.get(("/v1/score", conc))
            sw = by.get((SAME_WORK_PATH, conc))
            hw = by.get(("/healthz", conc))
            ml = by.get(("models", conc))
            if sc and hw and sw:
                print(
                    f"c={conc}: score / same-work = {sc['rps'] / sw['rps']:.2f}; "
                    f"score / hello-world = {sc['rps'] / hw['rps']:.2f}",
                    end="",
                )
                if ml and ml["rps"] > 0:
                    print(f"; score / mlflow models serve = {sc['rps'] / ml['rps']:.1f}x", end="")
                print()
        print(f"startup: {startup_note}; worker RSS after the runs: {mem:.0f} MiB")
        sys.stdout.flush()

    # 3. batch -----------------------------------------------------------------------------
    if "batch" in sections:
        import pandas as pd

        # the online store's real feature rows, repeated up to --batch-rows
        import sqlalchemy as sa

        from features.online import online_features

        with store.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(sa.select(online_features.c.firm_id).distinct())]
        rows = [store.get(f)[1] for f in ids]  # type: ignore[index]
        reps = -(-args.batch_rows // len(rows))
        frame = pd.DataFrame((rows * reps)[: args.batch_rows])
        frame.insert(0, "firm_id", [f"B{i}" for i in range(args.batch_rows)])
        B = encode(model, frame.to_dict("records"))
        print(f"\n## 3. batch scoring of {args.batch_rows:,} firms (firms/s)")
        res = {}
        for label, fn in [
            ("booster predict (raw, multi-threaded)", lambda: booster.predict(B, raw_score=True)),
            ("score_frame without reasons", lambda: score_frame(model, frame, reasons=False)),
            (
                "booster pred_contrib (multi-threaded)",
                lambda: booster.predict(B, pred_contrib=True),
            ),
            ("score_frame with 4 reasons", lambda: score_frame(model, frame, reasons=True)),
        ]:
            # the best of --batch-repeats runs: one run of half a second is at the mercy of
            # whatever else the machine does in that half second
            times = []
            for _ in range(args.batch_repeats):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            dt = min(times)
            res[label] = args.batch_rows / dt
            runs = ", ".join(f"{t:.2f}" for t in times)
            print(f"{label:45s} {res[label]:12,.0f}  (best of {runs} s)", flush=True)
        plain, contrib = res["score_frame without reasons"], res["score_frame with 4 reasons"]
        raw_p, raw_c = (
            res["booster predict (raw, multi-threaded)"],
            res["booster pred_contrib (multi-threaded)"],
        )
        print(f"without reasons / raw predict = {plain / raw_p:.2f}")
        print(f"with reasons / raw pred_contrib = {contrib / raw_c:.2f}")
    log.close()
    tmp.cleanup()


def _grant(firm: str, tenant: str) -> bool:
    """An active consent of ``tenant`` for ``firm``, where this checkout has consents (the
    score then runs its consent check, as in production); False on a checkout without."""
    try:
        from credit.consent import ConsentStore
    except ImportError:
        return False
    from credit.db import get_engine, upgrade

    upgrade(get_engine())
    store = ConsentStore(get_engine())
    if store.active(tenant, firm, "credit_assessment") is None:
        store.attest(
            firm, tenant, ["credit_assessment"], 12,
            provider="operator", key_id=None, statement="benchmark consent",
        )  # fmt: skip
    return True


def _some_firm(store: Any) -> str:
    import sqlalchemy as sa

    from features.online import online_features

    with store.engine.connect() as conn:
        return str(conn.execute(sa.select(online_features.c.firm_id).limit(1)).scalar_one())


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--loadgen":
        print(json.dumps(loadgen(*json.loads(sys.argv[2]))))
    else:
        main()
