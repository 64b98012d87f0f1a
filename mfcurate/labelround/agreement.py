"""Inter-rater agreement: Fleiss' κ over the raters, Cohen's κ per pair, confusion counts.

No statistics package of the environment offers these (statsmodels and scikit-learn are not
dependencies), so they are computed here with numpy, as defined by Fleiss (1971) and
Cohen (1960); the tests check both against the textbook examples.

Categories are the vote labels (MF, not MF, uncertain).  Fleiss' κ uses the objects that
every rater of the group voted on (the statistic needs the same number of ratings per
object); Cohen's κ of a pair uses the objects both voted on.  κ is None where it is
undefined (fewer than two objects, or chance agreement of 1: every vote the same).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from mfcurate.labelround.classes import VOTE_LABELS

Votes = Mapping[str, Mapping[str, str]]  # object key -> {rater: vote label}


def fleiss_kappa(counts: npt.ArrayLike) -> float | None:
    """Fleiss' κ of an ``(N subjects, k categories)`` count table (equal row sums n >= 2)."""
    m = np.asarray(counts, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] < 2:
        return None
    n = m.sum(axis=1)
    if not np.allclose(n, n[0]) or n[0] < 2:
        raise ValueError("every subject needs the same number (>= 2) of ratings")
    n0 = n[0]
    p_j = m.sum(axis=0) / m.sum()
    p_i = ((m * m).sum(axis=1) - n0) / (n0 * (n0 - 1))
    p_bar, p_e = float(p_i.mean()), float((p_j ** 2).sum())
    if np.isclose(p_e, 1.0):
        return None
    return (p_bar - p_e) / (1.0 - p_e)


def confusion(a: Sequence[str], b: Sequence[str],
              labels: Sequence[str] = VOTE_LABELS) -> npt.NDArray[np.int64]:
    """``(k, k)`` counts: rows = rater a's vote, columns = rater b's."""
    idx = {lab: i for i, lab in enumerate(labels)}
    m = np.zeros((len(labels), len(labels)), np.int64)
    for x, y in zip(a, b, strict=True):
        m[idx[x], idx[y]] += 1
    return m


def cohen_kappa(a: Sequence[str], b: Sequence[str],
                labels: Sequence[str] = VOTE_LABELS) -> float | None:
    """Cohen's κ of two raters' votes on the same objects."""
    if len(a) < 2:
        return None
    m = confusion(a, b, labels).astype(np.float64)
    total = m.sum()
    p_o = np.trace(m) / total
    p_e = float((m.sum(axis=1) * m.sum(axis=0)).sum() / total ** 2)
    if np.isclose(p_e, 1.0):
        return None
    return float((p_o - p_e) / (1.0 - p_e))


def _r(v: float | None) -> float | None:
    return None if v is None else round(float(v), 4)


def agreement(votes: Votes, raters: Sequence[str] | None = None,
              labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Agreement figures of a set of objects.

    Args:
        votes: ``object key -> {rater: vote label}``.
        raters: the raters (default: everyone who voted).
        labels: ``object key -> consensus label`` for the unresolved share (optional).

    Returns:
        ``objects``, ``raters``, ``fleiss_kappa`` (and ``fleiss_objects``), ``cohen_kappa``
        (``"a|b" -> κ``), ``mean_cohen_kappa``, ``percent_agreement`` (objects whose votes
        were all the same), ``equivocal`` (share not all the same certain vote),
        ``unresolved`` (share labelled uncertain) and ``confusion`` (pooled over all pairs,
        rows/columns in ``categories`` order).
    """
    voted = {k: dict(v) for k, v in votes.items() if v}
    who = list(raters) if raters else sorted({r for v in voted.values() for r in v})
    who = [r for r in who if any(r in v for v in voted.values())]
    full = [v for v in voted.values() if all(r in v for r in who)]
    table = [[sum(1 for r in who if v[r] == lab) for lab in VOTE_LABELS] for v in full]
    fk = fleiss_kappa(table) if len(who) >= 2 and len(full) >= 2 else None
    pairs: dict[str, float | None] = {}
    pooled = np.zeros((len(VOTE_LABELS),) * 2, np.int64)
    for a, b in itertools.combinations(who, 2):
        both = [v for v in voted.values() if a in v and b in v]
        va, vb = [v[a] for v in both], [v[b] for v in both]
        pairs[f"{a}|{b}"] = _r(cohen_kappa(va, vb))
        if both:
            c = confusion(va, vb)
            pooled += c + c.T
    defined = [k for k in pairs.values() if k is not None]
    n = len(voted)
    same = sum(1 for v in voted.values() if len(set(v.values())) == 1)
    certain = {VOTE_LABELS[0], VOTE_LABELS[1]}
    equivocal = sum(1 for v in voted.values()
                    if len(set(v.values())) > 1 or next(iter(v.values())) not in certain)
    out: dict[str, Any] = {
        "objects": n, "raters": who, "fleiss_kappa": _r(fk), "fleiss_objects": len(full),
        "cohen_kappa": pairs,
        "mean_cohen_kappa": _r(float(np.mean(defined))) if defined else None,
        "percent_agreement": round(same / n, 4) if n else None,
        "equivocal": round(equivocal / n, 4) if n else None,
        "categories": list(VOTE_LABELS), "confusion": pooled.tolist(),
    }
    if labels is not None:
        decided = [labels[k] for k in voted if k in labels]
        out["unresolved"] = (round(sum(1 for lab in decided if lab == "uncertain")
                                   / len(decided), 4) if decided else None)
    return out


def grouped_agreement(votes: Votes, groups: Mapping[str, str], raters: Sequence[str] | None,
                      labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``{"overall": agreement, "by_tumour_type": {group: agreement}}``."""
    per: dict[str, dict[str, Mapping[str, str]]] = {}
    for k, v in votes.items():
        per.setdefault(groups.get(k) or "unknown", {})[k] = v
    return {"overall": agreement(votes, raters, labels),
            "by_tumour_type": {g: agreement(v, raters, labels)
                               for g, v in sorted(per.items())}}
