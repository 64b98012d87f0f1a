"""A cheaper forward for the attention blocks of SAM's image encoder (same embeddings).

``segment_anything``'s ViT computes each attention block explicitly: the logits
``(q * scale) @ k^T`` (``heads x N x N`` floats, ``N = H * W`` tokens: 4,096 in the global
blocks of a 1024 px input, so 12 x 4096² floats = 805 MB for ViT-B), then adds the decomposed
relative-position terms to that matrix (another copy), then a softmax (another) and
``@ v``.  On a CPU those passes over memory, not the arithmetic, dominate the encoder.

:func:`patch_image_encoder` replaces the ``forward`` of every ``Attention`` module of a
loaded model with :func:`fast_attention_forward`: the relative-position terms become an
additive bias passed to :func:`torch.nn.functional.scaled_dot_product_attention` (a fused
kernel: logits, bias, softmax and ``@ v`` block by block, never the whole logit matrix).
The bias is built ``query_chunk`` query rows at a time, so at most ``heads x query_chunk x N``
floats of it exist at once.

The maths is the stock block's: with ``q``, ``k`` at token ``(i, j)`` (row ``i``, column
``j`` of the token grid) the logit of query ``(i, j)`` against key ``(k, l)`` is
``scale * q·k + q · Rh[i - k] + q · Rw[j - l]``, where ``Rh``/``Rw`` are the block's
``rel_pos_h``/``rel_pos_w`` tables (``2 * size - 1`` rows, offset by ``size - 1``; tables of
another length are linearly resized first, as the stock model does).  Only the order of the
floating-point sums changes: embeddings agree to float32 rounding (~1e-6 relative).

The patch is per module instance (``module.forward``), so an unpatched model in the same
process keeps the stock code; :func:`unpatch_image_encoder` undoes it.

:func:`set_encoder_bf16` (opt-in, off by default) additionally runs the whole image encoder
under ``torch.autocast(bfloat16)`` and hands float32 embeddings on.  That is *not* the same
embedding (~1e-2 relative difference on ViT-B): use it only where a CPU with native bf16
(``avx512_bf16``/AMX) or a GPU makes it pay, and check the objects it gives separately.
"""

from __future__ import annotations

import types
from typing import Any

__all__ = ["DEFAULT_QUERY_CHUNK", "encoder_bf16", "fast_attention_forward", "is_patched",
           "patch_image_encoder", "rel_pos_table", "set_encoder_bf16", "unpatch_image_encoder"]

#: Query rows per bias chunk (1024 rows x 4,096 keys x 12 heads = 201 MB for ViT-B's
#: global blocks; a window block's 196 tokens are always one chunk).
DEFAULT_QUERY_CHUNK = 1024
_FLAG = "_mfcurate_fast_attention"
_BF16 = "_mfcurate_bf16_hooks"
_BF16_CTX = "_mfcurate_bf16_ctx"


def rel_pos_table(size: int, rel_pos: Any) -> Any:
    """Relative-position embeddings of every (query, key) pair along one axis.

    Args:
        size: tokens along the axis (queries and keys alike: self-attention).
        rel_pos: ``(L, C)`` learned table; ``L = 2 * size - 1`` (else linearly resized to
            that length along ``L``, align_corners off, as the stock encoder does).

    Returns:
        ``(size, size, C)``: entry ``[a, b]`` is the embedding of offset ``a - b``.
    """
    import torch
    import torch.nn.functional as F

    length = 2 * size - 1
    table = rel_pos
    if table.shape[0] != length:
        table = F.interpolate(table.T[None], size=length, mode="linear")[0].T
    pos = torch.arange(size, device=table.device)
    return table[pos[:, None] - pos[None, :] + (size - 1)]


def _bias(q: Any, rh: Any, rw: Any, hw: tuple[int, int]) -> Any:
    """Additive logit bias of queries ``q`` ``(B, heads, n, C)``: ``(B, heads, n, H * W)``.

    ``rh`` ``(n, H, C)`` / ``rw`` ``(n, W, C)`` are the rel-pos rows of each query's grid row
    and column (:func:`rel_pos_table` indexed by the query).
    """
    import torch

    h, w = hw
    along_h = torch.einsum("bqnc,nkc->bqnk", q, rh)  # (B, heads, n, H)
    along_w = torch.einsum("bqnc,nkc->bqnk", q, rw)  # (B, heads, n, W)
    b, heads, n, _ = q.shape
    return (along_h[..., :, None] + along_w[..., None, :]).view(b, heads, n, h * w)


