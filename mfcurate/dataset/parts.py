"""The derive contract: which step writes which part, and which part wins.

A source's objects live in named **parts**, one per step, each written only by its step:

========== ======== =========================================================================
part        kind     written by
========== ======== =========================================================================
ingest      base     ``mfcurate ingest`` (the adapter's annotations)
harvest     base     ``mfcurate harvest`` (objects it found on the tissue)
detect      base     ``label-round new`` (detector candidates that became objects)
refine      layer    ``mfcurate refine-masks`` (box-prompted masks)
harvest-fill layer   ``mfcurate harvest`` (masks for annotations that had none)
review      layer    ``mfcurate import-review`` (a person's masks and QA states)
labels      layer    ``mfcurate label-round resolve`` (consensus labels and votes)
========== ======== =========================================================================

A **base** part creates objects (full ``objects`` rows, keys unique across the source's base
parts).  A **layer** part says something about objects a base part created (``LAYER_SCHEMA``:
``object_key`` plus the fields it sets; null = not set).  A step reads the dataset without its
own parts, so its result does not depend on its previous run: a rerun is a no-op and a resumed
run equals an uninterrupted one.

**Effective row** of an object = its base row with the layers applied:

* the **mask bundle** (``bbox_xyxy``, ``mask_rle``, ``mask_origin``, ``mask_score``, ``area_px``,
  ``area_um2`` and the mask's QA state/flags) comes from the candidate of highest precedence:
  manual (review) > source (the annotator's own pixels or polygon) > pHH3 transfer >
  ``refine --overwrite`` rows rank just below manual > refine > harvest-fill > a disk
  placeholder > none.  On a tie the layer wins over the base row.
* ``label``/``label_origin``: review > labels (consensus) > base; ``votes``: labels > base.
* ``qa_state``: review's when it sets one; else a decided base state (``accepted``,
  ``amended``, ``rejected``) stays; else the state that came with the winning mask.
* ``qa_flags``: the base row's, plus the winning layer's, plus review's.
* ``parent_key``: the highest layer that sets one, else the base row's.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mfcurate.errors import DatasetError


class PartKind(StrEnum):
    """Base parts create objects; layer parts refine objects of base parts."""

    BASE = "base"
    LAYER = "layer"


@dataclass(frozen=True)
class PartSpec:
    """What a part is.

    Attributes:
        name: the part name (also the file-name prefix).
        kind: base or layer.
        mask_rank: precedence of the layer's masks (layers only; higher wins).
        label_rank: precedence of the layer's labels (0: the layer sets none).
        human: holds people's work (kept, filtered to surviving keys, on re-ingest).
    """

    name: str
    kind: PartKind
    mask_rank: float = 0.0
    label_rank: int = 0
    human: bool = False


#: Precedence of a mask by where it came from (base rows) — see the module docstring.
MASK_RANK: dict[str, float] = {
    "manual": 6.0, "source": 5.0, "phh3": 4.0, "sam_box": 2.0, "classical": 2.0,
    "sam_auto": 2.0, "disk": 0.0,
}
#: Rank of a layer row with ``mask_forced`` (refine --overwrite): above source, below manual.
FORCED_RANK = 5.5
#: Rank of an object without a mask.
NO_MASK_RANK = -1.0

PARTS: dict[str, PartSpec] = {p.name: p for p in (
    PartSpec("ingest", PartKind.BASE),
    PartSpec("harvest", PartKind.BASE),
    PartSpec("detect", PartKind.BASE, human=True),
    PartSpec("refine", PartKind.LAYER, mask_rank=3.0),
    PartSpec("harvest-fill", PartKind.LAYER, mask_rank=1.0),
    PartSpec("review", PartKind.LAYER, mask_rank=6.0, label_rank=2, human=True),
    PartSpec("labels", PartKind.LAYER, label_rank=1, human=True),
)}

#: Base states that a later mask must not undo.
DECIDED_STATES = frozenset({"accepted", "amended", "rejected"})


def part_spec(name: str) -> PartSpec:
    """The spec of a part name.

    Raises:
        DatasetError: unknown part name.
    """
    try:
        return PARTS[name]
    except KeyError:
        raise DatasetError(f"unknown part {name!r}; parts are {', '.join(PARTS)}") from None


def layer_order(names: list[str]) -> list[str]:
    """Layer part names in ascending precedence (the order they are applied in)."""
    return sorted((n for n in names if part_spec(n).kind is PartKind.LAYER),
                  key=lambda n: (part_spec(n).mask_rank, part_spec(n).label_rank, n))
