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
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from mfcurate.dataset import (
    Dataset,
    Selection,
    as_selection,
    iter_selected,
    remove_temporaries_of,
    select_images,
)
from mfcurate.dataset.files import temporary_path
from mfcurate.errors import UsageError
from mfcurate.geometry import image_rle_from_box_mask, mask_grid, mask_polygons, rle_area
from mfcurate.schemas.vocab import COCO_CATEGORY_IDS, LABEL_NAMES, Label

_RLE_LIMIT = 2**32


@dataclass
class CocoReport:
    """What an export wrote: file -> (images, annotations)."""

    files: dict[str, tuple[int, int]] = field(default_factory=dict)


def categories() -> list[dict[str, Any]]:
    """The fixed COCO category list."""
    return [{"id": cid, "name": LABEL_NAMES[lab], "supercategory": "nucleus",
             "mfcurate_label": lab.value} for lab, cid in COCO_CATEGORY_IDS.items()]


_ANNOTATION_COLUMNS = ["object_key", "image_key", "source", "label", "label_origin", "votes",
                       "confidence", "centroid_xy", "bbox_xyxy", "mask_rle", "mask_origin",
                       "mask_score", "area_px", "area_um2", "qa_state", "qa_flags",
                       "source_label"]


def export_coco(dataset: Dataset, out_dir: Path, *, by_source: bool = False,
                selection: Selection | None = None, segmentation: str = "rle",
                batch_size: int = 65536, **filters: Any) -> CocoReport:
    """Write ``<out_dir>/<group>.json`` for each split (or source) of the dataset.

    Args:
        dataset: the dataset to export.
        out_dir: output folder (created).
        by_source: one file per source instead of one per split.
        selection: which images and objects (default: all but rejected objects, as every
            export).
        **filters: or the same as keyword options (see :meth:`Selection.from_options`).
        segmentation: ``rle`` (default) or ``polygon``.
        batch_size: objects per streamed batch.
    """
    sel = as_selection(selection, **filters).check(dataset)
    if segmentation not in ("rle", "polygon"):
        raise UsageError(f"--segmentation must be rle or polygon, not {segmentation!r}")
    images = select_images(dataset, sel)
    group_col = "source" if by_source else "split"
    groups = sorted(set(images.column(group_col).to_pylist()))
    out_dir.mkdir(parents=True, exist_ok=True)
    image_rows = images.to_pylist()
    image_ids = {r["image_key"]: i + 1 for i, r in enumerate(image_rows)}
    image_info = {r["image_key"]: r for r in image_rows}
    handles: dict[str, IO[str]] = {}
    f: IO[str]
    tmp_paths: dict[str, Path] = {}
    report = CocoReport()
    counts: dict[str, list[int]] = {g: [0, 0] for g in groups}
    try:
        for g in groups:
            path = out_dir / f"{_safe(g)}.json"
            remove_temporaries_of(path)  # a killed run's
            tmp = temporary_path(path)
            tmp_paths[g] = tmp
            f = tmp.open("w", encoding="utf-8")
            handles[g] = f
            counts[g][0] += _write_head(f, dataset, group_col, g, image_rows, image_ids)
        for g, n in _stream_annotations(dataset, sel, images, handles, group_col=group_col,
                                        image_info=image_info, image_ids=image_ids,
                                        segmentation=segmentation,
                                        batch_size=batch_size).items():
            counts[g][1] += n
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


def _write_head(f: IO[str], dataset: Dataset, group_col: str, group: str,
                image_rows: list[dict[str, Any]], image_ids: dict[str, int]) -> int:
    """Write one group's JSON up to the opened ``annotations`` array.

    That is ``info``, ``licenses``, ``categories`` and the group's ``images``.

    Returns:
        the number of images written.
    """
    f.write('{"info": ')
    f.write(json.dumps({"description": f"mfcurate export ({group_col} {group})",
                        "version": str(dataset.manifest.get("schema_version")),
                        "date_created": dataset.manifest.get("updated")}))
    f.write(', "licenses": ' + json.dumps(_licenses(dataset)))
    f.write(', "categories": ' + json.dumps(categories()))
    f.write(', "images": [')
    sep, n = "", 0
    for r in image_rows:
        if r[group_col] != group:
            continue
        f.write(sep + json.dumps(_image_entry(r, image_ids[r["image_key"]])))
        sep = ", "
        n += 1
    f.write('], "annotations": [')
    return n


def _stream_annotations(dataset: Dataset, sel: Selection, images: pa.Table,
                        handles: dict[str, IO[str]], *, group_col: str,
                        image_info: dict[str, dict[str, Any]], image_ids: dict[str, int],
                        segmentation: str, batch_size: int) -> dict[str, int]:
    """Append every selected object, batch by batch, to its group's open file.

    Annotation ids run from 1 over all groups, in the order the objects are read.

    Returns:
        group -> number of annotations written.
    """
    first = dict.fromkeys(handles, True)
    counts = dict.fromkeys(handles, 0)
    ann_id = 0
    for batch in iter_selected(dataset, sel, columns=_ANNOTATION_COLUMNS,
                               batch_size=batch_size, images=images):
        for row in batch.to_pylist():
            img = image_info[row["image_key"]]
            g = img[group_col]
            ann_id += 1
            entry = _annotation(row, img, image_ids[row["image_key"]], ann_id, segmentation)
            handles[g].write(("" if first[g] else ", ") + json.dumps(entry))
            first[g] = False
            counts[g] += 1
    return counts


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
