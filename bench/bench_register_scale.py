"""Registration at whole-slide size: time per tissue mm² and peak memory, 4k² to 32k² px.

For each size (default 4096, 8192, 16384, 32768 px square at 0.5 µm/px; a 40,000 x 30,000 px
section is 1.2 Gpx, between the last two), a pair from the independent generator
(:mod:`mfcurate.testing.warp_pairs`: thin-plate warp, tears, folds, bubbles...) is written
block by block as a tiled pyramidal TIFF (``.svs``), then registered in a *fresh
subprocess* by ``estimate_transform`` (slide-level SIFT + RANSAC on a low-resolution level,
patch-level DIS refinement window by window over tissue, read by region: no slide is ever
decoded whole).  Printed per size: tissue area (mm², from the H&E tissue mask), wall and CPU
seconds, s/mm², peak RSS above the interpreter (after imports), TRE median/p90 (µm) on
400 landmarks, and the ratio of s/mm² against the smallest size (1.0 = linear).

The machine's 2 cores are shared by several people: wall times vary by ~2x run to run; the
CPU seconds are steadier.  Generation is not timed with registration (it is printed).

Run: ``PYTHONPATH=. python bench/bench_register_scale.py [--sizes 4096,8192,16384,32768]
[--workdir DIR]`` (``--workdir`` keeps the slides, ~3 GB per 32k pair, for reruns).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: rotation range of the scale pairs (small, so the pHH3 renders quickly; the robustness
#: benchmark draws up to ±40°)
ROT = 10.0


def _status_mb(key: str) -> float:
    """``VmRSS`` / ``VmHWM`` of this process in MB (``ru_maxrss`` survives ``exec`` on Linux,
    so a child started by a big parent would report the parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(folder: Path, size: int, seed: int) -> None:
    """Register one pair in this (fresh) process and print one JSON line."""
    import cv2
    import numpy as np

    from mfcurate.io.reader import open_image
    from mfcurate.registration import RegisterOptions
    from mfcurate.registration.pair import estimate_transform
    from mfcurate.testing.warp_pairs import make_truth

    cv2.setNumThreads(2)
    base = _status_mb("VmRSS")
    he_p, ph_p = folder / "he.svs", folder / "phh3.svs"
    he, ph = open_image(he_p), open_image(ph_p)
    t0, c0 = time.perf_counter(), time.process_time()
    timings: dict[str, float] = {}
    he_low, _pl, _g, tr = estimate_transform(he, ph, he_p, ph_p, 0.5, 0.5, RegisterOptions(),
                                            timings=timings)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = _status_mb("VmHWM")
    tissue_mm2 = float(he_low.mask.mean()) * he.width * he.height * (0.5e-3) ** 2
    truth = make_truth(seed, size, max_rotation_deg=ROT)
    p, h, _near = truth.landmarks(400)
    e = np.hypot(*(tr.phh3_to_he(p) - h).T) * 0.5
    q = tr.quality
    print(json.dumps({
        "size": size, "tissue_mm2": tissue_mm2, "wall_s": wall, "cpu_s": cpu,
        "base_rss_mb": base, "peak_rss_mb": peak, "tre_median_um": float(np.median(e)),
        "tre_p90_um": float(np.percentile(e, 90)), "windows": q.get("refine_windows"),
        "regions_failed": q.get("regions_failed"), "global_mpp": q.get("global_mpp"),
        "timings": {k: round(v, 2) for k, v in timings.items()}}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="4096,8192,16384,32768")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--child", nargs=3, metavar=("FOLDER", "SIZE", "SEED"), default=None)
    args = ap.parse_args()
    if args.child:
        child(Path(args.child[0]), int(args.child[1]), int(args.child[2]))
        return
    from mfcurate.testing.warp_pairs import make_truth, write_pair

    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp)
        for size in sizes:
            folder = root / f"scale{size}_seed{args.seed}"
            t0 = time.perf_counter()
            if not (folder / "phh3.svs").exists():
                big = size > 8192  # raw tiles and one tissue render for the big ones
                write_pair(folder, make_truth(args.seed, size, max_rotation_deg=ROT),
                           compression=None if big else "zlib", workers=1 if big else 2,
                           reuse_he=big)
            gen = time.perf_counter() - t0
            r = subprocess.run([sys.executable, __file__, "--child", str(folder), str(size),
                                str(args.seed)], capture_output=True, text=True, check=False)
            if r.returncode != 0:
                print(f"{size}: failed\n{r.stderr[-2000:]}", flush=True)
                continue
            row = json.loads(r.stdout.strip().splitlines()[-1])
            row["gen_s"] = gen
            rows.append(row)
            print(f"{size:>6}² px: generated in {gen:.0f} s; registered in {row['wall_s']:.1f} s "
                  f"wall / {row['cpu_s']:.1f} s CPU, tissue {row['tissue_mm2']:.1f} mm², "
                  f"{row['wall_s'] / row['tissue_mm2']:.3f} s/mm², peak RSS "
                  f"{row['peak_rss_mb'] - row['base_rss_mb']:.0f} MB above the interpreter "
                  f"({row['base_rss_mb']:.0f} MB), TRE median {row['tre_median_um']:.3f} p90 "
                  f"{row['tre_p90_um']:.3f} µm, {row['windows']} windows "
                  f"({row['regions_failed']} failed), {row['timings']}", flush=True)
            if not args.workdir:
                for f in folder.iterdir():
                    f.unlink()
    if not rows:
        return
    ref = rows[0]["cpu_s"] / rows[0]["tissue_mm2"]
    print("\nsize     tissue_mm2  wall_s  cpu_s  s/mm²(wall) s/mm²(cpu)  cpu ratio  peak_MB  "
          "TREmed  TREp90")
    for r in rows:
        spm = r["cpu_s"] / r["tissue_mm2"]
        print(f"{r['size']:>6}   {r['tissue_mm2']:9.1f} {r['wall_s']:7.1f} {r['cpu_s']:6.1f} "
              f"{r['wall_s'] / r['tissue_mm2']:11.3f} {spm:10.3f} {spm / ref:9.2f}x "
              f"{r['peak_rss_mb'] - r['base_rss_mb']:8.0f} {r['tre_median_um']:7.3f} "
              f"{r['tre_p90_um']:7.3f}")


if __name__ == "__main__":
    main()
