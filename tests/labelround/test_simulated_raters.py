"""A synthetic round from detector candidates with simulated raters of known accuracy.

Each planted candidate is a mitotic figure or not (the truth).  Each of three raters votes
the truth with probability p and otherwise one of the two other classes at random
(uncertain included).  Under the majority rule an object is recovered exactly when at least
two raters are right, P = p^3 + 3 p^2 (1 - p); it is given the wrong certain label when at
least two raters chose that one, P = 3 q^2 (1 - q) + q^3 with q = (1 - p) / 2.  Fleiss' κ of
this model is (P_o - P_e) / (1 - P_e) with P_o = p^2 + 2 q^2 and, for balanced truth,
P_e = 2 ((p + q) / 2)^2 + q^2.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from mfcurate.dataset import Dataset
from mfcurate.labelround.ops import import_votes, new_round, resolve_round
from mfcurate.schemas.vocab import TRAINABLE_LABELS
from tests.labelround.conftest import fill_sheet

MF, NOT, UNC = "mitotic_figure", "mitotic_like", "uncertain"
CLASSES = (MF, NOT, UNC)


def _candidates(ds: Dataset, path: Path, n: int, rng: np.random.Generator) -> None:
    rows = ["image,x,y,score,area_um2,seg_score,origin"]
    images = ds.images().to_pylist()
    for i in range(n):
        im = images[i % len(images)]
        x, y = rng.uniform(8, im["width"] - 8), rng.uniform(8, im["height"] - 8)
        rows.append(f"{im['image_key']},{x:.3f},{y:.3f},{rng.uniform(0.5, 1):.3f},30,0.9,"
                    "classical")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n")


def test_majority_recovers_planted_labels_at_the_expected_rate(dataset: Path,
                                                                tmp_path: Path) -> None:
    n, p = 240, 0.8
    rng = np.random.default_rng(7)
    ds = Dataset.open(dataset)
    cands = tmp_path / "det" / "candidates.csv"
    _candidates(ds, cands, n, rng)
    raters = ["r1", "r2", "r3"]
    made = new_round(dataset, tmp_path / "round1", raters, candidates=cands, match_um=0.01)
    assert made.new_detections == len(made.round.objects) == n
    keys = [o.object_key for o in made.round.objects]
    truth = dict(zip(keys, rng.permutation([MF] * (n // 2) + [NOT] * (n - n // 2)),
                     strict=True))
    sheets = []
    for r in raters:
        votes: dict[str, str | None] = {}
        for k in keys:
            if rng.random() < p:
                votes[k] = truth[k]
            else:
                votes[k] = str(rng.choice([c for c in CLASSES if c != truth[k]]))
        sheets.append(fill_sheet(tmp_path / "round1" / "packages" / r / f"{r}-sheet.csv",
                                 tmp_path / "back" / f"{r}-sheet.csv", votes))
    import_votes(tmp_path / "round1", sheets)
    res = resolve_round(tmp_path / "round1", "majority")
    labels = {r["object_key"]: r["label"] for r in Dataset.open(dataset).objects().to_pylist()}
    recovered = np.mean([labels[k] == truth[k] for k in keys])
    wrong = np.mean([labels[k] not in (truth[k], UNC) for k in keys])
    q = (1 - p) / 2
    p_rec = p ** 3 + 3 * p ** 2 * (1 - p)
    p_wrong = 3 * q ** 2 * (1 - q) + q ** 3
    tol = lambda pr: 3.5 * math.sqrt(pr * (1 - pr) / n)  # noqa: E731
    assert abs(recovered - p_rec) <= tol(p_rec), (recovered, p_rec)
    assert abs(wrong - p_wrong) <= tol(p_wrong) + 1 / n, (wrong, p_wrong)
    p_o = p ** 2 + 2 * q ** 2
    p_e = 2 * ((p + q) / 2) ** 2 + q ** 2
    kappa = (p_o - p_e) / (1 - p_e)
    assert abs(res.agreement["overall"]["fleiss_kappa"] - kappa) < 0.08
    # the detections were uncertain objects before the round; the unresolved stay uncertain
    # and are never cut into training patches
    unresolved = [k for k in keys if labels[k] == UNC]
    assert unresolved and UNC not in TRAINABLE_LABELS
    assert res.unresolved == round(len(unresolved) / n, 4)
