"""Load Segment Anything models from a user-supplied checkpoint (never downloaded).

``load_sam`` builds the architecture with ``segment_anything``'s own registry and loads the
weights with ``torch.load(weights_only=True)``.  ``build_tiny_sam`` makes a small model from
the same classes (random weights) for tests and CPU benchmarks, and ``save_checkpoint`` writes
a state dict the loader reads back, so the real loading path is what tests exercise.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from mfcurate.errors import DependencyNotFoundError, MfcurateError

MODEL_TYPES = ("vit_h", "vit_l", "vit_b", "tiny")


def _sam_modules() -> Any:
    try:
        import segment_anything
    except ImportError as exc:  # pragma: no cover - declared dependency
        raise DependencyNotFoundError("segment-anything is not installed: "
                                      "pip install segment-anything") from exc
    return segment_anything


def build_tiny_sam(seed: int = 0, image_size: int = 1024) -> Any:
    """A small SAM (ViT with 2 blocks, 64-dim embeddings) with random weights.

    It has the real prompt encoder and mask decoder, accepts 1024 px inputs like the real
    models and runs in well under a second per image on a CPU.
    """
    import torch

    _sam_modules()
    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    torch.manual_seed(seed)
    prompt_dim = 256
    vit_patch = 16
    embed = image_size // vit_patch
    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=2, embed_dim=64, img_size=image_size, mlp_ratio=2,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=2, patch_size=vit_patch,
            qkv_bias=True, use_rel_pos=True, global_attn_indexes=(1,), window_size=7,
            out_chans=prompt_dim,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=prompt_dim, image_embedding_size=(embed, embed),
            input_image_size=(image_size, image_size), mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=prompt_dim, mlp_dim=256,
                                          num_heads=8),
            transformer_dim=prompt_dim, iou_head_depth=3, iou_head_hidden_dim=64,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    sam.eval()
    return sam


def sharpen_random_sam(sam: Any, gain: float = 50.0, blobs: bool = False) -> Any:
    """Make a randomly initialised SAM give decisive masks (in place; returns ``sam``).

    Random weights give logits near the mask threshold, so stability and area filters mean
    nothing.  The last layer of each output hypernetwork is scaled by ``gain``; with
    ``blobs`` the mask upscaling's transposed-convolution kernels are replaced by their mean,
    so masks are blobs of embedding cells with no pixel noise from random kernels.  For tests
    and benchmarks only (the compute does not depend on the weights).
    """
    import torch

    with torch.no_grad():
        if blobs:
            for m in sam.mask_decoder.output_upscaling:
                if isinstance(m, torch.nn.ConvTranspose2d):
                    m.weight.copy_(m.weight.mean((2, 3), keepdim=True).expand_as(m.weight))
        for mlp in sam.mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.mul_(gain)
            mlp.layers[-1].bias.mul_(gain)
    return sam


def save_checkpoint(sam: Any, path: Path | str) -> Path:
    """Save a model's state dict (the format of the official checkpoints)."""
    import torch

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sam.state_dict(), p)
    return p


def load_sam(checkpoint: Path | str, model_type: str = "vit_h", device: str = "cpu") -> Any:
    """Build a SAM of ``model_type`` and load ``checkpoint`` (weights only) onto ``device``.

    ``model_type`` is one of ``vit_h``, ``vit_l``, ``vit_b`` (the official checkpoints) or
    ``tiny`` (:func:`build_tiny_sam`'s architecture).

    Raises:
        MfcurateError: the file is missing, is not a state dict, or does not fit the model.
    """
    import torch

    path = Path(checkpoint)
    if model_type not in MODEL_TYPES:
        raise MfcurateError(f"unknown SAM model type {model_type!r}; choose {MODEL_TYPES}")
    if not path.is_file():
        raise MfcurateError(f"SAM checkpoint {path} does not exist (download it yourself; "
                            "mfcurate never downloads weights)")
    if model_type == "tiny":
        sam = build_tiny_sam()
    else:
        sam = _sam_modules().sam_model_registry[model_type](checkpoint=None)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise MfcurateError(f"{path}: not a loadable weights-only checkpoint ({exc})") from exc
    if not isinstance(state, dict):
        raise MfcurateError(f"{path}: expected a state dict, got {type(state).__name__}")
    try:
        sam.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise MfcurateError(f"{path}: does not match SAM {model_type} ({first})") from exc
    sam.to(device)
    sam.eval()
    return sam
