"""Micro-benchmark: one SAM image-encoder forward, stock against mfcurate's fused attention.

In one process, on one ``1 x 3 x S x S`` input (S = the model's ``img_size``, 1024), times the
stock ``segment_anything`` ``ImageEncoderViT`` forward and the same model with
:func:`mfcurate.segment.fast_attention.patch_image_encoder` (one run per ``--query-chunk``
value), prints the ratios and the largest embedding difference relative to the embedding's
largest magnitude.  Random weights (the compute does not depend on them; the relative-position
tables are drawn non-zero so the bias path is exercised).  ``--bf16`` adds an opt-in run under
``torch.autocast(bfloat16)`` (reported separately: it does not give the float32 embeddings)::

    python bench/bench_encoder.py --model vit_b                 # ~1 min on 2 CPU cores
    python bench/bench_encoder.py --model vit_b --repeat 3 --query-chunk 1024 4096 --bf16
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
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


def timed_forward(enc: Any, x: Any, bf16: bool = False) -> tuple[float, Any]:
    """Seconds of one ``enc(x)`` under inference mode (bf16 autocast when asked), output."""
    import torch

    ctx = (torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext())
    with torch.inference_mode(), ctx:
        t = time.perf_counter()
        out = enc(x)
        return time.perf_counter() - t, out


def main() -> None:
    import torch

    from mfcurate.segment.fast_attention import patch_image_encoder, unpatch_image_encoder

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="vit_b", choices=["tiny", "vit_b", "vit_l", "vit_h"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=1,
                   help="rounds; each round runs every variant once, in turn (shared cores "
                        "are noisy: the medians and the median per-round ratio are printed)")
    p.add_argument("--query-chunk", type=int, nargs="+", default=[1024])
    p.add_argument("--bf16", action="store_true", help="also time the fused path in bf16")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    enc = build_encoder(args.model)
    size = int(enc.img_size)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    print(f"SAM {args.model} image encoder, 1x3x{size}x{size}, {args.threads} thread(s), "
          f"torch {torch.__version__}, {args.repeat} round(s); load average {_load()}")
    variants = [("stock", 0, False)] + [(f"fused attention (query chunk {c})", c, False)
                                        for c in args.query_chunk]
    if args.bf16:
        variants.append((f"fused attention (query chunk {args.query_chunk[0]}), bf16 "
                         "autocast", args.query_chunk[0], True))
    secs: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    diffs: dict[str, float] = {}
    ref = None
    for _ in range(args.repeat):
        for name, chunk, bf16 in variants:
            if chunk:
                patch_image_encoder(enc, query_chunk=chunk)
            else:
                unpatch_image_encoder(enc)
            t, out = timed_forward(enc, x, bf16)
            secs[name].append(t)
            ref = out if ref is None else ref
            diffs[name] = float((out.float() - ref).abs().max()) / float(ref.abs().max())
    unpatch_image_encoder(enc)
    stock = secs["stock"]
    for name, _, bf16 in variants:
        ts = secs[name]
        ratios = [a / b for a, b in zip(stock, ts, strict=True)]
        print(f"  {name}: {statistics.median(ts):6.2f} s median (runs "
              f"{', '.join(f'{t:.2f}' for t in ts)})" +
              ("" if name == "stock" else
               f"; encoder ratio {statistics.median(ratios):.2f}x median per round "
               f"({statistics.median(stock) / statistics.median(ts):.2f}x of medians); "
               f"max |diff| / max |embedding| = {diffs[name]:.2e}"
               f"{' (not float32)' if bf16 else ''}"))
    print(f"  load average after: {_load()}")


if __name__ == "__main__":
    main()
