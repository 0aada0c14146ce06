"""The three-party story of ``make demo``, told over HTTP against the running service.

    python scripts/demo_story.py story BASE_URL
    python scripts/demo_story.py consent BASE_URL FIRM TENANT_KEY_VAR...
    python scripts/demo_story.py decisions BASE_URL
    python scripts/demo_story.py events BASE_URL FIRM

``story``: two providers push a new seller's records, a lender asks for consent, the seller
approves on the printed link, the lender scores; a second lender without consent gets 404;
the seller revokes and the first lender's next score gets 404. ``decisions``: applications
approved, declined or referred under the lender's policy, a review decided by named reviewers
(four eyes on an override) and an adverse-action notice (DEMO_ANA_KEY, DEMO_BEN_KEY: reviewer
keys). ``consent``: the seller of FIRM
approves a request of each tenant whose API key is in the named environment variables (for the
rest of the demo). The keys come from environment variables (DEMO_MARKET_KEY, DEMO_CUSTOMS_KEY,
DEMO_LENDER_KEY, DEMO_OTHER_KEY); the seller's clicks are made as the page's form would post
them. ``events``: demo-lender's webhook receives signed events; FIRM is watched under a
monitoring consent and raises an alert when its supplier invoices go overdue.
"""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

SELLER = "91330100MA2DEMO01X"  # an 18-character Unified Social Credit Code, as firm_id


def call(base: str, method: str, path: str, key: str | None = None, body: Any = None,
         form: dict[str, str] | None = None) -> tuple[int, Any]:  # fmt: skip
    headers = {"X-API-Key": key} if key else {}
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            raw, status, ctype = r.read(), r.status, r.headers.get("content-type", "")
    except urllib.error.HTTPError as e:
        raw, status, ctype = e.read(), e.code, e.headers.get("content-type", "")
    return status, (json.loads(raw) if "json" in ctype else raw.decode())


def say(text: str) -> None:
    print(f"\n-- {text}", flush=True)


def seller_records() -> dict[str, list[dict[str, Any]]]:
    """A simulated firm's records as a new seller's: IDs prefixed, dates moved so that its
    history ends two days ago (the demo world ends in the past)."""
    from credit.records import RECORD_TYPES
    from credit.store import open_store

    con = open_store(read_only=True)
    try:
        (source,) = con.execute(
            "SELECT firm_id FROM payments WHERE kind = 'settlement' GROUP BY firm_id "
            "ORDER BY count(*) DESC LIMIT 1 OFFSET 5"
        ).fetchone()
        (last,) = con.execute(
            "SELECT max(occurred_at) FROM payments WHERE firm_id = ?", [source]
        ).fetchone()
        shift = timedelta(days=(datetime.now(UTC).replace(tzinfo=None) - last).days - 2)
        out: dict[str, list[dict[str, Any]]] = {}
        for name, rt in RECORD_TYPES.items():
            if name == "loans":  # a lender's own data, not a provider's
                continue
            cur = con.execute(f"SELECT * FROM {name} WHERE firm_id = ?", [source])  # noqa: S608
            cols = [d[0] for d in cur.description]
            rows = []
            for row in cur.fetchall():
                rec = dict(zip(cols, row, strict=True))
                for f in rt.fields:
                    v = rec.get(f.name)
                    if f.dtype == "timestamp" and v is not None:
                        rec[f.name] = (v + shift).isoformat()
                    elif (f.name == rt.id_field and name != "firms") or (
                        f.references == ("customs", "declaration_id") and v is not None
                    ):
                        rec[f.name] = f"demo-{v}"
                rec["firm_id"] = SELLER
                rows.append(rec)
            out[name] = rows
    finally:
        con.close()
    return out


def approve(base: str, path: str) -> str:
    """Open the consent page as the seller, print what it asks, press Yes; the token."""
    status, html = call(base, "GET", path)
    assert status == 200, html
    terms = re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", html, flags=re.S)
    for k, v in terms:
        print(f"   {k:14s} {' '.join(re.sub(r'<[^>]+>', ' ', v).split())}")
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    status, html = call(
        base, "POST", path.split("?")[0], form={"token": token, "answer": "approve"}
    )
    assert status == 200, html
    print("   seller pressed Yes: " + re.search(r"<h1[^>]*>(.*?)</h1>", html).group(1))  # type: ignore[union-attr]
    return token