def fast_attention_forward(module: Any, x: Any, query_chunk: int = DEFAULT_QUERY_CHUNK) -> Any:
    """The output of ``module`` (a ``segment_anything`` image-encoder ``Attention``) on ``x``.

    Args:
        module: the attention block (its ``qkv``, ``proj``, ``num_heads``, ``scale``,
            ``use_rel_pos`` and, when set, ``rel_pos_h``/``rel_pos_w``).
        x: ``(B, H, W, dim)`` tokens (B = windows x images in windowed blocks).
        query_chunk: query tokens per bias chunk (memory bound of the bias).

    Returns:
        ``(B, H, W, dim)``, equal to the stock forward up to float rounding.
    """
    import torch
    import torch.nn.functional as F

    b, h, w, _ = x.shape
    n = h * w
    heads = module.num_heads
    qkv = module.qkv(x).reshape(b, n, 3, heads, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)  # (B, heads, N, C) each
    if not module.use_rel_pos:
        out = F.scaled_dot_product_attention(q, k, v, scale=module.scale)
    else:
        table_h = rel_pos_table(h, module.rel_pos_h)  # (H, H, C)
        table_w = rel_pos_table(w, module.rel_pos_w)  # (W, W, C)
        rows = torch.arange(n, device=x.device)
        step = max(1, int(query_chunk))
        parts = []
        for start in range(0, n, step):
            sel = rows[start:start + step]
            qs = q[:, :, start:start + step]
            bias = _bias(qs, table_h[sel // w], table_w[sel % w], (h, w))
            parts.append(F.scaled_dot_product_attention(qs, k, v, attn_mask=bias,
                                                        scale=module.scale))
        out = parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)  # one chunk: no copy
    y = out.view(b, heads, h, w, -1).permute(0, 2, 3, 1, 4).reshape(b, h, w, -1)
    return module.proj(y)


def _attention_modules(model: Any) -> list[Any]:
    from segment_anything.modeling.image_encoder import Attention

    return [m for m in model.modules() if isinstance(m, Attention)]


def patch_image_encoder(model: Any, query_chunk: int = DEFAULT_QUERY_CHUNK) -> int:
    """Give every image-encoder ``Attention`` of ``model`` the fused forward (in place).

    Args:
        model: a ``Sam``, its ``image_encoder`` or any module holding such blocks.
        query_chunk: see :func:`fast_attention_forward`.

    Returns:
        The number of attention modules patched (idempotent: patching again re-applies
        the same forward with the new ``query_chunk``).
    """
    mods = _attention_modules(model)
    for m in mods:
        def forward(self: Any, x: Any, _chunk: int = int(query_chunk)) -> Any:
            return fast_attention_forward(self, x, _chunk)

        m.forward = types.MethodType(forward, m)
        setattr(m, _FLAG, True)
    return len(mods)


def unpatch_image_encoder(model: Any) -> int:
    """Restore the stock forward on every patched attention module; returns how many."""
    n = 0
    for m in _attention_modules(model):
        if getattr(m, _FLAG, False):
            del m.forward
            delattr(m, _FLAG)
            n += 1
    return n


def is_patched(model: Any) -> bool:
    """Whether any attention module of ``model`` runs the fused forward."""
    return any(getattr(m, _FLAG, False) for m in _attention_modules(model))


def _encoders(model: Any) -> list[Any]:
    from segment_anything.modeling.image_encoder import ImageEncoderViT

    return [m for m in model.modules() if isinstance(m, ImageEncoderViT)]


def _bf16_enter(module: Any, args: tuple[Any, ...]) -> None:
    import torch

    ctx = torch.autocast(args[0].device.type, dtype=torch.bfloat16)
    ctx.__enter__()
    module.__dict__.setdefault(_BF16_CTX, []).append(ctx)


def _bf16_exit(module: Any, args: tuple[Any, ...], output: Any) -> Any:
    module.__dict__[_BF16_CTX].pop().__exit__(None, None, None)
    return None if output is None else output.float()  # None: the forward raised


def set_encoder_bf16(model: Any, on: bool = True) -> int:
    """Run (``on``) or stop running every SAM image encoder of ``model`` in bf16 autocast.

    Forward hooks enter ``torch.autocast(<input device>, bfloat16)`` before the encoder and
    leave it after (also when the forward raises), casting the embedding to float32, so the
    prompt encoder and mask decoder stay float32.  Works with or without
    :func:`patch_image_encoder`.

    Returns:
        The number of encoders changed.
    """
    n = 0
    for enc in _encoders(model):
        hooks = enc.__dict__.pop(_BF16, None)
        if hooks is not None:
            for h in hooks:
                h.remove()
        if on:
            enc.__dict__[_BF16] = (enc.register_forward_pre_hook(_bf16_enter),
                                   enc.register_forward_hook(_bf16_exit, always_call=True))
        n += int(on or hooks is not None)
    return n


def encoder_bf16(model: Any) -> bool:
    """Whether an image encoder of ``model`` runs in bf16 autocast."""
    return any(_BF16 in enc.__dict__ for enc in _encoders(model))
