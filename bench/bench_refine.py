"""Benchmark of refine-masks' box segmenters.

* SAM, batched (one encoding per window, all boxes in one decoder batch, low-res logits
  cropped per box) against the authors' way (one encoding per annotation, one box per
  ``SamPredictor.predict`` call, a full-size mask per box), same model, same windows, same
  boxes: boxes per second and peak memory (RSS of a fresh child process per path, minus a
  child that only loads the model and image), with a check that the masks are identical.
* The classical segmenter: boxes per second.

Usage::

    python bench/bench_refine.py                 # tiny SAM (random weights), CPU
    python bench/bench_refine.py --model vit_b --boxes 8   # vit_b architecture, random weights
    python bench/bench_refine.py --checkpoint sam_vit_h_4b8939.pth --model vit_h --device cuda
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _data(n_boxes: int, side: int, seed: int = 0):
    from mfcurate.synth.render import render_tissue

    n = max(n_boxes // 2, 1)
    rgb, planted = render_tissue(np.random.default_rng(seed), side, side, n_mitotic=n,
                                 n_mitotic_like=n_boxes - n)
    figs = [p for p in planted if p.kind != "nucleus"][:n_boxes]
    c = np.array([p.centroid_xy for p in figs])
    boxes = np.concatenate([c - 25, c + 25], axis=1)
    return rgb, boxes


def _model(args):
    import torch

    torch.set_num_threads(args.threads)
    if args.checkpoint:
        from mfcurate.segment.sam_models import load_sam

        return load_sam(args.checkpoint, args.model, args.device)
    if args.model == "tiny":
        from mfcurate.segment.sam_models import build_tiny_sam

        return build_tiny_sam(0).to(args.device)
    from segment_anything import sam_model_registry

    return sam_model_registry[args.model](checkpoint=None).to(args.device).eval()


def _phase(args) -> dict:
    """Run one path in this (child) process and report time, peak RSS and masks."""
    import resource

    from mfcurate.pipelines.refine_masks import plan_windows
    from mfcurate.segment.box_sam import SamBoxSegmenter

    sam = _model(args)
    rgb, boxes = _data(args.boxes, args.image)
    seg = SamBoxSegmenter(sam, batch_size=args.batch or None)
    wins = plan_windows(boxes, args.window)
    from mfcurate.io.reader import ArrayImage

    img = ArrayImage(rgb, 0.25)
    best_wall = best_cpu = float("inf")
    for _ in range(args.reps):  # the minimum over repeats resists other processes' load
        masks: list = []
        t, c = time.perf_counter(), time.process_time()
        if args.phase == "batched":
            for wx, wy, idx in wins:
                w = img.read_region(wx, wy, args.window, args.window)
                off = np.array([wx, wy, wx, wy], float)
                for inst in seg.segment_boxes(w, boxes[idx] - off, 0.25):
                    masks.append(None if inst is None else (inst.offset_xy, inst.mask))
        elif args.phase == "batched_full":  # batched prompts, full-size masks (predict_torch)
            import torch
            from segment_anything import SamPredictor

            pred = SamPredictor(sam)
            for wx, wy, idx in wins:
                w = img.read_region(wx, wy, args.window, args.window)
                off = np.array([wx, wy, wx, wy], float)
                pred.set_image(w)
                bt = pred.transform.apply_boxes_torch(
                    torch.as_tensor(boxes[idx] - off, dtype=torch.float), w.shape[:2])
                with torch.inference_mode():
                    full, _, _ = pred.predict_torch(None, None, boxes=bt, multimask_output=False)
                for b, m in zip(boxes[idx] - off, full[:, 0].numpy(), strict=True):
                    seg._side = args.window
                    x0, y0, x1, y1 = seg.crop_region(b)
                    sub = m[y0:y1, x0:x1]
                    masks.append(None if not sub.any() else ((x0, y0), sub))
        elif args.phase == "authors":
            from mfcurate.segment.box_sam import predict_one_box_per_call

            for wx, wy, idx in wins:
                w = img.read_region(wx, wy, args.window, args.window)
                off = np.array([wx, wy, wx, wy], float)
                for b in boxes[idx] - off:  # one crop, one encoding, one full-size mask per box
                    full, _ = predict_one_box_per_call(sam, w, b[None], encode_each=True)[0]
                    seg._side = args.window
                    x0, y0, x1, y1 = seg.crop_region(b)
                    sub = full[y0:y1, x0:x1]
                    masks.append(None if not sub.any() else ((x0, y0), sub))
        best_wall = min(best_wall, time.perf_counter() - t)
        best_cpu = min(best_cpu, time.process_time() - c)
        if args.phase == "batched":
            seg._key = None  # encode again on the next repeat
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    digest = [None if m is None else [m[0], np.packbits(m[1]).tobytes().hex()] for m in masks]
    return {"seconds": best_wall, "cpu_seconds": best_cpu, "rss_mb": rss_mb,
            "boxes": len(boxes), "windows": len(wins), "masks": digest}


def _child(args, phase: str) -> dict:
    cmd = [sys.executable, __file__, "--phase", phase, "--model", args.model, "--boxes",
           str(args.boxes), "--image", str(args.image), "--window", str(args.window),
           "--device", args.device, "--threads", str(args.threads), "--batch", str(args.batch),
           "--reps", str(args.reps)]
    if args.checkpoint:
        cmd += ["--checkpoint", args.checkpoint]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _classical(args) -> float:
    from mfcurate.segment.box_classical import ClassicalBoxSegmenter

    rgb, boxes = _data(args.boxes, args.image)
    reps = max(1, 400 // len(boxes))
    seg = ClassicalBoxSegmenter()
    t = time.perf_counter()
    for _ in range(reps):
        seg.segment_boxes(rgb, boxes, 0.25)
    return reps * len(boxes) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--boxes", type=int, default=24)
    ap.add_argument("--image", type=int, default=1024, help="synthetic image side, px")
    ap.add_argument("--window", type=int, default=1024, help="window side (divides 1024)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=0,
                    help="most SAM prompts per decoder call (0: all boxes of a window)")
    ap.add_argument("--reps", type=int, default=3, help="repeats per path (minimum kept)")
    ap.add_argument("--phase", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        print(json.dumps(_phase(args) if args.phase != "baseline" else _baseline(args)))
        return
    base = _child(args, "baseline")
    ours = _child(args, "batched")
    full = _child(args, "batched_full")
    authors = _child(args, "authors")
    same = ours["masks"] == authors["masks"] == full["masks"]
    if not same:
        for name, other in (("authors", authors), ("full-size batched", full)):
            bad = sum(a != b for a, b in zip(ours["masks"], other["masks"], strict=True))
            print(f"  ! {bad} of {len(ours['masks'])} masks differ between batched and {name}")
    bps_ours = ours["boxes"] / ours["seconds"]
    bps_auth = authors["boxes"] / authors["seconds"]
    cpu_ratio = authors["cpu_seconds"] / ours["cpu_seconds"]
    mem_ours = max(ours["rss_mb"] - base["rss_mb"], 1.0)
    mem_auth = max(authors["rss_mb"] - base["rss_mb"], 1.0)
    print(f"model {args.model} on {args.device}, batch {args.batch}, {ours['boxes']} boxes "
          f"of 50 px in a "
          f"{args.image} px image, {ours['windows']} window(s) of {args.window} px")
    print(f"  batched : {bps_ours:8.2f} boxes/s  peak +{mem_ours:7.1f} MiB  "
          f"({ours['windows']} encodings)")
    mem_full = max(full["rss_mb"] - base["rss_mb"], 1.0)
    print(f"  batched, full-size masks (predict_torch): "
          f"{full['boxes'] / full['seconds']:8.2f} boxes/s  peak +{mem_full:7.1f} MiB")
    print(f"  authors : {bps_auth:8.2f} boxes/s  peak +{mem_auth:7.1f} MiB  "
          f"({authors['boxes']} encodings, full-size masks)")
    print(f"  speed-up {bps_ours / bps_auth:.1f}x wall-clock, {cpu_ratio:.1f}x CPU time, "
          f"memory ratio {mem_auth / mem_ours:.2f}x, "
          f"(full-size batched / ours {mem_full / mem_ours:.2f}x), identical masks: {same}")
    print(f"classical: {_classical(args):8.1f} boxes/s (same image and boxes, 1 process)")


def _baseline(args) -> dict:
    import resource

    _model(args)
    _data(args.boxes, args.image)
    return {"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


if __name__ == "__main__":
    main()
