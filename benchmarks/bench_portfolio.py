"""Portfolio re-score: N watched firms (default 20,000) re-scored with reasons, against the batch
scoring path alone on the same firms in the same run.

    .venv/bin/python benchmarks/bench_portfolio.py [--firms 20000]

The world: a model over the catalog's features, every firm's features in the online store
(SQLite service database), a consent with purpose monitoring (and credit_assessment) per firm.
Timed, best of ``--repeat``:

* ``batch``: ``CreditService.decide_batch`` on the firms (the ``POST /v1/score/batch`` and
  ``credit score`` use case: the consents, each firm's features, the scoring core with its
  SHAP reasons, the policy's outcome, the audit write);
* ``core``: ``credit.decisions.score_frame`` on the same features as one table (``credit
  score --batch``: the core alone, no consent, no store read, nothing written);
* ``portfolio``: ``Portfolio.run`` (the consents, each firm's features, the same core with
  full SHAP contributions, the record signals, the comparison with the previous run, the
  run's rows and the firms' new state in one transaction). The first run is untimed (it
  writes the baseline state); the timed ones compare with it.

Goal: the portfolio's throughput at least 0.8x the batch path's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--firms", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()

    import sqlalchemy as sa

    from credit.audit import AuditLog
    from credit.consent import consents
    from credit.db import make_engine, upgrade
    from credit.decisions import score_frame
    from credit.portfolio import Portfolio, portfolio_firms
    from credit.service import CreditService, Party, ScoreItem
    from credit.settings import Settings
    from features.online import OnlineStore
    from tests.api_support import catalog_frame, train_catalog_model

    n = args.firms
    tmp = Path(tempfile.mkdtemp(prefix="bench_portfolio_"))
    settings = Settings(data_dir=tmp / "var")
    engine = make_engine(settings.service_database_url)
    upgrade(engine)
    model = train_catalog_model(version="1", n_trees=100)
    frame = catalog_frame(n, "2025-06-30", seed=1)
    online = OnlineStore(settings.service_database_url)
    online.write(frame, written_at=datetime.now(UTC))
    firms = frame["firm_id"].tolist()
    now = datetime.now(UTC)
    rows = [
        {
            "consent_id": f"con_{i:032x}",
            "firm_id": f,
            "grantee": "bank-a",
            "requested_by": "bank-a",
            "purposes": ["credit_assessment", "monitoring"],
            "sources": ["operator"],
            "months": 12,
            "status": "active",
            "requested_at": now,
            "granted_at": now,
            "expires_at": now.replace(year=now.year + 1),
            "evidence": {"statement": "bench"},
        }
        for i, f in enumerate(firms)
    ]
    cols = {c.name for c in consents.c}
    with engine.begin() as conn:
        conn.execute(consents.insert(), [{k: v for k, v in r.items() if k in cols} for r in rows])
        conn.execute(
            portfolio_firms.insert(),
            [
                {"tenant": "bank-a", "firm_id": f, "exposure": 10000.0, "source": "api",
                 "registered_at": now}
                for f in firms
            ],
        )  # fmt: skip
    service = CreditService.from_settings(
        settings, model=lambda: model, online=online, audit=AuditLog(engine)
    )
    caller = Party("bank-a")
    book = Portfolio.of(service)
    book.run("bank-a", trigger="bench")  # the baseline state

    def timed(fn: object) -> float:
        best = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fn()  # type: ignore[operator]
            best = min(best, time.perf_counter() - t0)
        return best

    items = [ScoreItem(firm_id=f, explain="top") for f in firms]
    batch = timed(lambda: service.decide_batch(items, caller=caller))
    core = timed(lambda: score_frame(model, frame, reasons=True))
    last: dict[str, object] = {}

    def run() -> None:
        last["r"] = book.run("bank-a", trigger="bench")

    port = timed(run)
    r = last["r"]
    with engine.connect() as conn:
        scored = conn.execute(sa.text("SELECT count(*) FROM portfolio_scores")).scalar_one()
    print(f"firms: {n:,} (model: {model.n_features} features, 100 trees; SQLite)")
    print(f"batch path (decide_batch, reasons, audit): {batch:.2f} s = {n / batch:,.0f} firms/s")
    print(f"scoring core alone (score_frame, reasons): {core:.2f} s = {n / core:,.0f} firms/s")
    print(
        f"portfolio run (re-score, reasons, rules, write): {port:.2f} s = {n / port:,.0f} firms/s"
    )
    print(f"  stages: {', '.join(f'{k} {v:.2f} s' for k, v in r.timings.items())}")  # type: ignore[attr-defined]
    print(f"  scored {r.scored:,} of {r.watched:,}, alerts {len(r.alerts)}; score rows {scored:,}")  # type: ignore[attr-defined]
    print(f"ratio portfolio/batch throughput: {batch / port:.2f}x (goal >= 0.8x)")
    print(f"ratio portfolio/core throughput: {core / port:.2f}x")


if __name__ == "__main__":
    main()
