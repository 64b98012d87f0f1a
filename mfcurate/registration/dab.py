"""DAB detection on the pHH3 slide: one object per DAB-positive nucleus.

Two rules:

* ``deconv`` (default): colour deconvolution with haematoxylin-eosin-DAB vectors (the DAB
  vector estimated per slide from its brown pixels where possible), DAB OD above
  ``dab_threshold`` (0.25 OD, about 0.04 in ``skimage.rgb2hed`` units).  Works with both
  counterstains.
* ``rgb``: the OMG-Net rule, green <= 150 and blue <= 150.  Fast, but only safe with an eosin
  counterstain: dark haematoxylin nuclei pass it too.

Then morphology (opening, hole filling), area limits in µm² and a compactness limit (the
standard deviation of the object's pixel positions), per level-0 tile with an overlap, so
objects on tile borders are found once.  Masks are level-0 pHH3 pixels.

The DAB components of one multi-part figure (the two chromatin masses of an anaphase or
telophase, the three of a tripolar figure) are then joined into one object with a
multi-part mask (:func:`mfcurate.segment.figure_parts.join_figures`, after all tiles, so
masses on both sides of a tile edge are joined too).  A component counts as a possible
part from ``min_part_area_um2``; the area limits (``min_area_um2``, ``max_area_um2``) apply
to the joined figure, the compactness limit to each part.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from mfcurate.segment.figure_parts import PartGrouping, join_figures
from mfcurate.stain import HED_STAINS, deconvolve


@dataclass
class DabOptions:
    """Detection options (units in the names).

    ``grouping`` says when DAB components are the parts of one figure
    (:class:`mfcurate.segment.figure_parts.PartGrouping`; ``max_parts = 1`` turns joining
    off); ``min_part_area_um2`` is the smallest component that can be such a part.
    """

    method: str = "deconv"
    dab_threshold: float = 0.25
    rgb_max: int = 150
    min_area_um2: float = 8.0
    max_area_um2: float = 250.0
    max_spread_um: float = 7.5
    tile: int = 2048
    margin: int = 48
    min_part_area_um2: float = 3.0
    grouping: PartGrouping = field(default_factory=PartGrouping)


@dataclass
class DabObject:
    """One DAB-positive object on the pHH3 (level-0 px).

    Attributes:
        mask: ``(rows, cols)`` bool, tight.
        offset_xy: level-0 position of ``mask[0, 0]``.
        area_px: pixels in the mask.
        dab_mean: mean DAB OD inside (NaN for the ``rgb`` rule).
        n_parts: DAB components joined into this object (2+ for a multi-part figure).
    """

    mask: npt.NDArray[np.bool_]
    offset_xy: tuple[int, int]
    area_px: int
    dab_mean: float
    n_parts: int = 1

    @property
    def centroid_xy(self) -> tuple[float, float]:
        """Centre of the mask (continuous level-0 px)."""
        ys, xs = np.nonzero(self.mask)
        return (float(self.offset_xy[0] + xs.mean() + 0.5),
                float(self.offset_xy[1] + ys.mean() + 0.5))


def dab_channel(rgb: npt.NDArray[np.uint8],
                stains: npt.NDArray[np.float64] = HED_STAINS) -> npt.NDArray[np.float32]:
    """DAB OD concentration ``(rows, cols)`` float32 of an RGB tile."""
    return deconvolve(rgb, stains, channels=(2,))[:, :, 0]


def positive_mask(rgb: npt.NDArray[np.uint8], options: DabOptions,
                  stains: npt.NDArray[np.float64] = HED_STAINS
                  ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float32] | None]:
    """Binary DAB mask of a tile under the chosen rule (before morphology)."""
    if options.method == "rgb":
        m = (rgb[:, :, 1] <= options.rgb_max) & (rgb[:, :, 2] <= options.rgb_max)
        return m, None
    if options.method != "deconv":
        raise ValueError(f"unknown DAB method {options.method!r} (deconv or rgb)")
    dab = dab_channel(rgb, stains)
    return dab > options.dab_threshold, dab


def detect_dab(
    img: Any,
    mpp: float,
    mask_low: npt.NDArray[np.bool_],
    low_scale: float,
    options: DabOptions | None = None,
    stains: npt.NDArray[np.float64] = HED_STAINS,
    progress: Callable[[], None] | None = None,
) -> list[DabObject]:
    """Find DAB-positive objects on the pHH3 slide, tile by tile at level 0, over tissue.

    The components of one multi-part figure come back as one object (:func:`join_parts`).

    Args:
        img: pHH3 image source.
        mpp: its level-0 µm/px.
        mask_low: tissue mask at low resolution.
        low_scale: level-0 px per mask px.
        options: thresholds and limits.
        stains: stain matrix for ``deconv``.
        progress: called once per tile.

    Returns:
        Objects in a deterministic order (by their first component: row-major by tile,
        then by label).
    """
    o = options or DabOptions()
    parts: list[DabObject] = []
    ys, xs = np.nonzero(mask_low)
    if len(xs) == 0:
        return parts
    bx0, by0 = int(xs.min() * low_scale), int(ys.min() * low_scale)
    bx1 = min(img.width, math.ceil((xs.max() + 1) * low_scale))
    by1 = min(img.height, math.ceil((ys.max() + 1) * low_scale))
    for y0 in range(by0, by1, o.tile):
        for x0 in range(bx0, bx1, o.tile):
            lx0, ly0 = int(x0 / low_scale), int(y0 / low_scale)
            lx1 = math.ceil((x0 + o.tile) / low_scale) + 1
            ly1 = math.ceil((y0 + o.tile) / low_scale) + 1
            if not mask_low[ly0:ly1, lx0:lx1].any():
                continue
            if progress is not None:
                progress()
            rx, ry = x0 - o.margin, y0 - o.margin
            size_x = min(o.tile, bx1 - x0) + 2 * o.margin
            size_y = min(o.tile, by1 - y0) + 2 * o.margin
            rgb = img.read_region(rx, ry, size_x, size_y, level=0)
            parts.extend(_tile_parts(rgb, (rx, ry), mpp, o, stains))
    return join_parts(parts, mpp, o)


def _tile_parts(rgb: npt.NDArray[np.uint8], origin_xy: tuple[int, int], mpp: float,
                o: DabOptions, stains: npt.NDArray[np.float64]) -> list[DabObject]:
    """DAB components of one tile read with ``o.margin`` px around it (level-0 px).

    A component is kept when its centroid lies in the tile proper (not the margin), its
    area is between ``min_part_area_um2`` and ``max_area_um2`` and its spread at most
    ``max_spread_um``.
    """
    import cv2
    from scipy.ndimage import binary_fill_holes

    px_um2 = mpp * mpp
    min_a = min(o.min_part_area_um2, o.min_area_um2) / px_um2
    max_a = o.max_area_um2 / px_um2
    max_spread = o.max_spread_um / mpp
    k = max(1, round(0.5 / mpp))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
    pos, dab = positive_mask(rgb, o, stains)
    opened = cv2.morphologyEx(pos.astype(np.uint8), cv2.MORPH_OPEN, kernel)
    n, lab, stats, cents = cv2.connectedComponentsWithStats(opened, connectivity=8)
    out: list[DabObject] = []
    for i in range(1, n):
        if stats[i, cv2.CC_STAT_AREA] > max_a:
            continue
        l0, t0 = stats[i, cv2.CC_STAT_LEFT], stats[i, cv2.CC_STAT_TOP]
        w, h = stats[i, cv2.CC_STAT_WIDTH], stats[i, cv2.CC_STAT_HEIGHT]
        m = binary_fill_holes(lab[t0:t0 + h, l0:l0 + w] == i)
        area = int(m.sum())
        if area < min_a or area > max_a:
            continue
        cx, cy = cents[i]
        if not (o.margin <= cx < o.margin + o.tile and o.margin <= cy < o.margin + o.tile):
            continue  # the neighbouring tile owns it
        yy, xx = np.nonzero(m)
        if math.sqrt(float(xx.var() + yy.var())) > max_spread:
            continue
        dm = float(dab[t0:t0 + h, l0:l0 + w][m].mean()) if dab is not None else float("nan")
        out.append(DabObject(m, (int(origin_xy[0] + l0), int(origin_xy[1] + t0)), area, dm))
    return out


def join_parts(parts: list[DabObject], mpp: float, o: DabOptions) -> list[DabObject]:
    """Join the DAB components of one figure; keep figures of the allowed area.

    Components are joined by :func:`mfcurate.segment.figure_parts.join_figures` under
    ``o.grouping``; figures of ``min_area_um2`` to ``max_area_um2`` are kept.  A joined
    object's mask is the union of its parts on their joint box, ``dab_mean`` the
    area-weighted mean and ``n_parts`` the number of components.
    """
    px_um2 = mpp * mpp
    out: list[DabObject] = []
    for f in join_figures([p.mask for p in parts], [p.offset_xy for p in parts], mpp,
                          o.grouping):
        if not o.min_area_um2 <= f.area_px * px_um2 <= o.max_area_um2:
            continue
        members = [parts[i] for i in f.members]
        if len(members) == 1:
            out.append(members[0])
            continue
        w = np.array([p.area_px for p in members], np.float64)
        dm = float(np.average([p.dab_mean for p in members], weights=w))
        out.append(DabObject(f.mask, f.offset_xy, f.area_px, dm, len(members)))
    return out
