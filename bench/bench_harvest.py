"""Benchmark of the harvest step (SAM-AUG).

Prints, in one run on one machine:

1. per tile and per grid (``--points-per-side 16 32``), mfcurate's SAM generator against
   ``segment_anything.SamAutomaticMaskGenerator`` on the same model, tile and settings: the
   image encoder runs once per variant (timed: stock's is segment_anything's own forward,
   ours the fused attention of ``mfcurate.segment.fast_attention``; ``--stock-encoder``
   gives ours stock's, ``--bf16-encoder`` adds the opt-in bf16 autocast; each encoder ratio
   and embedding difference gets its own line), then each generator's prompt side is timed
   on its own encoder's embedding: stock, mfcurate with pruning off (only on the first grid:
   the identity check, same masks as stock) and with pruning on (point prior + skipping), the
   ratios, the points prompted, the fraction of stock masks reproduced (IoU >= 0.9), and the
   projected seconds per tissue mm² at the paper's 64 x 64 grid;
2. tiles/s of the classical backend;
3. the fraction of a slide's tiles skipped as glass (a synthetic slide with glass, and the
   real CMU-1-Small-Region when ``../shared/data/real`` is present).

On a CPU use a small model (``--model micro``: SAM's own classes with a 32-dim decoder, or
``tiny``: mfcurate's test model) and, if needed, a smaller grid; on a GPU run the real thing::

    python bench/bench_harvest.py --model micro --points-per-side 32          # 2 CPU cores
    python bench/bench_harvest.py --model vit_b --real --points-per-side 16   # minutes, 2 cores
    python bench/bench_harvest.py --model vit_h --checkpoint sam_vit_h_4b8939.pth --device cuda

Without ``--checkpoint`` the weights are random; the decoder's upscaling kernels are then made
spatially constant (masks are blobs of image-embedding cells, not pixel noise) and its output
is scaled (``--gain``) so that the predicted-IoU and stability filters keep masks; the same
model goes to both generators.  With random weights the IoU and stability thresholds default
to 0 (both generators then keep the same masks); with a checkpoint they are 0.8/0.8.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

_REAL = next((p / "shared" / "data" / "real" for p in REPO.parents
              if (p / "shared" / "data" / "real").is_dir()),
             REPO.parent / "shared" / "data" / "real")
REAL_SLIDE = _REAL / "images" / "wsi" / "CMU-1-Small-Region.svs"


def build_micro_sam(seed: int = 0, image_size: int = 1024, dim: int = 32) -> Any:
    """A SAM with a small ViT and a ``dim``-wide prompt encoder/decoder (random weights)."""
    import torch
    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    torch.manual_seed(seed)
    embed = image_size // 16
    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=2, embed_dim=64, img_size=image_size, mlp_ratio=2,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=2, patch_size=16,
            qkv_bias=True, use_rel_pos=True, global_attn_indexes=(1,), window_size=7,
            out_chans=dim),
        prompt_encoder=PromptEncoder(embed_dim=dim, image_embedding_size=(embed, embed),
                                     input_image_size=(image_size, image_size),
                                     mask_in_chans=8),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=dim, mlp_dim=2 * dim,
                                          num_heads=2),
            transformer_dim=dim, iou_head_depth=3, iou_head_hidden_dim=dim),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])
    return sam.eval()


def load_model(args: argparse.Namespace) -> Any:
    import torch

    if args.checkpoint:
        from mfcurate.segment.sam_models import load_sam

        return load_sam(Path(args.checkpoint), args.model, args.device)
    if args.model == "micro":
        sam = build_micro_sam()
    elif args.model == "tiny":
        from mfcurate.segment.sam_models import build_tiny_sam

        sam = build_tiny_sam()
    else:
        from segment_anything import sam_model_registry

        torch.manual_seed(0)
        sam = sam_model_registry[args.model](checkpoint=None)
    from mfcurate.segment.sam_models import sharpen_random_sam

    sharpen_random_sam(sam, args.gain, blobs=True)  # random weights: blob-shaped, decisive
    return sam.to(args.device).eval()


def test_tile(args: argparse.Namespace) -> tuple[np.ndarray, float, str]:
    """A 1024 tile: from the real slide when present (``--real``), else synthetic."""
    if args.real and args.real_slide.exists():
        from mfcurate.io.reader import open_image

        with open_image(args.real_slide) as img:
            return img.read_region(900, 1400, args.tile, args.tile), float(img.mpp_x or 0.5), \
                "CMU-1-Small-Region (900, 1400)"
    from mfcurate.synth.render import render_tissue

    rgb, _ = render_tissue(np.random.default_rng(0), args.tile, args.tile, mpp=0.25)
    return rgb, 0.25, "synthetic"


def _full(rec: dict[str, Any], shape: tuple[int, int]) -> np.ndarray:
    m = np.zeros(shape, bool)
    x, y = rec["offset_xy"]
    h, w = rec["mask"].shape
    m[y:y + h, x:x + w] = rec["mask"]
    return m


def reproduced(fast: list[dict[str, Any]], stock: list[dict[str, Any]],
               shape: tuple[int, int], thresh: float = 0.9) -> float:
    """Fraction of stock masks with a mask of ours at IoU >= ``thresh`` (pycocotools IoU)."""
    from pycocotools import mask as mask_utils

    if not stock:
        return float("nan")
    if not fast:
        return 0.0
    ours = mask_utils.encode(np.asfortranarray(np.stack([_full(r, shape) for r in fast],
                                                        axis=-1).astype(np.uint8)))
    theirs = mask_utils.encode(np.asfortranarray(np.stack(
        [np.asarray(s["segmentation"], bool) for s in stock], axis=-1).astype(np.uint8)))
    iou = np.asarray(mask_utils.iou(theirs, ours, [0] * len(ours)))
    return float((iou.reshape(len(stock), len(fast)).max(axis=1) >= thresh).mean())


class _OnceEncoder:
    """Makes ``sam.image_encoder`` run once per distinct input and encoder mode (``stock``,
    ``fused`` attention, ``fused+bf16``): the call is timed, later calls on the same input
    return the stored embedding (each generator pays its encoder once, timed outside its
    prompt side)."""

    def __init__(self, enc: Any) -> None:
        self.enc = enc
        self.forward = enc.forward
        self.seconds: dict[str, float] = {}
        self.out: dict[str, Any] = {}
        self._last: dict[str, Any] = {}
        enc.forward = self

    def mode(self) -> str:
        from mfcurate.segment.fast_attention import encoder_bf16, is_patched

        return ("fused" if is_patched(self.enc) else "stock") + \
            ("+bf16" if encoder_bf16(self.enc) else "")

    def __call__(self, x: Any) -> Any:
        import torch

        mode = self.mode()
        last = self._last.get(mode)
        if last is not None and last.shape == x.shape and torch.equal(last, x):
            return self.out[mode]
        t = time.perf_counter()
        out = self.forward(x)
        self.seconds[mode] = time.perf_counter() - t
        self._last[mode], self.out[mode] = x.clone(), out
        return out


def set_mode(sam: Any, mode: str) -> None:
    """Put the model's image encoder in ``mode`` (see :class:`_OnceEncoder`)."""
    from mfcurate.segment.fast_attention import (
        patch_image_encoder,
        set_encoder_bf16,
        unpatch_image_encoder,
    )

    if mode.startswith("fused"):
        patch_image_encoder(sam)
    else:
        unpatch_image_encoder(sam)
    set_encoder_bf16(sam, mode.endswith("+bf16"))


