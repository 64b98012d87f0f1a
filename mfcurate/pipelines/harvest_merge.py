"""Harvest, second half: seam de-duplication, labelling against annotations, overlay.

Everything here works on one image's candidates in level-0 pixels (x = column):

* :func:`dedup_seams` removes duplicates across tile seams (mask IoU above a threshold, or
  one mask almost inside the other, between objects of *different* tiles); the higher
  score wins.
* :func:`label_candidates` decides what every kept object is (see ``docs/harvest.md``):

  - **match**: the object is the best match of an annotated mitotic figure or look-alike
    (centroid within ``match_radius_um`` of the annotation's centroid, or mask IoU >=
    ``match_iou`` with its mask).  It is written with the annotation's label,
    ``parent_key`` = the annotation, ``qa_state="rejected"`` and the flag
    ``duplicate_of_annotation`` (so it never counts as a second sample of the figure); its
    mask can become the annotation's mask where the annotation has none.
  - **part**: any other object that belongs to an annotated mitotic figure or look-alike:
    its centroid lies inside the figure's box (the annotation's ``source_bbox_xyxy`` or its
    mask's ``bbox_xyxy``), or its mask overlaps the figure's mask by more than
    :data:`PART_OVERLAP_FRAC` of its own area.  SAM and the classical segmenter cut an
    anaphase or telophase figure into one object per chromatin mass, and keep sub-part masks
    of a figure; such a piece is never a negative.  It is written with the figure's label,
    ``parent_key`` = the figure, ``qa_state="rejected"`` and the flag ``fragment_of_figure``
    (never a training negative, never a second sample of the figure); its mask joins the
    figure's filled mask (``harvest-fill``).  Of several figures, the nearest one (centroid
    distance) is the parent.
  - **near**: any other object whose centroid lies within ``exclusion_radius_um`` of an
    annotation of *any* class, or whose mask touches the annotation's mask.  A separate
    neighbouring nucleus of a figure lands here: it is a valid negative (``other_cell``).  With
    ``near_policy="flag"`` (default) it is written as ``other_cell``, ``qa_state="flagged"``,
    flag ``near_annotation``, ``parent_key`` = the nearest annotation; with ``"drop"`` it is
    not written.  Either way it is never a ``background`` object.
  - **background**: everything else.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from mfcurate.geometry import decode_mask, mask_grid, points_in_boxes
from mfcurate.schemas.vocab import FIGURE_LABELS

#: An object whose mask overlaps a figure's mask by more than this fraction of the object's
#: own area is a part of that figure (a fragment, or a sub-part mask SAM kept), never a
#: negative.  Small enough that a sliver of a figure is caught, large enough that a separate
#: neighbour whose outline merely touches the figure's stays a negative.
PART_OVERLAP_FRAC = 0.1

#: Columns of the per-task candidate tables.
CANDIDATE_COLUMNS = ("image_key", "tile_index", "inst_index", "x0", "y0", "x1", "y1", "rle",
                     "area_px", "cx", "cy", "score", "stability", "origin")


@dataclass
class Candidates:
    """One image's candidate objects (parallel arrays, level-0 px)."""

    tile_index: npt.NDArray[np.int64]
    inst_index: npt.NDArray[np.int64]
    boxes: npt.NDArray[np.float64]  # (n, 4) xyxy, tight, integer-valued
    rles: list[str]
    area_px: npt.NDArray[np.int64]
    centroids: npt.NDArray[np.float64]  # (n, 2) x, y
    score: npt.NDArray[np.float64]
    stability: list[float | None]
    origin: list[str]

    def __len__(self) -> int:
        return len(self.rles)

    def take(self, idx: Sequence[int] | npt.NDArray[np.int64]) -> Candidates:
        """A subset, in the given order."""
        ix = np.asarray(idx, dtype=np.int64)
        return Candidates(self.tile_index[ix], self.inst_index[ix], self.boxes[ix],
                          [self.rles[i] for i in ix], self.area_px[ix], self.centroids[ix],
                          self.score[ix], [self.stability[i] for i in ix],
                          [self.origin[i] for i in ix])

    def mask(self, i: int) -> npt.NDArray[np.bool_]:
        """Decoded mask of candidate ``i`` on its box grid."""
        _, _, w, h = mask_grid(self.boxes[i])
        return decode_mask(self.rles[i], h, w)


