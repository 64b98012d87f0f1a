"""The Arrow tables of an mfcurate dataset: ``images``, ``objects``, ``layer``, ``regions``.

Each field carries a one-line description in its Arrow metadata (``b"description"``); the
JSON Schema in the repository's top-level ``schemas/`` folder and ``docs/schema.md`` are
generated from these definitions (:mod:`mfcurate.schemas.export`).  The record dataclasses
have exactly the same field names, which a test enforces.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

#: Version of the table layout, written to every Parquet file's metadata.
SCHEMA_VERSION = "2.0"
SCHEMA_VERSION_KEY = b"mfcurate.schema_version"


def _f(name: str, typ: pa.DataType, nullable: bool, description: str) -> pa.Field:
    return pa.field(name, typ, nullable=nullable, metadata={b"description": description.encode()})


VOTE_TYPE = pa.struct([("annotator", pa.string()), ("label", pa.string()),
                       ("time", pa.string()), ("round", pa.string())])

IMAGES_SCHEMA = pa.schema(
    [
        _f("image_key", pa.string(), False, "Stable unique key: '<source>/<source_image_id>'."),
        _f("source", pa.string(), False, "Adapter key of the source (e.g. 'midog++')."),
        _f("source_image_id", pa.string(), False, "The image's id in its source."),
        _f("path", pa.string(), False,
           "Image file path relative to the source root recorded in the manifest."),
        _f("width", pa.int64(), True, "Level-0 width in pixels (columns); null if unknown."),
        _f("height", pa.int64(), True, "Level-0 height in pixels (rows); null if unknown."),
        _f("mpp_x", pa.float64(), True, "Micrometres per pixel along x; null if unknown."),
        _f("mpp_y", pa.float64(), True, "Micrometres per pixel along y; null if unknown."),
        _f("scanner", pa.string(), True, "Scanner model, normalised spelling."),
        _f("vendor", pa.string(), True, "Image file vendor as reported by the reader."),
        _f("tumour_type", pa.string(), True,
           "Tumour type, lower case (e.g. 'human breast cancer')."),
        _f("species", pa.string(), True, "Species: human, canine, feline, murine, other."),
        _f("is_wsi", pa.bool_(), False, "True for a whole-slide image, False for a region/tile."),
        _f("split", pa.string(), False, "train, val, test or unassigned."),
        _f("fold", pa.int32(), True, "Cross-validation fold where the source defines one."),
        _f("license", pa.string(), False, "Licence of the image and its annotations (SPDX-like)."),
        _f("file_found", pa.bool_(), False, "Whether the image file existed at ingest time."),
        _f("duplicate_of", pa.string(), True,
           "image_key of the canonical copy when this image is the same specimen image as one "
           "of another source (selections leave copies out by default); null otherwise."),
    ],
    metadata={SCHEMA_VERSION_KEY: SCHEMA_VERSION.encode(), b"table": b"images"},
)

OBJECTS_SCHEMA = pa.schema(
    [
        _f("object_key", pa.string(), False,
           "Stable unique key: '<image_key>/<source_annotation_id>' (or a step-specific suffix)."),
        _f("image_key", pa.string(), False, "Key of the image the object lies on."),
        _f("source", pa.string(), False, "Adapter key of the source."),
        _f("source_annotation_id", pa.string(), False, "The annotation's id in its source."),
        _f("source_file", pa.string(), True,
           "Annotation file the object was read from, relative to the source root."),
        _f("label", pa.string(), False, "Class from the mfcurate vocabulary (consensus label)."),
        _f("source_label", pa.string(), True, "The class name as the source wrote it."),
        _f("label_origin", pa.string(), False,
           "How the label geometry was made: pixel, centroid, box, polygon, ihc, model."),
        _f("votes", pa.list_(VOTE_TYPE), True,
           "Individual votes (annotator, label, time, round) from the source or label rounds."),
        _f("confidence", pa.float64(), True,
           "Source confidence/agreement score where the source has one (MITOS-ATYPIA-14)."),
        _f("centroid_xy", pa.list_(pa.float64(), 2), False, "Object centre [x, y], level-0 px."),
        _f("bbox_xyxy", pa.list_(pa.float64(), 4), False,
           "Box [x_min, y_min, x_max, y_max], level-0 px, half-open, inside the image: the "
           "mask's tight box once a mask exists, else the annotation's box."),
        _f("source_bbox_xyxy", pa.list_(pa.float64(), 4), False,
           "The box as the source annotated it (or as the step that created the object drew "
           "it), level-0 px; never changed by later steps (it is what masks are prompted with)."),
        _f("mask_rle", pa.string(), True,
           "Nucleus mask as COCO compressed RLE on the box's integer grid "
           "(see geometry.mask_grid)."),
        _f("mask_origin", pa.string(), True,
           "source, disk, sam_box, sam_auto, phh3, classical or manual; null without a mask."),
        _f("mask_score", pa.float64(), True,
           "Quality score of the mask (SAM predicted IoU or QA score)."),
        _f("area_px", pa.int64(), True, "Mask area in level-0 pixels; null without a mask."),
        _f("area_um2", pa.float64(), True,
           "Mask area in µm² through the image's mpp; null if unknown."),
        _f("qa_state", pa.string(), False,
           "unreviewed, flagged, accepted, amended or rejected."),
        _f("qa_flags", pa.list_(pa.string()), True, "Reasons automatic QA flagged the mask."),
        _f("parent_key", pa.string(), True,
           "Object this one is derived from or linked to (e.g. a harvested match)."),
        _f("extra", pa.string(), True, "JSON object with source- or step-specific fields."),
    ],
    metadata={SCHEMA_VERSION_KEY: SCHEMA_VERSION.encode(), b"table": b"objects"},
)


#: Columns of a *layer* part: what a derive step (refine, harvest-fill, review, labels) says
#: about objects that another part created.  Null means "this layer does not set it".
LAYER_SCHEMA = pa.schema(
    [
        _f("object_key", pa.string(), False, "The object this row refines (must exist)."),
        _f("label", pa.string(), True, "A new label (review, label-round consensus)."),
        _f("label_origin", pa.string(), True, "How the new label was decided."),
        _f("votes", pa.list_(VOTE_TYPE), True, "All votes on the object (replaces the list)."),
        _f("bbox_xyxy", pa.list_(pa.float64(), 4), True, "Tight box of the layer's mask."),
        _f("mask_rle", pa.string(), True, "The layer's mask (COCO RLE on its box grid)."),
        _f("mask_origin", pa.string(), True, "Origin of the layer's mask."),
        _f("mask_score", pa.float64(), True, "Quality score of the layer's mask."),
        _f("mask_forced", pa.bool_(), True,
           "The step was told to replace masks of higher precedence (refine --overwrite)."),
        _f("area_px", pa.int64(), True, "Area of the layer's mask, level-0 px."),
        _f("area_um2", pa.float64(), True, "Area of the layer's mask, µm²."),
        _f("qa_state", pa.string(), True, "A review state (or the QA state of the layer's mask)."),
        _f("qa_flags", pa.list_(pa.string()), True, "Flags the layer raised."),
        _f("parent_key", pa.string(), True, "A link the layer sets."),
        _f("step_info", pa.string(), True, "JSON object: what the step records about the row."),
    ],
    metadata={SCHEMA_VERSION_KEY: SCHEMA_VERSION.encode(), b"table": b"layer"},
)


#: Region polygons the sources drew on their images (tumour zones, exclusions, HPF ROIs):
#: one row per polygon, level-0 px, x = column.  Harvest can work inside them.
REGIONS_SCHEMA = pa.schema(
    [
        _f("region_key", pa.string(), False,
           "Stable unique key: '<image_key>/region/<annotation file stem>/<annotation id>'."),
        _f("image_key", pa.string(), False, "Key of the image the region lies on."),
        _f("source", pa.string(), False, "Adapter key of the source."),
        _f("region_class", pa.string(), False,
           "Normalised region class (tumour, exclude, necrosis, blurred, hpf_roi, other)."),
        _f("source_class", pa.string(), True, "The class name as the source wrote it."),
        _f("geometry_wkb", pa.binary(), False,
           "Polygon or MultiPolygon as WKB (shapely), level-0 px, x = column; repaired with "
           "make_valid where the source's polygon was invalid."),
        _f("bbox_xyxy", pa.list_(pa.float64(), 4), False,
           "Bounds [x_min, y_min, x_max, y_max] of the geometry, level-0 px (may reach past "
           "the image: sources draw outside it)."),
        _f("n_vertices", pa.int64(), False, "Vertices the source stored for the region."),
        _f("area_px", pa.float64(), False, "Area of the geometry in level-0 px²."),
        _f("area_um2", pa.float64(), True,
           "Area in µm² through the image's mpp_x * mpp_y; null if unknown."),
        _f("repaired", pa.bool_(), False,
           "True when the source's polygon was invalid and was repaired (make_valid)."),
        _f("source_file", pa.string(), True,
           "Annotation file the region was read from, relative to the source root."),
        _f("source_annotation_id", pa.string(), False, "The region's id in its file."),
    ],
    metadata={SCHEMA_VERSION_KEY: SCHEMA_VERSION.encode(), b"table": b"regions"},
)


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """One row of the ``images`` table (field docs live in :data:`IMAGES_SCHEMA`)."""

    image_key: str
    source: str
    source_image_id: str
    path: str
    width: int | None = None
    height: int | None = None
    mpp_x: float | None = None
    mpp_y: float | None = None
    scanner: str | None = None
    vendor: str | None = None
    tumour_type: str | None = None
    species: str | None = None
    is_wsi: bool = False
    split: str = "unassigned"
    fold: int | None = None
    license: str = "unknown"
    file_found: bool = False
    duplicate_of: str | None = None


@dataclass(frozen=True, slots=True)
class ObjectRecord:
    """One row of the ``objects`` table (field docs live in :data:`OBJECTS_SCHEMA`)."""

    object_key: str
    image_key: str
    source: str
    source_annotation_id: str
    label: str
    label_origin: str
    centroid_xy: tuple[float, float]
    bbox_xyxy: tuple[float, float, float, float]
    source_bbox_xyxy: tuple[float, float, float, float] | None = None
    source_file: str | None = None
    source_label: str | None = None
    votes: Sequence[dict[str, str | None]] | None = None
    confidence: float | None = None
    mask_rle: str | None = None
    mask_origin: str | None = None
    mask_score: float | None = None
    area_px: int | None = None
    area_um2: float | None = None
    qa_state: str = "unreviewed"
    qa_flags: Sequence[str] | None = None
    parent_key: str | None = None
    extra: str | None = field(default=None)


@dataclass(frozen=True, slots=True)
class RegionRecord:
    """One row of the ``regions`` table (field docs live in :data:`REGIONS_SCHEMA`)."""

    region_key: str
    image_key: str
    source: str
    region_class: str
    source_class: str | None
    geometry_wkb: bytes
    bbox_xyxy: tuple[float, float, float, float]
    n_vertices: int
    area_px: float
    area_um2: float | None
    repaired: bool
    source_file: str | None
    source_annotation_id: str


def _to_columns(records: Iterable[Any], schema: pa.Schema) -> pa.Table:
    names = schema.names
    cols: dict[str, list[Any]] = {n: [] for n in names}
    for rec in records:
        for n in names:
            cols[n].append(getattr(rec, n))
    return pa.table({n: pa.array(cols[n], type=schema.field(n).type) for n in names},
                    schema=schema)


def images_table(records: Iterable[ImageRecord]) -> pa.Table:
    """Build an ``images`` table from records (an empty iterable gives an empty table)."""
    return _to_columns(records, IMAGES_SCHEMA)


def objects_table(records: Iterable[ObjectRecord]) -> pa.Table:
    """Build an ``objects`` table from records (an empty iterable gives an empty table).

    A record without ``source_bbox_xyxy`` gets its ``bbox_xyxy`` there (the box as read).
    """
    return _to_columns((r if r.source_bbox_xyxy is not None else
                        dataclasses.replace(r, source_bbox_xyxy=r.bbox_xyxy) for r in records),
                       OBJECTS_SCHEMA)


def regions_table(records: Iterable[RegionRecord]) -> pa.Table:
    """Build a ``regions`` table from records (an empty iterable gives an empty table)."""
    return _to_columns(records, REGIONS_SCHEMA)


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Cast a table read back from Parquet (or built elsewhere) to ``schema``.

    Columns are reordered by name and the schema metadata is restored.  Missing nullable
    columns are filled with nulls, so a table written by an older minor version still reads.
    """
    arrays = []
    if schema is OBJECTS_SCHEMA:
        table = _with_source_boxes(table)
    for f in schema:
        if f.name in table.column_names:
            arrays.append(table.column(f.name).cast(f.type))
        elif f.nullable:
            arrays.append(pa.nulls(table.num_rows, type=f.type))
        else:
            from mfcurate.errors import SchemaValidationError

            raise SchemaValidationError(
                str(schema.metadata.get(b"table", b"?").decode()), f"missing column {f.name!r}"
            )
    return pa.Table.from_arrays(arrays, schema=schema)


def _with_source_boxes(table: pa.Table) -> pa.Table:
    """Fill a missing or null ``source_bbox_xyxy`` from ``bbox_xyxy`` (objects just created)."""
    import pyarrow.compute as pc

    if "bbox_xyxy" not in table.column_names:
        return table
    box = table.column("bbox_xyxy").cast(OBJECTS_SCHEMA.field("bbox_xyxy").type)
    if "source_bbox_xyxy" not in table.column_names:
        return table.append_column("source_bbox_xyxy", box)
    src = table.column("source_bbox_xyxy").cast(box.type)
    if src.null_count == 0:
        return table
    i = table.column_names.index("source_bbox_xyxy")
    return table.set_column(i, "source_bbox_xyxy", pc.if_else(pc.is_null(src), box, src))


def record_fields(cls: type) -> list[str]:
    """Field names of a record dataclass, in order."""
    return [f.name for f in dataclasses.fields(cls)]
