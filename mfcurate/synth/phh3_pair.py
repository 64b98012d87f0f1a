"""Synthetic H&E / pHH3 re-stain pairs with an exactly known transform.

One tissue section is rendered as H&E (:func:`mfcurate.synth.render.render_tissue`), then
re-rendered as its pHH3 re-stain: the haematoxylin and eosin of the H&E are replaced by the
pHH3 counterstain (``eosin``: nuclei pale, 10 % residual haematoxylin; ``hematoxylin``: eosin
gone, lighter nuclei), brown DAB is added on every mitotic figure (and faintly, speckled, on a
few G2 nuclei), a disc of tissue is lost, colours get a per-channel gain and noise, and the
whole image is moved by a known similarity (rotation about the canvas centre, scale,
translation) plus a smooth displacement of a few µm.

Coordinates are continuous level-0 pixels with pixel ``(col, row)`` covering
``[col, col + 1) x [row, row + 1)`` (x = column), as in :mod:`mfcurate.geometry`.

The truth is the map from pHH3 pixels to H&E pixels::

    x_he = A @ y_phh3 + b + w(A @ y_phh3 + b)

with ``w`` a sum of a few low-frequency sinusoids (exact at any point).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from mfcurate.stain import deconvolve
from mfcurate.synth.render import (
    HE_STAINS,
    MULTI_PART_FRAC,
    Planted,
    render_tissue,
    stains_to_rgb,
)

Counterstain = str  # "eosin" | "hematoxylin"


@dataclass
class PairTruth:
    """The known geometry of a synthetic pair.

    Attributes:
        width: canvas columns (both slides).
        height: canvas rows (both slides).
        mpp: µm per pixel of both slides.
        counterstain: ``eosin`` or ``hematoxylin``.
        affine: ``(2, 3)`` similarity mapping pHH3 px to H&E px (before the smooth warp).
        rotation_deg: rotation of that similarity (degrees, counter-clockwise in x/y).
        scale: its scale.
        warp_modes: ``(k, 6)`` rows ``(component, amp_px, kx, ky, phase, 0)`` of the warp.
        mirrored: the pHH3 canvas was flipped left-right after warping.
        mitoses: planted mitotic figures in the H&E frame (exact masks).
        lost_center_xy: centre of the lost-tissue disc (H&E px), or None.
        lost_radius_px: its radius.
        tissue_mask: ``(height, width)`` bool tissue mask of the H&E.
    """

    width: int
    height: int
    mpp: float
    counterstain: Counterstain
    affine: npt.NDArray[np.float64]
    rotation_deg: float
    scale: float
    warp_modes: npt.NDArray[np.float64]
    mirrored: bool = False
    mitoses: list[Planted] = field(default_factory=list)
    lost_center_xy: tuple[float, float] | None = None
    lost_radius_px: float = 0.0
    tissue_mask: npt.NDArray[np.bool_] | None = None

    def warp(self, pts: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Smooth displacement ``w(u)`` (H&E px) at ``(N, 2)`` points ``u`` (H&E px)."""
        u = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        out = np.zeros_like(u)
        for comp, amp, kx, ky, phase, _ in self.warp_modes:
            out[:, int(comp)] += amp * np.sin(kx * u[:, 0] + ky * u[:, 1] + phase)
        return out

    def phh3_to_he(self, pts: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Exact H&E position of ``(N, 2)`` pHH3 points (level-0 px)."""
        y = np.asarray(pts, dtype=np.float64).reshape(-1, 2).copy()
        if self.mirrored:
            y[:, 0] = self.width - y[:, 0]
        u = y @ self.affine[:, :2].T + self.affine[:, 2]
        return u + self.warp(u)

    def he_to_phh3(self, pts: npt.NDArray[np.float64], iters: int = 30) -> npt.NDArray[np.float64]:
        """Exact pHH3 position of ``(N, 2)`` H&E points (fixed-point inverse of the warp)."""
        x = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        u = x.copy()
        for _ in range(iters):
            u = x - self.warp(u)
        a_inv = np.linalg.inv(self.affine[:, :2])
        y = (u - self.affine[:, 2]) @ a_inv.T
        if self.mirrored:
            y[:, 0] = self.width - y[:, 0]
        return y

    def visible_mitoses(self) -> list[int]:
        """Indices of mitoses present on the pHH3 (not in the lost disc, inside the canvas)."""
        keep = []
        for i, m in enumerate(self.mitoses):
            c = np.array(m.centroid_xy)
            if self.lost_center_xy is not None and \
                    np.hypot(*(c - np.array(self.lost_center_xy))) < self.lost_radius_px + 10:
                continue
            y = self.he_to_phh3(c[None])[0]
            if 20 <= y[0] < self.width - 20 and 20 <= y[1] < self.height - 20:
                keep.append(i)
        return keep


@dataclass
class SyntheticPair:
    """A rendered pair: ``(rows, cols, 3)`` uint8 RGB images and their truth."""

    he: npt.NDArray[np.uint8]
    phh3: npt.NDArray[np.uint8]
    truth: PairTruth


def _tissue_mask(rng: np.random.Generator, h: int, w: int, mpp: float) -> npt.NDArray[np.bool_]:
    """A blob of tissue (about 55 % of the canvas) with a few glass lumens."""
    import cv2

    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = w / 2.0, h / 2.0
    ang = np.arctan2(yy - cy, xx - cx)
    r = np.hypot((xx - cx) / (w * 0.40), (yy - cy) / (h * 0.40))
    wob = np.zeros_like(r)
    for k in range(2, 6):
        wob += rng.uniform(0.02, 0.05) * np.sin(k * ang + rng.uniform(0, 2 * np.pi))
    mask = (r < 1.0 + wob).astype(np.uint8)
    n_lumens = max(3, int(h * w * (mpp / 1000.0) ** 2 * 4))
    for _ in range(n_lumens):
        c = (int(rng.uniform(0.2, 0.8) * w), int(rng.uniform(0.2, 0.8) * h))
        ax = (int(rng.uniform(15, 60) / mpp), int(rng.uniform(10, 40) / mpp))
        cv2.ellipse(mask, c, ax, float(rng.uniform(0, 180)), 0, 360, 0, -1)
    return mask.astype(bool)


def _he_concentrations(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """Recover ``(rows, cols, 2)`` haematoxylin/eosin OD concentrations of a rendered H&E."""
    conc = deconvolve(rgb, HE_STAINS, channels=(0, 1))
    return np.clip(conc, 0, None)


def make_pair(
    seed: int = 0,
    *,
    size: int = 1536,
    mpp: float = 0.5,
    counterstain: Counterstain = "eosin",
    rotation_deg: float | None = None,
    warp_um: float = 3.0,
    n_mitoses: int | None = None,
    n_g2: int | None = None,
    lost_tissue: bool = True,
    mirrored: bool = False,
    nuclei_per_mm2: float = 3000.0,
    multi_part_frac: float = MULTI_PART_FRAC,
) -> SyntheticPair:
    """Render an H&E / pHH3 pair of the same tissue with a known transform.

    Args:
        seed: the only source of randomness.
        size: canvas side in px (both slides are ``size x size``).
        mpp: µm per pixel.
        counterstain: pHH3 counterstain, ``eosin`` or ``hematoxylin``.
        rotation_deg: rotation of the glass; default a random 5-30° of random sign.
        warp_um: RMS-like amplitude of the smooth warp in µm (per component).
        n_mitoses: mitotic figures to plant (default ~17 per mm² of canvas).
        n_g2: ordinary nuclei given a weak, speckled DAB (default a third of ``n_mitoses``).
        lost_tissue: remove a disc of tissue on the pHH3.
        mirrored: flip the pHH3 canvas left-right (a slide scanned upside down).
        nuclei_per_mm2: density of ordinary nuclei.
        multi_part_frac: share of multi-part (anaphase/telophase/tripolar) figures; every
            mass of a figure takes DAB, and ``register-phh3`` joins them into one figure.

    Returns:
        The pair and its :class:`PairTruth`.
    """
    import cv2

    if counterstain not in ("eosin", "hematoxylin"):
        raise ValueError(f"counterstain must be eosin or hematoxylin, not {counterstain!r}")
    rng = np.random.default_rng(seed)
    h = w = int(size)
    area_mm2 = h * w * (mpp / 1000.0) ** 2
    n_mf = int(n_mitoses if n_mitoses is not None else max(6, round(17 * area_mm2)))
    tissue = _tissue_mask(rng, h, w, mpp)
    he, planted = render_tissue(rng, h, w, mpp=mpp, nuclei_per_mm2=nuclei_per_mm2,
                                n_mitotic=n_mf, n_mitotic_like=max(2, n_mf // 3),
                                tissue_mask=tissue, multi_part_frac=multi_part_frac)
    mitoses = [p for p in planted if p.kind == "mitotic_figure"]
    nuclei = [p for p in planted if p.kind == "nucleus"]

    # ---- pHH3 concentrations in the H&E frame
    conc = _he_concentrations(he)
    hema, eos = conc[:, :, 0], conc[:, :, 1]
    dab = np.zeros((h, w), np.float32)
    for p in mitoses:
        x0, y0 = p.offset_xy
        mh, mw = p.mask.shape
        tex = rng.uniform(0.55, 0.9) + 0.12 * rng.standard_normal((mh, mw))
        sub = dab[y0:y0 + mh, x0:x0 + mw]
        sub[p.mask] = np.clip(tex[p.mask], 0.35, 1.2)
    n_g2_ = int(n_g2 if n_g2 is not None else max(1, n_mf // 3))
    for i in rng.choice(len(nuclei), size=min(n_g2_, len(nuclei)), replace=False) \
            if nuclei else []:
        p = nuclei[int(i)]
        x0, y0 = p.offset_xy
        mh, mw = p.mask.shape
        speck = (rng.random((mh, mw)) < 0.25) & p.mask
        sub = dab[y0:y0 + mh, x0:x0 + mw]
        sub[speck] = rng.uniform(0.2, 0.35)
    if counterstain == "eosin":
        ph = 0.10 * hema
        pe = eos * rng.uniform(0.9, 1.15) + 0.02 * (hema > 0.3)
    else:
        ph = 0.75 * hema
        pe = 0.05 * eos
    lost_c: tuple[float, float] | None = None
    lost_r = 0.0
    if lost_tissue:
        ys, xs = np.nonzero(tissue[:: 8, :: 8])
        k = int(rng.integers(len(xs)))
        lost_c = (float(xs[k] * 8 + 4), float(ys[k] * 8 + 4))
        lost_r = float(np.sqrt(0.015 * tissue.sum() / np.pi))
        yy, xx = np.ogrid[0:h, 0:w]
        gone = (xx + 0.5 - lost_c[0]) ** 2 + (yy + 0.5 - lost_c[1]) ** 2 < lost_r**2
        ph = np.where(gone, 0, ph)
        pe = np.where(gone, 0, pe)
        dab = np.where(gone, 0, dab)
    stack = np.stack([ph, pe, dab], axis=2).astype(np.float32)

    # ---- the known transform (pHH3 -> H&E): similarity about the centre + smooth warp
    if rotation_deg is None:
        rotation_deg = float(rng.uniform(5, 30) * rng.choice([-1, 1]))
    scale = float(rng.uniform(0.99, 1.01))
    t = rng.uniform(-0.02, 0.02, size=2) * size
    th = math.radians(rotation_deg)
    rot = scale * np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    centre = np.array([w / 2.0, h / 2.0])
    affine = np.zeros((2, 3))
    affine[:, :2] = rot
    affine[:, 2] = centre - rot @ centre + t
    modes = []
    amp_px = warp_um / mpp
    for comp in (0.0, 1.0):
        for _ in range(3):
            wl = rng.uniform(0.6, 1.5) * size
            ang = rng.uniform(0, 2 * np.pi)
            kw = 2 * np.pi / wl
            modes.append([comp, amp_px * rng.uniform(0.4, 0.8), kw * math.cos(ang),
                          kw * math.sin(ang), rng.uniform(0, 2 * np.pi), 0.0])
    truth = PairTruth(w, h, mpp, counterstain, affine, rotation_deg, scale, np.array(modes),
                      False, mitoses, lost_c, lost_r, tissue)

    # ---- warp: pHH3 pixel y samples the H&E-frame stack at x = M(y), in strips
    out = np.zeros_like(stack)
    strip = 512
    xs_idx = np.arange(w, dtype=np.float64) + 0.5
    for r0 in range(0, h, strip):
        r1 = min(h, r0 + strip)
        gy, gx = np.meshgrid(np.arange(r0, r1, dtype=np.float64) + 0.5, xs_idx, indexing="ij")
        pts = np.stack([gx.ravel(), gy.ravel()], axis=1)
        x = truth.phh3_to_he(pts) - 0.5
        mx = x[:, 0].reshape(gx.shape).astype(np.float32)
        my = x[:, 1].reshape(gx.shape).astype(np.float32)
        out[r0:r1] = cv2.remap(stack, mx, my, cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    gain = rng.uniform(0.94, 1.04, size=3)
    rgb = stains_to_rgb(out.astype(np.float64)).astype(np.float32) * gain
    rgb += rng.normal(0, 2.5, rgb.shape)
    phh3 = np.clip(rgb, 0, 255).astype(np.uint8)
    if mirrored:
        phh3 = np.ascontiguousarray(phh3[:, ::-1])
        truth.mirrored = True
    return SyntheticPair(he, phh3, truth)


def write_pair(folder: Path | str, pair: SyntheticPair, *, he_name: str = "he.svs",
               phh3_name: str = "phh3.svs") -> tuple[Path, Path]:
    """Write both slides as tiled pyramidal Aperio-style SVS files; return their paths."""
    from mfcurate.synth.wsi import write_svs

    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    mpp = pair.truth.mpp
    return (write_svs(d / he_name, pair.he, mpp), write_svs(d / phh3_name, pair.phh3, mpp))


def tissue_landmarks(truth: PairTruth, n: int = 400, seed: int = 0,
                     margin_px: float = 40.0) -> tuple[npt.NDArray[np.float64],
                                                        npt.NDArray[np.float64]]:
    """Random landmarks on tissue that survives on the pHH3: ``(phh3_xy, he_xy)`` pairs.

    Points are drawn in the H&E frame on tissue, away from the lost disc and the tissue edge
    by ``margin_px``, and mapped exactly to the pHH3.
    """
    import cv2

    if truth.tissue_mask is None:
        raise ValueError("the truth has no tissue mask")
    rng = np.random.default_rng(seed + 7919)
    k = max(1, int(margin_px))
    inner = cv2.erode(truth.tissue_mask.astype(np.uint8), np.ones((2 * k + 1, 2 * k + 1),
                                                                   np.uint8)).astype(bool)
    ys, xs = np.nonzero(inner)
    pick = rng.choice(len(xs), size=min(n * 3, len(xs)), replace=False)
    he = np.stack([xs[pick] + rng.random(len(pick)), ys[pick] + rng.random(len(pick))], 1)
    if truth.lost_center_xy is not None:
        far = np.hypot(*(he - np.array(truth.lost_center_xy)).T) > truth.lost_radius_px + margin_px
        he = he[far]
    ph = truth.he_to_phh3(he)
    ok = (ph[:, 0] > margin_px) & (ph[:, 0] < truth.width - margin_px) & \
        (ph[:, 1] > margin_px) & (ph[:, 1] < truth.height - margin_px)
    return ph[ok][:n], he[ok][:n]
