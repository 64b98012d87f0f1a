"""Seam de-duplication of a whole slide is linear in the number of objects (issue 11).

Simulates what harvest's per-tile segmentation hands to the merge on a synthetic slide:
nuclei (16 px discs, level 0) scattered over the slide; every tile of the run's
:class:`~mfcurate.tiling.TileGrid` (1024 px, 128 px overlap) reports the nuclei that lie in
it, those cut by the tile's edge as clipped boxes.  Then times the two steps of the merge,
the seam rule (:meth:`TileGrid.keep`) and the duplicate removal
(:func:`~mfcurate.pipelines.harvest_merge.dedup_seams`), at a quarter-size slide and at
40,000 x 30,000 px, and prints objects/s and the ratio of rates (1.0 = linear).

Usage: ``python bench/bench_seams.py [--density 6400]`` (px² of slide per nucleus).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import shapely

from mfcurate.geometry import encode_mask
from mfcurate.pipelines.harvest_merge import Candidates, dedup_seams
from mfcurate.tiling import TileGrid

R = 8  # nucleus radius, px


def candidates(width: int, height: int, density: float, seed: int = 0
               ) -> tuple[TileGrid, Candidates, list[tuple[int, int, int, int]]]:
    """Per-tile candidates of a synthetic slide (boxes clipped to their tile)."""
    rng = np.random.default_rng(seed)
    n = int(width * height / density)
    cx = rng.uniform(R, width - R, n)
    cy = rng.uniform(R, height - R, n)
    boxes = np.stack([np.floor(cx - R), np.floor(cy - R), np.floor(cx + R), np.floor(cy + R)], 1)
    grid = TileGrid(width, height, 1024, 128)
    tiles = grid.tiles()
    tree = shapely.STRtree(shapely.box(boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]))
    yy, xx = np.mgrid[: 2 * R, : 2 * R]
    disc = (xx - R + 0.5) ** 2 + (yy - R + 0.5) ** 2 <= R * R
    rle_cache: dict[tuple[int, int, int, int], str] = {}
    t_idx, i_idx, bxs, rles, tile_of = [], [], [], [], []
    for ti, (x, y, w, h) in enumerate(tiles):
        for k, j in enumerate(tree.query(shapely.box(x, y, x + w, y + h))):
            b = boxes[j]
            c = (max(b[0], x), max(b[1], y), min(b[2], x + w), min(b[3], y + h))
            key = (int(c[0] - b[0]), int(c[1] - b[1]), int(b[2] - c[2]), int(b[3] - c[3]))
            if key not in rle_cache:
                rle_cache[key] = encode_mask(disc[key[1]: 2 * R - key[3], key[0]: 2 * R - key[2]])
            t_idx.append(ti)
            i_idx.append(k)
            bxs.append(c)
            rles.append(rle_cache[key])
            tile_of.append(tiles[ti])
    b = np.asarray(bxs, float)
    m = len(rles)
    cand = Candidates(np.asarray(t_idx, np.int64), np.asarray(i_idx, np.int64), b, rles,
                      np.full(m, int(disc.sum())), np.stack([(b[:, 0] + b[:, 2]) / 2,
                                                             (b[:, 1] + b[:, 3]) / 2], 1),
                      rng.uniform(0.8, 1.0, m), [None] * m, ["sam_auto"] * m)
    return grid, cand, tile_of


def run(width: int, height: int, density: float) -> dict[str, float]:
    """Seconds and rates of the seam rule and the de-duplication at one slide size."""
    grid, cand, tile_of = candidates(width, height, density)
    t0 = time.perf_counter()
    keep = [i for i in range(len(cand))
            if grid.keep(tuple(cand.boxes[i]), tile_of[i])]  # type: ignore[arg-type]
    t_rule = time.perf_counter() - t0
    sub = cand.take(keep)
    t0 = time.perf_counter()
    kept = dedup_seams(sub)
    t_dedup = time.perf_counter() - t0
    n = len(cand)
    return {"candidates": n, "kept": len(kept), "rule_s": t_rule, "dedup_s": t_dedup,
            "rate": n / (t_rule + t_dedup)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--density", type=float, default=6400.0)
    args = ap.parse_args()
    small = run(10_000, 7_500, args.density)
    large = run(40_000, 30_000, args.density)
    for name, r in (("10,000 x 7,500", small), ("40,000 x 30,000", large)):
        print(f"{name} px: {r['candidates']:,} candidates -> {r['kept']:,} objects; seam rule "
              f"{r['rule_s']:.2f} s, de-duplication {r['dedup_s']:.2f} s, "
              f"{r['rate']:,.0f} candidates/s")
    print(f"rate ratio large / small: {large['rate'] / small['rate']:.2f} "
          f"(1.0 = linear in objects; 16x the objects)")


if __name__ == "__main__":
    main()
