"""Streaming COCO export: one JSON per split (or per source), masks as image-relative RLE.

Memory is bounded by the images table and one batch of objects: the ``images`` and
``categories`` arrays are written first, then annotations are streamed batch by batch into
the open output files, so a dataset of millions of objects exports in constant memory.

Conventions of the output:

* ``bbox`` is COCO ``[x, y, w, h]`` in level-0 pixels (converted from ``bbox_xyxy``);
* ``segmentation`` is the object's mask as image-relative compressed RLE
  (``{"size": [H, W], "counts": str}``, pycocotools), or polygons when ``segmentation`` is
  ``"polygon"`` or the image has more than 2^32 pixels (RLE counts overflow there);
  objects without a mask have no ``segmentation`` key;
* ``area`` is the mask area in pixels, or the box area without a mask;
* ``category_id`` comes from the fixed :data:`~mfcurate.schemas.COCO_CATEGORY_IDS`;
* mfcurate's own fields live under ``"mfcurate"`` in images and annotations (documented in
  ``docs/export.md``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc

from mfcurate.dataset import Dataset
from mfcurate.errors import UsageError
from mfcurate.geometry import image_rle_from_box_mask, mask_grid, mask_polygons, rle_area
from mfcurate.schemas.vocab import COCO_CATEGORY_IDS, LABEL_NAMES, Label, QAState, Split

_RLE_LIMIT = 2**32


@dataclass
class CocoFilters:
    """Which objects and images to export (None = all)."""

    sources: Sequence[str] | None = None
    labels: Sequence[str] | None = None
    splits: Sequence[str] | None = None
    qa_states: Sequence[str] | None = None

    def check(self) -> None:
        """Reject values outside the vocabularies (usage error)."""
        for name, values, vocab in (("label", self.labels, Label), ("split", self.splits, Split),
                                    ("qa state", self.qa_states, QAState)):
            allowed = {v.value for v in vocab}
            for v in values or []:
                if v not in allowed:
                    raise UsageError(f"unknown {name} {v!r}; choose from {sorted(allowed)}")


@dataclass
class CocoReport:
    """What an export wrote: file -> (images, annotations)."""

    files: dict[str, tuple[int, int]] = field(default_factory=dict)


def categories() -> list[dict[str, Any]]:
    """The fixed COCO category list."""
    return [{"id": cid, "name": LABEL_NAMES[lab], "supercategory": "nucleus",
             "mfcurate_label": lab.value} for lab, cid in COCO_CATEGORY_IDS.items()]


def export_coco(dataset: Dataset, out_dir: Path, *, by_source: bool = False,
                filters: CocoFilters | None = None, segmentation: str = "rle",
                batch_size: int = 65536) -> CocoReport:
    """Write ``<out_dir>/<group>.json`` for each split (or source) of the dataset.

    Args:
        dataset: the dataset to export.
        out_dir: output folder (created).
        by_source: one file per source instead of one per split.
        filters: subsets by source, label, split and QA state.
        segmentation: ``rle`` (default) or ``polygon``.
        batch_size: objects per streamed batch.
    """
    filters = filters or CocoFilters()
    filters.check()
    if segmentation not in ("rle", "polygon"):
        raise UsageError(f"--segmentation must be rle or polygon, not {segmentation!r}")
    images = dataset.images(sources=filters.sources)
    if filters.splits:
        images = images.filter(pc.is_in(images.column("split"), pa.array(list(filters.splits))))
    group_col = "source" if by_source else "split"
    groups = sorted(set(images.column(group_col).to_pylist()))
    out_dir.mkdir(parents=True, exist_ok=True)
    image_rows = images.to_pylist()
    image_ids = {r["image_key"]: i + 1 for i, r in enumerate(image_rows)}
    image_info = {r["image_key"]: r for r in image_rows}
    handles: dict[str, IO[str]] = {}
    f: IO[str]
    tmp_paths: dict[str, Path] = {}
    first: dict[str, bool] = {}
    report = CocoReport()
    counts: dict[str, list[int]] = {g: [0, 0] for g in groups}
    try:
        for g in groups:
            path = out_dir / f"{_safe(g)}.json"
            tmp = path.with_name(f".{path.name}.tmp")
            tmp_paths[g] = tmp
            f = tmp.open("w", encoding="utf-8")
            handles[g] = f
            f.write('{"info": ')
            f.write(json.dumps({"description": f"mfcurate export ({group_col} {g})",
                                "version": str(dataset.manifest.get("schema_version")),
                                "date_created": dataset.manifest.get("updated")}))
            f.write(', "licenses": ' + json.dumps(_licenses(dataset)))
            f.write(', "categories": ' + json.dumps(categories()))
            f.write(', "images": [')
            sep = ""
            for r in image_rows:
                if r[group_col] != g:
                    continue
                f.write(sep + json.dumps(_image_entry(r, image_ids[r["image_key"]])))
                sep = ", "
                counts[g][0] += 1
            f.write('], "annotations": [')
            first[g] = True
        ann_id = 0
        cols = ["object_key", "image_key", "source", "label", "label_origin", "votes",
                "confidence", "centroid_xy", "bbox_xyxy", "mask_rle", "mask_origin",
                "mask_score", "area_px", "area_um2", "qa_state", "qa_flags", "source_label"]
        for batch in dataset.iter_objects(sources=filters.sources, columns=cols,
                                          batch_size=batch_size):
            mask = pc.is_in(batch.column("image_key"), pa.array(list(image_ids)))
            if filters.labels:
                mask = pc.and_(mask, pc.is_in(batch.column("label"),
                                              pa.array(list(filters.labels))))
            if filters.qa_states:
                mask = pc.and_(mask, pc.is_in(batch.column("qa_state"),
                                              pa.array(list(filters.qa_states))))
            for row in batch.filter(mask).to_pylist():
                img = image_info[row["image_key"]]
                g = img[group_col]
                ann_id += 1
                entry = _annotation(row, img, image_ids[row["image_key"]], ann_id, segmentation)
                handles[g].write(("" if first[g] else ", ") + json.dumps(entry))
                first[g] = False
                counts[g][1] += 1
        for g, f in handles.items():
            f.write("]}\n")
            f.close()
            final = out_dir / f"{_safe(g)}.json"
            tmp_paths[g].replace(final)
            report.files[str(final)] = (counts[g][0], counts[g][1])
    finally:
        for g, f in handles.items():
            if not f.closed:
                f.close()
            if tmp_paths[g].exists():
                tmp_paths[g].unlink()
    return report


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def _licenses(dataset: Dataset) -> list[dict[str, Any]]:
    out = []
    for i, key in enumerate(dataset.sources, start=1):
        info = dataset.source_info(key)
        out.append({"id": i, "name": info.get("license", "unknown"), "source": key,
                    "url": info.get("homepage", "")})
    return out


def _image_entry(r: dict[str, Any], image_id: int) -> dict[str, Any]:
    return {
        "id": image_id, "file_name": r["path"], "width": r["width"], "height": r["height"],
        "mfcurate": {k: r[k] for k in ("image_key", "source", "source_image_id", "mpp_x",
                                       "mpp_y", "scanner", "tumour_type", "species", "split",
                                       "is_wsi", "license", "file_found")},
    }


def _annotation(row: dict[str, Any], img: dict[str, Any], image_id: int, ann_id: int,
                segmentation: str) -> dict[str, Any]:
    x0, y0, x1, y1 = row["bbox_xyxy"]
    entry: dict[str, Any] = {
        "id": ann_id, "image_id": image_id,
        "category_id": COCO_CATEGORY_IDS[Label(row["label"])],
        "bbox": [x0, y0, x1 - x0, y1 - y0], "iscrowd": 0,
    }
    rle = row["mask_rle"]
    if rle:
        grid = mask_grid(row["bbox_xyxy"])
        entry["area"] = float(row["area_px"] if row["area_px"] is not None
                              else rle_area(rle, grid[3], grid[2]))
        h, w = img["height"], img["width"]
        if segmentation == "rle" and h and w and int(h) * int(w) < _RLE_LIMIT:
            entry["segmentation"] = image_rle_from_box_mask(rle, grid, int(h), int(w))
        else:
            entry["segmentation"] = mask_polygons(rle, grid)
    else:
        entry["area"] = float((x1 - x0) * (y1 - y0))
    entry["mfcurate"] = {
        "object_key": row["object_key"], "source": row["source"],
        "label": row["label"], "source_label": row["source_label"],
        "label_origin": row["label_origin"], "tumour_type": img["tumour_type"],
        "votes": row["votes"], "confidence": row["confidence"],
        "centroid_xy": row["centroid_xy"], "mask_origin": row["mask_origin"],
        "mask_score": row["mask_score"], "area_um2": row["area_um2"],
        "qa_state": row["qa_state"], "qa_flags": row["qa_flags"],
    }
    return entry