def _mask_overlap(box_a: npt.NDArray[np.float64], mask_a: npt.NDArray[np.bool_],
                  box_b: npt.NDArray[np.float64], mask_b: npt.NDArray[np.bool_]
                  ) -> tuple[int, int, int]:
    """(intersection, area_a, area_b) of two box-grid masks in level-0 px."""
    ax, ay = math.floor(box_a[0]), math.floor(box_a[1])
    bx, by = math.floor(box_b[0]), math.floor(box_b[1])
    x0, y0 = max(ax, bx), max(ay, by)
    x1 = min(ax + mask_a.shape[1], bx + mask_b.shape[1])
    y1 = min(ay + mask_a.shape[0], by + mask_b.shape[0])
    inter = 0
    if x1 > x0 and y1 > y0:
        sa = mask_a[y0 - ay:y1 - ay, x0 - ax:x1 - ax]
        sb = mask_b[y0 - by:y1 - by, x0 - bx:x1 - bx]
        inter = int(np.count_nonzero(sa & sb))
    return inter, int(mask_a.sum()), int(mask_b.sum())


def _box_pairs(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64] | None = None
               ) -> npt.NDArray[np.int64]:
    """Index pairs ``(i, j)`` of intersecting boxes (``a`` with ``b``, or within ``a``)."""
    import shapely

    if len(a) == 0 or (b is not None and len(b) == 0):
        return np.zeros((2, 0), np.int64)
    ga = shapely.box(a[:, 0], a[:, 1], a[:, 2], a[:, 3])
    gb = ga if b is None else shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3])
    tree = shapely.STRtree(gb)
    pairs = tree.query(ga, predicate="intersects")
    return np.asarray(pairs, dtype=np.int64)


def dedup_seams(c: Candidates, iou_thresh: float = 0.5, contain_thresh: float = 0.8
                ) -> npt.NDArray[np.int64]:
    """Indices of the candidates kept after removing duplicates across tile seams.

    Candidates are visited by score (descending; ties by tile then instance index, so the
    result is deterministic); one is dropped when an already kept object of *another* tile
    overlaps it with mask IoU >= ``iou_thresh`` or covers >= ``contain_thresh`` of the
    smaller mask.

    Returns:
        Kept indices, sorted ascending.
    """
    n = len(c)
    if n == 0:
        return np.zeros(0, np.int64)
    order = np.lexsort((c.inst_index, c.tile_index, -c.score))
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    pairs = _box_pairs(c.boxes)
    neighbours: dict[int, list[int]] = {}
    for i, j in pairs.T:
        if i != j and c.tile_index[i] != c.tile_index[j]:
            neighbours.setdefault(int(i), []).append(int(j))
    kept = np.zeros(n, bool)
    cache: dict[int, npt.NDArray[np.bool_]] = {}

    def m(i: int) -> npt.NDArray[np.bool_]:
        if i not in cache:
            cache[i] = c.mask(i)
        return cache[i]

    for i in order:
        i = int(i)
        dup = False
        for j in neighbours.get(i, ()):
            if not kept[j]:
                continue
            inter, aa, ab = _mask_overlap(c.boxes[i], m(i), c.boxes[j], m(j))
            if inter == 0:
                continue
            iou = inter / max(aa + ab - inter, 1)
            if iou >= iou_thresh or inter / max(min(aa, ab), 1) >= contain_thresh:
                dup = True
                break
        kept[i] = not dup
    return np.flatnonzero(kept)


@dataclass
class Annotations:
    """One image's annotations (from the dataset's non-harvest parts)."""

    keys: list[str]
    labels: list[str]
    centroids: npt.NDArray[np.float64]  # (m, 2)
    boxes: npt.NDArray[np.float64]  # (m, 4) bbox_xyxy (the mask's tight box where masked)
    rles: list[str | None]
    source_boxes: npt.NDArray[np.float64] | None = None  # (m, 4) the annotation's own box

    def __len__(self) -> int:
        return len(self.keys)

    def mask(self, k: int) -> npt.NDArray[np.bool_] | None:
        """Decoded mask of annotation ``k`` or None."""
        rle = self.rles[k]
        if rle is None:
            return None
        _, _, w, h = mask_grid(self.boxes[k])
        return decode_mask(rle, h, w)


@dataclass
class Decision:
    """What one kept candidate becomes."""

    kind: str  # "background", "match", "part", "near"
    annotation: int | None = None
    distance_um: float | None = None
    iou: float | None = None
    how: str = ""


@dataclass
class LabelResult:
    """Decisions for every candidate plus the annotation -> matched candidate map."""

    decisions: list[Decision]
    matches: dict[int, int] = field(default_factory=dict)  # annotation -> candidate


