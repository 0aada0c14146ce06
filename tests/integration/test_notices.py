"""Adverse-action notices through real HTTP: ``GET /v1/decisions/{id}/notice`` as JSON, HTML
and PDF; no notice for an approved or still-referred decision, none for another tenant; a
reviewed decline gives the reviewer's reasons first; and every reason of every notice rests on
the decision's own record (the faithfulness test).

The model is a small one over the real catalog's features (so features map to documented
reasons); the policy declines on a PD ceiling (no reasons of its own: the SHAP reasons speak),
on two catalog conditions with reasons of its own, and on one condition without (its
condition's feature gives the reason), approves grades A to C and refers the rest.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import re
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from api.main import create_app
from api.notices import latin1, render_pdf
from credit.adverse import ADVERSE_REASONS, feature_reason
from credit.keys import create_key
from credit.policy import _default_data
from credit.settings import Settings
from features import catalog
from tests.api_support import MemoryOnlineStore, catalog_frame, train_catalog_model
from tests.consent_support import grant, h

pytestmark = pytest.mark.integration

TENANT = "bank-a"
LENDER = {
    "name": "Harbour Trade Finance Ltd",
    "address": "7 Quay Street, Example Port, EX1 2AB",
    "email": "notices@harbour.example",
    "phone": "+44 20 0000 0000",
    "regulator": "The Example Credit Authority, 1 Regulator Row, Example City",
}
N_FIRMS = 30
AS_OF = datetime(2025, 6, 30, tzinfo=UTC)
#: firms whose data meets the policy's condition rules
PAST_DEFAULT = (3, 4)
THIN_AND_OVERDUE = (5, 6)


def _policy(tmp: Path) -> Path:
    folder = tmp / "policies"
    folder.mkdir()
    data = dict(_default_data())
    data["name"] = TENANT
    data["lender"] = LENDER
    data["decision"] = {
        "decline": [
            {"name": "pd_ceiling", "text": "PD above our ceiling", "pd_at_least": 0.1},
            {
                "name": "thin_file_overdue",
                "text": "Too little history, with supplier invoices overdue",
                "when": ["thin_file", "overdue_supplier_invoices"],
                "reasons": ["AA11", "AA03"],
            },
            {
                "name": "past_default",
                "text": "A loan defaulted in the past",
                "when": ["past_default"],
            },
        ],
        "refer": [],
        "approve": {"grade_at_least": "C", "max_amount": 10000},
        "review": {"outcomes": ["approved", "declined"], "four_eyes_above": 50000},
    }
    (folder / f"{TENANT}.yaml").write_text(yaml.safe_dump(data))
    return folder


def _store() -> MemoryOnlineStore:
    frame = catalog_frame(N_FIRMS, "2025-06-30")
    frame["past_default_count"] = [float(i in PAST_DEFAULT) for i in range(N_FIRMS)]
    frame["thin_file_flag"] = [float(i in THIN_AND_OVERDUE) for i in range(N_FIRMS)]
    frame["supplier_overdue_unpaid_usd"] = 250.0
    names = catalog.feature_names()
    return MemoryOnlineStore(
        {r["firm_id"]: [(AS_OF, {n: r[n] for n in names})] for r in frame.to_dict("records")}
    )


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("notices")
    settings = Settings(data_dir=tmp / "var", api_rate_limit=0, policy_dir=_policy(tmp))
    model = train_catalog_model()
    app = create_app(settings=settings, model_loader=lambda s: model, online_store=_store())
    with TestClient(app) as c:
        engine = app.state.service.engine
        keys = {
            "lender": create_key(engine, TENANT, "lender")[1],
            "platform": create_key(engine, TENANT, "platform")[1],
            "admin": create_key(engine, TENANT, "admin")[1],
            "ana": create_key(engine, TENANT, "reviewer", holder="Ana Reviewer")[1],
            "other": create_key(engine, "bank-b", "lender")[1],
        }
        firms = [f"F{i:05d}" for i in range(N_FIRMS)]
        grant(engine, firms, TENANT)
        answers = {}
        for f in firms:
            r = c.post(
                "/v1/score", json={"firm_id": f, "explain": "full"}, headers=h(keys["lender"])
            )
            assert r.status_code == 200, r.text
            answers[f] = r.json()
        yield {"c": c, "keys": keys, "answers": answers}
    engine.dispose()


def _of(svc: dict[str, Any], outcome: str) -> list[dict[str, Any]]:
    return [a for a in svc["answers"].values() if a["outcome"] == outcome]


def _notice(svc: dict[str, Any], decision_id: str, key: str = "lender", **kw: Any) -> Any:
    return svc["c"].get(f"/v1/decisions/{decision_id}/notice", headers=h(svc["keys"][key]), **kw)


def text_of(page: str) -> str:
    """The visible text of an HTML page, whitespace collapsed."""
    body = re.sub(r"<style>.*?</style>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body))).strip()


def pdf_text(data: bytes) -> str:
    """The text a PDF draws, whitespace collapsed (pypdf where installed, else the strings of
    the text operators in its decompressed content streams)."""
    try:
        from pypdf import PdfReader
    except ImportError:
        chunks = []
        for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
            raw = m.group(1)
            with contextlib.suppress(zlib.error):  # a stream stored uncompressed
                raw = zlib.decompress(raw)
            for t in re.finditer(rb"\(((?:\\.|[^\\)])*)\)\s*Tj", raw):
                chunks.append(re.sub(rb"\\([()\\])", rb"\1", t.group(1)).decode("latin-1"))
        return re.sub(r"\s+", " ", " ".join(chunks)).strip()
    import io

    pages = PdfReader(io.BytesIO(data)).pages
    return re.sub(r"\s+", " ", " ".join(p.extract_text() for p in pages)).strip()


def test_the_policy_gives_every_kind_of_outcome(svc: dict[str, Any]) -> None:
    # the data behind the other tests: declines of each kind, referrals and approvals
    rules = {r["rule"] for a in _of(svc, "declined") for r in a["rules"]}
    assert rules == {"pd_ceiling", "thin_file_overdue", "past_default"}
    assert len(_of(svc, "referred")) >= 3 and _of(svc, "approved")


# --- JSON -----------------------------------------------------------------------------------


def test_the_json_notice(svc: dict[str, Any]) -> None:
    a = next(x for x in _of(svc, "declined") if x["firm_id"] == "F00005")
    assert a["notice"] == f"/v1/decisions/{a['decision_id']}/notice"
    r = _notice(svc, a["decision_id"])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert "accept" in r.headers["vary"].lower()
    n = r.json()
    assert n["decision_id"] == a["decision_id"] and n["firm_id"] == "F00005"
    assert n["lender"] == LENDER
    assert n["action"] == "declined" and n["decided_by"] == "automatic"
    assert n["action_taken"] == "Your application for credit was declined."
    assert n["review_id"] is None
    assert n["score"] == {"score": a["score"], "grade": a["grade"]}
    assert n["policy"] == {"name": TENANT, "version": "1"}
    made = datetime.fromisoformat(n["date"].replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - made).total_seconds()) < 3600
    # the rule's own reasons first, in the policy's order, then the SHAP reasons
    assert [x["code"] for x in n["reasons"]][:2] == ["AA11", "AA03"]
    assert n["reasons"][0]["details"] == ["Too little history, with supplier invoices overdue"]
    assert 1 <= len(n["reasons"]) <= 4
    for x in n["reasons"]:
        assert x["text"] == ADVERSE_REASONS[x["code"]] and x["basis"]
    assert len(n["rights"]) == 3
    # the same notice for every role of the tenant; the JSON explicitly asked for too
    for who in ("platform", "admin", "ana"):
        assert _notice(svc, a["decision_id"], who).json() == n
    assert _notice(svc, a["decision_id"], params={"format": "json"}).json() == n


def test_a_notice_of_a_condition_rule_without_reasons_names_the_condition_s_reason(
    svc: dict[str, Any],
) -> None:
    a = next(x for x in _of(svc, "declined") if x["firm_id"] == "F00003")
    n = _notice(svc, a["decision_id"]).json()
    first = n["reasons"][0]
    assert first["code"] == "AA04" == feature_reason("past_default_count")
    assert {"kind": "rule", "rule": "past_default"} in first["basis"]
    assert "A loan defaulted in the past" in first["details"]


# --- HTML and PDF ---------------------------------------------------------------------------


def test_the_html_notice(svc: dict[str, Any]) -> None:
    a = next(x for x in _of(svc, "declined") if x["firm_id"] == "F00005")
    n = _notice(svc, a["decision_id"]).json()
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    by_query = _notice(svc, a["decision_id"], params={"format": "html"})
    by_accept = svc["c"].get(
        f"/v1/decisions/{a['decision_id']}/notice",
        headers={**h(svc["keys"]["lender"]), "Accept": browser},
    )
    for r in (by_query, by_accept):
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/html")
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["referrer-policy"] == "no-referrer"
    page = by_query.text
    assert by_accept.text == page
    # No script; the one inline style sheet is the one the CSP's hash allows.
    assert "<script" not in page
    csp = by_query.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    (css,) = re.findall(r"<style>(.*?)</style>", page, flags=re.S)
    digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode("ascii")
    assert f"'sha256-{digest}'" in csp
    assert "@media print" in css
    text = text_of(page)
    for part in (LENDER["name"], LENDER["address"], LENDER["email"], LENDER["phone"]):
        assert part in text
    assert "Notice of action taken on your application for credit" in text
    assert n["action_taken"] in text
    assert "made under the lending policy of Harbour Trade Finance Ltd" in text
    assert datetime.now(UTC).strftime("%B %Y") in text
    assert f"Business {a['firm_id']}" in text and a["decision_id"] in text
    for x in n["reasons"]:
        assert x["text"] in text
        for d in x["details"]:
            assert d in text
    for p in n["rights"]:
        assert p in text
    assert "Who supervises this lender" in text and LENDER["regulator"] in text
    assert '<html lang="en">' in page and "<h1" in page


def test_the_pdf_notice(svc: dict[str, Any]) -> None:
    a = next(x for x in _of(svc, "declined") if x["firm_id"] == "F00003")
    n = _notice(svc, a["decision_id"]).json()
    by_query = _notice(svc, a["decision_id"], params={"format": "pdf"})
    by_accept = svc["c"].get(
        f"/v1/decisions/{a['decision_id']}/notice",
        headers={**h(svc["keys"]["lender"]), "Accept": "application/pdf"},
    )
    for r in (by_query, by_accept):
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/pdf"
        assert r.headers["content-disposition"] == (
            f'inline; filename="notice-{a["decision_id"]}.pdf"'
        )
        assert r.content.startswith(b"%PDF")
    text = pdf_text(by_query.content)
    assert LENDER["name"] in text
    assert n["reasons"][0]["text"] in text
    assert n["action_taken"] in text and LENDER["regulator"] in text
    assert "Your rights" in text


def test_an_unknown_format_is_a_clear_422(svc: dict[str, Any]) -> None:
    a = _of(svc, "declined")[0]
    r = _notice(svc, a["decision_id"], params={"format": "docx"})
    assert r.status_code == 422
    assert "unknown format 'docx'" in r.json()["detail"]
    assert "json, html or pdf" in r.json()["detail"]


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("", "json"),
        ("*/*", "json"),
        ("application/json", "json"),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "html"),
        ("text/*", "html"),
        ("application/pdf", "pdf"),
        ("application/pdf;q=0.5, text/html;q=0.9", "html"),
        ("application/json;q=0, application/*;q=0.4", "pdf"),
        ("image/png", "json"),  # nothing acceptable: JSON, not a 406
        ("text/html;q=oops, application/pdf", "pdf"),
    ],
)
def test_the_accept_header_picks_the_format(accept: str, expected: str) -> None:
    from api.routes.decisions import _preferred

    assert _preferred(accept) == expected


def test_non_latin1_text_cannot_break_the_pdf() -> None:
    notice = {
        "decision_id": "dec_" + "0" * 32,
        "firm_id": "F00001",
        "date": "2026-12-03T09:14:03Z",
        "lender": {
            "name": "Łódź Trade — “Finance” 中文 €",
            "address": "ul. Piotrkowska 1, Łódź\u2028Polska",
            "email": "",
            "phone": "",
            "regulator": "Komisja Nadzoru Finansowego \U0001f3e6",
        },
        "action_taken": "Your application was declined…",
        "decided_by": "automatic",
        "reasons": [
            {"code": "AA03", "text": "Late payments ‘to suppliers’", "details": ["日本語 ✓"]}
        ],
        "score": {"score": 500, "grade": "E"},
        "rights": ["Right\x00 one\x1b."],
    }
    data = render_pdf(notice)
    assert data.startswith(b"%PDF")
    text = pdf_text(data)
    assert 'Lódz Trade - "Finance" ?? EUR' in text  # ó is Latin-1, ź is not
    assert "Late payments 'to suppliers'" in text and "declined..." in text
    assert latin1("café ÿ") == "café ÿ"  # Latin-1 stays as it is
    assert latin1("ź\u0301 e\u0301") == "z é"


# --- no notice owed, not yours --------------------------------------------------------------


def test_no_notice_for_an_approved_or_an_open_referred_decision(svc: dict[str, Any]) -> None:
    still_open = _of(svc, "referred")[3]  # no test reviews it
    for a in (_of(svc, "approved")[0], still_open):
        for fmt in ("json", "html", "pdf"):
            r = _notice(svc, a["decision_id"], params={"format": fmt})
            assert r.status_code == 409, r.text
            assert r.headers["content-type"].startswith("application/json")
    detail = _notice(svc, _of(svc, "approved")[0]["decision_id"]).json()["detail"]
    assert "was approved, not declined" in detail
    detail = _notice(svc, still_open["decision_id"]).json()["detail"]
    assert "under review" in detail


def test_another_tenant_gets_404_and_bad_ids_422(svc: dict[str, Any]) -> None:
    a = _of(svc, "declined")[0]
    for fmt in ("json", "pdf"):
        r = _notice(svc, a["decision_id"], "other", params={"format": fmt})
        assert r.status_code == 404, r.text
        assert "no decision" in r.json()["detail"]
    assert _notice(svc, "dec_" + "0" * 32).status_code == 404
    assert _notice(svc, "dec_nope").status_code == 422
    assert svc["c"].get(f"/v1/decisions/{a['decision_id']}/notice").status_code == 401


def test_openapi_documents_the_notice(svc: dict[str, Any]) -> None:
    spec = svc["c"].get("/openapi.json").json()
    op = spec["paths"]["/v1/decisions/{decision_id}/notice"]["get"]
    content = op["responses"]["200"]["content"]
    assert {"application/json", "text/html", "application/pdf"} <= set(content)
    assert "example" in content["application/json"]
    assert content["application/json"]["schema"]["$ref"].endswith("/NoticeOut")
    assert {"404", "409", "422"} <= set(op["responses"])
    assert "reviewer" in op["description"] and "format=pdf" in op["description"]
    assert "/sellers/{firm_id}/notices/{decision_id}" in spec["paths"]


# --- reviewed declines ----------------------------------------------------------------------


def _review_decline(svc: dict[str, Any], a: dict[str, Any], codes: list[str]) -> dict[str, Any]:
    rid = a["review"]["review_id"]
    body = {"outcome": "declined", "reason_codes": codes, "note": "Trade too small to lend on."}
    r = svc["c"].post(f"/v1/reviews/{rid}/decision", json=body, headers=h(svc["keys"]["ana"]))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "closed" and r.json()["outcome"] == "declined"
    return dict(r.json())


def test_a_reviewed_decline_gives_the_reviewer_s_reasons_first(svc: dict[str, Any]) -> None:
    a = _of(svc, "referred")[0]
    assert a["recommendation"] == "declined"
    assert _notice(svc, a["decision_id"]).status_code == 409  # still under review
    review = _review_decline(svc, a, ["AA02"])
    r = _notice(svc, a["decision_id"])
    assert r.status_code == 200, r.text
    n = r.json()
    assert n["decided_by"] == "review" and n["review_id"] == review["review_id"]
    assert n["reasons"][0]["code"] == "AA02"
    assert n["reasons"][0]["basis"][0] == {"kind": "review", "review_id": review["review_id"]}
    assert n["date"] == review["closed_at"]
    assert "A credit officer of Harbour Trade Finance Ltd reviewed your application" in (
        text_of(_notice(svc, a["decision_id"], params={"format": "html"}).text)
    )
    # the recorded decision points at its notice now
    d = svc["c"].get(f"/v1/decisions/{a['decision_id']}", headers=h(svc["keys"]["lender"]))
    assert d.json()["notice"] == f"/v1/decisions/{a['decision_id']}/notice"


def test_a_reviewed_approval_owes_no_notice(svc: dict[str, Any]) -> None:
    referred = [x for x in _of(svc, "referred") if x["recommendation"] == "declined"]
    a = referred[-1]
    rid = a["review"]["review_id"]
    body = {"outcome": "approved", "reason_codes": ["RA01"], "note": "Documents seen."}
    r = svc["c"].post(f"/v1/reviews/{rid}/decision", json=body, headers=h(svc["keys"]["ana"]))
    assert r.status_code == 200 and r.json()["outcome"] == "approved", r.text
    r = _notice(svc, a["decision_id"])
    assert r.status_code == 409 and "approved, not declined" in r.json()["detail"]


# --- faithfulness ---------------------------------------------------------------------------


def test_every_reason_of_every_notice_rests_on_the_decision_s_own_record(
    svc: dict[str, Any],
) -> None:
    """Each basis of each reason is checked against the decision it explains: a feature basis
    is a feature with a positive contribution in the decision's explanation (and maps to the
    reason's code), a rule basis is a decline rule in the decision's recorded rules (standing
    for the code), a review basis is a code the reviewer recorded. No reason lacks a basis."""
    c, keys = svc["c"], svc["keys"]
    reviewed: dict[str, list[str]] = {}
    # two reviewed declines join the automatic ones: one with two codes
    referred = [x for x in _of(svc, "referred") if x["recommendation"] == "declined"]
    for a, codes in zip(referred[1:3], (["AA13", "AA05"], ["AA02"]), strict=True):
        _review_decline(svc, a, codes)
        reviewed[a["decision_id"]] = codes
    cases = _of(svc, "declined") + [svc["answers"][a["firm_id"]] for a in referred[1:3]]
    assert len(cases) >= 10
    kinds: set[str] = set()
    for a in cases:
        contributions = a["explanation"]["contributions"]
        recorded = c.get(f"/v1/decisions/{a['decision_id']}", headers=h(keys["lender"])).json()
        declines = {r["rule"]: r for r in recorded["rules"] if r["kind"] == "decline"}
        n = _notice(svc, a["decision_id"]).json()
        assert n["reasons"], f"{a['decision_id']}: a declined applicant is owed reasons"
        assert len(n["reasons"]) <= 4
        assert len({x["code"] for x in n["reasons"]}) == len(n["reasons"])  # one per code
        for x in n["reasons"]:
            assert x["basis"], f"{a['decision_id']}: reason {x['code']} has no basis"
            assert x["text"] == ADVERSE_REASONS[x["code"]]
            for b in x["basis"]:
                kinds.add(b["kind"])
                if b["kind"] == "feature":
                    assert contributions[b["feature"]] > 0, (a["decision_id"], b)
                    assert b["contribution"] == pytest.approx(contributions[b["feature"]])
                    assert feature_reason(b["feature"]) == x["code"]
                elif b["kind"] == "rule":
                    assert b["rule"] in declines, (a["decision_id"], b)
                    rule = declines[b["rule"]]
                    stands_for = rule.get("reasons") or [
                        feature_reason(catalog.condition(name).feature)
                        for name in rule.get("conditions") or []
                    ]
                    assert x["code"] in stands_for
                else:
                    assert b["kind"] == "review"
                    assert a["decision_id"] in reviewed, (a["decision_id"], b)
                    assert x["code"] in reviewed[a["decision_id"]]
                    assert b["review_id"] == recorded["review"]["review_id"]
        if a["decision_id"] in reviewed:
            codes = reviewed[a["decision_id"]]
            assert [x["code"] for x in n["reasons"]][: len(codes)] == codes
    assert kinds == {"feature", "rule", "review"}  # the test saw every kind of basis
