"""``import-review``: read corrected QuPath GeoJSON back into the dataset.

For every object of an export (matched by the feature ``name``, which is the object key):

* its outline was edited -> the new polygon is rasterised: ``mask_origin = manual``,
  ``qa_state = amended`` (box, RLE and areas follow the new mask);
* its class is ``Rejected`` (any case) or the feature was deleted -> ``qa_state = rejected``
  (the row and its mask stay, so nothing is lost and the decision can be undone);
* unchanged -> left as it is (or ``accepted`` with ``accept_unchanged``).

Previous QA flags and mask origin are kept in ``extra.review``.  Features whose name is not an
object of the export (objects a person drew) are counted and ignored.  Every other row and
column of the dataset is untouched; each changed part is replaced atomically.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mfcurate.dataset import Dataset
from mfcurate.errors import SourceFormatError
from mfcurate.schemas.tables import OBJECTS_SCHEMA

REJECT_NAMES = frozenset({"rejected", "reject", "ignore*", "ignore"})


@dataclass
class ImportSummary:
    """What an import changed."""

    amended: int = 0
    rejected: int = 0
    accepted: int = 0
    unchanged: int = 0
    unknown_features: int = 0
    files: int = 0
    by_state: dict[str, int] = field(default_factory=dict)


def import_review(dataset: Path | str, review_dir: Path | str, *,
                  accept_unchanged: bool = False) -> ImportSummary:
    """Apply a corrected review folder (see the module docstring).

    Raises:
        SourceFormatError: the folder has no ``review.json`` or a file is not valid GeoJSON.
    """
    from mfcurate.geometry import mask_grid, mask_to_record
    from mfcurate.io.geojson import polygon_to_mask, read_features

    ds = Dataset.open(dataset)
    rdir = Path(review_dir)
    meta_path = rdir / "review.json"
    if not meta_path.exists():
        raise SourceFormatError(meta_path, "not an export-review folder (no review.json)")
    meta = json.loads(meta_path.read_text())
    current = ds.objects()
    rows = {r["object_key"]: r for r in current.to_pylist()}
    images = {r["image_key"]: r for r in ds.images().to_pylist()}
    summary = ImportSummary()
    updates: dict[str, dict[str, Any]] = {}
    for image_key, rel in sorted(meta["images"].items()):
        path = rdir / rel
        if not path.exists():
            raise SourceFormatError(path, "GeoJSON file of the export is missing")
        summary.files += 1
        feats = read_features(path)
        exported = {k for k in _exported_keys(image_key, meta, rows) if k in rows}
        seen: dict[str, list[Any]] = {}
        for f in feats:
            if f.name is not None and f.name in rows and rows[f.name]["image_key"] == image_key:
                seen.setdefault(f.name, []).append(f)
            else:
                summary.unknown_features += 1
        mpp_x = images[image_key]["mpp_x"]
        mpp_y = images[image_key]["mpp_y"] or mpp_x
        for key in sorted(exported | set(seen)):
            row = rows[key]
            fs = seen.get(key, [])
            review = {"previous_qa_state": row["qa_state"],
                      "previous_qa_flags": row["qa_flags"],
                      "previous_mask_origin": row["mask_origin"]}
            if not fs or any((f.class_name or "").strip().lower() in REJECT_NAMES for f in fs):
                updates[key] = {"qa_state": "rejected", "_review": review}
                summary.rejected += 1
                continue
            polys = [f for f in fs if f.kind == "polygon"]
            if not polys:
                summary.unchanged += 1
                continue
            x0 = min(f.coords[:, 0].min() for f in polys)
            y0 = min(f.coords[:, 1].min() for f in polys)
            x1 = max(f.coords[:, 0].max() for f in polys)
            y1 = max(f.coords[:, 1].max() for f in polys)
            grid = mask_grid((x0, y0, x1, y1))
            m = np.zeros((grid[3], grid[2]), bool)
            for f in polys:
                m |= polygon_to_mask(f.coords, f.holes, grid)[1]
            rec = mask_to_record(m, (grid[0], grid[1]))
            if rec is None:
                updates[key] = {"qa_state": "rejected", "_review": review}
                summary.rejected += 1
                continue
            if _same_mask(row, rec):
                if accept_unchanged:
                    updates[key] = {"qa_state": "accepted", "_review": review}
                    summary.accepted += 1
                else:
                    summary.unchanged += 1
                continue
            bbox, rle, area, _ = rec
            updates[key] = {
                "bbox_xyxy": list(bbox), "mask_rle": rle, "mask_origin": "manual",
                "mask_score": 1.0, "area_px": area,
                "area_um2": None if mpp_x is None else float(area) * mpp_x * mpp_y,
                "qa_state": "amended", "qa_flags": [], "_review": review,
            }
            summary.amended += 1
    _write_updates(ds, updates)
    for u in updates.values():
        summary.by_state[u["qa_state"]] = summary.by_state.get(u["qa_state"], 0) + 1
    return summary


def _exported_keys(image_key: str, meta: dict[str, Any],
                   rows: dict[str, Any]) -> list[str]:
    keys = meta.get("object_keys", {}).get(image_key)
    if keys is None:
        return [k for k, r in rows.items() if r["image_key"] == image_key]
    return list(keys)


def _same_mask(row: dict[str, Any], rec: tuple[Any, ...]) -> bool:
    """True when the polygon reproduces the stored mask up to outline tracing (IoU >= 0.9)."""
    from mfcurate.geometry import decode_mask, mask_grid

    if not row.get("mask_rle"):
        return False
    bbox, rle, _, _ = rec
    a_grid = mask_grid(row["bbox_xyxy"])
    b_grid = mask_grid(bbox)
    x0, y0 = min(a_grid[0], b_grid[0]), min(a_grid[1], b_grid[1])
    x1 = max(a_grid[0] + a_grid[2], b_grid[0] + b_grid[2])
    y1 = max(a_grid[1] + a_grid[3], b_grid[1] + b_grid[3])
    a = np.zeros((y1 - y0, x1 - x0), bool)
    b = np.zeros_like(a)
    ma = decode_mask(row["mask_rle"], a_grid[3], a_grid[2])
    mb = decode_mask(rle, b_grid[3], b_grid[2])
    a[a_grid[1] - y0:a_grid[1] - y0 + a_grid[3], a_grid[0] - x0:a_grid[0] - x0 + a_grid[2]] = ma
    b[b_grid[1] - y0:b_grid[1] - y0 + b_grid[3], b_grid[0] - x0:b_grid[0] - x0 + b_grid[2]] = mb
    union = (a | b).sum()
    return bool(union and (a & b).sum() / union >= 0.9)


def _write_updates(ds: Dataset, updates: dict[str, dict[str, Any]]) -> None:
    if not updates:
        return
    keys = pa.array(sorted(updates))
    for source in ds.sources:
        for part in sorted(ds.source_info(source).get("parts", {})):
            table = ds.objects(sources=[source], parts=[part])
            hit = pc.is_in(table.column("object_key"), value_set=keys)
            if not pc.any(hit).as_py():
                continue
            ds.write_part(source, part, [apply_updates(table, updates)])


def apply_updates(table: pa.Table, updates: dict[str, dict[str, Any]]) -> pa.Table:
    """Set the given columns of the given rows; ``_review`` goes to ``extra.review``."""
    keys = table.column("object_key").to_pylist()
    cols = {c for u in updates.values() for c in u if not c.startswith("_")} | {"extra"}
    for name in sorted(cols):
        values = table.column(name).to_pylist()
        for i, k in enumerate(keys):
            u = updates.get(k)
            if u is None:
                continue
            if name == "extra":
                try:
                    e = json.loads(values[i]) if values[i] else {}
                except json.JSONDecodeError:
                    e = {"original_extra": values[i]}
                e["review"] = u.get("_review", {})
                values[i] = json.dumps(e, sort_keys=True)
            elif name in u:
                values[i] = u[name]
        idx = table.column_names.index(name)
        field_ = OBJECTS_SCHEMA.field(name)
        table = table.set_column(idx, field_, pa.array(values, type=field_.type))
    return table
