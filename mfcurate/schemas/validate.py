"""Checks that pyarrow does not make: nulls, unique keys, vocabularies, boxes, masks.

pyarrow accepts ``None`` in a field declared non-nullable until the Parquet writer refuses it,
and knows nothing of our vocabularies or geometry, so every table passes through
:func:`validate_images` / :func:`validate_objects` before it is written.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mfcurate.errors import SchemaValidationError
from mfcurate.geometry import mask_grid, rle_length
from mfcurate.schemas.tables import IMAGES_SCHEMA, LAYER_SCHEMA, OBJECTS_SCHEMA, REGIONS_SCHEMA
from mfcurate.schemas.vocab import (
    Label,
    LabelOrigin,
    MaskOrigin,
    QAFlag,
    QAState,
    RegionClass,
    Species,
    Split,
)

_EPS = 1e-6


def _keys_where(table: pa.Table, key: str, mask: np.ndarray) -> list[str]:
    idx = np.flatnonzero(mask)[:6]
    col = table.column(key)
    return [str(col[int(i)].as_py()) for i in idx]


def _check_schema(table: pa.Table, schema: pa.Schema, name: str) -> None:
    missing = [n for n in schema.names if n not in table.column_names]
    if missing:
        raise SchemaValidationError(name, f"missing columns {missing}")
    for f in schema:
        col = table.column(f.name)
        if not col.type.equals(f.type):
            raise SchemaValidationError(name, f"column {f.name!r} has type {col.type}, "
                                              f"expected {f.type}")
        if not f.nullable and col.null_count:
            mask = np.asarray(pc.is_null(col).to_numpy(zero_copy_only=False))
            key = schema.names[0]
            raise SchemaValidationError(
                name, f"required column {f.name!r} has {col.null_count} nulls",
                _keys_where(table, key, mask))


def _check_unique(table: pa.Table, key: str, name: str) -> None:
    col = table.column(key)
    if pc.count_distinct(col).as_py() != table.num_rows:
        counts = pc.value_counts(col)
        dup = [v["values"].as_py() for v in counts if v["counts"].as_py() > 1]
        raise SchemaValidationError(name, f"{key} is not unique", [str(d) for d in dup])


def _check_vocab(table: pa.Table, column: str, allowed: set[str], key: str, name: str) -> None:
    col = table.column(column)
    valid = pc.or_(pc.is_null(col), pc.is_in(col, value_set=pa.array(sorted(allowed))))
    bad = ~np.asarray(valid.to_numpy(zero_copy_only=False), dtype=bool)
    if bad.any():
        values = sorted({str(v) for v in np.asarray(col.to_numpy(zero_copy_only=False))[bad]})
        raise SchemaValidationError(
            name, f"{column} has values outside the vocabulary {values[:5]} "
                  f"(allowed: {sorted(allowed)})", _keys_where(table, key, bad))


def _check_flags(table: pa.Table, key: str, name: str) -> None:
    flat = pc.list_flatten(table.column("qa_flags"))
    if len(flat) == 0:
        return
    allowed = pa.array(sorted(v.value for v in QAFlag))
    unknown = pc.invert(pc.is_in(flat, value_set=allowed))
    if pc.any(unknown).as_py():
        values = sorted({str(v) for v in pc.filter(flat, unknown).to_pylist()})
        raise SchemaValidationError(name, f"qa_flags has values outside the vocabulary "
                                          f"{values[:5]} (see QAFlag)")


def _box_problems(boxes: np.ndarray) -> np.ndarray:
    return ~np.isfinite(boxes).all(axis=1) | (boxes[:, 2] <= boxes[:, 0]) | \
        (boxes[:, 3] <= boxes[:, 1]) | (boxes[:, 0] < -_EPS) | (boxes[:, 1] < -_EPS)


def validate_images(table: pa.Table) -> None:
    """Validate an ``images`` table; raise :class:`SchemaValidationError` on the first problem."""
    _check_schema(table, IMAGES_SCHEMA, "images")
    _check_unique(table, "image_key", "images")
    _check_vocab(table, "split", {s.value for s in Split}, "image_key", "images")
    _check_vocab(table, "species", {s.value for s in Species}, "image_key", "images")
    for dim in ("width", "height"):
        v = table.column(dim).to_numpy(zero_copy_only=False)
        v = np.asarray([np.nan if x is None else x for x in v], dtype=float) if v.dtype == object \
            else v.astype(float)
        bad = np.nan_to_num(v, nan=1.0) <= 0
        if bad.any():
            raise SchemaValidationError("images", f"{dim} must be positive",
                                        _keys_where(table, "image_key", bad))
    for dim in ("mpp_x", "mpp_y"):
        v = np.asarray(table.column(dim).to_numpy(zero_copy_only=False), dtype=float)
        bad = np.nan_to_num(v, nan=1.0) <= 0
        if bad.any():
            raise SchemaValidationError("images", f"{dim} must be positive",
                                        _keys_where(table, "image_key", bad))


def _fixed_list(col: pa.ChunkedArray, width: int) -> np.ndarray:
    flat = pc.list_flatten(col).to_numpy(zero_copy_only=False)
    return np.asarray(flat, dtype=float).reshape(-1, width)


def _check_object_fields(table: pa.Table, name: str) -> None:
    """Unique ``object_key``, the vocabularies and the QA flags (objects and layers alike)."""
    _check_unique(table, "object_key", name)
    _check_vocab(table, "label", {v.value for v in Label}, "object_key", name)
    _check_vocab(table, "label_origin", {v.value for v in LabelOrigin}, "object_key", name)
    _check_vocab(table, "mask_origin", {v.value for v in MaskOrigin}, "object_key", name)
    _check_vocab(table, "qa_state", {v.value for v in QAState}, "object_key", name)
    _check_flags(table, "object_key", name)


def validate_objects(table: pa.Table, images: pa.Table | None = None) -> None:
    """Validate an ``objects`` table, optionally against the ``images`` it refers to.

    Checks: schema and required columns, unique ``object_key``, vocabularies, positive boxes,
    boxes inside their image (when its size is known), known image keys, and masks whose RLE
    covers exactly their box's grid.
    """
    name = "objects"
    _check_schema(table, OBJECTS_SCHEMA, name)
    _check_object_fields(table, name)
    if table.num_rows == 0:
        return
    boxes = _fixed_list(table.column("bbox_xyxy"), 4)
    for col, b in (("bbox_xyxy", boxes),
                   ("source_bbox_xyxy", _fixed_list(table.column("source_bbox_xyxy"), 4))):
        bad = _box_problems(b)
        if bad.any():
            raise SchemaValidationError(name, f"{col} must be a positive box with x0, y0 >= 0",
                                        _keys_where(table, "object_key", bad))
    if images is not None:
        idx = pc.index_in(table.column("image_key"), value_set=images.column("image_key"))
        unknown = np.asarray(pc.is_null(idx).to_numpy(zero_copy_only=False), dtype=bool)
        if unknown.any():
            raise SchemaValidationError(name, "image_key not in the images table",
                                        _keys_where(table, "object_key", unknown))
        pos = np.asarray(idx.to_numpy(zero_copy_only=False), dtype=np.int64)
        w = np.asarray(images.column("width").to_numpy(zero_copy_only=False), dtype=float)[pos]
        h = np.asarray(images.column("height").to_numpy(zero_copy_only=False), dtype=float)[pos]
        outside = (np.nan_to_num(boxes[:, 2] - w, nan=0.0) > _EPS) | \
            (np.nan_to_num(boxes[:, 3] - h, nan=0.0) > _EPS)
        if outside.any():
            raise SchemaValidationError(name, "bbox_xyxy extends outside its image",
                                        _keys_where(table, "object_key", outside))
        _check_areas(table, images, pos)
    _check_masks(table, boxes)


def _check_areas(table: pa.Table, images: pa.Table, pos: np.ndarray) -> None:
    """``area_um2`` must be ``area_px * mpp_x * mpp_y`` where the image's µm/px is known."""
    def col(t: pa.Table, name: str) -> np.ndarray:
        return np.asarray(t.column(name).to_numpy(zero_copy_only=False), dtype=float)

    mx, my = col(images, "mpp_x")[pos], col(images, "mpp_y")[pos]
    my = np.where(np.isnan(my), mx, my)
    mx = np.where(np.isnan(mx), my, mx)
    expect = col(table, "area_px") * mx * my
    got = col(table, "area_um2")
    known = np.isfinite(expect) & np.isfinite(got)
    bad = known & (np.abs(got - expect) > 1e-6 * np.maximum(np.abs(expect), 1.0))
    if bad.any():
        raise SchemaValidationError("objects", "area_um2 is not area_px * mpp_x * mpp_y of its "
                                               "image", _keys_where(table, "object_key", bad))


