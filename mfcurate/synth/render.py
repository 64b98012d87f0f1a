"""Render H&E-like tissue with planted nuclei, mitotic figures and look-alikes.

The image is built in optical-density (OD) space from stain concentrations and converted to
RGB with the Ruifrok-Johnston vectors, so colour deconvolution behaves as on real H&E:

* eosin everywhere there is tissue (cytoplasm/stroma, textured), white glass elsewhere;
* ordinary nuclei: ellipses with moderate haematoxylin and chromatin texture;
* **mitotic figures**: dense, irregular, clumped chromatin (a metaphase plate or clumps),
  much darker than other nuclei, with a clear halo; a share of them (``multi_part_frac``)
  are **multi-part** figures (:func:`stamp_multipart`): anaphase-like parallel bands,
  telophase-like separated clumps or a tripolar (atypical) figure, two or three chromatin
  masses whose centroid (the annotation point) lies *between* them;
* **mitotic-like figures**: dark but smooth and round (pyknotic/apoptotic look-alikes).

Sizes are given in µm and converted with ``mpp``.  Every planted object comes back with its
exact mask, so tests can measure segmenters, harvest recall and classifiers against truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mfcurate.stain import HED_STAINS, stains_to_rgb

#: The stain vectors the renderer mixes (the shared Ruifrok-Johnston H, E, DAB rows).
HE_STAINS = HED_STAINS


@dataclass
class Planted:
    """One planted object.

    Attributes:
        kind: ``mitotic_figure``, ``mitotic_like`` or ``nucleus``.
        centroid_xy: centre in image px (x = column).
        offset_xy: top-left pixel of ``mask`` in image px.
        mask: ``(rows, cols)`` bool mask.
        n_parts: number of separate chromatin masses (1, or 2-3 for multi-part figures).
    """

    kind: str
    centroid_xy: tuple[float, float]
    offset_xy: tuple[int, int]
    mask: npt.NDArray[np.bool_]
    n_parts: int = 1

    @property
    def bbox_xyxy(self) -> tuple[float, float, float, float]:
        """Tight box of the mask in image px."""
        rows = np.flatnonzero(self.mask.any(axis=1))
        cols = np.flatnonzero(self.mask.any(axis=0))
        x0, y0 = self.offset_xy
        return (float(x0 + cols[0]), float(y0 + rows[0]), float(x0 + cols[-1] + 1),
                float(y0 + rows[-1] + 1))


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale_px: float) -> np.ndarray:
    import cv2

    h, w = shape
    sh, sw = max(2, int(h / scale_px) + 2), max(2, int(w / scale_px) + 2)
    small = rng.standard_normal((sh, sw)).astype(np.float32)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.asarray(big, dtype=np.float64)


def _ellipse(shape_r: float, ratio: float, angle: float, pad: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = int(np.ceil(shape_r)) + pad
    yy, xx = np.mgrid[-n:n + 1, -n:n + 1].astype(np.float64)
    ca, sa = np.cos(angle), np.sin(angle)
    u = (xx * ca + yy * sa) / shape_r
    v = (-xx * sa + yy * ca) / (shape_r * ratio)
    return u, v, (u**2 + v**2)


def _stamp_nucleus(rng: np.random.Generator, kind: str, r_px: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Return (mask, haematoxylin OD) of one object on a small square canvas."""
    import cv2

    if kind == "mitotic_figure":
        # a metaphase plate (elongated band) or clumped chromatin, irregular outline
        ratio = rng.uniform(0.35, 0.6)
        u, _v, d = _ellipse(r_px * rng.uniform(1.0, 1.25), ratio, rng.uniform(0, np.pi), 4)
        size = u.shape[0]
        wobble = _smooth_noise(rng, (size, size), max(r_px / 3.0, 2.0))
        mask = d + 0.35 * wobble < 1.0
        clumps = _smooth_noise(rng, (size, size), max(r_px / 5.0, 1.5))
        od = np.where(mask, 1.25 + 0.35 * np.tanh(clumps), 0.0)
        # spiky protrusions (chromosome arms)
        for _ in range(rng.integers(3, 7)):
            a = rng.uniform(0, 2 * np.pi)
            length = r_px * rng.uniform(0.9, 1.4)
            c = size // 2
            p2 = (int(c + np.cos(a) * length), int(c + np.sin(a) * length * ratio * 1.6))
            line = np.zeros((size, size), np.uint8)
            cv2.line(line, (c, c), p2, 1, thickness=max(1, int(r_px / 6)))
            extra = line.astype(bool)
            od = np.where(extra & ~mask, 1.2, od)
            mask = mask | extra
    elif kind == "mitotic_like":
        _u, _v, d = _ellipse(r_px * rng.uniform(0.6, 0.8), rng.uniform(0.85, 1.0),
                           rng.uniform(0, np.pi), 3)
        mask = d < 1.0
        od = np.where(mask, 0.95 + 0.1 * (1 - d), 0.0)  # smooth, homogeneous, dark
    else:
        u, _v, d = _ellipse(r_px * rng.uniform(0.85, 1.15), rng.uniform(0.6, 0.95),
                           rng.uniform(0, np.pi), 3)
        size = u.shape[0]
        mask = d + 0.08 * _smooth_noise(rng, (size, size), max(r_px / 2.0, 2.0)) < 1.0
        chrom = _smooth_noise(rng, (size, size), max(r_px / 4.0, 1.5))
        od = np.where(mask, rng.uniform(0.45, 0.6) + 0.1 * chrom + 0.1 * d, 0.0)
    return mask.astype(bool), np.clip(od, 0.0, 2.5)


