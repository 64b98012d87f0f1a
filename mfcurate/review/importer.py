"""``import-review``: read corrected QuPath GeoJSON back into the dataset.

For every object of an export (matched by the feature ``name``, which is the object key):

* its outline was edited -> the new polygon is rasterised: ``mask_origin = manual``,
  ``qa_state = amended`` (box, RLE and areas follow the new mask);
* its class is ``Rejected`` (any case) or the feature was deleted -> ``qa_state = rejected``
  (the row and its mask stay, so nothing is lost and the decision can be undone);
* unchanged -> left as it is (or ``accepted`` with ``accept_unchanged``).

The decisions are written as the ``review`` layer of each source (one atomic commit; earlier
reviews of other objects stay), which outranks every other mask and QA state (see
:mod:`mfcurate.dataset.parts`); the previous QA state, flags and mask origin are recorded in
the layer's ``step_info`` (shown as ``extra.review``).  Features whose name is not an object of
the export (objects a person drew) are counted and ignored; an import that decides nothing
writes nothing.
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
from mfcurate.schemas.tables import LAYER_SCHEMA

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
    from mfcurate.io.geojson import read_features

    ds = Dataset.open(dataset)
    rdir = Path(review_dir)
    meta_path, meta = _read_meta(rdir)
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
        if image_key not in images:
            raise SourceFormatError(meta_path, f"image {image_key!r} is not in {dataset}")
        mpp_x = images[image_key]["mpp_x"]
        mpp_y = images[image_key]["mpp_y"]
        for key in sorted(exported | set(seen)):
            outcome, update = _decide(rows[key], seen.get(key, []), mpp_x, mpp_y,
                                      accept_unchanged=accept_unchanged)
            setattr(summary, outcome, getattr(summary, outcome) + 1)
            if update is not None:
                updates[key] = update
    _write_updates(ds, updates)
    for u in updates.values():
        summary.by_state[u["qa_state"]] = summary.by_state.get(u["qa_state"], 0) + 1
    return summary


def _read_meta(rdir: Path) -> tuple[Path, dict[str, Any]]:
    """``(path, content)`` of the folder's ``review.json``.

    Raises:
        SourceFormatError: it is missing, not JSON, or has no ``images`` mapping.
    """
    meta_path = rdir / "review.json"
    if not meta_path.exists():
        raise SourceFormatError(meta_path, "missing: not an export-review folder, or its "
                                "export-review was interrupted (run it again)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SourceFormatError(meta_path, f"invalid JSON ({exc})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("images"), dict):
        raise SourceFormatError(meta_path, "'images' must map image keys to GeoJSON files")
    return meta_path, meta


def _decide(row: dict[str, Any], fs: list[Any], mpp_x: float | None, mpp_y: float | None, *,
            accept_unchanged: bool) -> tuple[str, dict[str, Any] | None]:
    """The reviewer's decision on one exported object.

    Args:
        row: the object's current row.
        fs: its features in the corrected GeoJSON (empty: the feature was deleted).
        mpp_x: the image's pixel width (µm/px) for ``area_um2``.
        mpp_y: the image's pixel height (µm/px).
        accept_unchanged: an unchanged outline accepts the object.

    Returns:
        ``(outcome, update)``: outcome is the :class:`ImportSummary` counter to raise
        (``rejected``, ``unchanged``, ``accepted`` or ``amended``); update is the ``review``
        layer entry (``_review`` holds the previous QA state, flags and mask origin), or None.
    """
    from mfcurate.geometry import mask_grid, mask_to_record
    from mfcurate.io.geojson import polygon_to_mask
    from mfcurate.units import area_um2

    review = {"previous_qa_state": row["qa_state"],
              "previous_qa_flags": row["qa_flags"],
              "previous_mask_origin": row["mask_origin"]}
    if not fs or any((f.class_name or "").strip().lower() in REJECT_NAMES for f in fs):
        return "rejected", {"qa_state": "rejected", "_review": review, **_seen_mask(row)}
    polys = [f for f in fs if f.kind == "polygon"]
    if not polys:
        return "unchanged", None
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
        return "rejected", {"qa_state": "rejected", "_review": review, **_seen_mask(row)}
    if _same_mask(row, rec):
        if accept_unchanged:
            return "accepted", {"qa_state": "accepted", "_review": review, **_seen_mask(row)}
        return "unchanged", None
    bbox, rle, area, _ = rec
    return "amended", {
        "bbox_xyxy": list(bbox), "mask_rle": rle, "mask_origin": "manual",
        "mask_score": 1.0, "area_px": area,
        "area_um2": area_um2(area, mpp_x, mpp_y),
        "qa_state": "amended", "qa_flags": [], "_review": review,
    }


def _seen_mask(row: dict[str, Any]) -> dict[str, Any]:
    """The mask the reviewer judged, so the decision stays with that mask (review layer)."""
    if not row.get("mask_rle"):
        return {}
    return {c: row[c] for c in ("bbox_xyxy", "mask_rle", "mask_origin", "mask_score",
                                "area_px", "area_um2")}


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
    """Merge the decisions into each source's ``review`` layer (one commit)."""
    if not updates:
        return
    objs = ds.objects(columns=["object_key", "source"])
    src_of = dict(zip(objs.column("object_key").to_pylist(),
                      objs.column("source").to_pylist(), strict=True))
    by_source: dict[str, dict[str, dict[str, Any]]] = {}
    for key, u in updates.items():
        by_source.setdefault(src_of[key], {})[key] = u
    tables = {}
    for source, ups in sorted(by_source.items()):
        old = ds.layer(source, "review")
        keep = old.filter(pc.invert(pc.is_in(old.column("object_key"),
                                             value_set=pa.array(sorted(ups)))))
        tables[source] = pa.concat_tables([keep, review_rows(ups)])
    ds.write_layers(tables, part="review")


def review_rows(updates: dict[str, dict[str, Any]]) -> pa.Table:
    """``review`` layer rows (``LAYER_SCHEMA``) of the decisions; ``_review`` -> step_info."""
    cols = [f.name for f in LAYER_SCHEMA]
    rows = []
    for key in sorted(updates):
        u = updates[key]
        row: dict[str, Any] = {c: u.get(c) for c in cols}
        row["object_key"] = key
        row["qa_flags"] = u.get("qa_flags") or None
        row["step_info"] = json.dumps(u.get("_review", {}), sort_keys=True)
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=LAYER_SCHEMA)
