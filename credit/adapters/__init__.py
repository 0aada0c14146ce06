"""Adapters: the exports sellers and their partners already have, read as they are.

Each format has one module holding its :class:`credit.adapters.base.Adapter` (``ADAPTER``):
what its header looks like, how each source row maps onto the data contract, what is not
used, and the inverse (how the simulator writes a world in that format). ``credit ingest
FILE --format NAME`` and ``POST /v1/records`` with a ``format`` both go through
:func:`adapt` and then through the same validation and storage as contract files.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from credit.adapters.base import Adapted, Adapter, Context

#: ``--format`` name -> module under ``credit.adapters``
FORMATS: dict[str, str] = {
    "amazon-settlement": "amazon",
    "shopify-payments": "shopify",
    "stripe-balance": "stripe",
    "paypal-activity": "paypal",
    "aftership-tracking": "aftership",
    "cn-customs": "cn_customs",
}


class FormatError(ValueError):
    """The format is unknown, or cannot be told from the header; the message says which."""


@cache
def adapter(name: str) -> Adapter:
    """The adapter of format ``name``."""
    if name not in FORMATS:
        raise FormatError(f"unknown format {name!r}; expected one of {', '.join(FORMATS)}")
    found: Adapter = import_module(f"credit.adapters.{FORMATS[name]}").ADAPTER
    return found


def all_adapters() -> list[Adapter]:
    return [adapter(n) for n in FORMATS]


def detect(text: str, file: str = "the file") -> str:
    """The format whose signature columns the header of ``text`` holds.

    Raises :class:`FormatError` naming the candidates when none or several match.
    """
    from credit.adapters.base import header_of

    matches = []
    for a in all_adapters():
        header = {a.canonical(h) for h in header_of(text, a.delimiter)}
        if a.signature <= header:
            matches.append(a.name)
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise FormatError(
            f"{file}: the header matches no known export format; name it with --format "
            f"({', '.join(FORMATS)}), or ingest contract files with `credit ingest DIR`"
        )
    raise FormatError(
        f"{file}: the header matches several formats ({', '.join(matches)}); name the one "
        "it is with --format"
    )


def adapt(text: str, ctx: Context, fmt: str | None = None, file: str = "the file") -> Adapted:
    """Read an export's text with the adapter of ``fmt`` (detected from the header when
    ``None``): contract records and the outcome of every source row.

    Raises :class:`FormatError` (unknown or ambiguous format, a required column missing).
    """
    from credit.adapters.base import read_rows

    a = adapter(fmt or detect(text, file))
    header, rows = read_rows(text, a.delimiter, a.canonical)
    missing = [c for c in a.required if c not in set(header)]
    if missing:
        raise FormatError(
            f"{file}: not a {a.title} file: missing column(s) {', '.join(missing)} "
            f"(it needs {', '.join(a.required)})"
        )
    return a.adapt(rows, ctx)
