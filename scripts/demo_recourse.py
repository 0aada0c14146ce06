"""Print a recourse answer (GET /v1/firms/{id}/recourse, read from stdin) for people."""

from __future__ import annotations

import json
import sys


def main() -> None:
    body = json.load(sys.stdin)
    cur = body["current"]
    print(f"  now: grade {cur['grade']}, score {cur['score']} (as of {body['as_of'][:10]})")
    print(f"  {body['message']}")
    plans = body["plans"] or ([body["best_reachable"]] if body["best_reachable"] else [])
    for i, p in enumerate(plans, 1):
        after, without = p["after"], p["without_plan"]
        print(
            f"  plan {i}: grade {after['grade']}, score {after['score']} after "
            f"{p['horizon_days']} days (doing nothing: grade {without['grade']}, "
            f"{without['score']}); cash ${p['cost']['cash_usd']:,.0f}"
        )
        for a in p["actions"]:
            print(f"    - {a['text']}")
    s = body["search"]
    print(
        f"  ({s['compositions_scored']} compositions scored, {s['plans_verified']} verified "
        f"from records, {s['seconds'] * 1000:.0f} ms)"
    )


if __name__ == "__main__":
    main()
