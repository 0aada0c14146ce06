"""Small helpers for self-contained HTML pages and PNG figures (model report, drift report,
plots, backtest): escaped tables, inlined base64 images, a headless pyplot.

Matplotlib is imported inside the functions that draw: it is heavy, and most commands that
import this module never plot.
"""

from __future__ import annotations

import base64
import html
import io
import math
from typing import Any

import numpy as np
import pandas as pd


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def fmt(v: Any, digits: int = 4) -> str:
    """A table cell: ``-`` for missing or non-finite, thousands separators for whole numbers,
    ``digits`` decimals otherwise."""
    if v is None:
        return "-"
    if isinstance(v, bool | np.bool_):
        return str(bool(v))
    if isinstance(v, int | np.integer):
        return f"{int(v):,}"
    if isinstance(v, float | np.floating):
        f = float(v)
        if not math.isfinite(f):
            return "-"
        if f == int(f) and abs(f) >= 1 and abs(f) < 1e12:
            return f"{int(f):,}"
        return f"{f:.{digits}f}"
    return str(v)


def table(df: pd.DataFrame | None, index: bool = False) -> str:
    """An escaped HTML table (numbers right-aligned)."""
    if df is None or df.empty:
        return "<p class='muted'>No rows.</p>"
    cols = ([str(df.index.name or "")] if index else []) + [str(c) for c in df.columns]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for idx, row in df.iterrows():
        cells = [f"<th>{html.escape(str(idx))}</th>"] if index else []
        for v in row.tolist():
            num = isinstance(v, int | float | np.integer | np.floating)
            cells.append(f"<td class='{'num' if num else ''}'>{html.escape(fmt(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def img(data: bytes | None, alt: str) -> str:
    """A PNG inlined as a ``data:`` URI (a muted note when there is no image)."""
    if not data:
        return f"<p class='muted'>{html.escape(alt)}: not available.</p>"
    b64 = base64.b64encode(data).decode("ascii")
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{b64}'>"


def png(fig: Any) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