def _same_masks(fast: list[dict[str, Any]], stock: list[dict[str, Any]],
                shape: tuple[int, int]) -> tuple[bool, int]:
    """Whether both lists hold the same masks in the same order; worst pixel difference."""
    if len(fast) != len(stock):
        return False, -1
    worst = 0
    for f, s in zip(fast, stock, strict=True):
        seg = np.asarray(s["segmentation"], bool)
        worst = max(worst, int((_full(f, shape) ^ seg).sum()))
    return worst <= 2, worst


def _prior_points(rgb: np.ndarray, mpp: float, n: int) -> int:
    from segment_anything.utils.amg import build_point_grid

    from mfcurate.segment.point_prior import point_prior, points_in

    prior = point_prior(rgb, mpp, "nuclei")
    pts = build_point_grid(n) * np.array([rgb.shape[1], rgb.shape[0]])[None]
    return int(points_in(prior, pts).sum()) if prior is not None else n * n


def _encoders(sam: Any, enc: _OnceEncoder, rgb: np.ndarray, mpp: float,
              ours: str) -> tuple[float, float]:
    """Run (and time) the stock encoder and ours (mode ``ours``; with bf16 also the float32
    fused one) on the tile; print each, its ratio and embedding difference against stock.
    Returns (stock s, ours s)."""
    import torch

    from mfcurate.segment.auto_sam import AmgOptions, SamAutoSegmenter

    one = AmgOptions(points_per_side=1, point_prior="none", skip_covered=False)
    modes = ["stock"] + (["fused"] if ours.startswith("fused") else []) + \
        (["fused+bf16"] if ours == "fused+bf16" else [])
    with torch.inference_mode():
        for mode in modes:
            set_mode(sam, mode)
            SamAutoSegmenter(sam, one).generate(rgb, mpp)
    t_stock = enc.seconds["stock"]
    print(f"  image encoder: stock {t_stock:.2f} s/tile" +
          "".join(f", {m} {enc.seconds[m]:.2f} s/tile" for m in modes[1:]) +
          f"; each run once and added to its generator's prompt side below (ours: {ours})")
    ref = enc.out["stock"]
    for m in modes[1:]:
        diff = float((enc.out[m].float() - ref).abs().max()) / float(ref.abs().max())
        print(f"  encoder ratio ({m} vs stock): {t_stock / enc.seconds[m]:.2f}x "
              f"(max |embedding diff| / max |embedding| = {diff:.2e})")
    return t_stock, enc.seconds[ours]