#: Default share of mitotic figures planted as multi-part figures.
MULTI_PART_FRAC = 0.35

#: Shapes of multi-part figures and their masses (see :func:`stamp_multipart`).
MULTIPART_SHAPES = ("anaphase", "telophase", "tripolar")


def stamp_multipart(rng: np.random.Generator, r_px: float, shape: str | None = None
                    ) -> tuple[np.ndarray, np.ndarray, int]:
    """Mask, haematoxylin OD and number of masses of one multi-part mitotic figure.

    ``anaphase``: two parallel chromatin bands (ellipses of axis ratio 0.3-0.5) 0.8-2 radii
    apart; ``telophase``: two rounder clumps 1.2-2 radii apart; ``tripolar``: three clumps
    at about 120° (an atypical figure).  Each mass has an irregular outline and clumped
    chromatin as single figures do.  The canvas is square and centred on the figure, so the
    figure's centroid (where an annotator clicks) lies between the masses.

    Args:
        rng: random generator.
        r_px: typical nucleus radius, px.
        shape: one of :data:`MULTIPART_SHAPES` (default: drawn, 45/35/20 %).
    """
    shape = shape or str(rng.choice(MULTIPART_SHAPES, p=[0.45, 0.35, 0.2]))
    angle = rng.uniform(0, np.pi)
    if shape == "anaphase":
        radii = [r_px * rng.uniform(0.75, 1.0)] * 2
        ratios = [rng.uniform(0.3, 0.5)] * 2
        dist = r_px * rng.uniform(0.8, 2.0) + 2 * radii[0] * ratios[0]
        dirs = [angle + np.pi / 2, angle - np.pi / 2]
    elif shape == "telophase":
        radii = [r_px * rng.uniform(0.5, 0.75) for _ in range(2)]
        ratios = [rng.uniform(0.55, 0.85) for _ in range(2)]
        dist = r_px * rng.uniform(1.2, 2.0) + radii[0] + radii[1]
        dirs = [angle, angle + np.pi]
    else:
        radii = [r_px * rng.uniform(0.45, 0.65) for _ in range(3)]
        ratios = [rng.uniform(0.5, 0.8) for _ in range(3)]
        dist = r_px * rng.uniform(1.2, 1.8) + 2 * max(radii)
        dirs = [angle + k * 2 * np.pi / 3 + rng.uniform(-0.25, 0.25) for k in range(3)]
    half = dist / 2 if len(dirs) == 2 else dist / np.sqrt(3)
    n = int(np.ceil(half + max(radii) * 1.3)) + 4
    size = 2 * n + 1
    yy, xx = np.mgrid[-n:n + 1, -n:n + 1].astype(np.float64)
    mask = np.zeros((size, size), bool)
    od = np.zeros((size, size), np.float64)
    for r, ratio, a in zip(radii, ratios, dirs, strict=True):
        cx, cy = half * np.cos(a), half * np.sin(a)
        ca, sa = np.cos(angle), np.sin(angle)
        u = ((xx - cx) * ca + (yy - cy) * sa) / r
        v = (-(xx - cx) * sa + (yy - cy) * ca) / (r * ratio)
        wobble = _smooth_noise(rng, (size, size), max(r / 2.5, 1.5))
        part = (u**2 + v**2) + 0.3 * wobble < 1.0
        clumps = _smooth_noise(rng, (size, size), max(r / 4.0, 1.2))
        od = np.where(part & ~mask, 1.3 + 0.35 * np.tanh(clumps), od)
        mask |= part
    import cv2

    n_parts, _ = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    return mask, np.clip(od, 0.0, 2.5), max(int(n_parts) - 1, 1)


