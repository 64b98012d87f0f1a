"""``--format geojson``: one QuPath-compatible FeatureCollection per image.

Uses the shared writer of :mod:`mfcurate.io.geojson` (the same features the review round
trip reads back), so a file opens in QuPath with *File > Import objects* over its image.
Layout::

    OUT/geojson/<source>/<image file stem>-<hash>.geojson
    OUT/geojson/index.json     # image_key -> {file, image path, objects}

Coordinates are level-0 pixels of the image (x = column); masks become polygons traced from
the RLE, objects without a mask become points.

The set is written as a whole: files go to a hidden ``OUT/.geojson.<random>.tmp/`` swapped in
for ``OUT/geojson`` once ``index.json`` is written (:func:`mfcurate.dataset.atomic_folder`),
so ``OUT/geojson`` is the previous complete export or the new one, never a mix; a killed
run leaves only the hidden folder, which the next run deletes.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from mfcurate.dataset import (
    Dataset,
    Selection,
    as_selection,
    atomic_folder,
    atomic_write_json,
    iter_selected,
    select_images,
)
from mfcurate.io.geojson import objects_to_features, write_feature_collection


def geojson_name(image_key: str, image_path: str) -> str:
    """Unique file name of an image's FeatureCollection (readable stem + short hash)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(image_path).stem)[:60] or "image"
    return f"{stem}-{hashlib.sha1(image_key.encode()).hexdigest()[:8]}.geojson"


def export_geojson(dataset: Dataset | Path | str, out_dir: Path | str,
                   selection: Selection | None = None, **filters: Any) -> dict[str, Any]:
    """Write one FeatureCollection per image that has selected objects.

    Args:
        dataset: a :class:`Dataset` or its folder.
        out_dir: output folder; files go to ``out_dir/geojson``.
        selection: which images and objects (default: all but rejected objects).
        **filters: or the same as keyword options (see :meth:`Selection.from_options`).

    Returns:
        ``{"files": n, "features": n, "index": path}``.
    """
    ds = dataset if isinstance(dataset, Dataset) else Dataset.open(dataset)
    sel = as_selection(selection, **filters).check(ds)
    root = Path(out_dir) / "geojson"
    with atomic_folder(root) as build:
        n_files, n_feat = _write_set(ds, sel, build)
    return {"files": n_files, "features": n_feat, "index": str(root / "index.json")}


def _write_set(ds: Dataset, sel: Selection, root: Path) -> tuple[int, int]:
    """Write every image's FeatureCollection, then ``index.json``, under ``root``.

    Returns:
        ``(files, features)`` written.
    """
    images = select_images(ds, sel)
    by_image: dict[str, list[pa.Table]] = {}
    for t in iter_selected(ds, sel, images=images):
        keys = np.asarray(t.column("image_key").to_pylist(), dtype=object)
        uniq, inverse = np.unique(keys, return_inverse=True)
        for i, key in enumerate(uniq):
            by_image.setdefault(str(key), []).append(t.take(np.flatnonzero(inverse == i)))
    index: dict[str, Any] = {}
    n_feat = 0
    for img in images.to_pylist():
        parts = by_image.get(img["image_key"])
        if not parts:
            continue
        table = pa.concat_tables(parts)
        rel = Path(re.sub(r"[^A-Za-z0-9._+-]+", "_", img["source"])) / \
            geojson_name(img["image_key"], img["path"])
        feats = list(objects_to_features(table))
        write_feature_collection(root / rel, feats)
        n_feat += len(feats)
        index[img["image_key"]] = {"file": rel.as_posix(), "objects": len(feats),
                                   "image": str(ds.image_path(img)),
                                   "width": img["width"], "height": img["height"]}
    atomic_write_json(root / "index.json", {"filter": sel.describe(), "images": index})
    return len(index), n_feat