def bench_sam(args: argparse.Namespace) -> None:
    import torch

    from mfcurate.segment.auto_sam import AmgOptions, SamAutoSegmenter, StockSamAutoSegmenter
    from mfcurate.segment.point_prior import point_prior, points_in

    torch.set_num_threads(args.threads)
    sam = load_model(args)
    enc = _OnceEncoder(sam.image_encoder)
    rgb, mpp, what = test_tile(args)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)

    def timed(gen: Any) -> tuple[float, list[dict[str, Any]]]:
        best, out = math.inf, []
        for _ in range(args.repeat):
            sync()
            t = time.perf_counter()
            out = gen.generate(rgb, mpp)
            sync()
            best = min(best, time.perf_counter() - t)
        return best, out

    print(f"SAM automatic masks, model {args.model}"
          f"{f' (random weights, gain {args.gain:g})' if not args.checkpoint else ''}, "
          f"{args.device}, {args.threads} thread(s), tile {rgb.shape[1]}x{rgb.shape[0]} "
          f"{what} at {mpp} um/px; load average {_loadavg()}")
    ours = "stock" if args.stock_encoder else "fused+bf16" if args.bf16_encoder else "fused"
    t_enc_stock, t_enc = _encoders(sam, enc, rgb, mpp, ours)
    stride_mm = (args.tile - 128) * mpp / 1000.0  # new tissue per tile at 128 px overlap
    per_point: dict[str, float] = {}
    for n in args.points_per_side:
        base = dict(points_per_side=n, points_per_batch=args.points_per_batch,
                    pred_iou_thresh=args.pred_iou_thresh,
                    stability_score_thresh=args.stability_score_thresh,
                    box_nms_thresh=args.box_nms_thresh,
                    min_area_um2=0.0 if args.no_area_filter else 2.25,
                    max_area_um2=1e12 if args.no_area_filter else 225.0)
        off = AmgOptions(**base, point_prior="none", skip_covered=False)
        on = AmgOptions(**base, point_prior="nuclei", skip_covered=True)
        set_mode(sam, "stock")  # stock: segment_anything's own encoder
        t_stock, r_stock = timed(StockSamAutoSegmenter(sam, off))
        set_mode(sam, ours)
        print(f"  {n}x{n} points, settings {off.as_dict()}")
        print(f"    stock SamAutomaticMaskGenerator: prompts {t_stock:7.2f} s, total "
              f"{t_stock + t_enc_stock:7.2f} s/tile, {len(r_stock)} masks")
        per_point["stock"] = t_stock / (n * n)
        if not args.skip_unpruned and (args.unpruned_all or n == args.points_per_side[0]):
            g_off = SamAutoSegmenter(sam, off)
            t_off, r_off = timed(g_off)
            same, worst = _same_masks(r_off, r_stock, rgb.shape[:2])
            print(f"    mfcurate, pruning off:          prompts {t_off:7.2f} s, total "
                  f"{t_off + t_enc:7.2f} s/tile, {len(r_off)} masks; same masks as stock: "
                  f"{same} (worst mask differs by {worst} px); ratio "
                  f"{(t_stock + t_enc_stock) / (t_off + t_enc):.2f}x")
        g_on = SamAutoSegmenter(sam, on)
        t_on, r_on = timed(g_on)
        st = g_on.last_stats
        per_point["ours"] = t_on / max(st.decoded, 1)
        frac = reproduced(r_on, r_stock, rgb.shape[:2])
        prior = point_prior(rgb, mpp, "nuclei")
        prompted = [a for a in r_stock if prior is None or
                    points_in(prior, np.asarray([a["point_coords"][0]], float))[0]]
        frac_p = reproduced(r_on, prompted, rgb.shape[:2])
        print(f"    mfcurate, pruning on:           prompts {t_on:7.2f} s, total "
              f"{t_on + t_enc:7.2f} s/tile, {len(r_on)} masks; ratio "
              f"{(t_stock + t_enc_stock) / (t_on + t_enc):.2f}x (prompt side "
              f"{t_stock / t_on:.2f}x); points: grid {st.grid}, after prior "
              f"{st.after_prior}, skipped inside kept masks {st.skipped_covered}, decoded "
              f"{st.decoded}; stock masks reproduced at IoU>=0.9: {frac:.1%} of all, "
              f"{frac_p:.1%} of the {len(prompted)} from points the prior keeps")
    n64 = _prior_points(rgb, mpp, 64)
    tissue_mm2 = stride_mm**2
    stock64 = t_enc_stock + per_point["stock"] * 4096
    ours64 = t_enc + per_point["ours"] * n64
    print(f"  projected at 64x64 points (per-point cost of the last grid; ours decodes the "
          f"{n64} points the prior keeps, no credit for skipping): stock {stock64:.0f} s/tile "
          f"= {stock64 / tissue_mm2:.0f} s per tissue mm^2, mfcurate {ours64:.0f} s/tile = "
          f"{ours64 / tissue_mm2:.0f} s per tissue mm^2 (tile stride {args.tile - 128} px "
          f"= {tissue_mm2:.3f} mm^2 of new tissue); ratio {stock64 / ours64:.2f}x")


