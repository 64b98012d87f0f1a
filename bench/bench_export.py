"""COCO export throughput and peak memory for 1 million synthetic objects.

Runs the same export on 100k and on 1M objects, each in a fresh process, and prints objects/s
and the ratio of peak memory (1M / 100k): streaming keeps it near 1 — memory must not grow
with the number of objects.  Objects carry 20x20 px masks, exported as image-relative RLE.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from _util import run_child

MAKE = """
import numpy as np, pyarrow as pa
from pathlib import Path
from mfcurate.dataset import Dataset
from mfcurate.geometry import encode_mask
from mfcurate.schemas import IMAGES_SCHEMA, OBJECTS_SCHEMA

def make(path, n_objects, n_images=1000, chunk=200_000):
    ds = Dataset.open(path, create=True)
    keys = [f"bench/{i}" for i in range(n_images)]
    images = pa.table({
        "image_key": keys, "source": ["bench"] * n_images,
        "source_image_id": [str(i) for i in range(n_images)],
        "path": [f"{i}.tiff" for i in range(n_images)],
        "width": [4000] * n_images, "height": [4000] * n_images,
        "mpp_x": [0.25] * n_images, "mpp_y": [0.25] * n_images,
        "scanner": [None] * n_images, "vendor": [None] * n_images,
        "tumour_type": ["t"] * n_images, "species": ["human"] * n_images,
        "is_wsi": [False] * n_images, "split": ["train"] * n_images, "fold": [None] * n_images,
        "license": ["CC0-1.0"] * n_images, "file_found": [False] * n_images,
    }).cast(IMAGES_SCHEMA)
    yy, xx = np.mgrid[:20, :20]
    rle = encode_mask((xx - 9.5) ** 2 + (yy - 9.5) ** 2 < 81)
    def chunks():
        for start in range(0, n_objects, chunk):
            n = min(chunk, n_objects - start)
            idx = np.arange(start, start + n)
            img = idx % n_images
            x = (idx * 37 % 3900).astype(float)
            y = (idx * 53 % 3900).astype(float)
            yield pa.table({
                "object_key": [f"bench/{i}/{j}" for i, j in zip(img, idx)],
                "image_key": [keys[i] for i in img], "source": ["bench"] * n,
                "source_annotation_id": idx.astype(str).tolist(), "source_file": [None] * n,
                "label": np.where(idx % 2 == 0, "mitotic_figure", "mitotic_like").tolist(),
                "source_label": [None] * n, "label_origin": ["box"] * n, "votes": [None] * n,
                "confidence": [None] * n,
                "centroid_xy": pa.FixedSizeListArray.from_arrays(
                    pa.array(np.stack([x + 10, y + 10], 1).ravel()), 2),
                "bbox_xyxy": pa.FixedSizeListArray.from_arrays(
                    pa.array(np.stack([x, y, x + 20, y + 20], 1).ravel()), 4),
                "mask_rle": [rle] * n, "mask_origin": ["sam_box"] * n, "mask_score": [0.9] * n,
                "area_px": [317] * n, "area_um2": [317 * 0.0625] * n,
                "qa_state": ["accepted"] * n, "qa_flags": [None] * n, "parent_key": [None] * n,
                "extra": [None] * n,
            }).cast(OBJECTS_SCHEMA)
    ds.commit_source("bench", images, chunks(), info={}, root=path)
"""

EXPORT = """
import time
from mfcurate.dataset import Dataset
from mfcurate.export.coco import export_coco
ds = Dataset.open({ds!r})
t = time.perf_counter()
rep = export_coco(ds, __import__("pathlib").Path({out!r}))
n = sum(v[1] for v in rep.files.values())
RESULT = {{"seconds": time.perf_counter() - t, "objects": n}}
"""


def main() -> None:
    big = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    small = big // 10
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for n in (small, big):
            ds = str(Path(tmp) / f"ds{n}")
            run_child(MAKE + f"\nmake(Path({ds!r}), {n})\nRESULT = {{}}\n")
            results[n] = run_child(EXPORT.format(ds=ds, out=str(Path(tmp) / f"coco{n}")))
    for n, r in results.items():
        print(f"COCO export of {n:,} objects: {r['seconds']:.1f} s, "
              f"{r['objects'] / r['seconds']:,.0f} objects/s, peak RSS {r['peak_rss_mb']:.0f} MB")
    ratio = results[big]["peak_rss_mb"] / results[small]["peak_rss_mb"]
    print(f"peak memory ratio {big:,} / {small:,} objects: x{ratio:.2f} "
          f"(1.0 = does not grow with the count)")


if __name__ == "__main__":
    main()
