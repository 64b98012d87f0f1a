"""SAM box prompting: one image encoding per window, all boxes of the window in one batch.

How it differs from ``SamPredictor.predict`` (one box per call, a full-size mask per box):

* the window is encoded once (``set_image``) and every prompt of the window goes through the
  prompt encoder and mask decoder as one batch (``batch_size`` prompts per call);
* only the decoder's low-resolution logits (``B x C x 256 x 256``) are kept; for every box a
  small crop of them (the box plus ``pad_frac`` of its side, plus one low-res pixel for the
  interpolation) is upsampled exactly as ``Sam.postprocess_masks`` upsamples the full map, so no
  full-size mask is ever built per box.

Exactness: windows are square with a side that divides 1024 (1024, 512, 256, 128 px; a window
that is smaller or not square is padded with white at the bottom/right).  SAM then resizes the
window by an integer factor ``k = 1024 / side`` and the two bilinear steps of
``postprocess_masks`` (256 -> 1024, then 1024 -> side) have integer scale factors, so the
cropped computation uses bit-for-bit the same interpolation weights as the full one: the masks
inside each box's crop are identical to those of the one-box-per-call path
(:func:`predict_one_box_per_call`, the reference used by the tests and the benchmark).

Window size is the trade-off documented in ``docs/masks.md``: ``1024`` px windows keep native
resolution and share one encoding among every annotation nearby; ``256`` px context crops are
what OMG-Net used (SAM upsamples them 4x, which changes what it sees, and each cluster of
annotations costs its own encoding).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from mfcurate.segment import Instance

SAM_SIDE = 1024
LOWRES = 256
VALID_WINDOWS = (1024, 512, 256, 128)


def window_side(rows: int, cols: int) -> int:
    """Smallest valid square window side (dividing 1024) that holds ``rows x cols``.

    Raises:
        ValueError: the window is larger than 1024 px.
    """
    need = max(rows, cols)
    for side in reversed(VALID_WINDOWS):
        if side >= need:
            return side
    raise ValueError(f"SAM window {cols}x{rows} px is larger than {SAM_SIDE} px; "
                     "split it into windows first (see refine_masks.plan_windows)")


def pad_window(window: npt.NDArray[np.uint8], side: int) -> npt.NDArray[np.uint8]:
    """Pad a window with white (glass) at the bottom/right to ``side x side``."""
    rows, cols = window.shape[:2]
    if rows == side and cols == side:
        return window
    out = np.full((side, side, 3), 255, dtype=np.uint8)
    out[:rows, :cols] = window[..., :3]
    return out


@dataclass
class SamBoxSegmenter:
    """Box-prompted SAM segmenter (``BoxSegmenter`` protocol) with batched prompts.

    Attributes:
        sam: a ``segment_anything`` ``Sam`` model (see ``sam_models.load_sam``).
        pad_frac: margin around each box, as a fraction of its longer side, inside which the
            mask is computed (pixels further out are not part of the instance).
        batch_size: most prompts per decoder call; None (default): all prompts of the window
            in one call.  The decoder's two-way transformer holds about 30-40 MiB of
            activations per prompt (a copy of the 256 x 64 x 64 image embedding and its
            attention), so bound it for windows with hundreds of boxes on small GPUs.  Note
            that the decoder's matrix products round differently for different batch shapes:
            a chunked batch can flip the odd pixel whose logit is within ~1e-6 of the
            threshold (1 pixel in 24 masks in ``bench/bench_refine.py`` with 16 per call).
        stability_offset: logit offset of SAM's stability score.
        encodings: number of image encodings done so far (one per window).
    """

    sam: Any
    pad_frac: float = 0.5
    batch_size: int | None = None
    stability_offset: float = 1.0
    name: str = "sam"
    encodings: int = 0
    _predictor: Any = field(default=None, repr=False)
    _key: Any = field(default=None, repr=False)
    _side: int = 0

    def __post_init__(self) -> None:
        from segment_anything import SamPredictor

        self._predictor = SamPredictor(self.sam)

    # ------------------------------------------------------------------ encoding
    def set_window(self, window: npt.NDArray[np.uint8]) -> None:
        """Encode ``window`` unless it is the window encoded last (the same array object).

        The segmenter keeps a reference to that array, so its identity cannot be reused by
        another array; do not modify a window in place between calls.
        """
        if self._key is window:
            return
        side = window_side(window.shape[0], window.shape[1])
        self._predictor.set_image(np.ascontiguousarray(pad_window(window, side)))
        self._key = window
        self._side = side
        self.encodings += 1

    # ------------------------------------------------------------------ prompting
    def segment_boxes(self, window: npt.NDArray[np.uint8], boxes_xyxy: npt.NDArray[np.float64],
                      mpp: float) -> list[Instance | None]:
        """One instance per box (None for an empty mask), all boxes in batched calls."""
        boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        if boxes.shape[0] == 0:
            return []
        self.set_window(window)
        return [c[0] for c in self.predict(boxes)]

    def predict(self, boxes: npt.NDArray[np.float64],
                points: npt.NDArray[np.float64] | None = None,
                multimask: bool = False) -> list[list[Instance | None]]:
        """Prompt the current window; return the candidate masks of every prompt.

        Args:
            boxes: ``(B, 4)`` xyxy boxes in window px.
            points: optional ``(B, 2)`` positive point per box (x, y window px).
            multimask: return SAM's three masks per prompt instead of one.

        Returns:
            Per box, a list of 1 (or 3) instances (None where the mask is empty inside the
            box's crop), each with SAM's predicted IoU as score and its stability score.
        """
        import torch

        if self._key is None:
            raise RuntimeError("set_window() first")
        pred = self._predictor
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        side = self._side
        out: list[list[Instance | None]] = []
        step = self.batch_size or max(boxes.shape[0], 1)
        for start in range(0, boxes.shape[0], step):
            chunk = boxes[start:start + step]
            bt = pred.transform.apply_boxes_torch(
                torch.as_tensor(chunk, dtype=torch.float, device=pred.device), (side, side))
            pts = None
            if points is not None:
                pc = torch.as_tensor(points[start:start + step], dtype=torch.float,
                                     device=pred.device)[:, None, :]
                pc = pred.transform.apply_coords_torch(pc, (side, side))
                pts = (pc, torch.ones(pc.shape[:2], dtype=torch.int, device=pred.device))
            with torch.inference_mode():
                sparse, dense = pred.model.prompt_encoder(points=pts, boxes=bt, masks=None)
                low, iou = pred.model.mask_decoder(
                    image_embeddings=pred.features,
                    image_pe=pred.model.prompt_encoder.get_dense_pe(),
                    sparse_prompt_embeddings=sparse,
                    dense_prompt_embeddings=dense,
                    multimask_output=multimask,
                )
            for i, box in enumerate(chunk):
                region = self.crop_region(box)
                logits = crop_upsample(low[i], region, side)
                cands: list[Instance | None] = []
                for c in range(logits.shape[0]):
                    cands.append(self._instance(logits[c], region, float(iou[i, c])))
                out.append(cands)
        return out

    def crop_region(self, box: npt.NDArray[np.float64]) -> tuple[int, int, int, int]:
        """Integer ``(x0, y0, x1, y1)`` window region in which a box's mask is computed."""
        x0, y0, x1, y1 = (float(v) for v in box)
        pad = self.pad_frac * max(x1 - x0, y1 - y0)
        side = self._side
        rx0 = min(max(int(np.floor(x0 - pad)), 0), side - 1)
        ry0 = min(max(int(np.floor(y0 - pad)), 0), side - 1)
        rx1 = max(min(int(np.ceil(x1 + pad)), side), rx0 + 1)
        ry1 = max(min(int(np.ceil(y1 + pad)), side), ry0 + 1)
        return rx0, ry0, rx1, ry1

    def _instance(self, logits: Any, region: tuple[int, int, int, int],
                  score: float) -> Instance | None:
        import torch

        thr = float(self.sam.mask_threshold)
        mask_t = logits > thr
        if not bool(mask_t.any()):
            return None
        inter = int((logits > thr + self.stability_offset).sum())
        union = int((logits > thr - self.stability_offset).sum())
        stability = inter / union if union > 0 else 0.0  # guard (SAM PR #853)
        mask = mask_t.cpu().numpy() if isinstance(mask_t, torch.Tensor) else np.asarray(mask_t)
        return Instance(mask=mask.astype(bool), offset_xy=(region[0], region[1]), score=score,
                        stability=float(stability), origin="sam_box")


def crop_upsample(low: Any, region: tuple[int, int, int, int], side: int) -> Any:
    """Upsample a crop of low-res logits to window pixels, bit-identical to the full path.

    Args:
        low: ``(C, 256, 256)`` low-res logits of one prompt (torch tensor).
        region: ``(x0, y0, x1, y1)`` window-pixel region wanted.
        side: window side (divides 1024).

    Returns:
        ``(C, y1 - y0, x1 - x0)`` logits equal to
        ``Sam.postprocess_masks(low)[..., y0:y1, x0:x1]`` for a square ``side`` window.
    """
    import torch.nn.functional as F

    k = SAM_SIDE // side
    x0, y0, x1, y1 = region
    # region in the 1024 frame, then the low-res rows/cols needed (+1 px for interpolation)
    fx0, fy0, fx1, fy1 = k * x0, k * y0, k * x1, k * y1
    lx0, ly0 = max(fx0 // 4 - 1, 0), max(fy0 // 4 - 1, 0)
    lx1, ly1 = min(-(-fx1 // 4) + 1, LOWRES), min(-(-fy1 // 4) + 1, LOWRES)
    crop = low[None, :, ly0:ly1, lx0:lx1]
    up = F.interpolate(crop, (4 * (ly1 - ly0), 4 * (lx1 - lx0)), mode="bilinear",
                       align_corners=False)
    up = up[..., fy0 - 4 * ly0:fy1 - 4 * ly0, fx0 - 4 * lx0:fx1 - 4 * lx0]
    out = F.interpolate(up, (y1 - y0, x1 - x0), mode="bilinear", align_corners=False)
    return out[0]


def predict_one_box_per_call(sam: Any, window: npt.NDArray[np.uint8],
                             boxes_xyxy: npt.NDArray[np.float64],
                             encode_each: bool = False
                             ) -> list[tuple[npt.NDArray[np.bool_], float]]:
    """Reference path: ``SamPredictor.predict`` with one box per call, full-size masks.

    This is the straightforward way (and, with ``encode_each=True``, the authors' way: one
    image encoding per annotation).  Used by tests and ``bench/bench_refine.py`` to check the
    batched path.

    Returns:
        Per box, the full ``(side, side)`` bool mask of the padded window and its predicted IoU.
    """
    from segment_anything import SamPredictor

    side = window_side(window.shape[0], window.shape[1])
    padded = np.ascontiguousarray(pad_window(window, side))
    pred = SamPredictor(sam)
    out = []
    for i, box in enumerate(np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)):
        if encode_each or i == 0:
            pred.set_image(padded)
        masks, iou, _ = pred.predict(box=box, multimask_output=False)
        out.append((np.asarray(masks[0], dtype=bool), float(iou[0])))
    return out
