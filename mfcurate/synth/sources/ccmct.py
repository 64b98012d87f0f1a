"""Fake CCMCT source: small Aperio-like slides and a SlideRunner DB in the *old* schema.

The classes are the CCMCT ODAEL ids: 1 granulocyte, 2 mitotic figure, 3 tumour cell,
7 mitotic figure look-alike, plus the region class ``Tumorzone``; granulocytes and tumour
cells are planted on ordinary nuclei.  ``c91a842257ed2add5134`` is a test slide.  The
tumour zones come, as in the real source, in a separate old-schema
``MITOS_WSI_CCMCT_Tumorzone.sqlite`` (:func:`write_tumorzone_db`).
"""

from __future__ import annotations

from pathlib import Path

from mfcurate.synth.sources._sliderunner_fake import (
    WsiFakePlan,
    build_wsi_fake,
    write_tumorzone_db,
)
from mfcurate.synth.spec import FakeSpec

KEY = "ccmct"

SPLITS = {"c91a842257ed2add5134.svs": "test", "ac1168b2c893d2acad38.svs": "train",
          "9374efe6ac06388cc877.svs": "train"}


def generate(root: Path, seed: int = 0, schema: str = "old") -> FakeSpec:
    """Write the fake source under ``root``; return its truth.

    Args:
        root: folder to create.
        seed: random seed.
        schema: ``old`` (default, like the real CCMCT databases) or ``new``.
    """
    plan = WsiFakePlan(
        key=KEY, db_name="MITOS_WSI_CCMCT_ODAEL.sqlite", schema=schema, slides=list(SPLITS),
        mf_id=2, like_id=7, nucleus_classes=[(1, "granulocyte"), (3, "tumour_cell")],
        region_class=8,
        classes={1: "Granulocyte", 2: "Mitotic figure", 3: "Tumor cell",
                 7: "Mitotic figure lookalike", 8: "Tumorzone"})
    db, counts, empty = build_wsi_fake(root, seed, plan)
    zones = root / "MITOS_WSI_CCMCT_Tumorzone.sqlite"
    regions = write_tumorzone_db(zones, list(SPLITS), seed)
    # the ODAEL file's own region traps (class "Tumorzone"): a polygon per slide, a
    # rectangle per slide with cells
    regions["tumour"] += 2 * len(SPLITS) - len(empty)
    return FakeSpec(source=KEY, root=root, n_images=len(SPLITS), counts=counts,
                    annotation_files=[db, zones], empty_image_ids=empty, options={},
                    regions=regions)