def ask(base: str, key: str, firm: str) -> dict[str, Any]:
    status, asked = call(
        base, "POST", f"/v1/firms/{firm}/consent-requests", key,
        {"purposes": ["credit_assessment"], "months": 12},
    )  # fmt: skip
    assert status == 201, asked
    return dict(asked)


def push(base: str, key: str, records: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/records and print its counts (read = accepted + rejected)."""
    status, out = call(base, "POST", "/v1/records", key, {"records": records})
    assert status == 200, out
    for name, n in out["counts"].items():
        print(
            f"   {name:9s} read {n['read']:4d} = accepted {n['accepted']} + rejected "
            f"{n['rejected']}  (added {n['added']})  ingestion {out['ingestion_id']}"
        )
    return dict(out)


def score(base: str, key: str, firm: str) -> tuple[int, Any]:
    return call(base, "POST", "/v1/score", key, {"firm_id": firm})


def story(base: str) -> None:
    market, customs = os.environ["DEMO_MARKET_KEY"], os.environ["DEMO_CUSTOMS_KEY"]
    lender, other = os.environ["DEMO_LENDER_KEY"], os.environ["DEMO_OTHER_KEY"]
    recs = seller_records()
    say(f"demo-market (a marketplace) pushes seller {SELLER}'s sales: POST /v1/records")
    push(base, market, {"firms": recs["firms"], "payments": recs["payments"]})
    say("demo-customs (a customs data service) pushes its declarations and shipments")
    push(base, customs, {"customs": recs["customs"], "shipments": recs["shipments"]})
    say("demo-lender scores the seller without consent")
    st, no = score(base, lender, SELLER)
    print(f"   {st} {no['detail']}")
    say("demo-lender asks the seller for consent: POST /v1/firms/{id}/consent-requests")
    asked = ask(base, lender, SELLER)
    print(f"   link for the seller: {asked['url']}")
    say("The seller opens the link")
    token = approve(base, asked["path"])
    say("demo-lender scores again")
    st, d = score(base, lender, SELLER)
    assert st == 200, d
    print(f"   {st} PD {d['pd']:.4f}  score {d['score']}  grade {d['grade']}  "
          f"sources {', '.join(d['sources'])}  consent {d['consent_id']}")  # fmt: skip
    for r in d["reasons"][:3]:
        print(f"   reason {r['code']}: {r['text']}")
    st, rec = call(base, "GET", f"/v1/decisions/{d['decision_id']}", lender)
    print("   lineage (GET /v1/decisions/{id}):")
    for i in rec["lineage"]["ingestions"]:
        print(f"     {i['ingestion_id']}  {i['provider']:12s} {i['channel']}  sha256 "
              f"{i['sha256'][:12]}...  {i['ingested_at']}")  # fmt: skip
    late_day = (datetime.now(UTC) - timedelta(days=10)).replace(tzinfo=None).isoformat()
    late = {**recs["payments"][-1], "payment_id": "demo-late-1", "kind": "settlement",
            "direction": "in", "amount_usd": 250000.0, "occurred_at": late_day,
            "paid_at": late_day, "due_at": None}  # fmt: skip
    say("demo-market pushes a late settlement, dated ten days ago (a back-dated record)")
    push(base, market, {"payments": [late]})
    st, d2 = score(base, lender, SELLER)
    print(f"   the next score sees it: PD {d2['pd']:.4f} (was {d['pd']:.4f}); the decision above "
          "is replayed below from the records known when it was made")  # fmt: skip
    with open(os.environ.get("DEMO_DECISION_FILE", os.devnull), "w") as fh:
        fh.write(d["decision_id"])
    say("other-lender, without consent, scores the same seller")
    st, no = score(base, other, SELLER)
    print(f"   {st} {no['detail']}")
    say("The seller opens 'Who can see your data' and presses Stop sharing")
    consents_path = f"/sellers/{SELLER}/consents?token={token}"
    st, html = call(base, "GET", consents_path)
    action = re.search(r'action="([^"]+/revoke)"', html).group(1)  # type: ignore[union-attr]
    st, html = call(base, "POST", action, form={"token": token})
    assert st == 200 and "no one" in html, html  # the 303 was followed to the list
    print("   the page now says: You share your trade data with no one right now.")
    say("demo-lender's next score")
    st, no = score(base, lender, SELLER)
    print(f"   {st} {no['detail']}")
    st, rec = call(base, "GET", f"/v1/decisions/{d['decision_id']}", lender)
    print(f"   (the decision made under the consent stays in the audit log: GET -> {st})")
    again = ask(base, lender, SELLER)
    print("\n   Try it yourself: open this consent link in a browser (valid 7 days) and answer:")
    print(f"   {again['url']}")
    print(f"   then the seller's consents page: {base}{consents_path.split('?')[0]}"
          f"?token={again['path'].split('token=')[1]}")  # fmt: skip


def consent(base: str, firm: str, key_vars: list[str]) -> None:
    for var in key_vars:
        asked = ask(base, os.environ[var], firm)
        status, html = call(base, "GET", asked["path"])
        token = re.search(r'name="token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
        status, html = call(base, "POST", asked["path"].split("?")[0],
                            form={"token": token, "answer": "approve"})  # fmt: skip
        assert status == 200, html
        who, cid = asked["consent"]["grantee"], asked["consent"]["consent_id"]
        print(f"   the seller of {firm} approved {who}'s request ({cid})")


def _grant(base: str, key: str, firm: str) -> None:
    """The seller of ``firm`` approves the lender's request (the page's form, posted)."""
    asked = ask(base, key, firm)
    status, html = call(base, "GET", asked["path"])
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    status, html = call(base, "POST", asked["path"].split("?")[0],
                        form={"token": token, "answer": "approve"})  # fmt: skip
    assert status == 200, html


def _pick() -> dict[str, str]:
    """The operator's look at the portfolio (every firm's latest features, scored by the
    champion under the default policy, nothing recorded): a firm the policy declines and two
    it refers while the model recommends declining."""
    from credit.commands.common import load_champion, online_store
    from credit.decisioning import evaluate
    from credit.decisions import score_frame
    from credit.policy import default_policy

    model = load_champion()
    frame = online_store().latest_frame()
    scored = score_frame(model, frame, reasons=False)
    policy, grades = default_policy(), model.scale.grades
    rows = frame.set_index("firm_id").to_dict("index")
    picked: dict[str, str] = {}
    for firm, pd_, grade in sorted(
        zip(scored["firm_id"], scored["pd"], scored["grade"], strict=True), key=lambda t: -t[1]
    ):
        v = evaluate(policy, float(pd_), str(grade), rows[firm], 60000.0, grades)
        if v.outcome == "declined":
            picked.setdefault("declined", firm)
        elif v.outcome == "referred" and v.recommendation == "declined":
            picked.setdefault("review" if "review" not in picked else "four_eyes", firm)
    return picked


def _show(d: dict[str, Any]) -> None:
    rules = "; ".join(f"[{r['kind']}] {r['rule']}: {r['text']}" for r in d["rules"])
    print(f"   PD {d['pd']:.4f}, grade {d['grade']} -> outcome {d['outcome']} "
          f"(the model recommends {d['recommendation']})")  # fmt: skip
    print(f"   rules: {rules}")


def decisions(base: str, out_file: str | None) -> None:
    """Approve, decline or refer under demo-lender's policy (the shipped default), a review
    from the queue to its outcome, four eyes on an override, and an adverse-action notice."""
    lender, ana, ben = (os.environ[v] for v in ("DEMO_LENDER_KEY", "DEMO_ANA_KEY", "DEMO_BEN_KEY"))
    picked = _pick()
    say("Three sellers apply to demo-lender for 60,000 USD (each consents on its page first)")
    found: dict[str, dict[str, Any]] = {}
    for role, firm in picked.items():
        _grant(base, lender, firm)
        status, d = call(base, "POST", "/v1/score", lender, {"firm_id": firm, "amount": 60000})
        assert status == 200, d
        found[role] = d
        print(f"   {firm}: PD {d['pd']:.4f}, grade {d['grade']} -> {d['outcome']}")
    status, queue = call(base, "GET", "/v1/reviews?status=open", ana)
    print(f"   GET /v1/reviews?status=open -> {len(queue['reviews'])} open review(s)")
    d = found.get("review")
    if d is not None:
        rid = d["review"]["review_id"]
        say(f"A referred application: firm {d['firm_id']}, POST /v1/score with amount 60,000")
        _show(d)
        status, rev = call(base, "GET", f"/v1/reviews/{rid}", ana)
        print(f"   GET /v1/reviews/{rid[:12]}...: reasons "
              + ", ".join(r["feature"] for r in rev["decision"]["reasons"]))  # fmt: skip
        types = rev["records"].get("types", {})
        print("   records: " + ", ".join(f"{k} {v['records']}" for k, v in types.items()))
        from credit.adverse import ADVERSE_REASONS, feature_reason

        code = feature_reason(rev["decision"]["reasons"][0]["feature"]) or "AA13"
        body = {"outcome": "declined", "reason_codes": [code],
                "note": f"Checked the records: {ADVERSE_REASONS[code].lower()}."}  # fmt: skip
        status, done = call(base, "POST", f"/v1/reviews/{rid}/decision", ana, body)
        print(f"   Ana Reviewer declines ({code}, following the model): status "
              f"{done['status']}, outcome {done['outcome']}")  # fmt: skip
        status, notice = call(base, "GET", f"/v1/decisions/{d['decision_id']}/notice", lender)
        say(f"The adverse-action notice (GET /v1/decisions/{d['decision_id']}/notice)")
        if status == 200:
            print(f"   {notice['lender']['name']}, {notice['date'][:10]}: {notice['action_taken']}"
                  f" (decided by {notice['decided_by']})")  # fmt: skip
            for r in notice["reasons"]:
                details = f": {'; '.join(r['details'])}" if r["details"] else ""
                print(f"   {r['code']} {r['text']}{details}")
            print(f"   printable: {base}/v1/decisions/{d['decision_id']}/notice?format=html")
        else:
            print(f"   {status} {notice}")
        if out_file:
            with open(out_file, "w") as f:
                f.write(d["decision_id"])
    d = found.get("four_eyes")
    if d is not None:
        rid = d["review"]["review_id"]
        say(f"Four eyes: firm {d['firm_id']}, the model recommends declining 60,000")
        body = {"outcome": "approved", "reason_codes": ["RA02"],
                "note": "A bank guarantee covers the advance."}  # fmt: skip
        status, r1 = call(base, "POST", f"/v1/reviews/{rid}/decision", ana, body)
        print(f"   Ana Reviewer approves (an override above 50,000): status {r1['status']}")
        status, again = call(base, "POST", f"/v1/reviews/{rid}/decision", ana, body)
        print(f"   Ana again: {status} {again['detail']}")
        status, r2 = call(base, "POST", f"/v1/reviews/{rid}/decision", ben, body)
        print(f"   Ben Second approves: status {r2['status']}, outcome {r2['outcome']}, "
              f"override {r2['override']}")  # fmt: skip
    d = found.get("declined")
    if d is not None:
        say(f"An automatic decline: firm {d['firm_id']}")
        _show(d)
        status, notice = call(base, "GET", f"/v1/decisions/{d['decision_id']}/notice", lender)
        if status == 200:
            for r in notice["reasons"]:
                print(f"   notice reason {r['code']} {r['text']}")


def events(base: str, firm: str) -> None:
    """demo-lender subscribes a local receiver to its events, watches ``firm`` under a
    monitoring consent, and sees a signed ``monitoring.alert`` when the firm's supplier
    invoices go overdue (docs/webhooks.md, docs/portfolio.md)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from standardwebhooks.webhooks import Webhook

    lender, market = os.environ["DEMO_LENDER_KEY"], os.environ["DEMO_MARKET_KEY"]
    got: list[tuple[dict[str, str], bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            got.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/tradecredit"
    say(f"demo-lender registers a webhook: its receiver at {url}")
    status, hook = call(base, "POST", "/v1/webhooks", lender, {
        "url": url, "event_types": ["decision.created", "consent.granted", "monitoring.alert"],
        "description": "make demo",
    })  # fmt: skip
    assert status == 201, hook
    print(f"   {hook['webhook_id']}: {', '.join(hook['event_types'])}; signing secret "
          f"{hook['secret'][:12]}... (shown once)")  # fmt: skip
    verifier = Webhook(hook["secret"])

    def wait(kind: str, match: Any = lambda data: True) -> list[dict[str, Any]]:
        deadline = datetime.now(UTC) + timedelta(seconds=15)
        while datetime.now(UTC) < deadline:
            found = []
            for headers, body in list(got):
                event = verifier.verify(body, headers)  # raises unless signed with the secret
                if event["type"] == kind and match(event["data"]):
                    found.append({**event, "webhook-id": headers["webhook-id"]})
            if found:
                return found
            import time

            time.sleep(0.1)
        raise SystemExit(f"no {kind} event arrived in 15 s")

    say(f"demo-market pushes this week's settlement of {firm} (its records are current)")
    week = datetime.now(UTC) - timedelta(days=3)
    push(base, market, {"payments": [
        {"payment_id": "demo-settlement-1", "firm_id": firm, "kind": "settlement",
         "direction": "in", "amount_usd": 5200.0, "currency": "USD", "counterparty_id": "amazon",
         "occurred_at": week.isoformat(), "paid_at": week.isoformat()}
    ]})  # fmt: skip
    say(f"demo-lender asks the seller of {firm} to be watched (purpose monitoring)")
    status, asked = call(base, "POST", f"/v1/firms/{firm}/consent-requests", lender, {
        "purposes": ["monitoring"], "months": 12, "sources": ["operator", "demo-market"],
    })  # fmt: skip
    assert status == 201, asked
    approve(base, asked["path"])
    cid = asked["consent"]["consent_id"]
    (granted,) = wait("consent.granted", lambda d: d["consent_id"] == cid)
    print(f"   received consent.granted {granted['webhook-id']}: purposes "
          f"{granted['data']['purposes']}, sources {granted['data']['sources']}")  # fmt: skip
    status, reg = call(base, "POST", "/v1/portfolio/firms", lender,
                       {"firm_ids": [firm], "exposures": {firm: 60000}})  # fmt: skip
    assert status == 200, reg
    print(f"   POST /v1/portfolio/firms: sent {reg['sent']} = registered {reg['registered']} + "
          f"rejected {len(reg['rejected'])}")  # fmt: skip
    status, run = call(base, "POST", "/v1/portfolio/runs", lender)
    assert status == 200, run
    print(f"   first portfolio run: {run['scored']} firm scored, {run['alerts']} alerts")
    status, scored = score(base, lender, firm)
    assert status == 200, scored
    did = scored["decision_id"]
    (decision,) = wait("decision.created", lambda d: d["decision_id"] == did)
    print(f"   POST /v1/score, then received decision.created {decision['webhook-id']}: grade "
          f"{decision['data']['grade']}, PD {decision['data']['pd']:.4f}")  # fmt: skip

    say(f"demo-market pushes two supplier invoices of {firm} now a month past due")
    now = datetime.now(UTC)
    push(base, market, {"payments": [
        {"payment_id": f"demo-overdue-{i}", "firm_id": firm, "kind": "supplier_payment",
         "direction": "out", "amount_usd": 4800.0 + 700 * i, "currency": "USD",
         "counterparty_id": "demo-supplier", "occurred_at": (now - timedelta(days=60)).isoformat(),
         "due_at": (now - timedelta(days=30)).isoformat()}
        for i in range(2)
    ]})  # fmt: skip
    status, run = call(base, "POST", "/v1/portfolio/runs", lender)
    assert status == 200, run
    print(f"   second portfolio run: {run['scored']} firm scored, {run['alerts']} alert(s)")
    alerts = wait("monitoring.alert")
    print("   the first alert as the receiver got it (body verified with standardwebhooks):")
    shown = {k: v for k, v in alerts[0].items() if k != "webhook-id"}
    print("      webhook-id: " + alerts[0]["webhook-id"])
    print("\n".join("      " + line for line in json.dumps(shown, indent=2).splitlines()))
    for alert in alerts:
        d = alert["data"]
        print(f"   received monitoring.alert {alert['webhook-id']}, signature verified "
              f"(standardwebhooks): {d['rule']} {d['before']} -> {d['after']}: {d['text']}")
        for r in d["reasons"][:3]:
            print(f"      moved most: {r.get('code')} {r.get('text')}")
    print(f"   the portfolio report: {base}/v1/portfolio/report (X-API-Key: demo-lender's key)")
    call(base, "DELETE", f"/v1/webhooks/{hook['webhook_id']}", lender)
    server.shutdown()


if __name__ == "__main__":
    if sys.argv[1] == "events":
        events(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "story":
        story(sys.argv[2])
    elif sys.argv[1] == "decisions":
        decisions(sys.argv[2], os.environ.get("DEMO_REVIEW_FILE"))
    else:
        consent(sys.argv[2], sys.argv[3], sys.argv[4:])
