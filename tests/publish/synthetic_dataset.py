"""A small two-source dataset with real masks, built from the synthetic renderer.

Shared by the publish, report and recipe tests (their conftests load this file by path).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from mfcurate.dataset import Dataset
from mfcurate.geometry import mask_to_record
from mfcurate.schemas.tables import ImageRecord, ObjectRecord, images_table, objects_table
from mfcurate.synth.render import render_tissue

SOURCES = {
    "midog++": {"name": "MIDOG++", "citation": "Aubreville M, et al. A comprehensive "
                "multi-domain dataset for mitotic figure assessment. Sci Data 10, 484 (2023).",
                "doi": "10.1038/s41597-023-02327-4", "license": "CC0-1.0",
                "homepage": "https://github.com/DeepMicroscopy/MIDOGpp",
                "tumours": ["human breast cancer", "canine lymphoma"],
                "species": ["human", "canine"], "scanner": "Hamamatsu XR"},
    "lizard": {"name": "Lizard", "citation": "Graham S, et al. Lizard: a large-scale dataset "
               "for colonic nuclear instance segmentation and classification. ICCVW (2021).",
               "doi": "10.48550/arXiv.2108.11195", "license": "CC-BY-NC-SA-4.0",
               "homepage": "https://warwick.ac.uk/fac/cross_fac/tia/data/lizard",
               "tumours": ["human colon cancer"], "species": ["human"],
               "scanner": "Aperio ScanScope CS2"},
}
_ORIGINS = ["sam_box", "disk", "source", "sam_auto"]
_QA = ["unreviewed", "accepted", "flagged", "rejected"]


def build_dataset(tmp: Path, n_images: int = 2, size: int = 192, seed: int = 0,
                  sources: tuple[str, ...] = ("midog++", "lizard")) -> Path:
    """Write source images under ``tmp/src/<key>`` and a dataset at ``tmp/ds``."""
    rng = np.random.default_rng(seed)
    ds = Dataset.open(tmp / "ds", create=True)
    for key in sources:
        card = SOURCES[key]
        root = tmp / "src" / key.replace("+", "p")
        root.mkdir(parents=True, exist_ok=True)
        imgs, objs = [], []
        for i in range(n_images):
            rgb, planted = render_tissue(rng, size, size, mpp=0.25, n_mitotic=2,
                                         n_mitotic_like=2, nuclei_per_mm2=2500)
            name = f"img{i:03d}.png"
            Image.fromarray(rgb).save(root / name)
            tumours, species = card["tumours"], card["species"]
            ikey = f"{key}/{i}"
            imgs.append(ImageRecord(
                image_key=ikey, source=key, source_image_id=str(i), path=name, width=size,
                height=size, mpp_x=0.25, mpp_y=0.25, scanner=str(card["scanner"]),
                vendor="png", tumour_type=tumours[i % len(tumours)],
                species=species[i % len(species)], split="train" if i % 2 == 0 else "test",
                license=str(card["license"]), file_found=True))
            n_bg = 0
            for j, p in enumerate(planted):
                if p.kind == "mitotic_figure":
                    label = "mitotic_figure"
                elif p.kind == "mitotic_like":
                    label = "mitotic_like"
                else:
                    if n_bg >= 3:
                        continue
                    n_bg += 1
                    label = "background"
                rec = mask_to_record(p.mask, p.offset_xy)
                if rec is None:
                    continue
                box, rle, area, centroid = rec
                k = len(objs)
                objs.append(ObjectRecord(
                    object_key=f"{ikey}/{j}", image_key=ikey, source=key,
                    source_annotation_id=str(j), label=label, label_origin="box",
                    centroid_xy=centroid, bbox_xyxy=box, mask_rle=rle,
                    mask_origin=_ORIGINS[k % len(_ORIGINS)], mask_score=0.9, area_px=area,
                    area_um2=area * 0.0625, qa_state=_QA[k % len(_QA)]))
        ds.commit_source(key, images_table(imgs), [objects_table(objs)],
                         info={k: v for k, v in card.items()
                               if k in ("name", "citation", "doi", "license", "homepage")},
                         root=root)
    return tmp / "ds"
