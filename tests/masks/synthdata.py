"""Synthetic datasets with exact planted masks for the refine-masks / review tests."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

from mfcurate.dataset import Dataset
from mfcurate.schemas.tables import ImageRecord, ObjectRecord, images_table, objects_table
from mfcurate.synth.images import write_png
from mfcurate.synth.render import Planted, render_tissue

REPO = Path(__file__).resolve().parents[2]
# the repository's parent holds shared/; MFCURATE_REAL_DATA overrides (e.g. for a worktree)
REAL = Path(os.environ.get("MFCURATE_REAL_DATA",
                           REPO.parent / "shared" / "data" / "real")).resolve()
SOURCE = "synthetic"
KIND_LABEL = {"mitotic_figure": "mitotic_figure", "mitotic_like": "mitotic_like",
              "nucleus": "tumour_cell"}


def env() -> dict[str, str]:
    """Environment for subprocesses that import this checkout's mfcurate."""
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO)
    return e


def python() -> str:
    return sys.executable


def make_dataset(root: Path, *, n_images: int = 3, size: int = 256, seed: int = 0,
                 n_mitotic: int = 3, n_like: int = 3, with_source_mask: bool = True,
                 wsi_image: bool = False, mpp: float = 0.25,
                 nuclei_per_mm2: float = 6000.0) -> tuple[Path, dict[str, Planted]]:
    """Write PNG images (or one SVS) and commit a dataset; return it and the planted truth.

    Figures are annotated MIDOG-style (a 50 px box around the planted centroid, label_origin
    ``box``); three ordinary nuclei per image are annotated as ``tumour_cell``.  With
    ``with_source_mask`` the first figure of the first image carries a source mask (ICPR-like)
    that refine-masks must keep.
    """
    img_dir = root / "src"
    ds_dir = root / "ds"
    rng = np.random.default_rng(seed)
    images, objects = [], []
    truth: dict[str, Planted] = {}
    for k in range(n_images):
        rgb, planted = render_tissue(rng, size, size, mpp=mpp, n_mitotic=n_mitotic,
                                     n_mitotic_like=n_like, nuclei_per_mm2=nuclei_per_mm2)
        if wsi_image and k == 0:
            from mfcurate.synth.wsi import write_svs

            name = f"img{k:02d}.svs"
            write_svs(img_dir / name, rgb, mpp, tile=128, min_level_size=128)
            is_wsi = True
        else:
            name = f"img{k:02d}.png"
            write_png(img_dir / name, rgb, mpp)
            is_wsi = False
        image_key = f"{SOURCE}/{k:02d}"
        images.append(ImageRecord(image_key=image_key, source=SOURCE, source_image_id=f"{k:02d}",
                                  path=name, width=size, height=size, mpp_x=mpp, mpp_y=mpp,
                                  is_wsi=is_wsi, split="train", license="CC0-1.0",
                                  file_found=True))
        figures = [p for p in planted if p.kind != "nucleus"]
        nuclei = [p for p in planted if p.kind == "nucleus"
                  and 30 < p.centroid_xy[0] < size - 30 and 30 < p.centroid_xy[1] < size - 30][:3]
        for j, p in enumerate(figures + nuclei):
            cx, cy = p.centroid_xy
            box = (max(cx - 25, 0.0), max(cy - 25, 0.0), min(cx + 25, size), min(cy + 25, size))
            okey = f"{image_key}/{j}"
            truth[okey] = p
            rec = dict(object_key=okey, image_key=image_key, source=SOURCE,
                       source_annotation_id=str(j), label=KIND_LABEL[p.kind], label_origin="box",
                       centroid_xy=(cx, cy), bbox_xyxy=box, source_file="labels.json",
                       extra=json.dumps({"note": f"kept-{j}"}),
                       votes=[{"annotator": "a", "label": KIND_LABEL[p.kind]}])
            if with_source_mask and k == 0 and j == 0:
                from mfcurate.geometry import mask_to_record

                r = mask_to_record(p.mask, p.offset_xy)
                assert r is not None
                bbox, rle, area, _ = r
                rec.update(bbox_xyxy=bbox, mask_rle=rle, mask_origin="source",
                           label_origin="pixel", area_px=area, area_um2=area * mpp * mpp,
                           mask_score=1.0)
            objects.append(ObjectRecord(**rec))  # type: ignore[arg-type]
    ds = Dataset.open(ds_dir, create=True)
    ds.commit_source(SOURCE, images_table(images), [objects_table(objects)],
                     info={"name": "synthetic", "license": "CC0-1.0"}, root=img_dir)
    return ds_dir, truth


def object_mask(row: dict, shape: tuple[int, int]) -> np.ndarray:
    """Paste an object's RLE mask into a full-image bool array."""
    from mfcurate.geometry import decode_mask, mask_grid

    x0, y0, w, h = mask_grid(row["bbox_xyxy"])
    out = np.zeros(shape, bool)
    m = decode_mask(row["mask_rle"], h, w)
    ys, xs = np.nonzero(m)
    ys, xs = ys + y0, xs + x0
    ok = (ys >= 0) & (ys < shape[0]) & (xs >= 0) & (xs < shape[1])
    out[ys[ok], xs[ok]] = True
    return out


def planted_mask(p: Planted, shape: tuple[int, int]) -> np.ndarray:
    out = np.zeros(shape, bool)
    ys, xs = np.nonzero(p.mask)
    ys, xs = ys + p.offset_xy[1], xs + p.offset_xy[0]
    ok = (ys >= 0) & (ys < shape[0]) & (xs >= 0) & (xs < shape[1])
    out[ys[ok], xs[ok]] = True
    return out
