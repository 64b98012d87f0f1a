"""Colour deconvolution, stain-robust shared channels and tissue masks.

Optical density (OD) is ``-log10(I / 255)`` per RGB channel (``I`` clipped to >= 1).  Stain
concentrations come from the inverse of a 3x3 matrix whose rows are unit OD vectors
(haematoxylin, eosin, DAB; Ruifrok & Johnston 2001).  In these units a DAB value of 0.25 is
about 0.04 in ``skimage.color.rgb2hed`` units (which divide by ``-log(1e-6)`` in natural
log), the APRIORICS pHH3 threshold.

A *shared channel* is a uint8 image both stains show with the same contrast sign: eosin OD
(eosin-counterstained pHH3), haematoxylin OD (haematoxylin-counterstained pHH3) or grey.
Arrays are ``(rows, cols, 3)`` uint8 RGB unless stated.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from mfcurate.stain import HED_STAINS, deconvolve, optical_density

CHANNELS = ("eosin", "hematoxylin", "gray")

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]


def tissue_mask(rgb: U8, min_od: float = 0.05) -> npt.NDArray[np.bool_]:
    """Tissue (not glass) mask: summed RGB OD (blurred) above ``min_od``, closed and opened.

    The threshold is low because a haematoxylin-counterstained IHC leaves the stroma nearly
    colourless.
    """
    import cv2

    od = optical_density(rgb).sum(axis=2)
    m = (cv2.GaussianBlur(od, (0, 0), 2.0) > min_od).astype(np.uint8)
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
    m = cv2.morphologyEx(m, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    return m.astype(bool)


def _to_u8(ch: F32, mask: npt.NDArray[np.bool_] | None) -> U8:
    vals = ch[mask] if mask is not None and mask.any() else ch.ravel()
    if vals.size == 0:
        return np.zeros(ch.shape, np.uint8)
    lo, hi = np.percentile(vals, [1.0, 99.5])
    if hi <= lo:
        hi = lo + 1e-3
    out = (np.clip((ch - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)
    if mask is not None:
        out[~mask] = 0
    return out


def shared_channel(rgb: U8, name: str, mask: npt.NDArray[np.bool_] | None = None) -> U8:
    """One stain-robust uint8 channel (``eosin``, ``hematoxylin`` or ``gray``).

    Each is scaled by its 1st/99.5th percentile inside ``mask`` (tissue); glass is 0 for the
    stain channels.  ``gray`` is inverted (dark = high) so that all three rise with stain.
    """
    if name == "gray":
        import cv2

        g = 255.0 - cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return _to_u8(g, mask)
    idx = {"hematoxylin": 0, "eosin": 1}.get(name)
    if idx is None:
        raise ValueError(f"unknown channel {name!r}; choose one of {', '.join(CHANNELS)}")
    conc = deconvolve(rgb, channels=(idx,))[:, :, 0]
    return _to_u8(conc, mask)


def guess_counterstain(rgb: U8, mask: npt.NDArray[np.bool_] | None = None) -> str:
    """``eosin`` or ``hematoxylin``: which counterstain dominates the non-DAB tissue."""
    conc = deconvolve(rgb)
    m = np.ones(rgb.shape[:2], bool) if mask is None else mask.copy()
    m &= conc[:, :, 2] < 0.15
    if not m.any():
        return "eosin"
    h = float(np.percentile(conc[:, :, 0][m], 95))
    e = float(np.median(conc[:, :, 1][m]))
    return "hematoxylin" if h > 1.5 * e else "eosin"


def estimate_dab_vector(rgb: U8, mask: npt.NDArray[np.bool_] | None = None,
                        min_pixels: int = 40, max_angle_deg: float = 25.0
                        ) -> npt.NDArray[np.float64]:
    """Estimate the slide's DAB OD vector from its clearly brown pixels.

    Pixels with a default-vector DAB concentration above 0.3 are taken; the median direction
    of their OD minus the counterstain part is the estimate.  Falls back to the default
    vector when fewer than ``min_pixels`` qualify or the estimate is further than
    ``max_angle_deg`` from it.

    Returns:
        A ``(3, 3)`` stain matrix (H, E, estimated DAB rows, unit norm).
    """
    stains = HED_STAINS.copy()
    conc = deconvolve(rgb)
    sel = conc[:, :, 2] > 0.3
    if mask is not None:
        sel &= mask
    if int(sel.sum()) < min_pixels:
        return stains
    od = optical_density(rgb)[sel].astype(np.float64)
    c = conc[sel].astype(np.float64)
    resid = od - c[:, :2] @ HED_STAINS[:2]
    norms = np.linalg.norm(resid, axis=1, keepdims=True)
    v = np.median(resid / np.maximum(norms, 1e-9), axis=0)
    v = np.clip(v, 1e-3, None)
    v /= np.linalg.norm(v)
    ang = np.degrees(np.arccos(np.clip(float(v @ HED_STAINS[2]), -1, 1)))
    if ang > max_angle_deg:
        return stains
    stains[2] = v
    return stains
