"""Compare two runs with a two-sided Mann-Whitney U test over their seeds."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mfcurate.errors import SourceFormatError, UsageError


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> dict[str, float | int]:
    """Two-sided Mann-Whitney U test of ``a`` against ``b`` (scipy, exact for small samples).

    Returns:
        ``{"u", "p", "n_a", "n_b", "median_a", "median_b"}``; ``u`` is the statistic of ``a``.
    """
    from scipy.stats import mannwhitneyu

    if len(a) < 1 or len(b) < 1:
        raise UsageError("each side of a comparison needs at least one run")
    res = mannwhitneyu(np.asarray(a, float), np.asarray(b, float), alternative="two-sided")
    return {"u": float(res.statistic), "p": float(res.pvalue), "n_a": len(a), "n_b": len(b),
            "median_a": float(np.median(a)), "median_b": float(np.median(b))}


def _load(path: Path) -> dict[str, Any]:
    try:
        obj = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"score file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise SourceFormatError(path, f"invalid JSON ({exc})") from exc
    if "overall" not in obj or "f1" not in obj["overall"]:
        raise SourceFormatError(path, "not an `mfcurate score --json` output (no overall.f1)")
    return dict(obj)


def compare_score_files(a: Sequence[Path], b: Sequence[Path],
                        metric: str = "f1") -> dict[str, Any]:
    """Compare per-seed score JSONs of run A with those of run B, overall and per tumour.

    Args:
        a: score files of run A (one per seed).
        b: score files of run B.
        metric: ``f1``, ``precision`` or ``recall``.

    Returns:
        ``{"metric", "overall": {...test...}, "per_tumour": {NAME: {...}}}``; per-tumour tests
        use the tumour types both runs report.
    """
    if metric not in ("f1", "precision", "recall"):
        raise UsageError(f"metric must be f1, precision or recall (got {metric!r})")
    ja, jb = [_load(p) for p in a], [_load(p) for p in b]
    out: dict[str, Any] = {
        "metric": metric,
        "overall": mann_whitney([j["overall"][metric] for j in ja],
                                [j["overall"][metric] for j in jb]),
        "per_tumour": {},
    }
    tumours = set.intersection(*[set(j.get("per_tumour", {})) for j in ja + jb])
    for t in sorted(tumours):
        out["per_tumour"][t] = mann_whitney([j["per_tumour"][t][metric] for j in ja],
                                            [j["per_tumour"][t][metric] for j in jb])
    return out
