"""Measure figure-part grouping on the synthetic renderer (what sets the defaults).

For images of :func:`mfcurate.synth.render.render_tissue` (multi-part figures on):

* the gaps between the masses of each planted multi-part figure, and how many of those
  figures :func:`mfcurate.segment.figure_parts.group_parts` turns into one figure when each
  mass is given as its own object ("before" = no grouping: every mass is a figure);
* the nearest-neighbour gaps between planted objects (nuclei, look-alikes, figures), and how
  many pairs of *different* planted objects the grouping wrongly joins;
* the areas (µm²) of single nuclei and of whole multi-part figures.

Usage: ``python bench/figure_parts.py [--images 12] [--mpp 0.5] [--gap 6]``.
Not a timed test; prints figures only.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from mfcurate.geometry import mask_parts
from mfcurate.segment.figure_parts import PartGrouping, group_parts, mask_gap_px
from mfcurate.synth.render import render_tissue


def _parts(p):  # type: ignore[no-untyped-def]
    lab, parts = mask_parts(p.mask)
    out = []
    for k in parts:
        m = lab == k
        rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
        out.append((m[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1],
                    (p.offset_xy[0] + int(cols[0]), p.offset_xy[1] + int(rows[0]))))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=12)
    ap.add_argument("--mpp", type=float, default=0.5)
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--gap", type=float, default=None)
    ap.add_argument("--density", type=float, default=6000.0)
    a = ap.parse_args()
    rule = PartGrouping() if a.gap is None else PartGrouping(max_gap_um=a.gap)
    intra, nn_gap, nuc_area, fig_area, fig_extent = [], [], [], [], []
    n_multi = joined_ok = 0
    n_pairs_close = wrong_pairs = n_objects = 0
    for i in range(a.images):
        rng = np.random.default_rng(1000 + i)
        _rgb, planted = render_tissue(rng, a.size, a.size, mpp=a.mpp, n_mitotic=10,
                                      n_mitotic_like=8, nuclei_per_mm2=a.density)
        objs, owner = [], []
        for j, p in enumerate(planted):
            parts = _parts(p)
            if p.kind == "nucleus":
                nuc_area.append(p.mask.sum() * a.mpp ** 2)
            if len(parts) > 1:
                n_multi += 1
                fig_area.append(p.mask.sum() * a.mpp ** 2)
                bb = p.bbox_xyxy
                fig_extent.append(max(bb[2] - bb[0], bb[3] - bb[1]) * a.mpp)
                for u in range(len(parts)):
                    for v in range(u + 1, len(parts)):
                        intra.append(mask_gap_px(*parts[u], *parts[v]) * a.mpp)
                g = group_parts([m for m, _ in parts], [o for _, o in parts], a.mpp, rule)
                joined_ok += len(g) == 1
            for m, o in parts:
                objs.append((m, o))
                owner.append(j)
        n_objects += len(planted)
        groups = group_parts([m for m, _ in objs], [o for _, o in objs], a.mpp, rule)
        for g in groups:
            owners = sorted({owner[k] for k in g})
            wrong_pairs += len(owners) - 1
        # nearest-neighbour gaps between different planted objects
        for j, p in enumerate(planted):
            best = math.inf
            for k, q in enumerate(planted):
                if k == j or abs(q.centroid_xy[0] - p.centroid_xy[0]) > 40 / a.mpp \
                        or abs(q.centroid_xy[1] - p.centroid_xy[1]) > 40 / a.mpp:
                    continue
                best = min(best, mask_gap_px(p.mask, p.offset_xy, q.mask, q.offset_xy))
            if math.isfinite(best):
                nn_gap.append(best * a.mpp)
                n_pairs_close += best * a.mpp <= rule.max_gap_um

    def q(v: list[float]) -> str:
        x = np.asarray(v)
        return (f"n={x.size} min={x.min():.2f} p10={np.percentile(x, 10):.2f} "
                f"median={np.median(x):.2f} p90={np.percentile(x, 90):.2f} max={x.max():.2f}")

    print(f"rule: {rule}  mpp={a.mpp} images={a.images} density={a.density}/mm²")
    print(f"intra-figure gaps (µm): {q(intra)}")
    print(f"nearest-neighbour gaps between planted objects (µm): {q(nn_gap)}")
    print(f"nucleus area (µm²): {q(nuc_area)}")
    print(f"multi-part figure area (µm²): {q(fig_area)}; extent (µm): {q(fig_extent)}")
    print(f"multi-part figures: {n_multi}; one figure before grouping: 0, after: {joined_ok} "
          f"({joined_ok / max(n_multi, 1):.1%})")
    print(f"planted objects: {n_objects}; with a neighbour within {rule.max_gap_um} µm: "
          f"{n_pairs_close}; pairs of different objects wrongly joined: {wrong_pairs}")


if __name__ == "__main__":
    main()
