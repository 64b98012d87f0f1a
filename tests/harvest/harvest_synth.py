"""Helpers for harvest tests: a synthetic slide with planted nuclei, glass and annotations."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mfcurate.dataset import Dataset
from mfcurate.schemas.tables import ImageRecord, ObjectRecord, images_table, objects_table
from mfcurate.synth.render import Planted, render_tissue

SOURCE = "synthetic"
MPP = 0.25
H, W = 768, 2048
TISSUE_COLS = 1100  # tissue on the left, glass on the right
TILE, OVERLAP = 512, 96


@dataclass
class SynthSlide:
    """A synthetic dataset on disk and its truth."""

    dataset: Path
    image_key: str
    planted: list[Planted]
    annotated: dict[str, Planted]  # object_key -> planted object
    rgb: np.ndarray


def make_synth_dataset(root: Path, seed: int = 0, granulocyte: bool = True) -> SynthSlide:
    """Render a slide, write it as an Aperio-like SVS and commit a dataset with its figures."""
    from mfcurate.synth.wsi import write_svs

    rng = np.random.default_rng(seed)
    tissue = np.zeros((H, W), bool)
    tissue[:, :TISSUE_COLS] = True
    rgb, planted = render_tissue(rng, H, W, mpp=MPP, n_mitotic=5, n_mitotic_like=4,
                                 tissue_mask=tissue)
    img_dir = root / "images"
    write_svs(img_dir / "slide1.svs", rgb, MPP)
    image_key = f"{SOURCE}/slide1"
    images = images_table([ImageRecord(
        image_key=image_key, source=SOURCE, source_image_id="slide1", path="slide1.svs",
        width=W, height=H, mpp_x=MPP, mpp_y=MPP, vendor="aperio", is_wsi=True,
        file_found=True, license="CC0-1.0")])
    recs = []
    annotated: dict[str, Planted] = {}
    figures = [p for p in planted if p.kind in ("mitotic_figure", "mitotic_like")]
    if granulocyte:
        figures.append(next(p for p in planted if p.kind == "nucleus"))
    for n, p in enumerate(figures):
        label = p.kind if p.kind != "nucleus" else "granulocyte"
        cx, cy = p.centroid_xy
        box = (max(cx - 25, 0.0), max(cy - 25, 0.0), min(cx + 25, W), min(cy + 25, H))
        key = f"{image_key}/a{n}"
        recs.append(ObjectRecord(object_key=key, image_key=image_key, source=SOURCE,
                                 source_annotation_id=f"a{n}", label=label, label_origin="box",
                                 centroid_xy=(cx, cy), bbox_xyxy=box))
        annotated[key] = p
    ds_dir = root / "ds"
    Dataset.open(ds_dir, create=True).commit_source(
        SOURCE, images, [objects_table(recs)], info={"name": "synthetic"}, root=img_dir)
    return SynthSlide(ds_dir, image_key, planted, annotated, rgb)
