"""Detection over a whole slide on CPU: slides/hour and the per-tile cost split.

``run_detection`` (the path ``mfcurate detect slide.svs`` takes) with the classical automatic
segmenter, tissue tiles only (1024 px, 128 px overlap, :class:`mfcurate.tiling.TileGrid`), an
ensemble of randomly initialised classifiers (throughput does not depend on the weights), on:

* a synthetic tiled pyramidal slide (Aperio-style SVS written by
  :func:`mfcurate.synth.wsi.write_svs`, read by region through OpenSlide) with an elliptic
  tissue section and glass around it;
* the real Aperio slides in ``shared/data/real/images/wsi`` when present
  (CMU-1-Small-Region.svs; TCGA-CR-7395 has no µm/px and is run at ``--tcga-mpp``).

Each slide runs twice in the same process: **sequential** (read, segment, classify one tile
after another: ``prefetch=0``) and **overlapped** (prefetching reader thread, batched
classifier thread: the default).  Printed per run: tissue tiles of the grid, wall time, the
per-tile split (read, segment, cut patches, classify), candidates, slides/hour for this
slide and s per mm² of tissue tile area; the overlapped run's peak RSS is measured in a child
process, against the slide's decoded size.  Projected: slides/hour for a 20 x 15 mm section
with 50 % tissue at the synthetic slide's µm/px.

    python bench/bench_detect.py                       # a few minutes on 2 cores
    python bench/bench_detect.py --size 8192 6144 --members 5 --no-real
    python bench/bench_detect.py --memory-scaling 2048 6144   # peak RSS at two slide sizes

``--memory-scaling S1 S2`` writes two synthetic slides (S × 0.75 S px), runs the overlapped
detection of each in a fresh child process and prints their peak RSS against a child that only
imports the same modules and loads the ensemble: the ratio of the extra memory against the
ratio of the slides' decoded sizes shows whether memory follows the tile or the slide.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

_REAL = next((p / "shared" / "data" / "real" for p in REPO.parents
              if (p / "shared" / "data" / "real").is_dir()),
             REPO.parent / "shared" / "data" / "real")
WSI = _REAL / "images" / "wsi"


def make_slide(root: Path, w: int, h: int, mpp: float) -> tuple[Path, float]:
    """A pyramidal SVS with an elliptic section (~55 % of the slide); its tissue fraction."""
    from mfcurate.synth import render_tissue
    from mfcurate.synth.wsi import write_svs

    yy, xx = np.mgrid[0:h, 0:w]
    tissue = ((xx - w / 2) / (0.47 * w)) ** 2 + ((yy - h / 2) / (0.42 * h)) ** 2 < 1.0
    rgb, _ = render_tissue(np.random.default_rng(0), h, w, mpp=mpp, n_mitotic=40,
                           n_mitotic_like=40, tissue_mask=tissue)
    return write_svs(root / "synthetic.svs", rgb, mpp), float(tissue.mean())


def make_models(root: Path, members: int) -> list[Path]:
    import torch

    from mfcurate.classifier.model import MaskFusedResNet18

    out = []
    for k in range(members):
        torch.manual_seed(k)
        p = root / f"m{k}.pt"
        torch.save({"state_dict": MaskFusedResNet18().state_dict(), "use_mask": True,
                    "patch": {"size_px": 64, "mpp": 0.25, "disk_radius_um": 4.0}}, p)
        out.append(p)
    return out


def run_once(slide: Path, models: list[Path], out: Path, prefetch: int, mpp: float | None,
             threads: int) -> dict:
    """One ``run_detection``; the image's summary (tiles, timing) plus wall seconds."""
    import torch

    from mfcurate.classifier.detect import DetectConfig, ImageJob, run_detection

    torch.set_num_threads(threads)
    cfg = DetectConfig(tile=1024, overlap=128, prefetch=prefetch)
    t = time.perf_counter()
    rep = run_detection([ImageJob(slide.name, slide, mpp)], models, out, cfg=cfg,
                        segmenter={"kind": "classical"})
    wall = time.perf_counter() - t
    info = rep.per_image[slide.name]
    return {"wall": wall, "tiles": info["tiles"], "candidates": info["candidates"],
            "mpp": info["mpp"]}


def _peak_rss(slide: Path, models: list[Path], out: Path, mpp: float | None,
              threads: int) -> float:
    from bench._util import run_child

    code = (f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
            "from pathlib import Path\nfrom bench.bench_detect import run_once\n"
            f"RESULT = run_once(Path({str(slide)!r}), {[str(m) for m in models]!r}, "
            f"Path({str(out)!r}), 2, {mpp!r}, {threads})\n")
    return float(run_child(code)["peak_rss_mb"])


def _baseline_rss(models: list[Path], threads: int) -> float:
    """Peak RSS of a child that imports detection and loads the ensemble, detecting nothing."""
    from bench._util import run_child

    code = (f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
            "import torch\nfrom mfcurate.classifier.detect import run_detection\n"
            f"torch.set_num_threads({threads})\n"
            f"[torch.load(m, weights_only=False) for m in {[str(m) for m in models]!r}]\n"
            "RESULT = {}\n")
    return float(run_child(code)["peak_rss_mb"])


