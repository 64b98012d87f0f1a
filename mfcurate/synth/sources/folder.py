"""Fake in-house collection: a slide and an image with QuPath GeoJSON and ``mfcurate.toml``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mfcurate.geometry import mask_grid, mask_polygons, mask_to_record
from mfcurate.synth.images import write_png
from mfcurate.synth.render import render_tissue
from mfcurate.synth.spec import FakeSpec
from mfcurate.synth.wsi import write_svs

KEY = "folder"

CONFIG = """\
[dataset]
name = "Synthetic in-house STMF"
license = "CC-BY-4.0"
tumour_type = "Canine soft tissue sarcoma"
species = "canine"
scanner = "Synthetic scanner"
split = "train"

[classes]
"Mitosis" = "mitotic_figure"
"Mitotic-like" = "mitotic_like"
"Tissue" = "ignore"

[images."case2/field.png"]
split = "test"
mpp = 0.25
"""


def _feature(geometry: dict[str, Any], cls: str | None) -> dict[str, Any]:
    props: dict[str, Any] = {"objectType": "annotation"}
    if cls is not None:
        props["classification"] = {"name": cls, "color": [255, 0, 0]}
    return {"type": "Feature", "geometry": geometry, "properties": props}


def generate(root: Path, seed: int = 0, size: int = 768) -> FakeSpec:
    """Write a fake in-house folder and return its truth.

    ``case1/slide.svs`` (polygons, points, a rectangle, an ignored tissue region),
    ``case2/field.png`` (points, no resolution in the file: mpp from the TOML) and
    ``case3/empty.png`` (no GeoJSON), plus ``mfcurate.toml``.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "mfcurate.toml").write_text(CONFIG)
    counts = {"mitotic_figure": 0, "mitotic_like": 0}
    rgb, planted = render_tissue(rng, size, size, mpp=0.25, n_mitotic=3, n_mitotic_like=2,
                                 nuclei_per_mm2=3000)
    write_svs(root / "case1" / "slide.svs", rgb, 0.25, tile=256, min_level_size=256)
    feats = [_feature({"type": "Polygon", "coordinates": [[[0, 0], [size, 0], [size, size],
                                                           [0, size], [0, 0]]]}, "Tissue")]
    for k, p in enumerate(p for p in planted if p.kind != "nucleus"):
        cls = "Mitosis" if p.kind == "mitotic_figure" else "Mitotic-like"
        if k % 3 == 0:
            rec = mask_to_record(p.mask, p.offset_xy)
            if rec is None:
                continue
            poly = mask_polygons(rec[1], mask_grid(rec[0]))[0]
            ring = [[poly[i], poly[i + 1]] for i in range(0, len(poly), 2)]
            geom: dict[str, Any] = {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
        elif k % 3 == 1:
            geom = {"type": "Point", "coordinates": [p.centroid_xy[0], p.centroid_xy[1]]}
        else:
            x0, y0, x1, y1 = p.bbox_xyxy
            geom = {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1],
                                                        [x0, y0]]]}
        feats.append(_feature(geom, cls))
        counts[p.kind] += 1
    ann1 = root / "case1" / "slide.geojson"
    ann1.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    rgb2, planted2 = render_tissue(rng, 256, 256, mpp=0.25, n_mitotic=2, n_mitotic_like=1,
                                   nuclei_per_mm2=3000)
    write_png(root / "case2" / "field.png", rgb2)
    pts = [p for p in planted2 if p.kind != "nucleus"]
    multi = {"type": "MultiPoint", "coordinates": [list(p.centroid_xy) for p in pts
                                                   if p.kind == "mitotic_figure"]}
    feats2 = [_feature(multi, "Mitosis")] + [
        _feature({"type": "Point", "coordinates": list(p.centroid_xy)}, "Mitotic-like")
        for p in pts if p.kind == "mitotic_like"]
    for p in pts:
        counts[p.kind] += 1
    ann2 = root / "case2" / "field.geojson"
    ann2.write_text(json.dumps({"type": "FeatureCollection", "features": feats2}))
    rgb3, _ = render_tissue(rng, 128, 128, mpp=0.25, n_mitotic=0, n_mitotic_like=0)
    write_png(root / "case3" / "empty.png", rgb3, mpp=0.25)
    return FakeSpec(source=KEY, root=root, n_images=3, counts=counts,
                    annotation_files=[ann1, ann2, root / "mfcurate.toml"],
                    empty_image_ids=["case3/empty"])
