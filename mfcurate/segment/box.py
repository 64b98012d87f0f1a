"""Factory of box segmenters: ``make_box_segmenter("classical" | "sam", ...)``.

Used by ``refine-masks`` and ``register-phh3``.  SAM weights are a user path (never downloaded)
and are loaded weights-only by :func:`mfcurate.segment.sam_models.load_sam`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mfcurate.errors import UsageError
from mfcurate.segment import BoxSegmenter
from mfcurate.segment.spec import DEFAULT_SAM_MODEL

SEGMENTER_KINDS = ("classical", "sam")


def make_box_segmenter(kind: str = "classical", checkpoint: Path | str | None = None,
                       model_type: str = DEFAULT_SAM_MODEL, device: str = "auto",
                       fast_encoder: bool = True, encoder_bf16: bool = False,
                       **options: Any) -> BoxSegmenter:
    """Build a box segmenter.

    Args:
        kind: ``"classical"`` (haematoxylin OD, no weights) or ``"sam"``.
        checkpoint: SAM checkpoint file (required for ``"sam"``).
        model_type: ``vit_h``, ``vit_l``, ``vit_b`` or ``tiny`` (tests).
        device: torch device for SAM (``auto``: CUDA when available; ``cpu``, ``cuda``...).
        fast_encoder: run SAM's image-encoder attention fused
            (:mod:`mfcurate.segment.fast_attention`; same embeddings to float rounding).
        encoder_bf16: run SAM's image encoder in bf16 autocast (opt-in; not the float32
            embedding).
        **options: passed to the segmenter's constructor (e.g. ``box_fit="tight"`` for the
            classical one, ``pad_frac`` or ``batch_size`` for SAM).

    Raises:
        UsageError: unknown kind, or ``"sam"`` without a checkpoint.
        MfcurateError: the checkpoint cannot be loaded.
    """
    if kind == "classical":
        from mfcurate.segment.box_classical import ClassicalBoxSegmenter

        return ClassicalBoxSegmenter(**options)
    if kind == "sam":
        if checkpoint is None:
            raise UsageError("the SAM segmenter needs a checkpoint (--sam-checkpoint PATH)")
        from mfcurate.segment.box_sam import SamBoxSegmenter
        from mfcurate.segment.sam_models import load_sam
        from mfcurate.segment.spec import resolve_device

        sam = load_sam(checkpoint, model_type, resolve_device(device))
        from mfcurate.segment.fast_attention import patch_image_encoder, set_encoder_bf16

        if fast_encoder:
            patch_image_encoder(sam)
        set_encoder_bf16(sam, encoder_bf16)
        return SamBoxSegmenter(sam, **options)
    raise UsageError(f"unknown segmenter {kind!r}; choose one of {', '.join(SEGMENTER_KINDS)}")
