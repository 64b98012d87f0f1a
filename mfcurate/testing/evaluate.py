"""Score a pair's result against the truth of a synthetic pair (tests and the benchmark)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mfcurate.geometry import decode_mask, mask_grid
from mfcurate.registration.transfer import dice
from mfcurate.registration.transform import PairTransform


@dataclass
class PairScore:
    """Accuracy figures of one synthetic pair.

    Attributes:
        tre_median_um: median target registration error (pHH3 -> H&E landmarks), µm.
        tre_p90_um: its 90th percentile.
        tre_max_um: its maximum.
        recall: share of planted (and not lost) mitoses matched by a transferred object.
        precision: share of transferred objects that match a planted mitosis.
        dice_mean: mean Dice of matched masks against the true H&E masks.
        dice_median: median of the same.
        n_truth: mitoses that survive on the pHH3.
        n_found: transferred objects.
    """

    tre_median_um: float
    tre_p90_um: float
    tre_max_um: float
    recall: float
    precision: float
    dice_mean: float
    dice_median: float
    n_truth: int
    n_found: int


def tre_um(transform: PairTransform, truth: Any, n: int = 400, seed: int = 0) -> np.ndarray:
    """TRE in µm at tissue landmarks mapped pHH3 -> H&E."""
    from mfcurate.synth.phh3_pair import tissue_landmarks

    ph, he = tissue_landmarks(truth, n, seed)
    return np.hypot(*(transform.phh3_to_he(ph) - he).T) * truth.mpp


def score_pair(transform: PairTransform, objects: Any, truth: Any, match_um: float = 5.0
               ) -> PairScore:
    """Score a transform and a pair objects table (:data:`PAIR_OBJECTS_SCHEMA`) against truth."""
    e = tre_um(transform, truth)
    rows = objects.to_pylist()
    vis = truth.visible_mitoses()
    found = np.array([[r["he_x"], r["he_y"]] for r in rows]).reshape(-1, 2)
    used: set[int] = set()
    dices: list[float] = []
    matched_truth = 0
    for i in vis:
        m = truth.mitoses[i]
        if len(found) == 0:
            break
        d = np.hypot(*(found - np.array(m.centroid_xy)).T)
        d[list(used)] = np.inf
        j = int(np.argmin(d))
        if d[j] * truth.mpp > match_um:
            continue
        used.add(j)
        matched_truth += 1
        r = rows[j]
        x0, y0, w, h = mask_grid([r["he_x0"], r["he_y0"], r["he_x1"], r["he_y1"]])
        dices.append(dice(decode_mask(r["mask_rle"], h, w), (x0, y0), m.mask, m.offset_xy))
    return PairScore(
        float(np.median(e)), float(np.percentile(e, 90)), float(e.max()),
        matched_truth / max(1, len(vis)), len(used) / max(1, len(rows)),
        float(np.mean(dices)) if dices else 0.0, float(np.median(dices)) if dices else 0.0,
        len(vis), len(rows))


@dataclass
class LandmarkScore:
    """Landmark errors of one transform on one synthetic pair (either generator).

    Attributes:
        errors_um: TRE of each landmark (pHH3 -> H&E), µm.
        near: landmark within 100 µm of an artefact (second generator only; else all False).
        flagged: the transform marks the landmark's place as unreliable (failed region,
            fallback from neighbours, or residual above ``max_residual_um`` or unknown), as
            :func:`mfcurate.registration.transfer.transfer_objects` flags objects there.
    """

    errors_um: np.ndarray
    near: np.ndarray
    flagged: np.ndarray

    def summary(self, wrong_um: float = 2.0) -> dict[str, float]:
        """Median/p90/max TRE (all, clean, unflagged) and the share wrong-and-unflagged."""
        e = self.errors_um
        clean = e[~self.near] if (~self.near).any() else e
        unfl = e[~self.flagged] if (~self.flagged).any() else np.array([np.inf])
        return {
            "tre_median_um": float(np.median(e)), "tre_p90_um": float(np.percentile(e, 90)),
            "tre_max_um": float(e.max()), "clean_median_um": float(np.median(clean)),
            "unflagged_p90_um": float(np.percentile(unfl, 90)),
            "flagged_share": float(self.flagged.mean()),
            "wrong_unflagged_share": float(((e > wrong_um) & ~self.flagged).mean()),
            "wrong_flagged": int(((e > wrong_um) & self.flagged).sum()),
        }


def landmark_score(transform: PairTransform, truth: Any, n: int = 400, seed: int = 0,
                   max_residual_um: float = 2.0) -> LandmarkScore:
    """Score a transform on either generator's truth (``WarpTruth`` or ``PairTruth``)."""
    if hasattr(truth, "landmarks"):
        ph, he, near = truth.landmarks(n, seed)
    else:
        from mfcurate.synth.phh3_pair import tissue_landmarks

        ph, he = tissue_landmarks(truth, n, seed)
        near = np.zeros(len(he), bool)
    e = np.hypot(*(transform.phh3_to_he(ph) - he).T) * truth.mpp
    res = transform.residual_at(he)
    flagged = transform.failed_at(he) | transform.fallback_at(he) | ~(res <= max_residual_um)
    return LandmarkScore(e, near, flagged)
