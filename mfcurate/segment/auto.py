"""Factory of automatic segmenters (``harvest``, ``detect``).

Usage (a stable interface; ``detect`` relies on it)::

    seg = make_auto_segmenter("classical")                       # no model needed
    seg = make_auto_segmenter("sam", checkpoint=Path("sam_vit_h_4b8939.pth"),
                              model_type="vit_h", device="cuda", points_per_side=64)
    for inst in seg.segment_tile(tile_rgb, mpp=0.25):            # masks in the tile frame
        ...

Kinds:

* ``"classical"`` — :class:`~mfcurate.segment.auto_classical.ClassicalAutoSegmenter`
  (haematoxylin threshold + watershed); options ``min_area_um2``, ``max_area_um2``,
  ``threshold``, ``min_threshold``, ``smooth_um``, ``split_depth_um``.
* ``"sam"`` — :class:`~mfcurate.segment.auto_sam.SamAutoSegmenter` (mfcurate's fast
  generator) on the checkpoint; options with SAM's keyword names (``points_per_side``,
  ``points_per_batch``, ``pred_iou_thresh``, ``stability_score_thresh``,
  ``stability_score_offset``, ``box_nms_thresh``) plus ``min_area_um2``/``max_area_um2``.
* ``"sam_stock"`` — the same settings through ``segment_anything.SamAutomaticMaskGenerator``.

A ``sam=`` keyword passes an already built model instead of a checkpoint (tests, benchmarks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mfcurate.errors import UsageError
from mfcurate.segment import AutoSegmenter
from mfcurate.segment.spec import DEFAULT_SAM_MODEL

AUTO_KINDS = ("classical", "sam", "sam_stock")

_CLASSICAL_KEYS = {"min_area_um2", "max_area_um2", "threshold", "min_threshold", "smooth_um",
                   "split_depth_um"}


def make_auto_segmenter(kind: str = "classical", checkpoint: Path | str | None = None,
                        model_type: str = DEFAULT_SAM_MODEL, device: str = "auto",
                        fast_encoder: bool = True, encoder_bf16: bool = False,
                        **amg_options: Any) -> AutoSegmenter:
    """Build an automatic segmenter.

    Args:
        kind: ``"classical"``, ``"sam"`` or ``"sam_stock"``.
        checkpoint: SAM weights (required for the SAM kinds unless ``sam=`` is given).
        model_type: ``vit_h``, ``vit_l``, ``vit_b`` or ``tiny``.
        device: torch device for SAM (``auto``: CUDA when available).
        fast_encoder: for ``"sam"`` with a model loaded here from ``checkpoint``, run the
            image encoder's attention fused (:mod:`mfcurate.segment.fast_attention`; same
            embeddings to float rounding).  A model given as ``sam=`` is used as it is, and
            ``"sam_stock"`` (the reference) keeps the stock encoder.
        encoder_bf16: likewise, run that encoder in bf16 autocast (opt-in; not the float32
            embedding).
        **amg_options: generator options (see the module docstring); None values are
            ignored (defaults apply).

    Returns:
        An object with ``name`` and ``segment_tile(tile, mpp) -> list[Instance]``.

    Raises:
        UsageError: unknown kind or option, or a SAM kind without a checkpoint.
        MfcurateError: the checkpoint cannot be loaded.
    """
    opts = {k: v for k, v in amg_options.items() if v is not None}
    if kind == "classical":
        from mfcurate.segment.auto_classical import ClassicalAutoSegmenter

        unknown = sorted(set(opts) - _CLASSICAL_KEYS)
        if unknown:
            raise UsageError(f"option(s) {unknown} do not apply to the classical segmenter")
        return ClassicalAutoSegmenter(**opts)
    if kind not in AUTO_KINDS:
        raise UsageError(f"unknown segmenter kind {kind!r}; choose one of {AUTO_KINDS}")
    from mfcurate.segment.auto_sam import AmgOptions, SamAutoSegmenter, StockSamAutoSegmenter
    from mfcurate.segment.spec import resolve_device

    device = resolve_device(device)
    sam = opts.pop("sam", None)
    try:
        options = AmgOptions.from_kwargs(**opts)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    if sam is None:
        if checkpoint is None:
            raise UsageError("the SAM segmenter needs a checkpoint (--checkpoint PATH); "
                             "without one use the classical segmenter")
        from mfcurate.segment.sam_models import load_sam

        sam = load_sam(Path(checkpoint), model_type, device)
        if kind == "sam":
            from mfcurate.segment.fast_attention import patch_image_encoder, set_encoder_bf16

            if fast_encoder:
                patch_image_encoder(sam)
            set_encoder_bf16(sam, encoder_bf16)
    if kind == "sam":
        return SamAutoSegmenter(sam, options, device=device)
    return StockSamAutoSegmenter(sam, options, device=device)
