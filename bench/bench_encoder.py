"""Micro-benchmark: one SAM image-encoder forward, stock against mfcurate's fused attention.

In one process, on one ``1 x 3 x S x S`` input (S = the model's ``img_size``, 1024), times the
stock ``segment_anything`` ``ImageEncoderViT`` forward and the same model with
:func:`mfcurate.segment.fast_attention.patch_image_encoder` (one run per ``--query-chunk``
value), prints the ratios and the largest embedding difference relative to the embedding's
largest magnitude.  Random weights (the compute does not depend on them; the relative-position
tables are drawn non-zero so the bias path is exercised).  ``--bf16`` adds an opt-in run under
``torch.autocast(bfloat16)`` (reported separately: it does not give the float32 embeddings)::

    python bench/bench_encoder.py --model vit_b                 # ~1.5 min on 2 CPU cores
    python bench/bench_encoder.py --model vit_b --query-chunk 4096 1024 256 --bf16
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def build_encoder(model: str, seed: int = 0) -> Any:
    """The image encoder of a SAM ``model`` with random weights (rel-pos tables non-zero)."""
    import torch

    torch.manual_seed(seed)
    if model == "tiny":
        from mfcurate.segment.sam_models import build_tiny_sam

        enc = build_tiny_sam(seed).image_encoder
    else:
        from segment_anything import sam_model_registry

        enc = sam_model_registry[model](checkpoint=None).image_encoder
    with torch.no_grad():
        for name, p in enc.named_parameters():
            if "rel_pos" in name:
                p.normal_(0.0, 0.02)
    return enc.eval()


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover - not on Linux
        return "n/a"


def timed_forward(enc: Any, x: Any, repeat: int, bf16: bool = False) -> tuple[float, Any]:
    """Best-of-``repeat`` seconds of ``enc(x)`` under inference mode, and the output."""
    import torch

    best, out = float("inf"), None
    ctx = (torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext())
    for _ in range(repeat):
        with torch.inference_mode(), ctx:
            t = time.perf_counter()
            out = enc(x)
            best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    import torch

    from mfcurate.segment.fast_attention import patch_image_encoder, unpatch_image_encoder

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="vit_b", choices=["tiny", "vit_b", "vit_l", "vit_h"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--query-chunk", type=int, nargs="+", default=[1024])
    p.add_argument("--bf16", action="store_true", help="also time the fused path in bf16")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    enc = build_encoder(args.model)
    size = int(enc.img_size)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    print(f"SAM {args.model} image encoder, 1x3x{size}x{size}, {args.threads} thread(s), "
          f"torch {torch.__version__}, best of {args.repeat}; load average {_load()}")
    t_stock, ref = timed_forward(enc, x, args.repeat)
    scale = float(ref.abs().max())
    print(f"  stock forward:                       {t_stock:7.2f} s")
    for chunk in args.query_chunk:
        patch_image_encoder(enc, query_chunk=chunk)
        t_fast, out = timed_forward(enc, x, args.repeat)
        diff = float((out - ref).abs().max()) / scale
        print(f"  fused attention (query chunk {chunk:5d}): {t_fast:7.2f} s; encoder ratio "
              f"{t_stock / t_fast:.2f}x; max |diff| / max |embedding| = {diff:.2e}")
    if args.bf16:
        t_bf, out = timed_forward(enc, x, args.repeat, bf16=True)
        diff = float((out.float() - ref).abs().max()) / scale
        print(f"  fused attention, bf16 autocast:      {t_bf:7.2f} s; encoder ratio "
              f"{t_stock / t_bf:.2f}x; max |diff| / max |embedding| = {diff:.2e} (not float32)")
    unpatch_image_encoder(enc)
    print(f"  load average after: {_load()}")


if __name__ == "__main__":
    main()
