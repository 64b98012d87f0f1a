"""``--with-crops``: square image crops around objects, for users without the slides.

For every selected object a ``size_px`` x ``size_px`` RGB crop centred on its centroid is read
at level 0 (white outside the image) and written as PNG; objects with a mask also get a
same-sized binary mask PNG (255 = nucleus).  Layout::

    OUT/crops/<source>/<label>/<object-key-as-filename>.png
    OUT/crops/<source>/<label>/<object-key-as-filename>.mask.png
    OUT/crops/index.parquet     # object_key, image_key, source, label, file, mask_file,
                                # x0, y0 (level-0 px of the crop's top-left), size_px, mpp

The work is one task per image through :func:`mfcurate.executor.run_tasks` (each image is
opened once; reruns skip images already done).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mfcurate.dataset import (
    Dataset,
    Selection,
    as_selection,
    iter_selected,
    remove_temporaries_of,
    select_images,
    write_parquet_atomic,
)
from mfcurate.geometry import decode_mask, mask_grid

INDEX_SCHEMA = pa.schema([
    ("object_key", pa.string()), ("image_key", pa.string()), ("source", pa.string()),
    ("label", pa.string()), ("file", pa.string()), ("mask_file", pa.string()),
    ("x0", pa.int64()), ("y0", pa.int64()), ("size_px", pa.int64()), ("mpp", pa.float64()),
])

_COLUMNS = ["object_key", "image_key", "source", "label", "centroid_xy", "bbox_xyxy",
            "mask_rle"]


def crop_name(object_key: str) -> str:
    """Filesystem-safe, unique file stem for an object key."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", object_key)[-80:]
    return f"{safe}-{hashlib.sha1(object_key.encode()).hexdigest()[:8]}"


def crop_box(centroid_xy: tuple[float, float], size_px: int) -> tuple[int, int]:
    """Level-0 top-left ``(x0, y0)`` of the ``size_px`` square centred on a centroid."""
    return (int(np.floor(centroid_xy[0] - size_px / 2 + 0.5)),
            int(np.floor(centroid_xy[1] - size_px / 2 + 0.5)))


def mask_in_crop(rle: str, bbox: list[float], x0: int, y0: int, size_px: int) -> np.ndarray:
    """Paste an object's box-grid mask into a ``(size_px, size_px)`` bool crop at (x0, y0)."""
    gx, gy, w, h = mask_grid(bbox)
    m = decode_mask(rle, h, w)
    out = np.zeros((size_px, size_px), bool)
    ox, oy = gx - x0, gy - y0
    r0, c0 = max(oy, 0), max(ox, 0)
    r1, c1 = min(oy + h, size_px), min(ox + w, size_px)
    if r1 > r0 and c1 > c0:
        out[r0:r1, c0:c1] = m[r0 - oy:r1 - oy, c0 - ox:c1 - ox]
    return out


def _crop_image(payload: dict[str, Any]) -> pa.Table:
    """Task: write the crops of one image; return its index rows."""
    from PIL import Image

    from mfcurate.io.reader import open_image

    size = int(payload["size_px"])
    out_root = Path(payload["out_root"])
    rows: dict[str, list[Any]] = {n: [] for n in INDEX_SCHEMA.names}
    with open_image(payload["path"]) as img:
        for obj in payload["objects"]:
            x0, y0 = crop_box(tuple(obj["centroid_xy"]), size)
            rgb = img.read_region(x0, y0, size, size)
            rel_dir = Path(obj["source"]) / obj["label"]
            (out_root / rel_dir).mkdir(parents=True, exist_ok=True)
            stem = crop_name(obj["object_key"])
            rel = (rel_dir / f"{stem}.png").as_posix()
            Image.fromarray(rgb).save(out_root / rel)
            mask_rel = None
            if obj["mask_rle"]:
                m = mask_in_crop(obj["mask_rle"], obj["bbox_xyxy"], x0, y0, size)
                mask_rel = (rel_dir / f"{stem}.mask.png").as_posix()
                Image.fromarray((m * 255).astype(np.uint8)).save(out_root / mask_rel)
            for k, v in (("object_key", obj["object_key"]), ("image_key", obj["image_key"]),
                         ("source", obj["source"]), ("label", obj["label"]), ("file", rel),
                         ("mask_file", mask_rel), ("x0", x0), ("y0", y0), ("size_px", size),
                         ("mpp", payload["mpp"])):
                rows[k].append(v)
    return pa.table(rows, schema=INDEX_SCHEMA)


def export_crops(dataset: Dataset | Path | str, out_dir: Path | str, *, size_px: int = 128,
                 workers: int = 1, scheduler: str | None = None,
                 progress: Any = None, selection: Selection | None = None,
                 **filters: Any) -> dict[str, Any]:
    """Write a PNG crop (and mask PNG) around every selected object.

    Args:
        dataset: a :class:`Dataset` or its folder.
        out_dir: export folder; crops go to ``out_dir/crops``.
        size_px: side of the square crop in level-0 pixels (e.g. 128 px = 32 µm at 0.25 µm/px).
        workers: local worker processes.
        scheduler: Dask scheduler address or None.
        progress: optional ``progress(n=, total=, objects=)`` callback.
        selection: which images and objects (default: all but rejected objects).
        **filters: or the same as keyword options (see :meth:`Selection.from_options`).

    Returns:
        ``{"crops": n, "masks": n_masks, "images": n_images, "skipped_images": [...],
        "index": path}``; images whose file is missing are skipped and listed.
    """
    from mfcurate.executor import Task, run_tasks

    if size_px < 8:
        from mfcurate.errors import UsageError

        raise UsageError(f"--crop-size {size_px} is too small (at least 8 px)")
    ds = dataset if isinstance(dataset, Dataset) else Dataset.open(dataset)
    sel = as_selection(selection, **filters).check(ds)
    out_root = Path(out_dir) / "crops"
    out_root.mkdir(parents=True, exist_ok=True)
    images = select_images(ds, sel)
    by_image: dict[str, list[dict[str, Any]]] = {}
    for t in iter_selected(ds, sel, columns=_COLUMNS, images=images):
        for row in t.to_pylist():
            by_image.setdefault(row["image_key"], []).append(row)
    tasks, skipped = [], []
    for img in images.to_pylist():
        objs = by_image.get(img["image_key"])
        if not objs:
            continue
        path = ds.image_path(img)
        if not img.get("file_found", True) or not path.exists():  # missing or unreadable
            skipped.append(img["image_key"])
            continue
        payload = {"path": str(path), "objects": objs, "size_px": size_px,
                   "out_root": str(out_root), "mpp": img["mpp_x"]}
        digest = hashlib.sha1(repr((objs, size_px)).encode()).hexdigest()[:10]
        tasks.append(Task(f"{img['image_key']}#{digest}", payload))
    outputs = run_tasks(_crop_image, tasks, Path(out_dir) / ".crops-work", workers=workers,
                        scheduler=scheduler, progress=progress)
    tables = [pq.read_table(p) for p in outputs]
    index = out_root / "index.parquet"
    remove_temporaries_of(index)
    n = write_parquet_atomic(index, tables, INDEX_SCHEMA)
    n_masks = sum(t.num_rows - t.column("mask_file").null_count for t in tables)
    return {"crops": n, "masks": n_masks, "images": len(tasks), "skipped_images": skipped,
            "index": str(index)}
