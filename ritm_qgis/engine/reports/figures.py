"""Figures of the paper, drawn with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

import numpy as np

from ritm_qgis.core.atomic import atomic_path

# The paper's Figure 1: state-of-the-art supervised (non-interactive) models on INRIA reach 0.80-0.82 IoU.
SUPERVISED_BAND = (0.80, 0.82)


def _pyplot():
    import warnings

    import matplotlib

    matplotlib.use("Agg", force=False)
    with warnings.catch_warnings():
        # Debian's mpl_toolkits (seen through --system-site-packages) cannot serve pip's matplotlib 3D axes.
        warnings.filterwarnings("ignore", message="Unable to import Axes3D")
        import matplotlib.pyplot as plt

    return plt


def save_figure_atomically(fig, path: str, dpi: int = 120):
    """Write a figure to a temporary file beside ``path`` and rename it into place."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=(path.rsplit(".", 1)[-1] if "." in path else "png"))


def plot_iou_curves(reports, path: str, baseline_band=SUPERVISED_BAND, title="IoU vs number of clicks"):
    """Mean IoU after each click, one curve per model with a +-1 std band, and the supervised band."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    max_c = 1
    for r in reports:
        mean = np.asarray(r.mean_iou_per_click)
        std = np.asarray(r.std_iou_per_click) if r.std_iou_per_click else np.zeros_like(mean)
        clicks = np.arange(1, len(mean) + 1)
        max_c = max(max_c, len(mean))
        (line,) = ax.plot(clicks, mean, marker="o", markersize=3, label=f"{r.name} (n={r.n_samples})")
        ax.fill_between(clicks, np.clip(mean - std, 0, 1), np.clip(mean + std, 0, 1), color=line.get_color(), alpha=0.15)
    if baseline_band is not None:
        lo, hi = baseline_band
        ax.axhspan(lo, hi, color="red", alpha=0.25, label=f"supervised SOTA ({lo:.2f}-{hi:.2f})")
        ax.axhline((lo + hi) / 2, color="red", linewidth=1)
    ax.set_xlabel("number of clicks")
    ax.set_ylabel("IoU")
    ax.set_xlim(*((0.5, 1.5) if max_c == 1 else (1, max_c)))  # one click: a point, not an empty range
    ax.set_xticks(range(1, max_c + 1, max(1, max_c // 10)))
    ax.set_ylim(0, 1)
    ax.grid(True, alpha=0.3)
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    save_figure_atomically(fig, path)
    plt.close(fig)
    return path


def plot_iou_per_click(ious, path: str, target_iou: float | None = None, title: str = "IoU after each click"):
    """The demo's curve for one image: IoU after each click, with the target line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 3.2))
    clicks = np.arange(1, len(ious) + 1)
    ax.plot(clicks, ious, marker="o")
    if target_iou is not None:
        ax.axhline(target_iou, color="red", linestyle="--", linewidth=1, label=f"target {target_iou:g}")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("click")
    ax.set_ylabel("IoU")
    ax.set_ylim(0, 1)
    ax.set_xticks(clicks if len(clicks) <= 10 else clicks[::2])
    ax.grid(True, alpha=0.3)
    ax.set_title(title)
    save_figure_atomically(fig, path)
    plt.close(fig)
    return path
