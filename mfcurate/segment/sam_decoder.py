"""SAM's mask decoder for many point prompts on one tile, split so prompts can be dropped early.

:func:`decode_tokens_shared` runs the two-way transformer and the IoU head (the first block's
image-side work once per tile, not once per prompt); :func:`decode_masks` upscales masks only
for the prompts a caller keeps.  Together they equal ``MaskDecoder(...,
multimask_output=True)`` (:func:`decode_multimask_shared`, checked against SAM in the tests).

Shapes: image embeddings ``(1, C, h, w)``; prompts ``(B, T, C)``; low-resolution masks
``(B, 3, 4h, 4w)``.
"""

from __future__ import annotations

import math
from typing import Any


def _mha(attn: Any, q: Any, k: Any, v: Any) -> Any:
    """SAM ``Attention`` on already projected q/k/v (batch dims broadcast)."""
    import torch

    n = attn.num_heads

    def heads(x: Any) -> Any:
        b, t, c = x.shape
        return x.reshape(b, t, n, c // n).transpose(1, 2)

    qh, kh, vh = heads(q), heads(k), heads(v)
    a = qh @ kh.permute(0, 1, 3, 2)
    a = a / math.sqrt(qh.shape[-1])
    a = torch.softmax(a, dim=-1)
    out = a @ vh
    b, _, t, cph = out.shape
    out = out.transpose(1, 2).reshape(b, t, n * cph)
    return attn.out_proj(out)


def decode_tokens_shared(decoder: Any, image_embeddings: Any, image_pe: Any, sparse: Any,
                         dense: Any) -> tuple[Any, Any, Any]:
    """The two-way transformer and IoU head of ``MaskDecoder`` for many point prompts.

    The first two-way block's image-side work (the token-to-image keys/values, the
    image-to-token queries and the ``repeat_interleave`` of the image embedding and
    positional encoding per prompt) is done once instead of once per prompt: before that
    block the image tokens are the same for every prompt (no mask input, so the dense
    embedding is the same ``no_mask_embed`` everywhere).  No mask is upscaled here, so a
    caller can drop prompts on predicted IoU before paying for the masks
    (:func:`decode_masks`).

    Args:
        decoder: ``sam.mask_decoder``.
        image_embeddings: ``(1, C, h, w)`` features of the tile.
        image_pe: ``(1, C, h, w)`` dense positional encoding.
        sparse: ``(B, T, C)`` prompt tokens.
        dense: ``(B, C, h, w)`` dense prompt embeddings (identical rows).

    Returns:
        ``(hs (B, T', C) output tokens, keys (B, h*w, C) image tokens, iou (B, 3))`` for
        the three multimask outputs.
    """
    import torch

    tr = decoder.transformer
    out_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
    tokens = torch.cat((out_tokens.unsqueeze(0).expand(sparse.size(0), -1, -1), sparse), dim=1)
    src1 = image_embeddings + dense[:1]
    keys1 = src1.flatten(2).permute(0, 2, 1)  # 1 x N x C
    pe = image_pe.flatten(2).permute(0, 2, 1)
    first = tr.layers[0]
    queries = first.norm1(first.self_attn(q=tokens, k=tokens, v=tokens))  # skip_first_layer_pe
    a = first.cross_attn_token_to_image
    k_img = a.k_proj(keys1 + pe)
    v_img = a.v_proj(keys1)
    queries = first.norm2(queries + _mha(a, a.q_proj(queries + tokens), k_img, v_img))
    queries = first.norm3(queries + first.mlp(queries))
    a2 = first.cross_attn_image_to_token
    q_img = a2.q_proj(keys1 + pe)
    out = _mha(a2, q_img, a2.k_proj(queries + tokens), a2.v_proj(queries))
    keys = first.norm4(keys1 + out)  # B x N x C from here on
    for layer in tr.layers[1:]:
        queries, keys = layer(queries=queries, keys=keys, query_pe=tokens, key_pe=pe)
    attn_out = tr.final_attn_token_to_image(q=queries + tokens, k=keys + pe, v=keys)
    hs = tr.norm_final_attn(queries + attn_out)
    iou_pred = decoder.iou_prediction_head(hs[:, 0, :])
    return hs, keys, iou_pred[:, 1:]


def decode_masks(decoder: Any, hs: Any, keys: Any, hw: tuple[int, int]) -> Any:
    """Low-resolution mask logits ``(B, 3, 4h, 4w)`` of the multimask outputs.

    Args:
        decoder: ``sam.mask_decoder``.
        hs: ``(B, T', C)`` output tokens of :func:`decode_tokens_shared`.
        keys: ``(B, h*w, C)`` image tokens of :func:`decode_tokens_shared`.
        hw: ``(h, w)`` of the image embedding.
    """
    import torch

    b, _, c = keys.shape
    src = keys.transpose(1, 2).reshape(b, c, hw[0], hw[1])
    upscaled = decoder.output_upscaling(src)
    mask_tokens_out = hs[:, 1:1 + decoder.num_mask_tokens, :]
    hyper_in = torch.stack([decoder.output_hypernetworks_mlps[i](mask_tokens_out[:, i, :])
                            for i in range(decoder.num_mask_tokens)], dim=1)
    b, cu, hu, wu = upscaled.shape
    masks = (hyper_in @ upscaled.view(b, cu, hu * wu)).view(b, -1, hu, wu)
    return masks[:, 1:]


def decode_multimask_shared(decoder: Any, image_embeddings: Any, image_pe: Any, sparse: Any,
                            dense: Any) -> tuple[Any, Any]:
    """``MaskDecoder(..., multimask_output=True)`` for many point prompts on one image.

    Same result as SAM's decoder (:func:`decode_tokens_shared` then :func:`decode_masks`).

    Returns:
        ``(low_res_masks (B, 3, 4h, 4w), iou_predictions (B, 3))``.
    """
    hs, keys, iou = decode_tokens_shared(decoder, image_embeddings, image_pe, sparse, dense)
    hw = (int(image_embeddings.shape[-2]), int(image_embeddings.shape[-1]))
    return decode_masks(decoder, hs, keys, hw), iou
