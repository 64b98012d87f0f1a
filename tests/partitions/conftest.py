"""A small dataset of three sources to test partitions, holdouts and duplicates."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mfcurate.dataset import Dataset
from mfcurate.geometry import disk_mask, mask_to_record
from mfcurate.schemas.tables import ImageRecord, ObjectRecord, images_table, objects_table


def add_source(ds_root: Path, source: str, images: list[tuple[str, str, str, str]],
               files: dict[str, np.ndarray] | None = None, n_mf: int = 2) -> None:
    """Commit ``source`` with ``images`` = [(name, split, species, tumour)].

    ``files`` maps image names to pixels written as PNG under the source root (the image is
    then present; otherwise it is an annotation-only image).
    """
    from mfcurate.synth.images import write_png

    root = ds_root.parent / f"src-{source}"
    root.mkdir(parents=True, exist_ok=True)
    imgs, objs = [], []
    for name, split, species, tumour in images:
        key = f"{source}/{name}"
        present = bool(files and name in files)
        if present:
            write_png(root / name, files[name], 0.25)  # type: ignore[index]
        imgs.append(ImageRecord(key, source, name, name, 256, 256, 0.25, 0.25,
                                tumour_type=tumour, species=species, split=split,
                                file_found=present))
        for j in range(n_mf + 1):
            box, m = disk_mask((40 + 60 * j, 60), 6)
            rec = mask_to_record(m, (int(box[0]), int(box[1])))
            assert rec is not None
            b, rle, area, c = rec
            label = "mitotic_figure" if j < n_mf else "mitotic_like"
            objs.append(ObjectRecord(f"{key}/{j}", key, source, str(j), label, "pixel", c, b,
                                     mask_rle=rle, mask_origin="source", area_px=area))
    Dataset.open(ds_root, create=True).commit_source(
        source, images_table(imgs), [objects_table(objs)], info={}, root=root)
