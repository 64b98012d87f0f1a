"""Fake ``phh3`` source: pair folders in the format ``register-phh3`` writes.

The H&E slides are small rendered SVS files; the objects are the planted mitoses (so the
masks are exact), written through the same writers ``register-phh3`` uses, with an identity
transform.  One pair has no object.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mfcurate.geometry import mask_to_record
from mfcurate.registration.outputs import (
    OBJECTS_PARQUET,
    PAIR_FILE,
    TRANSFORM_FILE,
    objects_to_table,
    write_objects,
)
from mfcurate.registration.transfer import TransferredObject
from mfcurate.registration.transform import PairTransform
from mfcurate.synth.render import render_tissue
from mfcurate.synth.spec import FakeSpec
from mfcurate.synth.wsi import write_svs

KEY = "phh3"


def generate(root: Path, seed: int = 0, size: int = 512) -> FakeSpec:
    """Write ``slides/pair{1,2,3}_he.svs`` and ``pairs/pair{1,2,3}/`` under ``root``.

    ``pair3`` has no DAB-positive object; ``pair2`` has one object flagged for review.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    mpp = 0.5
    files: list[Path] = []
    n_total = 0
    for k, n_mf in ((1, 3), (2, 2), (3, 0)):
        pid = f"pair{k}"
        rgb, planted = render_tissue(rng, size, size, mpp=mpp, n_mitotic=n_mf,
                                     n_mitotic_like=1, nuclei_per_mm2=2000)
        he = write_svs(root / "slides" / f"{pid}_he.svs", rgb, mpp, tile=256,
                       min_level_size=256)
        objs = []
        for i, p in enumerate(x for x in planted if x.kind == "mitotic_figure"):
            rec = mask_to_record(p.mask, p.offset_xy)
            if rec is None:
                continue
            box, rle, area, cen = rec
            flags = ["registration_residual"] if (k == 2 and i == 0) else []
            objs.append(TransferredObject(
                f"{i + 1:05d}", box, rle, area, cen, "phh3", None, cen, box, area,
                float(rng.uniform(0.4, 0.9)), float(rng.uniform(0.02, 0.3)), flags))
        n_total += len(objs)
        folder = root / "pairs" / pid
        folder.mkdir(parents=True, exist_ok=True)
        write_objects(folder, objects_to_table(objs, (mpp, mpp)))
        PairTransform(np.array([[1.0, 0, 0], [0, 1.0, 0]]), he_mpp=mpp, phh3_mpp=mpp,
                      quality={"synthetic": True}).save(folder / TRANSFORM_FILE)
        pair = {"pair_id": pid, "he_slide": str(Path("..") / ".." / "slides" / he.name),
                "phh3_slide": None, "he_mpp": [mpp, mpp], "he_width": size,
                "he_height": size, "tumour_type": "Canine mast cell tumour",
                "species": "canine", "counterstain": "eosin", "n_objects": len(objs)}
        (folder / PAIR_FILE).write_text(json.dumps(pair, indent=2) + "\n")
        files += [folder / PAIR_FILE, folder / OBJECTS_PARQUET]
    return FakeSpec(source=KEY, root=root / "pairs", n_images=3,
                    counts={"mitotic_figure": n_total}, annotation_files=files,
                    empty_image_ids=["pair3"], options={})