def _loadavg() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover - not on Linux
        return "n/a"


def bench_classical(args: argparse.Namespace) -> None:
    from mfcurate.segment.auto_classical import ClassicalAutoSegmenter

    rgb, mpp, what = test_tile(args)
    seg = ClassicalAutoSegmenter()
    n = max(args.repeat, 3)
    t = time.perf_counter()
    for _ in range(n):
        k = len(seg.segment_tile(rgb, mpp))
    dt = (time.perf_counter() - t) / n
    print(f"classical backend: {1 / dt:.2f} tiles/s ({dt:.2f} s per {rgb.shape[1]} px tile, "
          f"{k} objects, {what})")


def bench_glass(args: argparse.Namespace) -> None:
    from mfcurate.io.reader import ArrayImage, open_image
    from mfcurate.segment.tissue import tile_grid, tissue_tiles
    from mfcurate.synth.render import render_tissue

    h, w = 3072, 4096
    yy, xx = np.mgrid[0:h, 0:w]
    tissue = ((xx - 1600) / 1500.0) ** 2 + ((yy - 1500) / 1300.0) ** 2 < 1.0
    rgb, _ = render_tissue(np.random.default_rng(1), h, w, mpp=0.25, nuclei_per_mm2=300,
                           tissue_mask=tissue)
    img = ArrayImage(rgb, 0.25)
    kept = tissue_tiles(img, tile=args.tile, overlap=128)
    total = tile_grid(w, h, args.tile, 128)
    true_glass = sum(1 for x, y, tw, th in total if not tissue[y:y + th, x:x + tw].any())
    print(f"glass skipping, synthetic {w}x{h} slide ({tissue.mean():.0%} tissue): "
          f"{len(total) - len(kept)} of {len(total)} tiles skipped "
          f"({(len(total) - len(kept)) / len(total):.0%}; tiles without any tissue: "
          f"{true_glass})")
    if args.real_slide.exists():
        with open_image(args.real_slide) as real:
            for tile in (1024, 512):
                kept = tissue_tiles(real, tile=tile, overlap=64, min_tissue=0.05)
                total = tile_grid(real.width, real.height, tile, 64)
                print(f"glass skipping, CMU-1-Small-Region, {tile} px tiles: "
                      f"{len(total) - len(kept)} of {len(total)} skipped "
                      f"({(len(total) - len(kept)) / len(total):.0%})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="micro",
                   choices=["micro", "tiny", "vit_b", "vit_l", "vit_h"])
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tile", type=int, default=1024)
    p.add_argument("--points-per-side", type=int, nargs="+", default=[16, 32],
                   help="grids to run (each one: stock, mfcurate without and with pruning)")
    p.add_argument("--skip-unpruned", action="store_true",
                   help="do not time mfcurate with pruning off (the identity check)")
    p.add_argument("--unpruned-all", action="store_true",
                   help="time pruning off on every grid (default: the first grid only)")
    p.add_argument("--points-per-batch", type=int, default=64)
    p.add_argument("--pred-iou-thresh", type=float, default=None)
    p.add_argument("--stability-score-thresh", type=float, default=None)
    p.add_argument("--box-nms-thresh", type=float, default=0.7)
    p.add_argument("--gain", type=float, default=500.0)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--real", action="store_true", help="use a tile of the real CMU slide")
    p.add_argument("--real-slide", type=Path, default=REAL_SLIDE,
                   help="the CMU-1-Small-Region.svs to use (default: ../shared/data/real/...)")
    p.add_argument("--no-area-filter", action="store_true",
                   help="keep every mask size (random weights rarely give cell-sized masks)")
    p.add_argument("--skip-sam", action="store_true")
    p.add_argument("--stock-encoder", action="store_true",
                   help="mfcurate's generator on segment_anything's own encoder too "
                        "(default: the fused attention of mfcurate.segment.fast_attention)")
    p.add_argument("--bf16-encoder", action="store_true",
                   help="mfcurate's encoder in bf16 autocast (opt-in; not the float32 "
                        "embedding: its same-masks line is a separate check)")
    args = p.parse_args()
    if args.pred_iou_thresh is None:
        args.pred_iou_thresh = 0.8 if args.checkpoint else 0.0
    if args.stability_score_thresh is None:
        args.stability_score_thresh = 0.8 if args.checkpoint else 0.0
    if not args.skip_sam:
        bench_sam(args)
    bench_classical(args)
    bench_glass(args)


if __name__ == "__main__":
    main()
