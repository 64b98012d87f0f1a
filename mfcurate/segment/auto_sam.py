"""SAM automatic mask generation for cell-scale objects (SAM-AUG).

Two generators over the same model, both :class:`~mfcurate.segment.AutoSegmenter`:

* :class:`SamAutoSegmenter` — mfcurate's generator.  It runs SAM's prompt encoder and mask
  decoder on a point grid exactly as ``SamAutomaticMaskGenerator`` does, but never
  upsamples a low-resolution mask it does not need: masks are filtered on predicted IoU
  first, and each survivor is upsampled only inside the window its logits can reach.  The
  window result is the same as SAM's full-size bilinear upsampling (both interpolation
  stages of ``Sam.postprocess_masks`` are composed into one separable linear map, and a
  pixel outside the window cannot exceed the lowest threshold), so stability scores,
  boxes and masks match the stock generator while the cost scales with the objects, not
  with 3 x 4,096 full-size masks per tile.  Masks whose area cannot fall inside the µm²
  range are rejected from a bound computed on the low-resolution logits.

  On the real architectures the decoder pass per prompt (~90 ms for ViT-B on 2 CPU cores)
  decides the cost of a slide, so by default the generator prompts fewer points:

  - a cheap **point prior** (:mod:`mfcurate.segment.point_prior`: tissue mask and a
    lowered-threshold haematoxylin foreground) drops grid points that cannot lie in a
    nucleus (glass, stroma, lumen; >= 98 % of the nuclei the classical segmenter finds on
    the real tiles keep a prompt);
  - points go coarse to fine and a point inside a mask already kept in the tile (a
    cell-scale one) is skipped;
  - the decoder's transformer and IoU head run first (:mod:`mfcurate.segment.sam_decoder`)
    and masks are upscaled only for prompts with a mask above the IoU threshold;
  - the kept points of a tile go through the decoder ``points_per_batch`` at a time (the
    memory bound: decoder memory grows linearly with it).

  With ``point_prior="none"`` and ``skip_covered=False`` the masks are the stock
  generator's.  The image embedding is not reused across overlapping tiles: SAM's ViT
  has global-attention blocks and absolute position embeddings, so every embedding cell
  depends on the whole 1024 px input and the overlap of two tiles has different features
  in each (no exact reuse exists).
* :class:`StockSamAutoSegmenter` — a thin wrapper of
  ``segment_anything.SamAutomaticMaskGenerator`` with the same settings (the reference the
  benchmark compares against; also usable with ``kind="sam_stock"``).

Settings use SAM's keyword names (``points_per_side``, ``points_per_batch``,
``pred_iou_thresh``, ``stability_score_thresh``, ``stability_score_offset``,
``box_nms_thresh``) with the paper's SAM-AUG defaults: a 64 x 64 grid, predicted IoU > 0.8,
stability >= 0.8, then an area filter on the **mask** area in µm² (2.25 .. 225 µm² through
the tile's µm/px), then box NMS ranked by predicted IoU.

Arrays: tiles are ``(rows, cols, 3)`` uint8 RGB; masks are bool ``(rows, cols)``; boxes
``xyxy`` in tile pixels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mfcurate.segment import Instance
from mfcurate.segment.sam_decoder import (
    decode_masks,
    decode_multimask_shared,
    decode_tokens_shared,
)

__all__ = ["AmgOptions", "SamAutoSegmenter", "StockSamAutoSegmenter", "decode_masks",
           "decode_multimask_shared", "decode_tokens_shared", "grid_order"]

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class AmgOptions:
    """Automatic-mask-generation settings (SAM keyword names, SAM-AUG defaults).

    Attributes:
        points_per_side: the point grid is ``points_per_side`` x ``points_per_side`` over the
            tile (64 -> 4,096 prompts, 16 px spacing on a 1024 tile).
        points_per_batch: prompts decoded together (memory vs speed).
        pred_iou_thresh: keep masks whose predicted IoU is **greater** than this.
        stability_score_thresh: keep masks whose stability is **at least** this.
        stability_score_offset: logit offset of the stability score (SAM's default 1.0).
        box_nms_thresh: box IoU above which the lower-ranked mask is suppressed.
        min_area_um2: smallest mask area kept, µm².
        max_area_um2: largest mask area kept, µm².
        point_prior: which grid points are prompted (:mod:`mfcurate.segment.point_prior`):
            ``"nuclei"`` (default: tissue and a lowered-threshold haematoxylin foreground),
            ``"tissue"`` or ``"none"`` (every point, as SAM).
        skip_covered: skip a point that falls inside a mask already kept in this tile (a
            mask that passed every filter and is cell-scale: at most ``cover_max_um2``;
            needs the tile's µm/px); points go coarse to fine
            (the even-even sub-grid first) so that fine points land in coarse points'
            masks.  With ``point_prior="none"`` and ``skip_covered=False`` the masks are
            SAM's.
        cover_max_um2: largest kept mask, µm², whose pixels make later points skip.
    """

    points_per_side: int = 64
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.8
    stability_score_thresh: float = 0.8
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    min_area_um2: float = 2.25
    max_area_um2: float = 225.0
    point_prior: str = "nuclei"
    skip_covered: bool = True
    cover_max_um2: float = 225.0

    def __post_init__(self) -> None:
        from mfcurate.segment.point_prior import PRIORS

        if self.points_per_side < 1 or self.points_per_batch < 1:
            raise ValueError("points_per_side and points_per_batch must be >= 1")
        if self.point_prior not in PRIORS:
            raise ValueError(f"point_prior must be one of {PRIORS} (got {self.point_prior!r})")
        if not 0 <= self.min_area_um2 < self.max_area_um2:
            raise ValueError("need 0 <= min_area_um2 < max_area_um2")

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> AmgOptions:
        """Build from keyword options, rejecting unknown names with a clear message."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise ValueError(f"unknown SAM generator option(s) {unknown}; known: {sorted(known)}")
        return cls(**{k: v for k, v in kwargs.items() if v is not None})

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for logs and cache keys)."""
        return asdict(self)


def _interp_matrix(n_in: int, n_out: int) -> npt.NDArray[np.float64]:
    """``(n_out, n_in)`` matrix of PyTorch's 1-D bilinear resize (align_corners=False)."""
    m = np.zeros((n_out, n_in), np.float64)
    # float32 arithmetic, as PyTorch's CPU/GPU kernels compute the source index
    scale = np.float32(n_in) / np.float32(n_out)
    dst = np.arange(n_out, dtype=np.float32)
    src = np.maximum(scale * (dst + np.float32(0.5)) - np.float32(0.5), np.float32(0.0))
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    l1 = (src - i0.astype(np.float32)).astype(np.float64)
    l1 = np.where(i1 == i0, 0.0, l1)
    np.add.at(m, (np.arange(n_out), i0), 1.0 - l1)
    np.add.at(m, (np.arange(n_out), i1), l1)
    return m


class _Upsampler:
    """Windowed, exact version of ``Sam.postprocess_masks`` for one axis pair.

    ``full = A_y @ low @ A_x.T`` with ``A = resize(input -> original) @ crop @
    resize(low -> img_size)``; each output row/column depends on a contiguous range of
    low-resolution rows/columns (``lo[i] .. hi[i]``).
    """

    def __init__(self, low: int, img_size: int, input_hw: tuple[int, int],
                 orig_hw: tuple[int, int]) -> None:
        self.mats: list[FloatArray] = []
        self.lo: list[npt.NDArray[np.int64]] = []
        self.hi: list[npt.NDArray[np.int64]] = []
        self.factor: list[int] = []
        for n_in, n_orig in zip(input_hw, orig_hw, strict=True):
            r1 = _interp_matrix(low, img_size)[:n_in]
            a = _interp_matrix(n_in, n_orig) @ r1 if n_in != n_orig else r1
            nz = a != 0
            self.mats.append(a.astype(np.float32))
            self.lo.append(nz.argmax(axis=1).astype(np.int64))
            self.hi.append((low - 1 - nz[:, ::-1].argmax(axis=1)).astype(np.int64))
            exact = n_in == n_orig == img_size and img_size % low == 0
            self.factor.append(img_size // low if exact else 0)

    def extent(self, axis: int, a0: int, a1: int) -> int:
        """Number of output pixels along ``axis`` reachable from low-res indices a0..a1."""
        o0 = int(np.searchsorted(self.hi[axis], a0, side="left"))
        o1 = int(np.searchsorted(self.lo[axis], a1, side="right"))
        return max(o1 - o0, 0)

    def window(self, logits: FloatArray, r0: int, r1: int, c0: int, c1: int
               ) -> tuple[FloatArray, int, int]:
        """Full-size logits of the output window reachable from low-res rows r0..r1, cols c0..c1.

        Returns:
            ``(window, y0, x0)``: the window and its top-left in output pixels.
        """
        out: list[tuple[int, int, int, int]] = []
        for ax, (a0, a1) in enumerate(((r0, r1), (c0, c1))):
            lo, hi = self.lo[ax], self.hi[ax]
            o0 = int(np.searchsorted(hi, a0, side="left"))
            o1 = int(np.searchsorted(lo, a1, side="right"))  # exclusive
            s0 = int(lo[o0]) if o0 < o1 else a0
            s1 = int(hi[o1 - 1]) + 1 if o0 < o1 else a1 + 1
            out.append((o0, o1, s0, s1))
        (y0, y1, sr0, sr1), (x0, x1, sc0, sc1) = out
        ay = self.mats[0][y0:y1, sr0:sr1]
        ax_ = self.mats[1][x0:x1, sc0:sc1]
        win = ay @ logits[sr0:sr1, sc0:sc1] @ ax_.T
        return np.asarray(win, np.float32), y0, x0


def _dilate_erode_counts(pos: npt.NDArray[np.bool_]) -> tuple[int, int]:
    import cv2

    p8 = pos.astype(np.uint8)
    k = np.ones((3, 3), np.uint8)
    return int(cv2.dilate(p8, k).sum()), int(cv2.erode(p8, k, borderType=cv2.BORDER_REPLICATE)
                                            .sum())


def grid_order(points_per_side: int) -> npt.NDArray[np.int64]:
    """Indices of SAM's point grid, coarse to fine: the even-even sub-grid, then the rest.

    Grid index ``i * n + j`` is row ``i``, column ``j`` (SAM's ``build_point_grid`` order).
    """
    n = points_per_side
    i, j = np.divmod(np.arange(n * n), n)
    level = (i % 2) + (j % 2)
    return np.argsort(level, kind="stable").astype(np.int64)


@dataclass
class PromptStats:
    """What one tile's generation prompted (for benchmarks and logs).

    Attributes:
        grid: points of the full grid.
        after_prior: points the prior kept.
        skipped_covered: points skipped inside an already kept mask.
        decoded: points sent through the decoder's transformer.
        upscaled: points whose masks were upscaled (some mask passed predicted IoU).
    """

    grid: int = 0
    after_prior: int = 0
    skipped_covered: int = 0
    decoded: int = 0
    upscaled: int = 0


class SamAutoSegmenter:
    """Fast SAM automatic mask generator for cell-scale objects.

    Args:
        sam: a ``segment_anything.modeling.Sam`` (see :mod:`mfcurate.segment.sam_models`).
        options: generator settings; keyword names as in SAM.
        device: torch device string; default: the model's device.
    """

    name = "sam_auto"

    def __init__(self, sam: Any, options: AmgOptions | None = None,
                 device: str | None = None) -> None:
        from segment_anything import SamPredictor

        self.options = options or AmgOptions()
        if device is not None:
            sam = sam.to(device)
        sam.eval()
        self.sam = sam
        self.predictor = SamPredictor(sam)
        #: masks whose window exceeds this fraction of the tile are upsampled whole
        self.big_window = 0.25
        #: compute the first decoder layer's image-side projections once per tile
        self.share_first_layer = True
        #: prompts of the last :meth:`generate` call
        self.last_stats = PromptStats()
        self._up: tuple[tuple[int, ...], _Upsampler] | None = None

    # ------------------------------------------------------------------ model passes
    def _decode(self, points: npt.NDArray[np.float64], im_size: tuple[int, int]
                ) -> tuple[Any, Any, Any]:
        """Masks of the points that have a mask above the IoU threshold.

        Returns:
            ``(low (K, 3, 256, 256), iou (K, 3), point_index (K,))``.
        """
        import torch

        pred = self.predictor
        pts = pred.transform.apply_coords(points, im_size)
        in_points = torch.as_tensor(pts, device=pred.device)[:, None, :]
        in_labels = torch.ones(in_points.shape[0], 1, dtype=torch.int, device=pred.device)
        sparse, dense = self.sam.prompt_encoder(points=(in_points, in_labels), boxes=None,
                                                masks=None)
        pe = self.sam.prompt_encoder.get_dense_pe()
        if not self.share_first_layer:
            low, iou = self.sam.mask_decoder(
                image_embeddings=pred.features, image_pe=pe, sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense, multimask_output=True)
            return low, iou, torch.arange(len(points), device=low.device)
        dec = self.sam.mask_decoder
        hs, keys, iou = decode_tokens_shared(dec, pred.features, pe, sparse, dense)
        sel = torch.arange(len(points), device=iou.device)
        if self.options.pred_iou_thresh > 0.0:  # IoU first: upscale only what can survive
            sel = torch.nonzero((iou > self.options.pred_iou_thresh).any(dim=1)).flatten()
            hs, keys, iou = hs[sel], keys[sel], iou[sel]
        hw = (int(pred.features.shape[-2]), int(pred.features.shape[-1]))
        low = decode_masks(dec, hs, keys, hw) if len(sel) else iou.new_zeros((0, 3, 1, 1))
        return low, iou, sel

    def _points(self, tile: npt.NDArray[np.uint8], mpp: float | None
                ) -> npt.NDArray[np.float64]:
        """Grid points ``(N, 2)`` ``(x, y)`` the prior keeps, in prompting order."""
        from segment_anything.utils.amg import build_point_grid

        from mfcurate.segment.point_prior import point_prior, points_in

        o = self.options
        rows, cols = tile.shape[:2]
        points = build_point_grid(o.points_per_side) * np.array([cols, rows])[None, :]
        if o.skip_covered:
            points = points[grid_order(o.points_per_side)]
        self.last_stats = PromptStats(grid=len(points))
        prior = point_prior(tile, mpp, o.point_prior)
        if prior is not None:
            points = points[points_in(prior, points)]
        self.last_stats.after_prior = len(points)
        return np.asarray(points, np.float64)

    def generate(self, tile: npt.NDArray[np.uint8], mpp: float | None = None
                 ) -> list[dict[str, Any]]:
        """Masks of a tile as records like SAM's (``segmentation`` bool crop + offset).

        Args:
            tile: ``(rows, cols, 3)`` uint8 RGB.
            mpp: µm per pixel for the area filter; None disables the area filter.

        Returns:
            Records with ``mask`` (tight bool crop), ``offset_xy``, ``bbox`` (XYXY inclusive,
            as SAM's internal boxes), ``area`` (px), ``predicted_iou``, ``stability_score``,
            ``point_coords``, sorted as the NMS keeps them (by predicted IoU).
        """
        import torch
        from torchvision.ops.boxes import batched_nms

        o = self.options
        rows, cols = tile.shape[:2]
        points = self._points(tile, mpp)
        covered = np.zeros((rows, cols), bool) if o.skip_covered and mpp else None
        cover_px = o.cover_max_um2 / mpp**2 if mpp else 0.0
        recs: list[dict[str, Any]] = []
        if len(points) == 0:
            return []
        with torch.inference_mode():
            self.predictor.set_image(tile)
            pos = 0
            while pos < len(points):
                batch, pos = self._next_batch(points, pos, covered)
                n_before = len(recs)
                if len(batch):
                    self._batch(batch, tile, mpp, recs)
                if covered is not None:
                    for r in recs[n_before:]:
                        if r["area"] > cover_px:
                            continue
                        x, y = r["offset_xy"]
                        h, w = r["mask"].shape
                        covered[y:y + h, x:x + w] |= r["mask"]
            self.predictor.reset_image()
        if not recs:
            return []
        boxes = torch.tensor([r["bbox"] for r in recs], dtype=torch.float32)
        scores = torch.tensor([r["predicted_iou"] for r in recs], dtype=torch.float32)
        keep_idx = batched_nms(boxes, scores, torch.zeros(len(recs), dtype=torch.int64),
                               iou_threshold=o.box_nms_thresh)
        return [recs[i] for i in keep_idx.tolist()]

    def _next_batch(self, points: npt.NDArray[np.float64], pos: int,
                    covered: npt.NDArray[np.bool_] | None
                    ) -> tuple[npt.NDArray[np.float64], int]:
        """Up to ``points_per_batch`` points from ``pos`` on that no kept mask covers yet."""
        from mfcurate.segment.point_prior import points_in

        n = self.options.points_per_batch
        if covered is None:
            return points[pos:pos + n], min(pos + n, len(points))
        out: list[npt.NDArray[np.float64]] = []
        have = 0
        while have < n and pos < len(points):
            more = points[pos:pos + n - have]
            pos += len(more)
            inside = points_in(covered, more)
            self.last_stats.skipped_covered += int(inside.sum())
            out.append(more[~inside])
            have += int((~inside).sum())
        return (np.concatenate(out) if out else points[:0]), pos

    def _batch(self, batch: npt.NDArray[np.float64], tile: npt.NDArray[np.uint8],
               mpp: float | None, recs: list[dict[str, Any]]) -> None:
        """Decode one batch of points; append the records of masks that pass the filters."""
        import torch

        o = self.options
        rows, cols = tile.shape[:2]
        thr = float(self.sam.mask_threshold)
        t_hi, t_lo = thr + o.stability_score_offset, thr - o.stability_score_offset
        if mpp is not None:
            min_px, max_px = o.min_area_um2 / mpp**2, o.max_area_um2 / mpp**2
        else:
            min_px, max_px = 0.0, float("inf")
        f_iou = np.float32(o.pred_iou_thresh)
        f_stab = np.float32(o.stability_score_thresh)
        st = self.last_stats
        st.decoded += len(batch)
        low_t, iou_t, sel_t = self._decode(batch, (rows, cols))
        st.upscaled += len(sel_t)
        n_multi = int(iou_t.shape[1])
        low_t = low_t.flatten(0, 1)
        iou_t = iou_t.flatten(0, 1)
        if o.pred_iou_thresh > 0.0:  # SAM only filters with a positive threshold
            keep = iou_t > o.pred_iou_thresh
        else:
            keep = torch.ones_like(iou_t, dtype=torch.bool)
        idx = torch.nonzero(keep).flatten()
        if idx.numel() == 0:
            return
        low = low_t[idx].float().cpu().numpy()
        ious = iou_t[idx].float().cpu().numpy()
        pidx = sel_t[idx // n_multi].cpu().numpy()
        input_hw = tuple(int(v) for v in self.predictor.input_size)
        key = (low.shape[-1], input_hw[0], input_hw[1], rows, cols)
        if self._up is None or self._up[0] != key:
            self._up = (key, _Upsampler(low.shape[-1], int(self.sam.image_encoder.img_size),
                                        (input_hw[0], input_hw[1]), (rows, cols)))
        up = self._up[1]
        big: list[int] = []
        for k in range(low.shape[0]):
            if o.pred_iou_thresh > 0.0 and not ious[k] > f_iou:
                continue
            pre = self._prefilter(up, low[k], thr, t_lo, min_px, max_px)
            if pre is None:
                continue
            if pre[4] > self.big_window * rows * cols:
                big.append(k)  # cheaper through SAM's own full-size upsampling
                continue
            win, y0, x0 = up.window(low[k], *pre[:4])
            self._keep(recs, win, y0, x0, thr, t_hi, t_lo, min_px, max_px, f_stab,
                       float(ious[k]), batch[pidx[k]])
        for c0 in range(0, len(big), 16):
            chunk = big[c0:c0 + 16]
            full = self.sam.postprocess_masks(
                torch.from_numpy(low[chunk])[:, None], input_hw, (rows, cols))
            full_np = full[:, 0].cpu().numpy()
            for j, k in enumerate(chunk):
                self._keep(recs, full_np[j], 0, 0, thr, t_hi, t_lo, min_px, max_px,
                           f_stab, float(ious[k]), batch[pidx[k]])

    @staticmethod
    def _prefilter(up: _Upsampler, low: FloatArray, thr: float, t_lo: float, min_px: float,
                   max_px: float) -> tuple[int, int, int, int, int] | None:
        """Low-res window ``(r0, r1, c0, c1, output_window_px)`` of a mask, or None.

        None means the mask is empty or its full-size area provably falls outside
        ``[min_px, max_px]``.
        """
        pos_lo = low > t_lo
        rr = np.flatnonzero(pos_lo.any(axis=1))
        if rr.size == 0:
            return None
        cc = np.flatnonzero(pos_lo.any(axis=0))
        if up.factor[0] and up.factor[1]:
            # exact bounds of the full-size area (> thr) from the 3x3 support of each block
            f2 = up.factor[0] * up.factor[1]
            dil, ero = _dilate_erode_counts(low > thr)
            if f2 * dil < min_px or f2 * ero > max_px:
                return None
        r0, r1, c0, c1 = int(rr[0]), int(rr[-1]), int(cc[0]), int(cc[-1])
        n_rows = up.extent(0, r0, r1)
        n_cols = up.extent(1, c0, c1)
        return r0, r1, c0, c1, n_rows * n_cols

    @staticmethod
    def _keep(recs: list[dict[str, Any]], win: FloatArray, y0: int, x0: int, thr: float,
              t_hi: float, t_lo: float, min_px: float, max_px: float, f_stab: np.float32,
              iou: float, point: npt.NDArray[np.float64]) -> None:
        """Stability, threshold, area filter and box of one full-size (window of a) mask."""
        union = int(np.count_nonzero(win > t_lo))
        inter = int(np.count_nonzero(win > t_hi))
        if union == 0 or (f_stab > 0 and not np.float32(inter) / np.float32(union) >= f_stab):
            return
        m = win > thr
        area = int(np.count_nonzero(m))
        if area == 0 or area < min_px or area > max_px:
            return
        ys = np.flatnonzero(m.any(axis=1))
        xs = np.flatnonzero(m.any(axis=0))
        crop = m[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1]
        ox, oy = x0 + int(xs[0]), y0 + int(ys[0])
        recs.append({
            "mask": crop, "offset_xy": (ox, oy), "area": area,
            "bbox": [ox, oy, x0 + int(xs[-1]), y0 + int(ys[-1])],
            "stability_score": float(np.float32(inter) / np.float32(union)),
            "predicted_iou": iou, "point_coords": [float(v) for v in point],
        })

    def segment_tile(self, tile: npt.NDArray[np.uint8], mpp: float) -> list[Instance]:
        """All cell-scale objects of a tile (masks in the tile frame, origin ``sam_auto``)."""
        return [Instance(mask=r["mask"], offset_xy=r["offset_xy"], score=r["predicted_iou"],
                         stability=r["stability_score"], origin="sam_auto")
                for r in self.generate(tile, mpp)]


class StockSamAutoSegmenter:
    """``segment_anything.SamAutomaticMaskGenerator`` with the SAM-AUG settings.

    SAM has no area filter (``min_mask_region_area`` only removes small islands and holes),
    so the µm² area filter is added where SAM applies its own filters, **before** the box
    NMS: SAM's generator runs with its NMS off (``box_nms_thresh=1.0``) and RLE output,
    masks outside the area range are dropped, then the same ``batched_nms`` by predicted
    IoU runs at ``box_nms_thresh`` and the survivors are decoded.  (NMS first would let a
    mask that the area filter removes suppress one it keeps.)  Without an ``mpp`` the area
    filter is off and this is SAM's generator unchanged.

    Args:
        sam: a ``Sam`` model.
        options: the same settings as :class:`SamAutoSegmenter` (the point prior and the
            skipping of covered points do not apply: every grid point is prompted).
        device: torch device string; default: the model's device.
    """

    name = "sam_auto_stock"

    def __init__(self, sam: Any, options: AmgOptions | None = None,
                 device: str | None = None) -> None:
        from segment_anything import SamAutomaticMaskGenerator

        self.options = o = options or AmgOptions()
        if device is not None:
            sam = sam.to(device)
        sam.eval()
        self.generator = SamAutomaticMaskGenerator(
            sam, points_per_side=o.points_per_side, points_per_batch=o.points_per_batch,
            pred_iou_thresh=o.pred_iou_thresh, stability_score_thresh=o.stability_score_thresh,
            stability_score_offset=o.stability_score_offset, box_nms_thresh=1.0,
            crop_n_layers=0, min_mask_region_area=0, output_mode="uncompressed_rle")

    def generate(self, tile: npt.NDArray[np.uint8], mpp: float | None = None
                 ) -> list[dict[str, Any]]:
        """SAM's records, area-filtered, then NMS (``bbox`` is SAM's XYWH)."""
        import torch
        from segment_anything.utils.amg import rle_to_mask
        from torchvision.ops.boxes import batched_nms

        o = self.options
        # SAM keeps empty masks (area 0, box at the origin) when no area filter is set; they
        # are no objects, and mfcurate's generator never emits them.
        anns = [a for a in self.generator.generate(tile) if a["area"] > 0]
        if mpp is not None:
            lo, hi = o.min_area_um2 / mpp**2, o.max_area_um2 / mpp**2
            anns = [a for a in anns if lo <= a["area"] <= hi]
        if not anns:
            return []
        xywh = torch.tensor([a["bbox"] for a in anns], dtype=torch.float32)
        boxes = torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], dim=1)
        scores = torch.tensor([a["predicted_iou"] for a in anns], dtype=torch.float32)
        keep = batched_nms(boxes, scores, torch.zeros(len(anns), dtype=torch.int64),
                           iou_threshold=o.box_nms_thresh)
        out = []
        for i in keep.tolist():
            a = dict(anns[i])
            a["segmentation"] = rle_to_mask(a["segmentation"])
            out.append(a)
        return out

    def segment_tile(self, tile: npt.NDArray[np.uint8], mpp: float) -> list[Instance]:
        """All cell-scale objects of a tile (origin ``sam_auto``)."""
        out = []
        for a in self.generate(tile, mpp):
            m = np.asarray(a["segmentation"], bool)
            ys = np.flatnonzero(m.any(axis=1))
            xs = np.flatnonzero(m.any(axis=0))
            if ys.size == 0:
                continue
            crop = m[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1]
            out.append(Instance(mask=crop, offset_xy=(int(xs[0]), int(ys[0])),
                                score=float(a["predicted_iou"]),
                                stability=float(a["stability_score"]), origin="sam_auto"))
        return out
