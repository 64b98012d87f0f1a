"""Controlled vocabularies of the mfcurate schema and the fixed COCO category ids."""

from __future__ import annotations

from enum import StrEnum


class Label(StrEnum):
    """Object classes.  The value is what the ``label`` column stores.

    ``mitotic_like`` covers every source's imposter/hard-negative class ("not mitotic figure",
    "Hard negative", "Nonmitosis", "Mitotic figure look-alike").
    """

    MITOTIC_FIGURE = "mitotic_figure"
    MITOTIC_LIKE = "mitotic_like"
    BACKGROUND = "background"
    GRANULOCYTE = "granulocyte"
    TUMOUR_CELL = "tumour_cell"
    OTHER_CELL = "other_cell"


#: Fixed COCO category ids; never derived from enum order.
COCO_CATEGORY_IDS: dict[Label, int] = {
    Label.MITOTIC_FIGURE: 1,
    Label.MITOTIC_LIKE: 2,
    Label.BACKGROUND: 3,
    Label.GRANULOCYTE: 4,
    Label.TUMOUR_CELL: 5,
    Label.OTHER_CELL: 6,
}

#: Human-readable names used in tables and the COCO ``categories`` list.
LABEL_NAMES: dict[Label, str] = {
    Label.MITOTIC_FIGURE: "mitotic figure",
    Label.MITOTIC_LIKE: "mitotic-like figure",
    Label.BACKGROUND: "background object",
    Label.GRANULOCYTE: "granulocyte",
    Label.TUMOUR_CELL: "tumour cell",
    Label.OTHER_CELL: "other cell",
}


class LabelOrigin(StrEnum):
    """How the source made the label's geometry."""

    PIXEL = "pixel"  # a pixel mask drawn by the annotator (ICPR 2012)
    CENTROID = "centroid"  # a point (TUPAC16, SlideRunner spots, MITOS-ATYPIA-14)
    BOX = "box"  # a box (MIDOG JSON)
    POLYGON = "polygon"  # a polygon outline (in-house GeoJSON)
    IHC = "ihc"  # a DAB-positive nucleus on a pHH3 re-stain
    MODEL = "model"  # produced by a model (harvest, detection)


class MaskOrigin(StrEnum):
    """Where the object's mask came from."""

    SOURCE = "source"  # the source's own pixels or polygon
    DISK = "disk"  # a disk of fixed radius around the centroid (fallback)
    SAM_BOX = "sam_box"  # SAM prompted with the annotation's box
    SAM_AUTO = "sam_auto"  # SAM automatic mask generator (harvest)
    PHH3 = "phh3"  # transferred from a registered pHH3 slide
    CLASSICAL = "classical"  # the classical (haematoxylin) segmenter
    MANUAL = "manual"  # drawn or corrected by a person (review round trip)


class QAState(StrEnum):
    """Review state of an object.

    ``flagged`` means automatic QA marked the mask for a person to look at.
    """

    UNREVIEWED = "unreviewed"
    FLAGGED = "flagged"
    ACCEPTED = "accepted"
    AMENDED = "amended"
    REJECTED = "rejected"


class Species(StrEnum):
    """Species of the specimen."""

    HUMAN = "human"
    CANINE = "canine"
    FELINE = "feline"
    MURINE = "murine"
    OTHER = "other"


class Split(StrEnum):
    """Dataset split of an image."""

    TRAIN = "train"
    VAL = "val"
    TEST = "test"
    UNASSIGNED = "unassigned"


#: Labels that count as "annotated figures" (what masks are refined for and harvest excludes).
FIGURE_LABELS: frozenset[str] = frozenset({Label.MITOTIC_FIGURE, Label.MITOTIC_LIKE})