def render_tissue(
    rng: np.random.Generator,
    height: int,
    width: int,
    *,
    mpp: float = 0.25,
    nuclei_per_mm2: float = 6000.0,
    n_mitotic: int = 4,
    n_mitotic_like: int = 4,
    nucleus_radius_um: float = 3.5,
    tissue_mask: npt.NDArray[np.bool_] | None = None,
    min_gap_um: float = 1.5,
    multi_part_frac: float = MULTI_PART_FRAC,
) -> tuple[npt.NDArray[np.uint8], list[Planted]]:
    """Render an H&E region with non-overlapping planted objects.

    Args:
        rng: random generator (the only source of randomness).
        height: rows of the image.
        width: columns of the image.
        mpp: µm per pixel; all sizes scale with it.
        nuclei_per_mm2: density of ordinary nuclei on tissue.
        n_mitotic: mitotic figures to plant.
        n_mitotic_like: look-alikes to plant.
        nucleus_radius_um: typical nucleus radius.
        tissue_mask: optional ``(height, width)`` bool; objects only where True, glass
            (white) elsewhere.  Default: tissue everywhere.
        min_gap_um: minimal gap between objects.
        multi_part_frac: share of the mitotic figures planted as multi-part figures
            (:func:`stamp_multipart`).  The choice and the shape come from a generator seeded
            by the figure's position, so the main stream (and every other object) is the same
            as without multi-part figures unless a larger figure needs another placement.

    Returns:
        ``(rgb, planted)``: a ``(height, width, 3)`` uint8 image and the planted objects,
        mitotic figures first, then look-alikes, then nuclei.
    """
    tissue = np.ones((height, width), bool) if tissue_mask is None else tissue_mask
    r_px = nucleus_radius_um / mpp
    conc = np.zeros((height, width, 2), dtype=np.float64)
    eos = 0.28 + 0.10 * _smooth_noise(rng, (height, width), 12.0 / mpp) \
        + 0.05 * _smooth_noise(rng, (height, width), 2.0 / mpp)
    conc[:, :, 1] = np.where(tissue, np.clip(eos, 0.05, 0.6), 0.0)
    conc[:, :, 0] = np.where(tissue, 0.03 + 0.02 * _smooth_noise(rng, (height, width),
                                                                  4.0 / mpp), 0.0)
    area_mm2 = float(tissue.sum()) * (mpp / 1000.0) ** 2
    n_nuclei = int(rng.poisson(nuclei_per_mm2 * area_mm2))
    kinds = ["mitotic_figure"] * n_mitotic + ["mitotic_like"] * n_mitotic_like + \
        ["nucleus"] * n_nuclei
    occupied = np.zeros((height, width), bool)
    gap = int(np.ceil(min_gap_um / mpp))
    planted: list[Planted] = []
    margin = int(r_px * 1.6) + 2
    if height <= 2 * margin or width <= 2 * margin:
        return stains_to_rgb(np.clip(conc, 0, None)), planted
    for kind in kinds:
        for _attempt in range(30):
            cx = int(rng.integers(margin, width - margin))
            cy = int(rng.integers(margin, height - margin))
            if not tissue[cy, cx]:
                continue
            mask, od = _stamp_nucleus(rng, kind, r_px)
            n_parts = 1
            if kind == "mitotic_figure" and multi_part_frac > 0:
                sub = np.random.default_rng([cx, cy, _attempt, 12])
                if sub.random() < multi_part_frac:
                    mask, od, n_parts = stamp_multipart(sub, r_px)
            s = mask.shape[0]
            x0, y0 = cx - s // 2, cy - s // 2
            if x0 < 0 or y0 < 0 or x0 + s > width or y0 + s > height:
                continue
            win = occupied[max(y0 - gap, 0):y0 + s + gap, max(x0 - gap, 0):x0 + s + gap]
            if win.any():
                continue
            sub_t = tissue[y0:y0 + s, x0:x0 + s]
            mask = mask & sub_t
            if mask.sum() < 0.6 * np.count_nonzero(od):
                continue
            h_layer = conc[y0:y0 + s, x0:x0 + s, 0]
            e_layer = conc[y0:y0 + s, x0:x0 + s, 1]
            conc[y0:y0 + s, x0:x0 + s, 0] = np.where(mask, od, h_layer)
            if kind == "mitotic_figure":  # pale halo around the condensed chromatin
                import cv2

                ring = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8),
                                  iterations=max(1, int(r_px / 6))).astype(bool) & ~mask
                conc[y0:y0 + s, x0:x0 + s, 1] = np.where(ring, e_layer * 0.45, e_layer)
            else:
                conc[y0:y0 + s, x0:x0 + s, 1] = np.where(mask, e_layer * 0.5, e_layer)
            occupied[y0:y0 + s, x0:x0 + s] |= mask
            ys, xs = np.nonzero(mask)
            planted.append(Planted(kind, (float(x0 + xs.mean() + 0.5),
                                          float(y0 + ys.mean() + 0.5)), (x0, y0), mask,
                                   _count_parts(mask) if n_parts > 1 else 1))
            break
    rgb = stains_to_rgb(np.clip(conc, 0, None))
    noise = rng.normal(0, 2.0, rgb.shape)
    rgb = np.clip(rgb.astype(np.float64) + noise, 0, 255).astype(np.uint8)
    return rgb, planted


def _count_parts(mask: np.ndarray) -> int:
    import cv2

    n, _ = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    return max(int(n) - 1, 1)
