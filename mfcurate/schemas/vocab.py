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
    UNCERTAIN = "uncertain"  # raters could not agree (label rounds); never trained by default


#: Fixed COCO category ids; never derived from enum order.
COCO_CATEGORY_IDS: dict[Label, int] = {
    Label.MITOTIC_FIGURE: 1,
    Label.MITOTIC_LIKE: 2,
    Label.BACKGROUND: 3,
    Label.GRANULOCYTE: 4,
    Label.TUMOUR_CELL: 5,
    Label.OTHER_CELL: 6,
    Label.UNCERTAIN: 7,
}

#: Human-readable names used in tables and the COCO ``categories`` list.
LABEL_NAMES: dict[Label, str] = {
    Label.MITOTIC_FIGURE: "mitotic figure",
    Label.MITOTIC_LIKE: "mitotic-like figure",
    Label.BACKGROUND: "background object",
    Label.GRANULOCYTE: "granulocyte",
    Label.TUMOUR_CELL: "tumour cell",
    Label.OTHER_CELL: "other cell",
    Label.UNCERTAIN: "uncertain",
}


class LabelOrigin(StrEnum):
    """How the source made the label's geometry."""

    PIXEL = "pixel"  # a pixel mask drawn by the annotator (ICPR 2012)
    CENTROID = "centroid"  # a point (TUPAC16, SlideRunner spots, MITOS-ATYPIA-14)
    BOX = "box"  # a box (MIDOG JSON)
    POLYGON = "polygon"  # a polygon outline (in-house GeoJSON)
    IHC = "ihc"  # a DAB-positive nucleus on a pHH3 re-stain
    MODEL = "model"  # produced by a model (harvest, detection)
    CONSENSUS = "consensus"  # label set by a label round's consensus (votes in ``votes``)
    MANUAL = "manual"  # label changed by a reviewer


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


class QAFlag(StrEnum):
    """Reasons a step flagged an object (values of ``qa_flags``); see each step's docs."""

    # masks of a prompt box (segment.qa)
    LOW_SCORE = "low_score"
    LOW_STABILITY = "low_stability"
    BOX_EDGE = "box_edge"
    MULTI_COMPONENT = "multi_component"
    AREA_OUT_OF_RANGE = "area_out_of_range"
    CENTROID_OFFSET = "centroid_offset"
    EMPTY = "empty"
    SEGMENT_FAILED = "segment_failed"  # the segmenter raised on this object; no mask kept
    CLIPPED_TO_IMAGE = "clipped_to_image"  # the mask reached past the image and was cut
    # harvest
    DUPLICATE_OF_ANNOTATION = "duplicate_of_annotation"
    NEAR_ANNOTATION = "near_annotation"
    FRAGMENT_OF_FIGURE = "fragment_of_figure"
    # pHH3 transfer (registration)
    OUTSIDE_HE = "outside_he"
    REGISTRATION_RESIDUAL = "registration_residual"
    REGISTRATION_FALLBACK = "registration_fallback"
    REGISTRATION_FAILED_REGION = "registration_failed_region"
    AREA_CHANGED = "area_changed"
    REFINE_FAILED = "refine_failed"
    # patches
    DISK_MASK = "disk_mask"


class RegionClass(StrEnum):
    """Normalised class of a region polygon (``regions`` table, ``region_class``).

    ``tumour`` is where the sources annotated cells; ``exclude``, ``necrosis`` and ``blurred``
    are cut out of it; ``hpf_roi`` is a selected high-power-field area; ``other`` keeps a
    region class no rule recognised (its name stays in ``source_class``).
    """

    TUMOUR = "tumour"
    EXCLUDE = "exclude"
    NECROSIS = "necrosis"
    BLURRED = "blurred"
    HPF_ROI = "hpf_roi"
    OTHER = "other"


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


#: Labels a classifier is trained on by default (``uncertain`` never is).
TRAINABLE_LABELS: frozenset[str] = frozenset(lab.value for lab in Label if lab != Label.UNCERTAIN)

#: Labels that count as "annotated figures" (what masks are refined for and harvest excludes).
FIGURE_LABELS: frozenset[str] = frozenset({Label.MITOTIC_FIGURE, Label.MITOTIC_LIKE})
