"""The agreement figure of a round: pooled rater-pair confusion and Cohen's κ per pair (PNG)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np

from mfcurate.labelround.classes import SHORT


def agreement_png(summary: Mapping[str, Any], title: str) -> bytes:
    """PNG bytes of one :func:`~mfcurate.labelround.agreement.agreement` result.

    Left: the confusion counts of every rater pair pooled (both orders, so symmetric), rows =
    one rater's vote, columns = the other's.  Right: Cohen's κ per pair (Fleiss' κ in the
    title).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cats = [SHORT.get(c, c) for c in summary["categories"]]
    m = np.asarray(summary["confusion"], dtype=np.int64)
    pairs = {k: v for k, v in summary["cohen_kappa"].items()}
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(9.0, 3.6),
                                 gridspec_kw={"width_ratios": [1.0, 1.3]})
    ax.imshow(m, cmap="Blues")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, str(m[i, j]), ha="center", va="center",
                    color="white" if m[i, j] > m.max() / 2 else "black", fontsize=9)
    ax.set_xticks(range(len(cats)), cats)
    ax.set_yticks(range(len(cats)), cats)
    ax.set_xlabel("other rater's vote")
    ax.set_ylabel("rater's vote")
    ax.set_title("rater pairs, pooled")
    names = list(pairs)
    vals = [np.nan if pairs[k] is None else float(pairs[k]) for k in names]
    bx.barh(range(len(names)), np.nan_to_num(vals), color="#4c72b0")
    bx.set_yticks(range(len(names)), [n.replace("|", " vs ") for n in names], fontsize=8)
    bx.set_xlim(min(0.0, float(np.nanmin(vals)) if names and not np.all(np.isnan(vals))
                    else 0.0), 1.0)
    bx.set_xlabel("Cohen's κ")
    bx.invert_yaxis()
    fk = summary.get("fleiss_kappa")
    fk_text = "n/a" if fk is None else f"{fk:.2f}"
    bx.set_title(f"Fleiss' κ = {fk_text} ({summary.get('objects', 0)} objects)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
