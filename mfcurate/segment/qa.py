"""Automatic mask QA and re-prompting for box-prompted nucleus masks.

Flags (``qa_flags`` values) raised on a mask of one prompt box:

* ``empty`` - no mask at all (a fixed disk of ``fallback_radius_um`` is stored instead);
* ``low_score`` - SAM predicted IoU below ``min_pred_iou`` (classical: haematoxylin
  contrast below ``min_contrast``);
* ``low_stability`` - SAM stability score below ``min_stability``;
* ``box_edge`` - the mask reaches the prompt box's edge on two sides or more (it leaks into
  neighbours or stroma: a nucleus is smaller than its loose prompt box);
* ``multi_component`` - the kept mask has two or more parts (anaphase/telophase and atypical
  figures do; a leak into a neighbour does too): for review only, it costs a candidate
  nothing and triggers no re-prompt;
* ``area_out_of_range`` - the area in µm² is outside ``area_um2`` (the nuclear range);
* ``centroid_offset`` - the mask centroid lies more than ``max_centroid_um`` from the
  annotation.

A flagged mask is **re-prompted** automatically: SAM gets a larger box (``larger_box`` x),
the box plus the annotation as a positive point, and the box with multimask output (its three
masks); the classical segmenter gets a larger and a smaller box.  Every candidate (the first
mask included) is cleaned (:func:`clean_instance`: every significant part inside the prompt
box is kept, holes filled), flagged again and scored with

    quality = base - flag_penalty * number_of_flags

where ``base`` is SAM's ``predicted_iou * stability`` (classical: the contrast score) and
review-only flags (:data:`REVIEW_ONLY_FLAGS`) are not counted; the best candidate is kept
(the first mask wins ties).  A kept mask that still has flags gets ``qa_state = "flagged"``
(for review with ``mfcurate export-review``); the others stay ``unreviewed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from mfcurate.geometry import MIN_PART_FRAC, mask_parts
from mfcurate.segment import BoxSegmenter, Instance

FLAGS = ("empty", "low_score", "low_stability", "box_edge", "multi_component",
         "area_out_of_range", "centroid_offset")
#: Flags raised for a reviewer's eye only: they neither lower a candidate's quality nor
#: trigger re-prompting (a two-part telophase mask is right, a re-prompt would cut it).
REVIEW_ONLY_FLAGS = frozenset({"multi_component"})
#: A part is inside the prompt box when at least this share of its pixels is.
PART_IN_BOX_FRAC = 0.5


@dataclass(frozen=True)
class QAConfig:
    """Thresholds of the automatic QA (sizes in µm, areas in µm²).

    ``min_part_frac``: a component of a mask is a part of the object (kept, and counted by
    ``multi_component``) when its area is at least this fraction of the largest component's.
    """

    min_pred_iou: float = 0.80
    min_stability: float = 0.85
    min_contrast: float = 0.10
    area_um2: tuple[float, float] = (6.0, 220.0)
    max_centroid_um: float = 4.0
    min_part_frac: float = MIN_PART_FRAC
    check_box_edge: bool = True
    larger_box: float = 1.5
    smaller_box: float = 0.7
    flag_penalty: float = 0.25
    fallback_radius_um: float = 4.0
    reprompt: bool = True


@dataclass
class Refined:
    """The outcome for one prompt box.

    Attributes:
        instance: the kept mask (cleaned) in window px; a disk when nothing was found.
        flags: QA flags of the kept mask (empty list = passed).
        strategy: which prompt gave it: ``box``, ``larger_box``, ``smaller_box``,
            ``box+point``, ``multimask:<i>`` or ``fallback_disk``.
        initial_flags: flags of the first mask (before re-prompting).
        quality: the quality score of the kept mask.
    """

    instance: Instance
    flags: list[str]
    strategy: str
    initial_flags: list[str] = field(default_factory=list)
    quality: float = 0.0

    @property
    def qa_state(self) -> str:
        """``flagged`` when flags remain, else ``unreviewed``."""
        return "flagged" if self.flags else "unreviewed"


def clean_instance(inst: Instance, anchor_xy: tuple[float, float],
                   box: Sequence[float] | npt.NDArray[np.float64] | None = None,
                   min_part_frac: float = MIN_PART_FRAC) -> Instance:
    """Keep every significant part of a mask inside the prompt box, holes filled (same frame).

    A part is an 8-connected component of at least ``min_part_frac`` of the largest one's
    area (:func:`mfcurate.geometry.mask_parts`); it is inside ``box`` (window px) when at
    least :data:`PART_IN_BOX_FRAC` of its pixels are.  Multi-part figures (anaphase,
    telophase, atypical) keep all their chromatin masses, wherever the annotation point lies
    (often *between* them).  When no part is inside the box (or ``box`` is None and there are
    no parts), the component at, or nearest to, the anchor is kept.
    """
    from scipy import ndimage as ndi

    m = np.asarray(inst.mask, dtype=bool)
    lab, parts = mask_parts(m, min_part_frac)
    ox, oy = inst.offset_xy
    if box is not None and parts:
        x0, y0, x1, y1 = (float(v) for v in box)
        ys, xs = np.nonzero(lab)
        inside = ((xs + ox + 0.5 >= x0) & (xs + ox + 0.5 <= x1)
                  & (ys + oy + 0.5 >= y0) & (ys + oy + 0.5 <= y1))
        n_in = np.bincount(lab[ys, xs], weights=inside, minlength=lab.max() + 1)
        n_all = np.bincount(lab[ys, xs], minlength=lab.max() + 1)
        parts = [k for k in parts if n_in[k] >= PART_IN_BOX_FRAC * n_all[k]]
    if not parts:
        ax, ay = int(np.floor(anchor_xy[0])) - ox, int(np.floor(anchor_xy[1])) - oy
        label = int(lab[ay, ax]) if 0 <= ay < m.shape[0] and 0 <= ax < m.shape[1] else 0
        if label == 0:
            ys, xs = np.nonzero(lab)
            k = int(np.argmin((ys - ay) ** 2 + (xs - ax) ** 2))
            label = int(lab[ys[k], xs[k]])
        parts = [label]
    keep = ndi.binary_fill_holes(np.isin(lab, parts))
    return Instance(mask=np.asarray(keep, dtype=bool), offset_xy=inst.offset_xy,
                    score=inst.score, stability=inst.stability, origin=inst.origin,
                    flags=list(inst.flags))


def mask_flags(raw: Instance, cleaned: Instance, box: Sequence[float] | npt.NDArray[np.float64],
               anchor_xy: tuple[float, float], mpp: float, cfg: QAConfig) -> list[str]:
    """QA flags of one mask (``raw`` as segmented, ``cleaned`` by :func:`clean_instance`).

    Scores come from ``raw``; geometry (box edge, parts, area, centroid) from ``cleaned``.
    """
    flags: list[str] = []
    if raw.origin == "classical":
        if raw.score < cfg.min_contrast:
            flags.append("low_score")
    else:
        if raw.score < cfg.min_pred_iou:
            flags.append("low_score")
        if raw.stability is not None and raw.stability < cfg.min_stability:
            flags.append("low_stability")
    m = cleaned.mask
    ys, xs = np.nonzero(m)
    ox, oy = cleaned.offset_xy
    if cfg.check_box_edge:
        x0, y0, x1, y1 = (float(v) for v in box)
        mx0, mx1 = ox + int(xs.min()), ox + int(xs.max()) + 1
        my0, my1 = oy + int(ys.min()), oy + int(ys.max()) + 1
        sides = (int(mx0 <= np.ceil(x0)) + int(mx1 >= np.floor(x1))
                 + int(my0 <= np.ceil(y0)) + int(my1 >= np.floor(y1)))
        if sides >= 2:
            flags.append("box_edge")
    if len(mask_parts(m, cfg.min_part_frac)[1]) > 1:
        flags.append("multi_component")
    area_um2 = float(m.sum()) * mpp * mpp
    if not cfg.area_um2[0] <= area_um2 <= cfg.area_um2[1]:
        flags.append("area_out_of_range")
    cx, cy = ox + xs.mean() + 0.5, oy + ys.mean() + 0.5
    if float(np.hypot(cx - anchor_xy[0], cy - anchor_xy[1])) * mpp > cfg.max_centroid_um:
        flags.append("centroid_offset")
    return flags


def quality(inst: Instance, flags: Sequence[str], cfg: QAConfig) -> float:
    """The documented candidate score: ``base - flag_penalty * (flags not review-only)``."""
    base = inst.score * (inst.stability if inst.stability is not None else 1.0)
    n = sum(1 for f in flags if f not in REVIEW_ONLY_FLAGS)
    return float(base - cfg.flag_penalty * n)


def needs_reprompt(flags: Sequence[str]) -> bool:
    """Whether a mask's flags call for re-prompting (any flag that is not review-only)."""
    return any(f not in REVIEW_ONLY_FLAGS for f in flags)


