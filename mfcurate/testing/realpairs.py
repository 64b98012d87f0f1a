"""Real H&E / IHC pairs with landmarks (``shared/data/real/images/he_ihc``).

Used by the benchmark and the floor test: the relative TRE (TRE / image diagonal) of a
transform on the pairs' landmarks.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class RealPair:
    """One real pair: fixed (H&E) and moving (IHC) images and matching landmark files."""

    name: str
    he: Path
    ihc: Path
    he_landmarks: Path
    ihc_landmarks: Path
    landmark_scale: float
    mpp: float


def real_pairs(root: Path) -> list[RealPair]:
    """The landmark pairs present under ``root`` (``.../real/images/he_ihc``)."""
    out = []
    c = root / "cima_lung_lesion_3"
    lm = c / "landmarks_user-PS_scale-50pc"
    img = c / "scale-5pc"
    for stain in ("Ki67-7", "CD31-3", "Cc10-5", "proSPC-4"):
        he = img / "29-041-Izd2-w35-He-les3.jpg"
        ihc = img / f"29-041-Izd2-w35-{stain}-les3.jpg"
        if he.exists() and ihc.exists():
            out.append(RealPair(f"cima_lung_lesion_3/{stain}", he, ihc,
                                lm / "29-041-Izd2-w35-He-les3.csv",
                                lm / f"29-041-Izd2-w35-{stain}-les3.csv", 0.1, 3.5))
    for name, a, b in (("birl_rat_kidney", "Rat-Kidney_HE", "Rat-Kidney_PanCytokeratin"),
                       ("birl_lung_lesion", "Izd2-29-041-w35_HE", "Izd2-29-041-w35_proSPC")):
        d = root / name / "scale-5pc"
        if (d / f"{a}.jpg").exists():
            out.append(RealPair(name, d / f"{a}.jpg", d / f"{b}.jpg", d / f"{a}.csv",
                                d / f"{b}.csv", 1.0, 3.5))
    return out


def read_landmarks(path: Path, scale: float) -> npt.NDArray[np.float64]:
    """``(N, 2)`` landmark x, y (pixel units of the image) from a `` ,X,Y`` CSV."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return np.array([[float(r["X"]) * scale, float(r["Y"]) * scale] for r in rows])


def relative_tre(pair: RealPair, transform: object) -> npt.NDArray[np.float64]:
    """Relative TRE of each landmark: |map(IHC landmark) - H&E landmark| / H&E diagonal."""
    from mfcurate.io.reader import open_image

    he_lm = read_landmarks(pair.he_landmarks, pair.landmark_scale)
    ihc_lm = read_landmarks(pair.ihc_landmarks, pair.landmark_scale)
    n = min(len(he_lm), len(ihc_lm))
    mapped = transform.phh3_to_he(ihc_lm[:n] + 0.5) - 0.5  # type: ignore[attr-defined]
    img = open_image(pair.he)
    diag = float(np.hypot(img.width, img.height))
    img.close()
    return np.asarray(np.hypot(*(mapped - he_lm[:n]).T) / diag)
