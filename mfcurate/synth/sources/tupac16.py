"""Fake TUPAC16 source in its real layouts: csv (row,col), tile DB, stitched DB + offsets JSON.

Cases ``01`` (two tiles side by side in the stitched mosaic) and ``02`` (one tile) stand for
the AMIDA13 cases, ``24`` for a single-image case (``24/01.tif`` on disk, ``24.tif`` in the
stitched DB).  Tile ``01/02`` has an empty (0-byte) mitosis csv and no hard-negative csv: an
image with no objects.  ``mitoses_ground_truth`` and ``nonmitoses_ground_truth`` hold the same
points as ``TUPAC_alternativeLabels_augmented_training.sqlite`` (classes ``Mitose``, ``Hard
negative``, persons Christof/Robert/Consensus, new schema, some ``orderIdx`` NULL, one deleted
row); ``TUPAC.sqlite`` (per-tile, ``Slides.directory`` = case, old schema) and
``TUPAC_stitched.sqlite`` hold the mitoses only.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tifffile

from mfcurate.synth.render import render_tissue
from mfcurate.synth.sources._common import cut_mid_line
from mfcurate.synth.sources._sliderunner_fake import (
    FakeAnnotation,
    FakeSlide,
    write_sliderunner_db,
)
from mfcurate.synth.spec import FakeSpec

KEY = "tupac16"
TILE = 256
#: tile id -> (x_off, y_off) in its case's stitched mosaic (None: not stitched).
OFFSETS: dict[str, tuple[int, int] | None] = {"01/01": (0, 0), "01/02": (TILE, 0),
                                               "02/01": (0, 0), "24/01": None}


def generate(root: Path, seed: int = 0) -> FakeSpec:
    """Write the fake source under ``root`` and return its truth (csv mode, the default)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    points: dict[str, list[tuple[str, float, float]]] = {}
    for iid in OFFSETS:
        empty = iid == "01/02"
        rgb, planted = render_tissue(rng, TILE, TILE, mpp=0.25, n_mitotic=0 if empty else 3,
                                     n_mitotic_like=0 if empty else 2)
        img = root / "mitoses_image_data" / f"{iid}.tif"
        img.parent.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(img, rgb, photometric="rgb")
        points[iid] = [(p.kind, float(round(p.centroid_xy[0])), float(round(p.centroid_xy[1])))
                       for p in planted if p.kind != "nucleus"]
    files = []
    for folder, kind in (("mitoses_ground_truth", "mitotic_figure"),
                         ("nonmitoses_ground_truth", "mitotic_like")):
        for iid, pts in points.items():
            mine = [(x, y) for k, x, y in pts if k == kind]
            f = root / folder / f"{iid}.csv"
            if not mine and kind == "mitotic_like":
                continue  # a missing file = no object
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text("".join(f"{int(y)},{int(x)}\n" for x, y in mine))  # row,col
            if mine and cut_mid_line(f):
                files.append(f)
    _write_dbs(root, points, seed)
    counts = {"mitotic_figure": sum(k == "mitotic_figure" for v in points.values()
                                    for k, _, _ in v),
              "mitotic_like": sum(k == "mitotic_like" for v in points.values() for k, _, _ in v)}
    return FakeSpec(source=KEY, root=root, n_images=len(OFFSETS), counts=counts,
                    annotation_files=files, empty_image_ids=["01/02"], options={})


def _write_dbs(root: Path, points: dict[str, list[tuple[str, float, float]]], seed: int) -> None:
    (root / "TUPACStitchInformation.json").write_text(json.dumps(
        {"_comment": "case -> tile.tif -> [x_offset, y_offset]",
         "cases": {"1": {"01.tif": list(OFFSETS["01/01"] or ()),
                         "02.tif": list(OFFSETS["01/02"] or ())},
                   "2": {"01.tif": list(OFFSETS["02/01"] or ())}}}))
    # per-tile DB (old schema + directory), mitoses only
    slides = [FakeSlide(i, f"{iid.split('/')[1]}.tif", directory=iid.split("/")[0])
              for i, iid in enumerate(OFFSETS, start=1)]
    anns: list[FakeAnnotation] = []
    for i, iid in enumerate(OFFSETS, start=1):
        for k, x, y in points[iid]:
            if k == "mitotic_figure":
                anns.append(FakeAnnotation(len(anns) + 1, i, 1, 1, [(x, y)], [(1, 1)],
                                           order_null=True))
    write_sliderunner_db(root / "TUPAC.sqlite", schema="old", slides=slides,
                         classes={1: "Mitosis"}, persons={1: "TUPAC_1"}, annotations=anns,
                         seed=seed)
    # stitched DBs: one slide per case
    case_slides = {"01": FakeSlide(1, "01_stitched1.tif", width=2 * TILE, height=TILE),
                   "02": FakeSlide(2, "02_stitched1.tif", width=TILE, height=TILE),
                   "24": FakeSlide(3, "24.tif", width=TILE, height=TILE)}
    mit: list[FakeAnnotation] = []
    alt: list[FakeAnnotation] = []
    for iid, pts in points.items():
        case = iid.split("/")[0]
        sl = case_slides[case].uid
        ox, oy = OFFSETS[iid] or (0, 0)
        for k, x, y in pts:
            cls = 1 if k == "mitotic_figure" else 2
            if cls == 1:
                mit.append(FakeAnnotation(len(mit) + 1, sl, 1, 1, [(x + ox, y + oy)], [(1, 1)]))
            alt.append(FakeAnnotation(len(alt) + 1, sl, 1, cls, [(x + ox, y + oy)],
                                      [(1, cls), (2, cls), (3, cls)],
                                      order_null=len(alt) % 2 == 0))
    alt.append(FakeAnnotation(len(alt) + 1, 1, 1, 1, [(5.0, 5.0)], [(1, 1)], deleted=True))
    write_sliderunner_db(root / "TUPAC_stitched.sqlite", schema="new",
                         slides=list(case_slides.values()), classes={1: "Mitosis"},
                         persons={1: "TUPAC16 stitched"}, annotations=mit, seed=seed)
    write_sliderunner_db(root / "TUPAC_alternativeLabels_augmented_training.sqlite",
                         schema="new", slides=list(case_slides.values()),
                         classes={1: "Mitose", 2: "Hard negative"},
                         persons={1: "Christof", 2: "Robert", 3: "Consensus"},
                         annotations=alt, seed=seed)