def label_candidates(c: Candidates, ann: Annotations, mpp: float,
                     match_radius_um: float = 7.5, match_iou: float = 0.5,
                     exclusion_radius_um: float = 15.0) -> LabelResult:
    """Match candidates to annotated figures; link their parts; mark those near any annotation.

    Args:
        c: the image's kept candidates.
        ann: the image's annotations.
        mpp: µm per level-0 pixel (geometric mean of x and y).
        match_radius_um: centroid distance for a match with an MF/look-alike.
        match_iou: mask IoU for a match where the annotation has a mask.
        exclusion_radius_um: centroid distance within which a non-matching object is
            "near" an annotation (never background).

    Returns:
        A :class:`LabelResult`; each figure annotation gets at most one match and each
        candidate matches at most one annotation (greedy by IoU, then distance); parts and
        near objects name their annotation in ``Decision.annotation``.
    """
    n = len(c)
    decisions = [Decision("background") for _ in range(n)]
    if n == 0 or len(ann) == 0:
        return LabelResult(decisions)
    contacts, own_frac = _mask_contacts(c, ann)
    dist_of = _distances(c, ann, mpp, max(match_radius_um, exclusion_radius_um), contacts)
    matches = _greedy_matches(c, ann, contacts, dist_of, match_radius_um, match_iou, decisions)
    used = set(matches.values())
    parts = _figure_parts(c, ann, mpp, own_frac, used)
    for i, dec in parts.items():
        decisions[i] = dec
    _mark_near(decisions, dist_of, contacts, used | set(parts), exclusion_radius_um)
    return LabelResult(decisions, matches)


Pair = tuple[int, int]  # (candidate index, annotation index)


def _mask_contacts(c: Candidates, ann: Annotations
                   ) -> tuple[dict[Pair, float], dict[Pair, float]]:
    """Mask overlaps of candidates with the annotations that have a mask.

    Returns:
        ``(iou, own_frac)`` keyed by (candidate, annotation) for every pair whose masks
        intersect: IoU, and intersection over the candidate's own area.
    """
    contacts: dict[Pair, float] = {}
    own_frac: dict[Pair, float] = {}
    mk = np.flatnonzero([r is not None for r in ann.rles])
    if len(mk) == 0:
        return contacts, own_frac
    pairs = _box_pairs(c.boxes, ann.boxes[mk])
    amasks: dict[int, npt.NDArray[np.bool_]] = {}
    for i, jj in pairs.T:
        k = int(mk[jj])
        if k not in amasks:
            am = ann.mask(k)
            amasks[k] = am if am is not None else np.zeros((1, 1), bool)
        inter, aa, ab = _mask_overlap(c.boxes[i], c.mask(int(i)), ann.boxes[k], amasks[k])
        if inter:
            contacts[(int(i), k)] = inter / max(aa + ab - inter, 1)
            own_frac[(int(i), k)] = inter / max(aa, 1)
    return contacts, own_frac


def _distances(c: Candidates, ann: Annotations, mpp: float, reach_um: float,
               contacts: dict[Pair, float]) -> dict[Pair, float]:
    """Centroid distances in µm for pairs within ``reach_um`` or in mask contact."""
    from scipy.spatial import cKDTree

    tree = cKDTree(ann.centroids * mpp)
    near_lists = tree.query_ball_point(c.centroids * mpp, r=reach_um)

    def dist(i: int, k: int) -> float:
        return float(np.hypot(*((c.centroids[i] - ann.centroids[k]) * mpp)))

    dist_of = {(i, int(k)): dist(i, int(k)) for i, ks in enumerate(near_lists) for k in ks}
    for i, k in contacts:
        dist_of.setdefault((i, k), dist(i, k))
    return dist_of


def _greedy_matches(c: Candidates, ann: Annotations, contacts: dict[Pair, float],
                    dist_of: dict[Pair, float], match_radius_um: float, match_iou: float,
                    decisions: list[Decision]) -> dict[int, int]:
    """One candidate per figure annotation, greedy by IoU, then distance, then score.

    Writes the ``match`` decisions into ``decisions``; returns annotation -> candidate.
    """
    options: list[tuple[float, float, int, int, str]] = []
    for (i, k), d in dist_of.items():
        if ann.labels[k] not in FIGURE_LABELS:
            continue
        iou = contacts.get((i, k), 0.0)
        if iou >= match_iou:
            options.append((-iou, d, i, k, "mask_iou"))
        elif d <= match_radius_um:
            options.append((-iou, d, i, k, "centroid"))
    options.sort(key=lambda t: (t[0], t[1], -c.score[t[2]], t[2], t[3]))
    matches: dict[int, int] = {}
    used: set[int] = set()
    for neg_iou, d, i, k, how in options:
        if k in matches or i in used:
            continue
        matches[k] = i
        used.add(i)
        decisions[i] = Decision("match", k, d, -neg_iou if neg_iou else None, how)
    return matches