def validate_layer(table: pa.Table) -> None:
    """Validate a layer part: schema, unique keys, vocabularies, mask bundles that are whole.

    Checks against the objects the rows refer to (existence, boxes inside the image) are made
    by the dataset when the layer is written.
    """
    name = "layer"
    _check_schema(table, LAYER_SCHEMA, name)
    _check_object_fields(table, name)
    if table.num_rows == 0:
        return
    has_mask = np.asarray(pc.is_valid(table.column("mask_rle")).to_numpy(zero_copy_only=False))
    bundle = ("bbox_xyxy", "mask_origin", "area_px")
    for c in bundle:
        missing = has_mask & np.asarray(pc.is_null(table.column(c)).to_numpy(
            zero_copy_only=False))
        if missing.any():
            raise SchemaValidationError(name, f"a row with mask_rle needs {c}",
                                        _keys_where(table, "object_key", missing))
    sub = table.filter(pa.array(has_mask))
    if sub.num_rows:
        boxes = _fixed_list(sub.column("bbox_xyxy"), 4)
        bad = _box_problems(boxes)
        if bad.any():
            raise SchemaValidationError(name, "bbox_xyxy must be a positive box",
                                        _keys_where(sub, "object_key", bad))
        _check_masks(sub, boxes)


def _check_masks(table: pa.Table, boxes: np.ndarray) -> None:
    rles = table.column("mask_rle").to_pylist()
    origins = table.column("mask_origin").to_pylist()
    bad = np.zeros(len(rles), dtype=bool)
    for i, (rle, origin) in enumerate(zip(rles, origins, strict=True)):
        if rle is None:
            continue
        _, _, gw, gh = mask_grid(boxes[i])
        try:
            ok = rle_length(rle) == gw * gh and origin is not None
        except (IndexError, ValueError):
            ok = False
        bad[i] = not ok
    if bad.any():
        raise SchemaValidationError(
            "objects", "mask_rle does not cover its box grid (or has no mask_origin)",
            _keys_where(table, "object_key", bad))


