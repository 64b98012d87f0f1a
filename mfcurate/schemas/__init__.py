"""The mfcurate schema: the Arrow tables (images, objects, layer, regions) and their checks.

Coordinates are level-0 pixels, x = column, y = row, origin at the top-left corner of the
first pixel.  ``bbox_xyxy`` is a float half-open box; ``centroid_xy`` is ``[x, y]``.  Masks are
stored as COCO compressed RLE on the integer grid of their own box (never the whole image), so
a mask on a 100k x 100k slide costs bytes, not gigabytes.  Physical units go through each
image's ``mpp_x``/``mpp_y``.
"""

from mfcurate.schemas.tables import (
    IMAGES_SCHEMA,
    LAYER_SCHEMA,
    OBJECTS_SCHEMA,
    REGIONS_SCHEMA,
    SCHEMA_VERSION,
    ImageRecord,
    ObjectRecord,
    RegionRecord,
    conform,
    images_table,
    objects_table,
    regions_table,
)
from mfcurate.schemas.validate import (
    validate_images,
    validate_layer,
    validate_objects,
    validate_regions,
)
from mfcurate.schemas.vocab import (
    COCO_CATEGORY_IDS,
    FIGURE_LABELS,
    LABEL_NAMES,
    Label,
    LabelOrigin,
    MaskOrigin,
    QAFlag,
    QAState,
    RegionClass,
    Species,
    Split,
)

__all__ = [
    "COCO_CATEGORY_IDS",
    "FIGURE_LABELS",
    "IMAGES_SCHEMA",
    "LABEL_NAMES",
    "LAYER_SCHEMA",
    "OBJECTS_SCHEMA",
    "REGIONS_SCHEMA",
    "SCHEMA_VERSION",
    "ImageRecord",
    "Label",
    "LabelOrigin",
    "MaskOrigin",
    "ObjectRecord",
    "QAFlag",
    "QAState",
    "RegionClass",
    "RegionRecord",
    "Species",
    "Split",
    "conform",
    "images_table",
    "objects_table",
    "regions_table",
    "validate_images",
    "validate_layer",
    "validate_objects",
    "validate_regions",
]
