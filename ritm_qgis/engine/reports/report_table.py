"""Table-1-style tables (plain text for terminals, Markdown for files) from NocReports."""

from __future__ import annotations

from ritm_qgis.engine.protocol.noc import NocReport


def _pct(t: float) -> str:
    return f"{t * 100:g}"


def _columns(reports: list[NocReport]):
    first = reports[0]
    c = first.max_clicks
    cols = [("model", lambda r: r.name), ("samples", lambda r: f"{r.n_samples} (+{r.n_empty_dropped} empty)")]
    for t in first.thresholds:
        cols.append((f"NoC{c}@{_pct(t)}", lambda r, t=t: f"{r.noc[t]:.2f}"))
    for t in first.thresholds:
        cols.append((f">={c}@{_pct(t)}", lambda r, t=t: f"{r.ge_max[t]:.3f}"))
    cols.append((f"Avg{c} IoU best", lambda r: f"{r.avg_iou_best:.3f} (±{r.avg_iou_best_std:.3f})"))
    cols.append((f"Avg{c} IoU @{c}", lambda r: f"{r.avg_iou_last:.3f} (±{r.avg_iou_last_std:.3f})"))
    for t in first.thresholds:
        cols.append((f"never@{_pct(t)}", lambda r, t=t: f"{r.never_reached[t]:.3f}"))
    return cols


def _check_compatible(reports: list[NocReport]):
    if not reports:
        raise ValueError("no reports to tabulate")
    first = reports[0]
    for r in reports[1:]:
        if r.thresholds != first.thresholds or r.max_clicks != first.max_clicks:
            raise ValueError("all reports in one table need the same thresholds and click budget")


def text_table(reports: list[NocReport]) -> str:
    _check_compatible(reports)
    cols = _columns(reports)
    cells = [[head for head, _ in cols]] + [[fmt(r) for _, fmt in cols] for r in reports]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(reports: list[NocReport]) -> str:
    _check_compatible(reports)
    cols = _columns(reports)
    lines = ["| " + " | ".join(head for head, _ in cols) + " |"]
    lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(cols))) + "|")
    lines += ["| " + " | ".join(fmt(r) for _, fmt in cols) + " |" for r in reports]
    return "\n".join(lines)


TABLE_NOTES = (
    "NoC = clicks to reach the IoU (capped at the budget); >= = share of samples whose NoC equals the "
    "budget (the paper's >=20@t); never = share that never reaches it. Avg IoU best = mean of each "
    "sample's best IoU over the clicks; Avg IoU @C = mean IoU at the last click. The paper's 'Avg20 IoU' "
    "is the best-IoU mean for its no-training and from-scratch rows and the last-click mean for its "
    "fine-tuned row."
)
