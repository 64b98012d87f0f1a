"""Transfer pHH3 objects to the H&E slide.

Masks and boxes go through the transform, objects get QA flags, and each mask can be refined
by a box segmenter (SAM or classical) on the H&E.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from mfcurate.geometry import mask_to_record
from mfcurate.registration.dab import DabObject
from mfcurate.registration.transform import PairTransform
from mfcurate.segment.spec import DEFAULT_SAM_MODEL


@dataclass
class TransferredObject:
    """One pHH3 object on the H&E slide (level-0 H&E px unless stated).

    Attributes:
        object_id: stable id within the pair (``"0001"``...).
        bbox_xyxy: tight box of the H&E mask.
        mask_rle: box-relative COCO RLE of the H&E mask.
        area_px: H&E mask area.
        centroid_xy: H&E mask centroid.
        mask_origin: ``phh3``, or the refining segmenter's origin (``sam_box``, ``classical``).
        mask_score: segmenter score, or None.
        phh3_centroid_xy: centroid on the pHH3 (pHH3 level-0 px).
        phh3_bbox_xyxy: box on the pHH3.
        phh3_area_px: pHH3 mask area.
        dab_mean: mean DAB OD of the pHH3 object.
        residual_um: local registration residual at the object (µm).
        qa_flags: reasons the object is flagged for review (empty when fine).
    """

    object_id: str
    bbox_xyxy: tuple[float, float, float, float]
    mask_rle: str
    area_px: int
    centroid_xy: tuple[float, float]
    mask_origin: str
    mask_score: float | None
    phh3_centroid_xy: tuple[float, float]
    phh3_bbox_xyxy: tuple[float, float, float, float]
    phh3_area_px: int
    dab_mean: float
    residual_um: float | None
    qa_flags: list[str] = field(default_factory=list)


def transfer_objects(
    objects: list[DabObject],
    transform: PairTransform,
    he_size: tuple[int, int],
    *,
    max_residual_um: float = 2.0,
) -> list[TransferredObject]:
    """Map every pHH3 object's mask onto the H&E grid.

    Objects whose mask lands wholly outside the H&E image are dropped; those partly outside
    are clipped and flagged ``outside_he``.  Flags: ``registration_residual`` (local residual
    above ``max_residual_um`` or unknown), ``registration_fallback`` (the local fit failed and
    was filled from neighbours), ``registration_failed_region`` (the refinement region
    failed its QA), ``area_changed`` (area changed by more than 30 %), ``multi_component``
    (a multi-part figure: DAB components joined on the pHH3, see :mod:`.dab`).
    """
    W, H = he_size
    out: list[TransferredObject] = []
    for k, ob in enumerate(objects):
        m, (ox, oy) = transform.map_mask_to_he(ob.mask, ob.offset_xy)
        x0, y0 = max(0, -ox), max(0, -oy)
        x1, y1 = min(m.shape[1], W - ox), min(m.shape[0], H - oy)
        flags: list[str] = []
        if x1 <= x0 or y1 <= y0:
            continue
        clipped = m[y0:y1, x0:x1]
        if clipped.sum() < m.sum():
            flags.append("outside_he")
        rec = mask_to_record(clipped, (ox + x0, oy + y0))
        if rec is None:
            continue
        box, rle, area, cen = rec
        resid = float(transform.residual_at(np.array([cen]))[0])
        if transform.field is None or not np.isfinite(resid) or resid > max_residual_um:
            flags.append("registration_residual")
        if bool(transform.fallback_at(np.array([cen]))[0]):
            flags.append("registration_fallback")
        if bool(transform.failed_at(np.array([cen]))[0]):
            flags.append("registration_failed_region")
        if abs(area - ob.area_px) > 0.3 * ob.area_px:
            flags.append("area_changed")
        if ob.n_parts > 1:  # the masses of one figure joined on the pHH3, for review
            flags.append("multi_component")
        ys, xs = np.nonzero(ob.mask)
        pbox = (float(ob.offset_xy[0] + xs.min()), float(ob.offset_xy[1] + ys.min()),
                float(ob.offset_xy[0] + xs.max() + 1), float(ob.offset_xy[1] + ys.max() + 1))
        out.append(TransferredObject(
            f"{k + 1:05d}", box, rle, area, cen, "phh3", None, ob.centroid_xy, pbox,
            ob.area_px, ob.dab_mean, resid if np.isfinite(resid) else None, flags))
    return out


def refine_with_segmenter(objects: list[TransferredObject], he_img: Any, mpp: float,
                          kind: str, checkpoint: str | None = None, device: str = "auto",
                          pad_um: float = 6.0, model_type: str = DEFAULT_SAM_MODEL
                          ) -> list[TransferredObject]:
    """Re-segment each transferred mask on the H&E from its outer box (``sam`` or ``classical``).

    The segmenter is built through :class:`mfcurate.segment.spec.SegmenterSpec` and its
    worker cache (as refine-masks, harvest and detect build theirs): SAM ``model_type``
    (default ViT-H, the paper's) on ``device`` (``auto``: CUDA when available).  The box of
    a multi-part figure holds all its masses, and the box segmenter keeps every part inside
    it (:mod:`mfcurate.segment.qa`).  An object the segmenter returns nothing for keeps its
    transferred mask and gets the flag ``refine_failed``.

    Raises:
        DependencyNotFoundError: the segmenter module is not available.
    """
    from mfcurate.errors import DependencyNotFoundError
    from mfcurate.segment.spec import SegmenterSpec, box_segmenter

    spec = SegmenterSpec.make(kind, checkpoint, model_type, device)
    try:
        seg = box_segmenter(spec)
    except ImportError as exc:
        raise DependencyNotFoundError(
            "mask refinement needs mfcurate.segment.box (not installed in this build); "
            "use --refine none") from exc
    pad = round(pad_um / mpp)
    for ob in objects:
        x0, y0, x1, y1 = ob.bbox_xyxy
        wx, wy = int(x0) - pad, int(y0) - pad
        ww, wh = int(x1 - x0) + 2 * pad, int(y1 - y0) + 2 * pad
        window = he_img.read_region(wx, wy, ww, wh, level=0)
        box = np.array([[x0 - wx, y0 - wy, x1 - wx, y1 - wy]], dtype=np.float64)
        inst = seg.segment_boxes(window, box, mpp)[0]
        if inst is None:
            ob.qa_flags.append("refine_failed")
            continue
        rec = mask_to_record(inst.mask, (wx + inst.offset_xy[0], wy + inst.offset_xy[1]))
        if rec is None:
            ob.qa_flags.append("refine_failed")
            continue
        ob.bbox_xyxy, ob.mask_rle, ob.area_px, ob.centroid_xy = rec
        ob.mask_origin = inst.origin
        ob.mask_score = float(inst.score)
        ob.qa_flags.extend(inst.flags)
    return objects


def dice(a: npt.NDArray[np.bool_], a_off: tuple[int, int], b: npt.NDArray[np.bool_],
         b_off: tuple[int, int]) -> float:
    """Dice of two masks given with their level-0 offsets."""
    x0 = min(a_off[0], b_off[0])
    y0 = min(a_off[1], b_off[1])
    x1 = max(a_off[0] + a.shape[1], b_off[0] + b.shape[1])
    y1 = max(a_off[1] + a.shape[0], b_off[1] + b.shape[0])
    ca = np.zeros((y1 - y0, x1 - x0), bool)
    cb = np.zeros_like(ca)
    ca[a_off[1] - y0:a_off[1] - y0 + a.shape[0], a_off[0] - x0:a_off[0] - x0 + a.shape[1]] = a
    cb[b_off[1] - y0:b_off[1] - y0 + b.shape[0], b_off[0] - x0:b_off[0] - x0 + b.shape[1]] = b
    s = int(ca.sum() + cb.sum())
    return 2.0 * int((ca & cb).sum()) / s if s else 0.0
