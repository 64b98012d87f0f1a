"""Fake MITOS-ATYPIA-14 source: x40 frames, ``x,y,confidence`` csv files, MITOS2014.sqlite.

Frames ``A03_00Aa`` and ``A03_00Ab`` carry mitoses and non-mitoses; ``A04_01Ba`` has an
empty ``_mitosis.csv`` and no ``_not_mitosis.csv`` (zero objects).  The confidence column
holds the agreement values (1.0 when both pathologists agreed, lower when the third decided);
the SQLite conversion (old schema, ``orderIdx`` NULL) carries the three raters' votes.
"""

from __future__ import annotations

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

KEY = "mitos-atypia-14"
FRAMES = {"A03_00Aa": (2, 2), "A03_00Ab": (1, 3), "A04_01Ba": (0, 0)}


def generate(root: Path, seed: int = 0) -> FakeSpec:
    """Write the fake source under ``root`` and return its truth (csv mode, the default)."""
    rng = np.random.default_rng(seed)
    files: list[Path] = []
    slides: list[FakeSlide] = []
    anns: list[FakeAnnotation] = []
    counts = {"mitotic_figure": 0, "mitotic_like": 0}
    for s_idx, (frame, (n_mf, n_nmf)) in enumerate(FRAMES.items(), start=1):
        slide = frame.split("_")[0]
        rgb, planted = render_tissue(rng, 256, 256, mpp=0.2455, n_mitotic=n_mf,
                                     n_mitotic_like=n_nmf)
        img = root / slide / "frames" / "x40" / f"{frame}.tiff"
        img.parent.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(img, rgb, photometric="rgb")
        slides.append(FakeSlide(s_idx, f"{frame}.tiff"))
        lab_dir = root / slide / "mitosis"
        lab_dir.mkdir(parents=True, exist_ok=True)
        for kind, suffix, cls in (("mitotic_figure", "_mitosis", 1),
                                  ("mitotic_like", "_not_mitosis", 2)):
            pts = [p for p in planted if p.kind == kind]
            if not pts and kind == "mitotic_like":
                continue
            lines = []
            for i, p in enumerate(pts):
                x, y = (float(round(v)) for v in p.centroid_xy)
                agreed = i % 2 == 0
                conf = 1.0 if agreed else float(rng.choice([0.65, 0.8]))
                lines.append(f"{int(x)},{int(y)},{conf:g}\n")
                other = 2 if cls == 1 else 1
                votes = [(1, cls), (2, cls)] if agreed else [(1, cls), (2, other), (3, cls)]
                anns.append(FakeAnnotation(len(anns) + 1, s_idx, 1, cls, [(x, y)], votes,
                                           order_null=True))
                counts[kind] += 1
            f = lab_dir / f"{frame}{suffix}.csv"
            f.write_text("".join(lines))
            if lines and cut_mid_line(f):
                files.append(f)
    write_sliderunner_db(root / "MITOS2014.sqlite", schema="old", slides=slides,
                         classes={1: "Mitosis", 2: "Nonmitosis"},
                         persons={1: "MITOS2014_1", 2: "MITOS2014_2", 3: "MITOS2014_3"},
                         annotations=anns, seed=seed)
    return FakeSpec(source=KEY, root=root, n_images=len(FRAMES), counts=counts,
                    annotation_files=files, empty_image_ids=["A04_01Ba"], options={})
