"""Fake MIDOG++ / MIDOG 2021 in their real on-disk format.

MIDOG++: ``MIDOG++.json`` (COCO-like, ``bbox`` = xyxy 50 x 50 px, ``labels`` votes, an extra
unlabelled image), ``datasets_xvalidation.csv`` (``;``-separated, the ``Hamammatsu`` spelling),
``images/NNN.tiff`` with resolution tags.  MIDOG 2021: ``MIDOG.json`` with ids 1..150 labelled
and an unlabelled id >= 151, images at the root.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mfcurate.synth.images import write_tiff
from mfcurate.synth.render import render_tissue
from mfcurate.synth.spec import FakeSpec

KEYS = ["midog++", "midog2021"]
KEY = "midog++"

_MPP = {"Hamammatsu XR": 0.23, "Aperio CS2": 0.25, "3D Histech": 0.25}


def generate(root: Path, seed: int = 0, key: str = "midog++", size: int = 320) -> FakeSpec:
    """Write a small MIDOG++ (or MIDOG 2021) copy under ``root`` and return its truth.

    Images: one train and one test image with MFs and imposters (one box sticking out of its
    image, ``.5`` coordinates), one labelled image without annotations, and one unlabelled
    image that must not become an image of the dataset.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    plus = key == "midog++"
    img_dir = root / "images" if plus else root
    # (id, split, tumour, scanner, species, n_mf, n_like)
    if plus:
        plan = [(1, "train", "human breast cancer", "Hamammatsu XR", "Human", 3, 2),
                (2, "test", "canine lymphoma", "3D Histech", "Canine", 2, 3),
                (3, "train", "human melanoma", "Aperio CS2", "Human", 0, 0)]
        unlabelled = 4
    else:
        plan = [(1, "train", "human breast cancer", "Hamamatsu XR", "Human", 3, 2),
                (101, "train", "human breast cancer", "Aperio CS2", "Human", 2, 3),
                (120, "train", "human breast cancer", "Aperio CS2", "Human", 0, 0)]
        unlabelled = 160
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    counts = {"mitotic_figure": 0, "mitotic_like": 0}
    aid = 1
    everything = [*plan, (unlabelled, "", "", "Aperio CS2", "", 0, 0)]
    for iid, _split, tumour, scanner, _sp, n_mf, n_like in everything:
        mpp = _MPP.get(scanner, 0.25) if plus else (0.23 if iid <= 100 else 0.25)
        rgb, planted = render_tissue(rng, size, size, mpp=mpp, n_mitotic=n_mf,
                                     n_mitotic_like=n_like, nuclei_per_mm2=3000)
        name = f"{iid:03d}.tiff"
        write_tiff(img_dir / name, rgb, mpp)
        im: dict[str, Any] = {"license": 1, "file_name": name, "id": iid, "width": size,
                              "height": size}
        if plus:
            im["tumor_type"] = "canine lymphosarcoma" if tumour == "canine lymphoma" else tumour
        images.append(im)
        figures = [p for p in planted if p.kind != "nucleus"]
        for k, p in enumerate(figures):
            cx, cy = p.centroid_xy
            cx, cy = round(cx * 2) / 2, round(cy * 2) / 2  # .5 coordinates as in the real file
            if k == 0 and iid == plan[0][0]:
                cx, cy = 10.5, cy  # a box that sticks out of the image
            cat = 1 if p.kind == "mitotic_figure" else 2
            a: dict[str, Any] = {"bbox": [cx - 25, cy - 25, cx + 25, cy + 25],
                                 "category_id": cat, "image_id": iid, "id": aid}
            if plus:
                a["labels"] = [cat, cat, 2 if cat == 1 and k % 2 else cat]
            anns.append(a)
            aid += 1
            counts[p.kind] += 1
    doc = {
        "info": {"description": "synthetic " + key},
        "licenses": [{"url": "https://creativecommons.org/publicdomain/zero/1.0/", "id": 1,
                      "name": "CC0"}],
        "images": images,
        "categories": [{"id": 1, "name": "mitotic figure"},
                       {"id": 2, "name": "not mitotic figure"}],
        "annotations": anns,
    }
    jname = "MIDOG++.json" if plus else "MIDOG.json"
    (root / jname).write_text(json.dumps(doc))
    files = [root / jname]
    if plus:
        lines = ["Slide;Dataset;Tumor;Scanner;Origin;Species"]
        lines += [f"{iid};{split};{tumour};{scanner};Lab {iid};{sp}"
                  for iid, split, tumour, scanner, sp, *_ in plan]
        (root / "datasets_xvalidation.csv").write_text("\n".join(lines) + "\n")
        files.append(root / "datasets_xvalidation.csv")
    return FakeSpec(source=key, root=root, n_images=len(plan), counts=counts,
                    annotation_files=files, empty_image_ids=[str(plan[2][0])])
