"""DAB figure joining on synthetic H&E/pHH3 pairs: planted multi-part figures before/after.

For pairs of :func:`mfcurate.synth.phh3_pair.make_pair` (multi-part figures on), DAB
detection runs with joining off (``max_parts = 1``: every component is a figure, the old
behaviour) and on (the default :class:`~mfcurate.segment.figure_parts.PartGrouping`).  Each
detected object is assigned to the planted figure whose box (grown by 2 µm) holds its
centroid, mapped to the H&E frame.  Prints, per setting: multi-part figures found as exactly
one object, single-mass figures found as one object, objects covering two planted figures
(wrongly joined) and objects on no planted figure.

Usage: ``python bench/figure_parts_dab.py [--pairs 3] [--size 1024]``.
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np

from mfcurate.io.reader import ArrayImage
from mfcurate.registration.channels import tissue_mask
from mfcurate.registration.dab import DabOptions, detect_dab
from mfcurate.segment.figure_parts import PartGrouping
from mfcurate.synth.phh3_pair import make_pair


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--size", type=int, default=1024)
    a = ap.parse_args()
    tot: dict[str, Counter[str]] = {"off": Counter(), "on": Counter()}
    for seed in range(a.pairs):
        p = make_pair(20 + seed, size=a.size, counterstain="hematoxylin", n_mitoses=24,
                      n_g2=10)
        img = ArrayImage(p.phh3, p.truth.mpp)
        mask = tissue_mask(p.phh3)
        vis = p.truth.visible_mitoses()
        pad = 2.0 / p.truth.mpp
        grow = np.array([-pad, -pad, pad, pad])
        boxes = np.array([p.truth.mitoses[i].bbox_xyxy for i in vis]) + grow
        nparts = [p.truth.mitoses[i].n_parts for i in vis]
        for name, rule in (("off", PartGrouping(max_parts=1)), ("on", PartGrouping())):
            objs = detect_dab(img, p.truth.mpp, mask, 1.0,
                              DabOptions(tile=512, grouping=rule))
            he = p.truth.phh3_to_he(np.array([o.centroid_xy for o in objs]).reshape(-1, 2))
            per_fig: Counter[int] = Counter()
            for (x, y), o in zip(he, objs, strict=True):
                inside = [k for k, b in enumerate(boxes)
                          if b[0] <= x <= b[2] and b[1] <= y <= b[3]]
                if not inside:
                    tot[name]["objects_on_no_figure"] += 1
                for k in inside:
                    per_fig[k] += 1
                tot[name]["objects_over_two_figures"] += len(inside) > 1
                tot[name]["objects_multi_part"] += o.n_parts > 1
            for k, n in enumerate(nparts):
                kind = "multi" if n > 1 else "single"
                tot[name][f"{kind}_figures"] += 1
                tot[name][f"{kind}_as_one_object"] += per_fig[k] == 1
                tot[name][f"{kind}_as_two_or_more"] += per_fig[k] >= 2
                tot[name][f"{kind}_missed"] += per_fig[k] == 0
    for name, c in tot.items():
        print(f"joining {name}: " + ", ".join(f"{k}={v}" for k, v in sorted(c.items())))


if __name__ == "__main__":
    main()
