"""Fake CMC source: small Aperio-like slides and a SlideRunner DB in the *new* schema.

Slide names are real CMC hashes so the split is exercised: ``4eee7b944ad5e46c60ce`` is test
and ``fa4959e484beec77543b`` train (the README erratum); the third slide has no cells.  The
``_ROI`` regions use the real class ids (4 "Tumor region", 5 "Exclude from tumor region"): a
tumour polygon on every slide, a tumour rectangle and an exclusion polygon on the slides with
cells.
"""

from __future__ import annotations

from pathlib import Path

from mfcurate.synth.sources._sliderunner_fake import WsiFakePlan, build_wsi_fake
from mfcurate.synth.spec import FakeSpec

KEY = "cmc"

#: slide file name -> published split (for the tests).
SPLITS = {"4eee7b944ad5e46c60ce.svs": "test", "fa4959e484beec77543b.svs": "train",
          "0a1b2c3d4e5f60718293.svs": "train"}


def generate(root: Path, seed: int = 0, schema: str = "new") -> FakeSpec:
    """Write the fake source under ``root``; return its truth.

    Args:
        root: folder to create.
        seed: random seed.
        schema: ``new`` (default, like the CMC repo databases) or ``old``.
    """
    plan = WsiFakePlan(
        key=KEY, db_name="MITOS_WSI_CMC_CODAEL_TR_ROI.sqlite", schema=schema,
        slides=list(SPLITS), mf_id=2, like_id=1, nucleus_classes=[], region_class=4,
        exclude_class=5,
        classes={1: "Mitotic figure look-alike", 2: "Mitotic figure", 4: "Tumor region",
                 5: "Exclude from tumor region"})
    db, counts, empty = build_wsi_fake(root, seed, plan)
    with_cells = len(SPLITS) - len(empty)
    return FakeSpec(source=KEY, root=root, n_images=len(SPLITS), counts=counts,
                    annotation_files=[db], empty_image_ids=empty, options={},
                    regions={"tumour": len(SPLITS) + with_cells, "exclude": with_cells})
