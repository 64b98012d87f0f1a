"""Matplotlib figures of the dataset report, returned as PNG bytes (Agg backend, no display)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mfcurate.report.stats import DatasetStats

LABEL_COLOURS = {"mitotic_figure": "#d62728", "mitotic_like": "#1f77b4",
                 "background": "#7f7f7f", "granulocyte": "#9467bd", "tumour_cell": "#2ca02c",
                 "other_cell": "#8c564b"}


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def stacked_bars(table: pd.DataFrame, title: str, ylabel: str,
                 colours: Mapping[str, str] | None = None) -> bytes:
    """Stacked bars: one bar per row of ``table``, one segment per column."""
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(table) + 2), 3.2))
    bottom = np.zeros(len(table))
    for col in table.columns:
        vals = table[col].to_numpy(dtype=float)
        ax.bar([str(i) for i in table.index], vals, bottom=bottom, label=str(col),
               color=(colours or {}).get(str(col)))
        bottom += vals
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8, frameon=False, bbox_to_anchor=(1.0, 1.0), loc="upper left")
    ax.tick_params(axis="x", rotation=20)
    return _png(fig)


def area_histograms(stats: DatasetStats) -> bytes:
    """Mask area (µm²) distribution per label, as step histograms on a shared axis."""
    df = stats.objects.dropna(subset=["area_um2"])
    fig, ax = plt.subplots(figsize=(6, 3.2))
    if df.empty:
        ax.text(0.5, 0.5, "no masks with a known pixel size", ha="center", va="center")
        ax.set_axis_off()
        return _png(fig)
    bins = np.linspace(0, float(np.quantile(df["area_um2"], 0.99)) * 1.1 + 1e-9, 40).tolist()
    for lab, g in df.groupby("label"):
        ax.hist(g["area_um2"], bins=bins, histtype="step", linewidth=1.5,
                label=f"{lab} (n={len(g)})", color=LABEL_COLOURS.get(str(lab)))
    ax.set_xlabel("mask area (µm²)")
    ax.set_ylabel("objects")
    ax.set_title("Object size")
    ax.legend(fontsize=8, frameon=False)
    return _png(fig)


def example_grid(examples: Sequence[tuple[str, Sequence[tuple[np.ndarray, np.ndarray | None,
                                                             str]]]], title: str) -> bytes:
    """Rows of example crops with the mask outline drawn.

    Args:
        examples: ``[(label, [(rgb (h, w, 3) uint8, mask (h, w) bool or None, caption)])]``.
        title: figure title (the source).
    """
    rows = len(examples)
    cols = max((len(e) for _, e in examples), default=1) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(1.7 * cols + 0.8, 1.8 * rows + 0.4),
                             squeeze=False)
    for r, (label, items) in enumerate(examples):
        for c in range(cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(items):
                ax.set_axis_off()
                continue
            rgb, mask, caption = items[c]
            ax.imshow(rgb)
            if mask is not None and mask.any():
                ax.contour(mask.astype(float), levels=[0.5], colors=[
                    LABEL_COLOURS.get(label, "yellow")], linewidths=1.2)
            ax.set_title(caption, fontsize=6)
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.suptitle(title, fontsize=10)
    return _png(fig)
