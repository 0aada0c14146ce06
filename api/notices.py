"""Adverse-action notices as a person reads them: a printable HTML page and a PDF.

Both render a notice of :func:`credit.notices.build_notice` with the same content in the same
order: the lender (name, address, contact), the date, the applicant and the reference, the
action taken and who took it, the principal reasons with their details, the score used, the
applicant's rights and the authority that supervises the lender.

* :func:`render_html` fills ``api/templates/notice.html`` (the seller pages' layout and style
  sheet, whose ``@media print`` section makes it print cleanly); :func:`html_headers` are the
  headers it is served with: the same Content-Security-Policy as the seller pages (no script,
  the inline style sheet allowed by its hash), no referrer, no caching.
* :func:`render_pdf` draws the same text with fpdf2 in a core font (Helvetica). Core fonts
  know Latin-1 only, so every other character is first replaced (:func:`latin1`): dashes and
  quotes by their ASCII look-alikes, accented letters by their base letter, anything else by
  ``?``; no name, address or reason can make the PDF fail.
"""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

#: The title of a notice, on the page and in the PDF.
TITLE = "Notice of action taken on your application for credit"


@cache
def _env() -> Environment:
    return Environment(
        loader=PackageLoader("api", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


@cache
def stylesheet() -> tuple[str, str]:
    """The style sheet the HTML notice inlines (the seller pages') and its CSP hash."""
    css = (resources.files("api") / "static" / "seller.css").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode("ascii")
    return css, f"'sha256-{digest}'"


_FORM_ACTION = {True: "'self'", False: "'none'"}


def html_headers(forms: bool = False) -> dict[str, str]:
    """The headers of an HTML notice, and of every seller page: a CSP that allows no script
    and only the inline style sheet, and privacy headers (the page holds personal data, and a
    seller page's token is in its URL: never cached, never sent on as a referrer).
    ``forms``: the page posts forms to this service (the consent pages)."""
    _, css_hash = stylesheet()
    return {
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "X-Robots-Tag": "noindex, nofollow",
        "Content-Security-Policy": (
            f"default-src 'none'; style-src {css_hash}; img-src data:; "
            f"base-uri 'none'; form-action {_FORM_ACTION[forms]}; frame-ancestors 'none'"
        ),
    }


def date_words(value: Any) -> str:
    """``3 December 2026`` from an ISO 8601 string or a datetime (the text itself when it is
    neither)."""
    try:
        dt = (
            value
            if isinstance(value, datetime)
            else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        )
    except ValueError:
        return str(value)
    return f"{dt.day} {dt:%B %Y}"


def _view(notice: Mapping[str, Any]) -> dict[str, Any]:
    """What both renderings print, in plain words."""
    lender = dict(notice.get("lender") or {})
    name = str(lender.get("name") or "The lender")
    contact = [
        f"{label}: {lender[key]}"
        for key, label in (("email", "Email"), ("phone", "Phone"))
        if lender.get(key)
    ]
    if notice.get("decided_by") == "review":
        who = (
            f"A credit officer of {name} reviewed your application and made this decision, "
            "for the reasons below."
        )
    else:
        who = (
            f"This decision was made under the lending policy of {name}, with the help of an "
            "automated credit model, for the reasons below."
        )
    score = notice.get("score") or {}
    score_line = (
        f"The credit score used in this decision: {score['score']} (grade {score['grade']})."
        if score.get("score") is not None
        else ""
    )
    reasons = [
        {
            "code": str(r.get("code") or ""),
            "text": str(r.get("text") or ""),
            "details": [str(d) for d in r.get("details") or [] if d],
        }
        for r in notice.get("reasons") or []
    ]
    regulator = str(lender.get("regulator") or "") or (
        "Ask the lender, at the address above, which authority supervises it."
    )
    return {
        "title": TITLE,
        "lender_name": name,
        "lender_address": str(lender.get("address") or ""),
        "lender_contact": contact,
        "date": date_words(notice.get("date")),
        "firm_id": str(notice.get("firm_id") or ""),
        "decision_id": str(notice.get("decision_id") or ""),
        "action_taken": str(notice.get("action_taken") or "Your application was declined."),
        "who": who,
        "reasons": reasons,
        "no_reasons": (
            "No principal reason is on record for this decision. You may ask the lender for "
            "the reasons at the address above."
        ),
        "score_line": score_line,
        "rights": [str(p) for p in notice.get("rights") or []],
        "regulator": regulator,
    }


def render_html(notice: Mapping[str, Any], *, back_href: str | None = None) -> str:
    """The notice as a printable HTML page (``back_href``: a link back to the page it was
    opened from, not printed)."""
    css, _ = stylesheet()
    return (
        _env()
        .get_template("notice.html")
        .render(css=Markup(css), n=_view(notice), back_href=back_href)
    )


# --- PDF ------------------------------------------------------------------------------------

#: Characters outside Latin-1 with a plain look-alike.
_LOOKALIKES = {
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u2015": "-",
    "\u2212": "-",
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201b": "'",
    "\u2032": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u2033": '"',
    "\u2026": "...",
    "\u2022": "-",
    "\u00b7": "-",
    "\u20ac": "EUR",
    "\u2122": "(TM)",
    "\u2009": " ",
    "\u200a": " ",
    "\u2002": " ",
    "\u2003": " ",
    "\u202f": " ",
    "\u2007": " ",
    "\u2028": "\n",
    "\u2029": "\n",
    "\u0141": "L",
    "\u0142": "l",
    "\u0110": "D",
    "\u0111": "d",
    "\u0131": "i",
    "\u0152": "OE",
    "\u0153": "oe",
}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def latin1(text: str) -> str:
    """``text`` with every character a core PDF font cannot draw replaced: look-alikes for
    dashes, quotes and the like, the base letter of an accented one (``ź`` -> ``z``), ``?``
    for the rest; control characters and stray accents dropped."""
    out = []
    for ch in _CONTROL.sub("", unicodedata.normalize("NFC", text)):
        if ord(ch) < 256:
            out.append(ch)
            continue
        if unicodedata.combining(ch):  # an accent the letter before could not take
            continue
        if ch in _LOOKALIKES:
            out.append(_LOOKALIKES[ch])
            continue
        base = "".join(
            c
            for c in unicodedata.normalize("NFKD", ch)
            if ord(c) < 256 and not unicodedata.combining(c)
        )
        out.append(_CONTROL.sub("", base) or "?")
    return "".join(out)


def render_pdf(notice: Mapping[str, Any]) -> bytes:
    """The notice as a one-column A4 PDF in Helvetica (see :func:`latin1`)."""
    from fpdf import FPDF

    v = _view(notice)
    pdf = FPDF(format="A4", unit="mm")
    pdf.set_margins(20, 18, 20)
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.set_title(latin1(v["title"]))
    pdf.set_author(latin1(v["lender_name"]))
    pdf.set_creator("tradecredit")
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin

    def text(s: str, size: float = 10.5, style: str = "", gap: float = 1.5, h: float = 5.2) -> None:
        pdf.set_font("Helvetica", style=style, size=size)
        pdf.multi_cell(width, h, latin1(s), align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(gap)

    def indented(s: str, size: float, h: float) -> None:
        pdf.set_font("Helvetica", size=size)
        pdf.set_x(pdf.l_margin + 6)
        pdf.multi_cell(width - 6, h, latin1(s), align="L", new_x="LMARGIN", new_y="NEXT")

    def heading(s: str) -> None:
        pdf.ln(2)
        text(s, size=12, style="B", gap=1)

    text(v["lender_name"], size=14, style="B", gap=0.5, h=6.5)
    if v["lender_address"]:
        text(v["lender_address"], gap=0.5)
    if v["lender_contact"]:
        text("   ".join(v["lender_contact"]), gap=0.5)
    pdf.ln(4)
    text(f"Date: {v['date']}", gap=0.5)
    text(f"Applicant: business {v['firm_id']}", gap=0.5)
    text(f"Reference: {v['decision_id']}", gap=3)
    text(v["title"], size=15, style="B", gap=2, h=7)
    heading("What we decided")
    text(v["action_taken"], style="B")
    text(v["who"])
    heading("The principal reasons for our decision")
    if not v["reasons"]:
        text(v["no_reasons"])
    for i, r in enumerate(v["reasons"], 1):
        text(f"{i}. {r['text']}", style="B", gap=0.5)
        for d in r["details"]:
            indented(f"- {d}", size=10, h=5)
        indented(f"Reason code {r['code']}", size=8.5, h=4.5)
        pdf.ln(1.5)
    if v["score_line"]:
        text(v["score_line"])
    heading("Your rights")
    for p in v["rights"]:
        text(p, gap=2)
    heading("Who supervises this lender")
    text(v["regulator"])
    pdf.ln(3)
    text("Keep this notice for your records.", size=9, style="I")
    return bytes(pdf.output())
