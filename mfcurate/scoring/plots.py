"""Plots of a scoring run: F1 per tumour type and the precision-recall curve (PNG)."""

from __future__ import annotations

from pathlib import Path

from mfcurate.scoring.midog import ScoreResult


def plot_f1_per_tumour(result: ScoreResult, path: Path | str) -> Path:
    """Bar chart of pooled F1 per tumour type (overall as the last bar)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(result.per_tumour)
    values = [result.per_tumour[n].f1 for n in names] + [result.overall.f1]
    labels = [*names, "overall"]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(labels) + 2), 3.5), dpi=120)
    bars = ax.bar(range(len(labels)), values,
                  color=["#4c72b0"] * len(names) + ["#c44e52"])
    for b, v in zip(bars, values, strict=True):
        ax.text(b.get_x() + b.get_width() / 2, v + 0.01, f"{v:.2f}", ha="center", fontsize=8)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("F1 (pooled)")
    ax.set_title(f"F1 per tumour type, split {result.split}, threshold {result.threshold:.2f}",
                 fontsize=9)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def plot_pr_curve(result: ScoreResult, path: Path | str) -> Path:
    """Precision-recall curve over the threshold grid, with the operating point marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 4.0), dpi=120)
    rec = [p["recall"] for p in result.pr_curve]
    prec = [p["precision"] for p in result.pr_curve]
    ax.plot(rec, prec, "-", color="#4c72b0", lw=1.5)
    ax.plot([result.overall.recall], [result.overall.precision], "o", color="#c44e52",
            label=f"threshold {result.threshold:.2f} (F1 {result.overall.f1:.3f})")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(f"precision-recall, split {result.split}", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
