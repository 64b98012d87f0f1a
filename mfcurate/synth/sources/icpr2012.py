"""Fake ICPR 2012 source: ``A0x_v2/A0x_yy.{bmp,csv,jpg}`` plus the SlideRunner conversions.

Each csv line lists all pixels of one planted mitotic figure as ``x,y,x,y,...`` (x = column
first, the order the adapter documents); the ``.jpg`` overlay draws each mask's outline in
green on the image, so the adapter's overlay check has something real to measure.  HPF
``A00_00`` is a test image, ``A00_01`` train, ``A01_02`` has an empty csv (no mitosis).
``MITOS2012.sqlite`` / ``MITOS2012_test.sqlite`` hold the centroids (old schema, orderIdx
NULL), as the real conversions do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mfcurate.synth.render import render_tissue
from mfcurate.synth.sources._common import cut_mid_line
from mfcurate.synth.sources._sliderunner_fake import (
    FakeAnnotation,
    FakeSlide,
    write_sliderunner_db,
)
from mfcurate.synth.spec import FakeSpec

KEY = "icpr2012"
SIZE = (256, 288)  # rows, cols (not square, so a swapped x/y order is visible)
HPFS = {"A00_00": 3, "A00_01": 2, "A01_02": 0}


def generate(root: Path, seed: int = 0, pixel_order: str = "xy") -> FakeSpec:
    """Write the fake source under ``root`` and return its truth.

    Args:
        root: folder to create.
        seed: random seed.
        pixel_order: ``xy`` (default) or ``yx``: the pair order written in the csv files
            (the adapter's ``auto`` must find it from the overlays).
    """
    import cv2
    from PIL import Image

    rng = np.random.default_rng(seed)
    files: list[Path] = []
    centroids: dict[str, list[tuple[float, float]]] = {}
    for stem, n_mf in HPFS.items():
        folder = root / f"{stem[:3]}_v2"
        folder.mkdir(parents=True, exist_ok=True)
        rgb, planted = render_tissue(rng, *SIZE, mpp=0.2456, n_mitotic=n_mf, n_mitotic_like=2)
        Image.fromarray(rgb).save(folder / f"{stem}.bmp")
        overlay = rgb.copy()
        lines = []
        centroids[stem] = []
        for p in planted:
            if p.kind != "mitotic_figure":
                continue
            rows, cols = np.nonzero(p.mask)
            xs, ys = cols + p.offset_xy[0], rows + p.offset_xy[1]
            pairs = np.stack([xs, ys] if pixel_order == "xy" else [ys, xs], axis=1).ravel()
            lines.append(",".join(str(int(v)) for v in pairs))
            full = np.zeros(SIZE, np.uint8)
            full[ys, xs] = 1
            contours, _ = cv2.findContours(full, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(overlay, contours, -1, (0, 255, 0), 2)
            centroids[stem].append((float(round(xs.mean())), float(round(ys.mean()))))
        csv = folder / f"{stem}.csv"
        csv.write_text("".join(f"{line}\n" for line in lines))
        Image.fromarray(overlay).save(folder / f"{stem}.jpg", quality=92)
        if lines and cut_mid_line(csv):
            files.append(csv)
    for name, stems in (("MITOS2012.sqlite", ["A00_01", "A01_02"]),
                        ("MITOS2012_test.sqlite", ["A00_00"])):
        anns: list[FakeAnnotation] = []
        for i, stem in enumerate(stems, start=1):
            for x, y in centroids[stem]:
                anns.append(FakeAnnotation(len(anns) + 1, i, 1, 1, [(x, y)], [(1, 1)],
                                           order_null=True))
        write_sliderunner_db(root / name, schema="old",
                             slides=[FakeSlide(i, f"{s}.bmp") for i, s in enumerate(stems, 1)],
                             classes={1: "Mitosis", 2: "Nonmitosis"}, persons={1: "MITOS2012"},
                             annotations=anns, seed=seed)
    return FakeSpec(source=KEY, root=root, n_images=len(HPFS),
                    counts={"mitotic_figure": sum(HPFS.values())}, annotation_files=files,
                    empty_image_ids=["A01_02"], options={})