def validate_regions(table: pa.Table, images: pa.Table | None = None) -> None:
    """Validate a ``regions`` table, optionally against the ``images`` it refers to.

    Checks: schema and required columns, unique ``region_key``, the ``region_class``
    vocabulary, positive finite areas and known image keys.  Geometry validity is the
    builder's job (:mod:`mfcurate.regions` repairs or drops invalid polygons).
    """
    name = "regions"
    _check_schema(table, REGIONS_SCHEMA, name)
    _check_unique(table, "region_key", name)
    _check_vocab(table, "region_class", {v.value for v in RegionClass}, "region_key", name)
    if table.num_rows == 0:
        return
    area = np.asarray(table.column("area_px").to_numpy(zero_copy_only=False), dtype=float)
    bad = ~np.isfinite(area) | (area <= 0)
    if bad.any():
        raise SchemaValidationError(name, "area_px must be positive",
                                    _keys_where(table, "region_key", bad))
    if images is not None:
        idx = pc.index_in(table.column("image_key"), value_set=images.column("image_key"))
        unknown = np.asarray(pc.is_null(idx).to_numpy(zero_copy_only=False), dtype=bool)
        if unknown.any():
            raise SchemaValidationError(name, "image_key not in the images table",
                                        _keys_where(table, "region_key", unknown))