def refine_window(segmenter: BoxSegmenter, window: npt.NDArray[np.uint8],
                  boxes: npt.NDArray[np.float64], anchors: npt.NDArray[np.float64], mpp: float,
                  cfg: QAConfig | None = None) -> list[Refined]:
    """Segment every box of a window, QA the masks and re-prompt the flagged ones.

    Args:
        segmenter: any :class:`BoxSegmenter`; SAM and classical ones get their own
            re-prompts (see the module docstring), others only a larger box.
        window: ``(rows, cols, 3)`` uint8 RGB.
        boxes: ``(N, 4)`` prompt boxes, window px.
        anchors: ``(N, 2)`` annotation positions (x, y), window px.
        mpp: µm per pixel.
        cfg: thresholds.

    Returns:
        One :class:`Refined` per box, in order.
    """
    cfg = cfg or QAConfig()
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    anchors = np.asarray(anchors, dtype=np.float64).reshape(-1, 2)
    first = segmenter.segment_boxes(window, boxes, mpp)
    results: list[Refined | None] = []
    todo: list[int] = []
    for i, inst in enumerate(first):
        cand = _evaluate("box", inst, boxes[i], anchors[i], mpp, cfg)
        results.append(cand)
        if cand is None or needs_reprompt(cand.flags):
            todo.append(i)
    if cfg.reprompt and todo:
        extra = reprompt_candidates(segmenter, window, boxes[todo], anchors[todo], mpp, cfg)
        for i, cands in zip(todo, extra, strict=True):
            best = results[i]
            for strategy, inst in cands:
                c = _evaluate(strategy, inst, boxes[i], anchors[i], mpp, cfg)
                if c is not None and (best is None or c.quality > best.quality):
                    best = c
            if best is not None:
                init = results[i]
                best.initial_flags = list(init.flags) if init is not None else ["empty"]
            results[i] = best
    out: list[Refined] = []
    for i, r in enumerate(results):
        if r is None:
            r = _fallback(anchors[i], mpp, cfg)
        out.append(r)
    return out


