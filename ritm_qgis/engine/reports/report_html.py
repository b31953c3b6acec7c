"""A self-contained HTML page for NoC reports (the Processing algorithms' report output)."""

from __future__ import annotations

import base64
import html

from ritm_qgis.core.atomic import write_text_atomically
from ritm_qgis.engine.reports.report_table import TABLE_NOTES, _check_compatible, _columns


def html_table(reports) -> str:
    _check_compatible(reports)
    cols = _columns(reports)
    head = "".join(f"<th>{html.escape(h)}</th>" for h, _ in cols)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(r))}</td>" for _, fmt in cols) + "</tr>" for r in reports)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def write_html_report(path: str, reports, figure_png: str | None = None, title="NoC report", extra_html=""):
    """Write the report atomically; the figure, if given, is embedded so the page stands alone."""
    img = ""
    if figure_png:
        with open(figure_png, "rb") as f:
            img = f'<p><img alt="IoU vs clicks" src="data:image/png;base64,{base64.b64encode(f.read()).decode()}"></p>'
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #999;padding:4px 8px;text-align:right}}td:first-child{{text-align:left}}</style>
</head><body><h1>{html.escape(title)}</h1>
{html_table(reports)}
<p>{html.escape(TABLE_NOTES)}</p>
{img}
{extra_html}
</body></html>
"""
    return write_text_atomically(path, page)