def _mark_near(decisions: list[Decision], dist_of: dict[Pair, float],
               contacts: dict[Pair, float], taken: set[int], exclusion_radius_um: float
               ) -> None:
    """Mark the remaining candidates near (or touching) an annotation, nearest first wins."""
    for (i, k), d in sorted(dist_of.items()):
        if i in taken:
            continue
        touching = (i, k) in contacts
        if d <= exclusion_radius_um or touching:
            cur = decisions[i]
            if cur.kind != "near" or (cur.distance_um or 0.0) > d:
                decisions[i] = Decision("near", k, d, contacts.get((i, k)),
                                        "mask_contact" if touching else "centroid")


def _figure_parts(c: Candidates, ann: Annotations, mpp: float,
                  own_frac: dict[tuple[int, int], float], used: set[int]
                  ) -> dict[int, Decision]:
    """Unmatched candidates that belong to a figure annotation (see the module docstring).

    Point-in-box pairs come from an STRtree over the figure boxes, so the cost grows with
    the number of candidates and figures, not their product.
    """
    figs = np.flatnonzero([lab in FIGURE_LABELS for lab in ann.labels])
    if len(figs) == 0:
        return {}
    hits: dict[int, dict[int, str]] = {}
    box_sets = [("centre_in_box", ann.boxes)]
    if ann.source_boxes is not None:
        box_sets.append(("centre_in_box", ann.source_boxes))
    for rule, boxes in box_sets:
        ok = np.isfinite(boxes[figs]).all(axis=1)
        sub = figs[ok]
        for i, jj in points_in_boxes(c.centroids, boxes[sub]).T:
            hits.setdefault(int(i), {}).setdefault(int(sub[jj]), rule)
    for (i, k), frac in own_frac.items():
        if frac > PART_OVERLAP_FRAC and ann.labels[k] in FIGURE_LABELS:
            hits.setdefault(i, {}).setdefault(k, "mask_overlap")
    out: dict[int, Decision] = {}
    for i, ks in hits.items():
        if i in used:
            continue
        dist = {k: float(np.hypot(*((c.centroids[i] - ann.centroids[k]) * mpp))) for k in ks}
        k = min(ks, key=lambda kk: (dist[kk], kk))
        out[i] = Decision("part", k, dist[k], None, ks[k])
    return out


def decision_extra(dec: Decision, tile: Sequence[int], stability: float | None,
                   backend: str) -> str:
    """The ``extra`` JSON of a harvested row."""
    out: dict[str, Any] = {"tile_xywh": [int(v) for v in tile], "backend": backend}
    if stability is not None:
        out["stability_score"] = round(float(stability), 5)
    if dec.kind != "background":
        out["harvest_decision"] = dec.kind
        out["rule"] = dec.how
        if dec.distance_um is not None:
            out["distance_um"] = round(dec.distance_um, 3)
        if dec.iou is not None:
            out["mask_iou"] = round(dec.iou, 4)
    return json.dumps(out, sort_keys=True)


def draw_overlay(rgb: npt.NDArray[np.uint8], offset_xy: tuple[int, int],
                 objects: list[tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], str]],
                 annotations: list[tuple[tuple[float, float], str]], mpp: float,
                 exclusion_radius_um: float) -> npt.NDArray[np.uint8]:
    """Draw harvested outlines and annotations on a tile.

    Args:
        rgb: ``(rows, cols, 3)`` tile.
        offset_xy: level-0 position of the tile's top-left pixel.
        objects: ``(bbox_xyxy, mask, kind)`` with kind background/match/part/near.
        annotations: ``((x, y), label)`` in level-0 px.
        mpp: µm per pixel.
        exclusion_radius_um: radius drawn around each annotation.

    Returns:
        The annotated copy (green: background, magenta: matched figure, pink: part of a
        figure, yellow: near an annotation, cyan circle: annotation and its exclusion radius).
    """
    import cv2

    out = np.ascontiguousarray(rgb.copy())
    colours = {"background": (0, 255, 0), "match": (255, 0, 255), "part": (255, 0, 140),
               "near": (255, 200, 0)}
    thick = 2 if max(rgb.shape[:2]) > 768 else 1
    ox, oy = offset_xy
    for box, m, kind in objects:
        cnts, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_NONE)
        shift = (math.floor(box[0]) - ox, math.floor(box[1]) - oy)
        cv2.drawContours(out, cnts, -1, colours.get(kind, (255, 255, 255)), thick,
                         offset=shift)
    r = max(2, round(exclusion_radius_um / mpp))
    for (x, y), label in annotations:
        c = (round(x - ox), round(y - oy))
        col = (0, 255, 255) if label in FIGURE_LABELS else (80, 80, 255)
        cv2.circle(out, c, r, col, thick)
        cv2.drawMarker(out, c, col, cv2.MARKER_CROSS, 8 * thick, thick)
    return out
