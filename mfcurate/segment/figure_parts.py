"""Group the separate masses of one mitotic figure into one figure (one home).

Anaphase, telophase and atypical (tri-/multipolar) figures are two or more chromatin masses.
A per-component detector -- DAB components on a pHH3 re-stain (``register-phh3``), or the
automatic segmenter's nuclei (``detect``) -- sees each mass as its own object.  This module
joins them: objects whose **mask-to-mask gap** is at most ``max_gap_um`` (in µm through the
image's µm/px; :func:`mfcurate.units` conventions: isotropic lengths use
``sqrt(mpp_x * mpp_y)``) are one figure, by single linkage (closest pairs first), as long as
the joined figure stays figure-sized: at most ``max_parts`` masses, its box at most
``max_extent_um`` on its longest side and its masks at most ``max_area_um2`` in total.  The
size limit is what keeps two ordinary neighbouring nuclei apart: two touching or close
interphase nuclei are each as large as a whole figure's chromatin.

Defaults (:class:`PartGrouping`), from biology and from what :mod:`mfcurate.synth.render`
plants (``bench/figure_parts.py`` measures both on the synthetic data; figures in
``docs/`` and the module tests):

* ``max_gap_um = 7.0``: daughter chromatin masses of an anaphase/telophase lie about
  2-6 µm apart (the gap widens through late anaphase); the renderer plants gaps of
  0.8-2 nucleus radii (anaphase) and 1.2-2 radii (telophase, tripolar) at its 3.5 µm
  radius: measured 2.7-7.1 µm (median 5.2) over 47 mass pairs at 0.5 µm/px.  6 µm joins
  28 of 33 planted multi-part figures, 7 µm all 33 (51 of 52 at 0.25 µm/px).
* ``max_extent_um = 18.0`` and ``max_area_um2 = 80.0``: a whole figure is at most about
  two nuclear diameters long and holds the condensed chromatin of one dividing cell
  (tumour interphase nuclei: 30-80 µm², 6-10 µm across; planted multi-part figures:
  13-36 µm² in all, at most 16.5 µm long), while two neighbouring interphase nuclei
  together are mostly above 80 µm².

Gap alone does not tell a figure from neighbours everywhere: in the renderer's dense
tissue (6000 nuclei/mm²) the nearest-neighbour gap between *different* nuclei is 3-13 µm
(median 5), as close as the masses of one figure, and geometric grouping of every nucleus
would join 527 of 2125 objects to a neighbour.  So a caller groups only objects that are
already figure-like: DAB-positive components on pHH3 (``register-phh3``), and candidates
the classifier calls mitotic figures (``detect``).
* ``max_parts = 4``: tripolar and quadripolar figures; more masses are a cluster of cells.

Masks are ``(rows, cols)`` bool arrays whose pixel ``[0, 0]`` lies at the level-0 pixel
``offset_xy`` (x = column).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mfcurate.geometry import BoolMask, BoxXYXY, mask_to_record

#: Largest gap (µm) between two masses of one figure.
DEFAULT_PART_GAP_UM = 7.0


@dataclass(frozen=True)
class PartGrouping:
    """When separate masks are the parts of one figure (µm, µm²).

    Attributes:
        max_gap_um: largest mask-to-mask gap between two parts (0 = touching pixels).
        max_extent_um: longest side of the joined figure's box.
        max_area_um2: largest total mask area of the joined figure.
        max_parts: most parts one figure may have.
    """

    max_gap_um: float = DEFAULT_PART_GAP_UM
    max_extent_um: float = 18.0
    max_area_um2: float = 80.0
    max_parts: int = 4

    def __post_init__(self) -> None:
        if not (self.max_gap_um >= 0 and self.max_extent_um > 0 and self.max_area_um2 > 0
                and self.max_parts >= 1):
            raise ValueError(f"invalid PartGrouping {self}: gaps, sizes and max_parts must be "
                             "positive")

    @property
    def enabled(self) -> bool:
        """Whether grouping can join anything (``max_parts > 1``)."""
        return self.max_parts > 1


@dataclass
class Figure:
    """A joined figure: the union of its parts' masks (level-0 px).

    Attributes:
        members: indices of the joined objects, in input order.
        mask: ``(rows, cols)`` bool union of the members' masks on their union box.
        offset_xy: level-0 position of ``mask[0, 0]``.
        bbox_xyxy: tight box of the union.
        centroid_xy: centroid of the union's pixels.
        area_px: pixels of the union.
    """

    members: list[int]
    mask: BoolMask
    offset_xy: tuple[int, int]
    bbox_xyxy: BoxXYXY
    centroid_xy: tuple[float, float]
    area_px: int

    @property
    def multi_part(self) -> bool:
        """Whether the figure joins two or more objects."""
        return len(self.members) > 1


def _boxes(masks: Sequence[BoolMask], offsets: Sequence[tuple[int, int]]
           ) -> npt.NDArray[np.int64]:
    """``(n, 4)`` tight integer boxes ``x0, y0, x1, y1`` (half-open) of the masks."""
    out = np.zeros((len(masks), 4), np.int64)
    for i, (m, (ox, oy)) in enumerate(zip(masks, offsets, strict=True)):
        rows = np.flatnonzero(m.any(axis=1))
        cols = np.flatnonzero(m.any(axis=0))
        if rows.size == 0:
            out[i] = (ox, oy, ox, oy)
            continue
        out[i] = (ox + cols[0], oy + rows[0], ox + cols[-1] + 1, oy + rows[-1] + 1)
    return out


def mask_gap_px(a: BoolMask, a_off: tuple[int, int], b: BoolMask,
                b_off: tuple[int, int]) -> float:
    """Gap between two masks in px: nearest pixel-centre distance minus one (0 = touching).

    Exact Euclidean (OpenCV's precise distance transform on the pair's window); overlapping
    or 8-adjacent masks have gap 0 (diagonal neighbours: ``sqrt(2) - 1``).

    Examples:
        >>> a = np.ones((3, 3), bool)
        >>> mask_gap_px(a, (0, 0), a, (5, 0))
        2.0
    """
    import cv2

    if not a.any() or not b.any():
        return math.inf
    x0, y0 = min(a_off[0], b_off[0]), min(a_off[1], b_off[1])
    x1 = max(a_off[0] + a.shape[1], b_off[0] + b.shape[1])
    y1 = max(a_off[1] + a.shape[0], b_off[1] + b.shape[0])
    not_a = np.ones((y1 - y0, x1 - x0), np.uint8)
    not_a[a_off[1] - y0:a_off[1] - y0 + a.shape[0],
          a_off[0] - x0:a_off[0] - x0 + a.shape[1]][a] = 0
    dist = cv2.distanceTransform(not_a, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    d = dist[b_off[1] - y0:b_off[1] - y0 + b.shape[0],
             b_off[0] - x0:b_off[0] - x0 + b.shape[1]][b]
    return max(float(d.min()) - 1.0, 0.0)


def _candidate_pairs(boxes: npt.NDArray[np.int64], reach_px: float
                     ) -> list[tuple[int, int]]:
    """Pairs ``i < j`` whose boxes, grown by ``reach_px``, intersect (shapely STRtree)."""
    import shapely

    if len(boxes) < 2:
        return []
    b = boxes.astype(np.float64)
    geoms = shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3])
    tree = shapely.STRtree(geoms)
    grown = shapely.box(b[:, 0] - reach_px, b[:, 1] - reach_px, b[:, 2] + reach_px,
                        b[:, 3] + reach_px)
    q = np.asarray(tree.query(grown, predicate="intersects"), dtype=np.int64)
    keep = q[0] < q[1]
    return sorted(zip(q[0][keep].tolist(), q[1][keep].tolist(), strict=True))


def group_parts(masks: Sequence[BoolMask], offsets: Sequence[tuple[int, int]],
                mpp: float | tuple[float, float],
                rule: PartGrouping | None = None) -> list[list[int]]:
    """Which objects are the parts of one figure (single linkage under size limits).

    Pairs closer than ``rule.max_gap_um`` are joined closest first (ties: input order);
    a join that would make the figure larger than ``rule``'s limits (parts, box extent,
    total area) is skipped, so a chain of neighbouring nuclei never becomes one figure.

    Args:
        masks: ``(rows, cols)`` bool masks (level-0 px).
        offsets: level-0 ``(x, y)`` of each mask's pixel ``[0, 0]``.
        mpp: µm/px (one value, or ``(mpp_x, mpp_y)``).
        rule: the limits (default :class:`PartGrouping`).

    Returns:
        Groups of indices: every index exactly once, each group sorted, groups ordered by
        their first index.

    Examples:
        >>> a = np.ones((6, 6), bool)
        >>> group_parts([a, a, a], [(0, 0), (14, 0), (200, 0)], 0.5)
        [[0, 1], [2]]
    """
    r = rule or PartGrouping()
    n = len(masks)
    mx, my = (mpp, mpp) if isinstance(mpp, (int, float)) else (float(mpp[0]), float(mpp[1]))
    iso = math.sqrt(mx * my)
    if n < 2 or not r.enabled:
        return [[i] for i in range(n)]
    boxes = _boxes(masks, offsets)
    areas = np.array([int(np.count_nonzero(m)) for m in masks], np.int64)
    gap_px = r.max_gap_um / iso
    edges = []
    for i, j in _candidate_pairs(boxes, gap_px + 1.0):
        g = mask_gap_px(masks[i], offsets[i], masks[j], offsets[j])
        if g <= gap_px:
            edges.append((g, i, j))
    edges.sort()
    parent = list(range(n))
    box = {i: boxes[i].copy() for i in range(n)}
    size = {i: 1 for i in range(n)}
    area = {i: int(areas[i]) for i in range(n)}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for _g, i, j in edges:
        a, b = root(i), root(j)
        if a == b:
            continue
        nb = np.concatenate([np.minimum(box[a][:2], box[b][:2]),
                             np.maximum(box[a][2:], box[b][2:])])
        extent_um = max((nb[2] - nb[0]) * mx, (nb[3] - nb[1]) * my)
        if (size[a] + size[b] > r.max_parts or extent_um > r.max_extent_um
                or (area[a] + area[b]) * mx * my > r.max_area_um2):
            continue
        keep, drop = min(a, b), max(a, b)
        parent[drop] = keep
        box[keep], size[keep], area[keep] = nb, size[a] + size[b], area[a] + area[b]
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])


def union_mask(masks: Sequence[BoolMask], offsets: Sequence[tuple[int, int]]
               ) -> tuple[BoolMask, tuple[int, int]]:
    """The union of masks on the grid of their joint box: ``(mask, offset_xy)``."""
    x0 = min(o[0] for o in offsets)
    y0 = min(o[1] for o in offsets)
    x1 = max(o[0] + m.shape[1] for m, o in zip(masks, offsets, strict=True))
    y1 = max(o[1] + m.shape[0] for m, o in zip(masks, offsets, strict=True))
    out = np.zeros((y1 - y0, x1 - x0), bool)
    for m, (ox, oy) in zip(masks, offsets, strict=True):
        out[oy - y0:oy - y0 + m.shape[0], ox - x0:ox - x0 + m.shape[1]] |= m
    return out, (x0, y0)


def join_figures(masks: Sequence[BoolMask], offsets: Sequence[tuple[int, int]],
                 mpp: float | tuple[float, float],
                 rule: PartGrouping | None = None) -> list[Figure]:
    """:func:`group_parts`, each group as a :class:`Figure` (tight union mask, box, centroid).

    Groups whose union is empty (all members empty) are left out.
    """
    out: list[Figure] = []
    for g in group_parts(masks, offsets, mpp, rule):
        m, off = union_mask([masks[i] for i in g], [offsets[i] for i in g])
        rec = mask_to_record(m, off)
        if rec is None:
            continue
        box, _rle, area, cen = rec
        x0, y0, x1, y1 = (int(v) for v in box)  # tight, integer edges, level-0 px
        tight = m[y0 - off[1]:y1 - off[1], x0 - off[0]:x1 - off[0]]
        out.append(Figure(g, tight, (x0, y0), box, cen, area))
    return out