def reprompt_candidates(segmenter: Any, window: npt.NDArray[np.uint8],
                        boxes: npt.NDArray[np.float64], anchors: npt.NDArray[np.float64],
                        mpp: float, cfg: QAConfig) -> list[list[tuple[str, Instance | None]]]:
    """Alternative masks for flagged boxes (all boxes of a strategy in one batched call)."""
    n = boxes.shape[0]
    out: list[list[tuple[str, Instance | None]]] = [[] for _ in range(n)]
    larger = scale_boxes(boxes, cfg.larger_box)
    if getattr(segmenter, "name", "") == "sam" and hasattr(segmenter, "predict"):
        segmenter.set_window(window)  # no-op: the window is still encoded
        for i, c in enumerate(segmenter.predict(larger)):
            out[i].append(("larger_box", c[0]))
        for i, c in enumerate(segmenter.predict(boxes, points=anchors)):
            out[i].append(("box+point", c[0]))
        for i, cands in enumerate(segmenter.predict(boxes, multimask=True)):
            out[i].extend((f"multimask:{k}", inst) for k, inst in enumerate(cands))
        return out
    for i, inst in enumerate(segmenter.segment_boxes(window, larger, mpp)):
        out[i].append(("larger_box", inst))
    if getattr(segmenter, "name", "") == "classical":
        smaller = scale_boxes(boxes, cfg.smaller_box)
        for i, inst in enumerate(segmenter.segment_boxes(window, smaller, mpp)):
            out[i].append(("smaller_box", inst))
    return out


def scale_boxes(boxes: npt.NDArray[np.float64], factor: float) -> npt.NDArray[np.float64]:
    """Scale ``(N, 4)`` xyxy boxes about their centres."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    c = (b[:, :2] + b[:, 2:]) / 2
    half = (b[:, 2:] - b[:, :2]) / 2 * factor
    return np.concatenate([c - half, c + half], axis=1)


def _evaluate(strategy: str, inst: Instance | None, box: npt.NDArray[np.float64],
              anchor: npt.NDArray[np.float64], mpp: float, cfg: QAConfig) -> Refined | None:
    if inst is None or not np.asarray(inst.mask).any():
        return None
    a = (float(anchor[0]), float(anchor[1]))
    cleaned = clean_instance(inst, a, box, cfg.min_part_frac)
    flags = mask_flags(inst, cleaned, box, a, mpp, cfg)
    return Refined(instance=cleaned, flags=flags, strategy=strategy, initial_flags=list(flags),
                   quality=quality(inst, flags, cfg))


def _fallback(anchor: npt.NDArray[np.float64], mpp: float, cfg: QAConfig) -> Refined:
    from mfcurate.geometry import disk_mask

    box, m = disk_mask((float(anchor[0]), float(anchor[1])), cfg.fallback_radius_um / mpp)
    inst = Instance(mask=m, offset_xy=(int(box[0]), int(box[1])), score=0.0, origin="disk")
    return Refined(instance=inst, flags=["empty"], strategy="fallback_disk",
                   initial_flags=["empty"], quality=-1.0)
