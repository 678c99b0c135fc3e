"""Small HTML building blocks for self-contained pages: escaped tables, numbers with CIs, figures as PNG data URIs.

No external resource is referenced, so a report opens offline and from a mail attachment.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Sequence
from typing import Any

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
th { background: #f3f3f3; cursor: default; } td:first-child, th:first-child { text-align: left; }
table.sortable th { cursor: pointer; }
.note { color: #555; font-size: .9em; } .warn { background: #fff4d6; padding: .5em; border-left: 4px solid #e0a800; }
figure { display: inline-block; margin: .5em; } img.plot { max-width: 560px; }
code { background: #f5f5f5; padding: 0 .2em; }
"""

SORT_SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0], rows = Array.from(body.rows);
      var dir = th.dataset.dir === 'asc' ? -1 : 1; th.dataset.dir = dir === 1 ? 'asc' : 'desc';
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.v || a.cells[col].textContent;
        var y = b.cells[col].dataset.v || b.cells[col].textContent;
        var nx = parseFloat(x), ny = parseFloat(y);
        if (!isNaN(nx) && !isNaN(ny)) return dir * (nx - ny);
        return dir * x.localeCompare(y);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def esc(value: Any) -> str:
    return html.escape(str(value))


def num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def with_ci(stat: dict[str, Any] | None, key: str = "mean", digits: int = 3) -> str:
    """``0.512 [0.401, 0.620] (n=48)`` from a stats dict; "n/a (n=0)" when missing."""
    if not stat or stat.get(key) is None:
        return f"n/a (n={stat.get('n', 0) if stat else 0})"
    text = num(stat[key], digits)
    if stat.get("ci95"):
        low, high = stat["ci95"]
        text += f" [{num(low, digits)}, {num(high, digits)}]"
    return text + f" (n={stat.get('n', '?')})"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], sortable: bool = False) -> str:
    """A table; a cell given as ``(text, sort_value)`` sorts by the value."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            if isinstance(cell, tuple):
                text, value = cell
                sort = "" if value is None else f' data-v="{esc(value)}"'
                cells.append(f"<td{sort}>{esc(text)}</td>")
            else:
                cells.append(f"<td>{esc(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cls = ' class="sortable"' if sortable else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


class Page:
    """Collects figures for one report; every figure is an inline PNG (base64 data URI)."""

    def __init__(self) -> None:
        self.n_figures = 0

    def figure(self, fig, caption: str) -> str:
        import matplotlib.pyplot as plt

        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        plt.close(fig)
        self.n_figures += 1
        data = base64.b64encode(buffer.getvalue()).decode("ascii")
        return (
            f'<figure><img class="plot" alt="{esc(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption class='note'>{esc(caption)}</figcaption></figure>"
        )


def document(title: str, body: str, script: str = "") -> str:
    tail = f"<script>{script}</script>" if script else ""
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>"
        f"<link rel='icon' href='data:,'><style>{STYLE}</style></head><body>{body}{tail}</body></html>"
    )
