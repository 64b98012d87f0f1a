"""Slide-level registration: SIFT + ratio test + RANSAC similarity on a shared channel.

Works on low-resolution images (about 2 µm/px).  The channel both stains share is chosen
automatically by the most RANSAC inliers among ``eosin`` and ``hematoxylin`` (``gray`` only
when both fail), because an eosin-counterstained pHH3 shows nuclei *pale* where the H&E
shows them dark: grey or OD inputs then have inverted contrast at every nucleus (see
``docs/phh3.md``).  A slide scanned mirrored is found by retrying on the flipped pHH3.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from mfcurate.errors import RegistrationError
from mfcurate.registration.channels import shared_channel, tissue_mask

U8 = npt.NDArray[np.uint8]


BAND = (1.5, 12.0)


class MirroredSlideError(RegistrationError):
    """The pHH3 matches only when flipped, and mirroring was not allowed."""


@dataclass
class LowRes:
    """A whole slide read at low resolution.

    Attributes:
        rgb: ``(rows, cols, 3)`` uint8.
        scale: level-0 px per low-resolution px (continuous coordinates scale by it).
        mask: tissue mask of ``rgb``.
    """

    rgb: U8
    scale: float
    mask: npt.NDArray[np.bool_]


@dataclass
class GlobalFit:
    """Result of the slide-level fit.

    Attributes:
        affine_low: ``(2, 3)`` H&E-low -> pHH3-low affine (continuous px).
        channel: the shared channel used.
        inliers: RANSAC inliers per channel tried.
        matches: ratio-test matches of the chosen channel.
        mirrored: the pHH3 was found mirrored.
        rotation_deg: rotation of the fit.
        scale: its scale.
    """

    affine_low: npt.NDArray[np.float64]
    channel: str
    inliers: dict[str, float] = field(default_factory=dict)
    matches: int = 0
    mirrored: bool = False
    rotation_deg: float = 0.0
    scale: float = 1.0


def read_lowres(img: Any, mpp: float, target_mpp: float, max_side: int = 8000) -> LowRes:
    """Read a whole slide at about ``target_mpp`` µm/px from its nearest pyramid level."""
    import cv2

    ds = max(target_mpp / mpp, max(img.width, img.height) / max_side, 1.0)
    level = img.best_level(ds)
    lw, lh = img.level_dimensions[level]
    region = img.read_region(0, 0, lw, lh, level=level)
    tw, th = max(1, round(img.width / ds)), max(1, round(img.height / ds))
    if (tw, th) != (lw, lh):
        region = cv2.resize(region, (tw, th), interpolation=cv2.INTER_AREA)
    return LowRes(region, img.width / tw, tissue_mask(region))


def _features(ch: U8, mask: npt.NDArray[np.bool_], n: int) -> tuple[Any, Any]:
    import cv2

    sift = cv2.SIFT_create(nfeatures=n)  # type: ignore[attr-defined]
    m = cv2.dilate(mask.astype(np.uint8) * 255, np.ones((7, 7), np.uint8))
    return sift.detectAndCompute(ch, m)


def _fit(kp_a: Any, des_a: Any, kp_b: Any, des_b: Any, thr: float, ratio: float
         ) -> tuple[npt.NDArray[np.float64] | None, int, int]:
    import cv2

    if des_a is None or des_b is None or len(kp_a) < 3 or len(kp_b) < 3:
        return None, 0, 0
    # Exact matching and a fixed RANSAC seed: the same pair gives the same fit on every call
    # and every machine (FLANN's randomised trees and OpenCV's shared RNG do not).
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(des_a, des_b, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < ratio * p[1].distance]
    if len(good) < 3:
        return None, 0, len(good)
    pa = np.array([kp_a[m.queryIdx].pt for m in good], dtype=np.float64) + 0.5
    pb = np.array([kp_b[m.trainIdx].pt for m in good], dtype=np.float64) + 0.5
    cv2.setRNGSeed(0)
    aff, inl = cv2.estimateAffinePartial2D(pa, pb, method=cv2.RANSAC,
                                           ransacReprojThreshold=thr, maxIters=10000,
                                           confidence=0.999, refineIters=20)
    if aff is None or inl is None:
        return None, 0, len(good)
    return np.asarray(aff, np.float64), int(inl.sum()), len(good)


def _rot_scale(a: npt.NDArray[np.float64]) -> tuple[float, float]:
    det = float(np.linalg.det(a[:, :2]))
    s = float(np.sqrt(abs(det)))
    return float(np.degrees(np.arctan2(a[1, 0], a[0, 0]))), s


def fit_similarity(
    he: LowRes,
    phh3: LowRes,
    *,
    channel: str = "auto",
    allow_mirror: bool = True,
    n_features: int = 8000,
    ratio: float = 0.8,
    ransac_px: float = 3.0,
    min_inliers: int = 30,
    min_inlier_ratio: float = 0.1,
    scale_range: tuple[float, float] = (0.9, 1.1),
) -> GlobalFit:
    """Fit the H&E -> pHH3 similarity on low-resolution images of the same µm/px.

    Args:
        he: the H&E at low resolution.
        phh3: the pHH3 at the same µm/px.
        channel: ``auto``, ``eosin``, ``hematoxylin`` or ``gray``.
        allow_mirror: also try the left-right flipped pHH3 when the direct fit fails.
        n_features: SIFT features per image.
        ratio: Lowe ratio.
        ransac_px: RANSAC reprojection threshold in low-resolution px.
        min_inliers: QC gate: fewest inliers accepted.
        min_inlier_ratio: QC gate: inliers / ratio-test matches.
        scale_range: QC gate on the fitted scale.

    Raises:
        RegistrationError: no channel (and no mirroring, if allowed) passes the QC gate; the
            message says whether the pHH3 looked mirrored.
    """
    order = ["eosin", "hematoxylin"] if channel == "auto" else [channel]
    tried: dict[str, float] = {}

    def attempt(names: list[str], mirror: bool) -> GlobalFit | None:
        ph_rgb = phh3.rgb[:, ::-1] if mirror else phh3.rgb
        ph_mask = phh3.mask[:, ::-1] if mirror else phh3.mask
        found: GlobalFit | None = None
        found_n = -1
        for name in names:
            a = shared_channel(he.rgb, name, he.mask)
            b = shared_channel(np.ascontiguousarray(ph_rgb), name, ph_mask)
            ka, da = _features(a, he.mask, n_features)
            kb, db = _features(b, np.ascontiguousarray(ph_mask), n_features)
            aff, n_in, n_match = _fit(ka, da, kb, db, ransac_px, ratio)
            tried[name + ("/mirrored" if mirror else "")] = n_in
            if aff is None:
                continue
            if mirror:
                flip = np.array([[-1.0, 0.0, phh3.rgb.shape[1]], [0.0, 1.0, 0.0], [0, 0, 1]])
                aff = (flip @ np.vstack([aff, [0, 0, 1]]))[:2]
            rot, sc = _rot_scale(aff)
            fit = GlobalFit(aff, name, tried, n_match, mirror, rot, sc)
            ok = (n_in >= min_inliers and n_in >= min_inlier_ratio * n_match
                  and scale_range[0] <= sc <= scale_range[1])
            if ok and n_in > found_n:
                found, found_n = fit, n_in
        if found is not None:
            found.inliers = dict(tried)
        return found

    fit = attempt(order, False)
    if fit is None and channel == "auto":
        fit = attempt(["gray"], False)
    if fit is None:
        mirrored = attempt(order if channel != "auto" else ["eosin", "hematoxylin", "gray"],
                           True)
        if mirrored is not None:
            if allow_mirror:
                return mirrored
            raise MirroredSlideError(
                f"the pHH3 slide looks mirrored (left-right flipped glass; "
                f"{mirrored.inliers[mirrored.channel + '/mirrored']} inliers when flipped); "
                "rerun with --allow-mirror to accept a mirrored transform")
        detail = ", ".join(f"{k} {v}" for k, v in tried.items())
        raise RegistrationError(
            f"no consistent match between the slides (RANSAC inliers: {detail}; need "
            f"{min_inliers}); they may not show the same section or not overlap")
    return fit


def affine_to_level0(aff_low: npt.NDArray[np.float64], s_he: float, s_ph: float
                     ) -> npt.NDArray[np.float64]:
    """Scale an H&E-low -> pHH3-low affine to level-0 px of both slides."""
    out = np.zeros((2, 3))
    out[:, :2] = aff_low[:, :2] * (s_ph / s_he)
    out[:, 2] = aff_low[:, 2] * s_ph
    return out


def _inv_map(a: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """A continuous-coordinate affine in the index form ``cv2.warpAffine`` expects."""
    ai = a.copy()
    ai[:, 2] = a[:, :2] @ np.array([0.5, 0.5]) + a[:, 2] - 0.5
    return ai


def _from_inv_map(ai: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    a = ai.copy()
    a[:, 2] = ai[:, 2] + 0.5 - ai[:, :2] @ np.array([0.5, 0.5])
    return a


def _density(rgb: U8, f: float) -> npt.NDArray[np.float32]:
    """Total optical density, resized by ``f`` (a stain-agnostic 'how much tissue' image)."""
    import cv2

    from mfcurate.stain import optical_density

    d = optical_density(rgb).sum(axis=2)
    return np.asarray(cv2.resize(d, None, fx=f, fy=f, interpolation=cv2.INTER_AREA),
                      dtype=np.float32)


def _bandpass(x: npt.NDArray[np.float32], lo: float, hi: float) -> npt.NDArray[np.float32]:
    import cv2

    return np.asarray(cv2.GaussianBlur(x, (0, 0), lo) - cv2.GaussianBlur(x, (0, 0), hi),
                      dtype=np.float32)


def _masked_ncc(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32],
                m: npt.NDArray[np.bool_]) -> float:
    if m.sum() < 50:
        return -1.0
    x = a[m].astype(np.float64)
    y = b[m].astype(np.float64)
    x -= x.mean()
    y -= y.mean()
    d = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / d) if d > 0 else -1.0


def fit_by_tissue(he: LowRes, phh3: LowRes, *, allow_mirror: bool = True,
                  max_side: int = 384, angle_step: float = 3.0, min_ncc: float = 0.13
                  ) -> GlobalFit:
    """Fallback slide-level fit by rotation search on tissue density, when keypoints fail.

    Used for serial sections and very low-resolution images, where the two stains share no
    local keypoints.  Both slides are reduced to their total optical density (at most
    ``max_side`` px).  For every rotation (``angle_step`` steps, and mirrored if allowed) the
    pHH3 is rotated about its tissue centroid onto the H&E centroid, the translation comes from
    phase correlation, and the pose is scored by the NCC of the *band-passed* density inside
    both (eroded) tissue masks, so tissue texture, not the outline, decides: two different
    tissues of similar outline score near 0.  The best pose is polished by ECC and kept only
    if its score reaches ``min_ncc``.

    Raises:
        RegistrationError: no pose reaches ``min_ncc``.
    """
    import cv2

    f = min(1.0, max_side / max(he.rgb.shape[:2]), max_side / max(phh3.rgb.shape[:2]))
    hd, pd = _density(he.rgb, f), _density(phh3.rgb, f)
    hm = np.asarray(cv2.resize(he.mask.astype(np.uint8), (hd.shape[1], hd.shape[0]),
                               interpolation=cv2.INTER_NEAREST), dtype=np.uint8)
    pm = np.asarray(cv2.resize(phh3.mask.astype(np.uint8), (pd.shape[1], pd.shape[0]),
                               interpolation=cv2.INTER_NEAREST), dtype=np.uint8)
    if hm.sum() < 20 or pm.sum() < 20:
        raise RegistrationError("too little tissue to align the slides")
    k = np.ones((5, 5), np.uint8)
    hm_e = cv2.erode(hm, k).astype(bool)
    hb, pb = _bandpass(hd, BAND[0], BAND[1]), _bandpass(pd, BAND[0], BAND[1])
    hs = cv2.GaussianBlur(hd, (0, 0), 2.0)
    ps = cv2.GaussianBlur(pd, (0, 0), 2.0)

    def centroid(m: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        ys, xs = np.nonzero(m)
        return np.array([xs.mean() + 0.5, ys.mean() + 0.5])

    ch, cp = centroid(hm), centroid(pm)
    size = (hd.shape[1], hd.shape[0])
    win = cv2.createHanningWindow(size, cv2.CV_32F)

    def warp(img: npt.NDArray[Any], a: npt.NDArray[np.float64], nearest: bool = False
             ) -> npt.NDArray[Any]:
        flag = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
        return cv2.warpAffine(img, _inv_map(a), size, flags=flag | cv2.WARP_INVERSE_MAP)

    def score(a: npt.NDArray[np.float64]) -> float:
        m = hm_e & cv2.erode(warp(pm, a, True), k).astype(bool)
        return _masked_ncc(hb, warp(pb, a), m)

    sc, mirror, a = _rotation_search(hs, ps, win, ch, cp, warp, score, allow_mirror, angle_step)
    if not mirror:
        sc, a = _polish_ecc(hs, ps, sc, a, score)
    if sc < min_ncc:
        raise RegistrationError(
            f"no consistent match between the slides (no shared keypoints; best tissue-texture "
            f"NCC {sc:.2f} < {min_ncc}); they may not show the same section or not overlap")
    full = a.copy()
    full[:, 2] = a[:, 2] / f
    rot, s = _rot_scale(full)
    return GlobalFit(full, "gray", {"texture_ncc": round(sc, 3)}, 0, mirror, rot, s)


def _rotation_search(hs: npt.NDArray[Any], ps: npt.NDArray[Any], win: Any,
                     ch: npt.NDArray[np.float64], cp: npt.NDArray[np.float64],
                     warp: Callable[[npt.NDArray[Any], npt.NDArray[np.float64]],
                                    npt.NDArray[Any]],
                     score: Callable[[npt.NDArray[np.float64]], float], allow_mirror: bool,
                     angle_step: float) -> tuple[float, bool, npt.NDArray[np.float64]]:
    """Best (score, mirrored, H&E -> pHH3 2x3 affine) over rotations of ``angle_step`` degrees.

    Each pose rotates the pHH3 about its tissue centroid ``cp`` onto the H&E centroid ``ch``
    (small-frame pixels, x = column); phase correlation of the smoothed densities ``hs``/``ps``
    (Hanning window ``win``) gives the translation.
    """
    import cv2

    best: tuple[float, bool, npt.NDArray[np.float64]] = (-2.0, False, np.eye(2, 3))
    for mirror in ([False, True] if allow_mirror else [False]):
        for ang in np.arange(0, 360, angle_step):
            th = np.radians(ang)
            r = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
            if mirror:
                r = r @ np.array([[-1.0, 0], [0, 1.0]])
            a0 = np.hstack([r, (cp - r @ ch)[:, None]])  # he -> phh3, small frames
            w = warp(ps, a0)
            (dx, dy), _resp = cv2.phaseCorrelate(hs, w, win)
            a = np.hstack([r, (r @ np.array([dx, dy]) + cp - r @ ch)[:, None]])
            sc = score(a)
            if sc > best[0]:
                best = (sc, mirror, a)
    return best


def _polish_ecc(hs: npt.NDArray[Any], ps: npt.NDArray[Any], sc: float,
                a: npt.NDArray[np.float64], score: Callable[[npt.NDArray[np.float64]], float]
                ) -> tuple[float, npt.NDArray[np.float64]]:
    """Refine pose ``a`` (score ``sc``) by Euclidean ECC; keep it only if it scores no worse."""
    import cv2

    try:
        wp = _inv_map(a).astype(np.float32)
        _, wp = cv2.findTransformECC(  # type: ignore[call-overload]
            hs, ps, wp, cv2.MOTION_EUCLIDEAN,
            (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 80, 1e-5), None, 5)
        a2 = _from_inv_map(wp.astype(np.float64))
        sc2 = score(a2)
        if sc2 >= sc:
            sc, a = sc2, a2
    except cv2.error:
        pass
    return sc, a