def memory_scaling(sizes: list[int], mpp: float, threads: int, root: Path) -> None:
    """Peak RSS of detection on two slide sizes, above the interpreter + ensemble baseline."""
    models = make_models(root, 1)
    base = _baseline_rss(models, threads)
    print(f"peak RSS per slide size (overlapped detection, child process each); baseline "
          f"(interpreter, torch, detection modules, 1-member ensemble loaded): {base:.0f} MB")
    rows = []
    for s in sizes:
        w, h = s, s * 3 // 4
        folder = root / f"mem{s}"
        folder.mkdir()
        slide, _ = make_slide(folder, w, h, mpp)
        peak = _peak_rss(slide, models, folder / "out", None, threads)
        decoded = w * h * 3 / 2**20
        rows.append((w, h, peak, decoded))
        print(f"  {w}x{h} px: peak RSS {peak:.0f} MB ({peak - base:.0f} MB above baseline); "
              f"the decoded slide would be {decoded:.0f} MB")
    (_, _, p0, d0), (_, _, p1, d1) = rows[0], rows[-1]
    print(f"  slide size ratio {d1 / d0:.1f}x -> extra memory ratio "
          f"{max(p1 - base, 1) / max(p0 - base, 1):.2f}x")


def report(name: str, slide: Path, models: list[Path], root: Path, mpp: float | None,
           threads: int, rss: bool) -> dict:
    from mfcurate.io import open_image

    with open_image(slide) as img:
        w, h = img.width, img.height
    rows = {}
    for label, pf in (("sequential", 0), ("overlapped", 2)):
        rows[label] = r = run_once(slide, models, root / f"{name}-{label}", pf, mpp, threads)
        t = r["tiles"]
        n = max(t["tiles"], 1)
        mm2 = t["tiles"] * (1024 * r["mpp"][0] / 1000) * (1024 * r["mpp"][1] / 1000)
        print(f"  {label:10s}: {r['wall']:7.1f} s wall, {t['tiles']} of {t['grid']} tiles on "
              f"tissue, {r['candidates']} candidates; per tile: read {t['read'] / n:.3f} s, "
              f"segment {t['segment'] / n:.3f} s, cut {t['cut'] / n:.3f} s, classify "
              f"{t['classify'] / n:.3f} s (wall {r['wall'] / n:.3f} s/tile); "
              f"{3600 / r['wall']:.1f} slides/hour for this slide; "
              f"{r['wall'] / max(mm2, 1e-9):.1f} s per mm^2 of tissue tiles")
    a, b = rows["sequential"], rows["overlapped"]
    print(f"  overlapped vs sequential: {a['wall'] / b['wall']:.2f}x; same candidates: "
          f"{a['candidates'] == b['candidates']}")
    if rss:
        peak = _peak_rss(slide, models, root / f"{name}-rss", mpp, threads)
        print(f"  peak RSS of an overlapped run (child process): {peak:.0f} MB; the decoded "
              f"slide would be {w * h * 3 / 2**20:.0f} MB, one 1024 tile with margin "
              f"{(1024 + 2 * 40) ** 2 * 3 / 2**20:.1f} MB")
    return b


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, nargs=2, default=[4096, 3072], metavar=("W", "H"))
    p.add_argument("--mpp", type=float, default=0.25)
    p.add_argument("--members", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tcga-mpp", type=float, default=0.5,
                   help="µm/px assumed for the TCGA slide (its file has none)")
    p.add_argument("--no-real", action="store_true")
    p.add_argument("--no-rss", action="store_true")
    p.add_argument("--memory-scaling", type=int, nargs=2, metavar=("S1", "S2"), default=None,
                   help="only the peak-RSS comparison of two slide sizes (S x 0.75 S px)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.memory_scaling:
            memory_scaling(list(args.memory_scaling), args.mpp, args.threads, root)
            return
        t = time.perf_counter()
        slide, frac = make_slide(root, args.size[0], args.size[1], args.mpp)
        models = make_models(root, args.members)
        print(f"classical segmenter, {args.members}-member ensemble (random weights), "
              f"{args.threads} threads, tiles 1024 px + 128 overlap over tissue; slide written "
              f"in {time.perf_counter() - t:.0f} s")
        print(f"synthetic pyramidal SVS {args.size[0]}x{args.size[1]} px at {args.mpp} um/px "
              f"({frac:.0%} tissue):")
        syn = report("synthetic", slide, models, root, None, args.threads, not args.no_rss)
        t = syn["tiles"]
        s_per_tile = syn["wall"] / max(t["tiles"], 1)
        tile_mm2 = ((1024 - 128) * args.mpp / 1000) ** 2  # new area per tile of the grid
        n_tiles = 20 * 15 * 0.5 / tile_mm2
        print(f"  projected, 20 x 15 mm section with 50 % tissue at {args.mpp} um/px: "
              f"~{n_tiles:.0f} tissue tiles x {s_per_tile:.2f} s = {n_tiles * s_per_tile:.0f} s "
              f"-> {3600 / (n_tiles * s_per_tile):.2f} slides/hour")
        if not args.no_real:
            for f, mpp in (("CMU-1-Small-Region.svs", None),
                           ("TCGA-CR-7395-01A-01-TS1.svs", args.tcga_mpp)):
                if (WSI / f).exists():
                    print(f"real slide {f}" + (f" (no µm/px in the file; {mpp} assumed)"
                                               if mpp else "") + ":")
                    report(f.split(".")[0], WSI / f, models, root, mpp, args.threads, False)


if __name__ == "__main__":
    main()
