"""Cost of one commit against the size of the dataset (issue 11: "a commit's cost does not
grow with the dataset").

Builds two datasets of 1M objects each, one of 10 sources (10 parts) and one of 1,000 sources
(1,000 parts); both hold the same small ``target`` source (1,000 objects).  Then commits one
small part (a 200-object ``detect`` base part of ``target``, and a 200-row ``review`` layer)
into each, five times, and prints the median seconds and the ratio 1,000-part / 10-part.
Goal: ratio <= 1.5.  A commit recounts only the sources it touches, from their own files.

Usage: ``python bench/bench_commit.py [--objects 1000000]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from mfcurate.dataset import Dataset
from mfcurate.dataset.commit import Commit, apply_commit
from mfcurate.schemas import IMAGES_SCHEMA, LAYER_SCHEMA, OBJECTS_SCHEMA
from mfcurate.schemas.tables import conform

N_IMAGES = 10


def images(src: str) -> pa.Table:
    """``N_IMAGES`` 4000² px images of a source."""
    n = N_IMAGES
    return conform(pa.table({
        "image_key": [f"{src}/{i}" for i in range(n)], "source": [src] * n,
        "source_image_id": [str(i) for i in range(n)], "path": [f"{i}.tiff" for i in range(n)],
        "width": [4000] * n, "height": [4000] * n, "mpp_x": [0.25] * n, "mpp_y": [0.25] * n,
        "tumour_type": ["t"] * n, "species": ["human"] * n, "is_wsi": [False] * n,
        "split": ["train"] * n, "license": ["CC0-1.0"] * n, "file_found": [False] * n,
    }), IMAGES_SCHEMA)


def objects(src: str, n: int, prefix: str = "o") -> pa.Table:
    """``n`` box-only objects spread over the source's images (level-0 px)."""
    idx = np.arange(n)
    x = (idx * 37 % 3900).astype(float)
    y = (idx * 53 % 3900).astype(float)
    return conform(pa.table({
        "object_key": [f"{src}/{prefix}{i}" for i in idx],
        "image_key": [f"{src}/{i % N_IMAGES}" for i in idx], "source": [src] * n,
        "source_annotation_id": idx.astype(str).tolist(),
        "label": np.where(idx % 2 == 0, "mitotic_figure", "mitotic_like").tolist(),
        "label_origin": ["box"] * n,
        "centroid_xy": pa.FixedSizeListArray.from_arrays(
            pa.array(np.stack([x + 10, y + 10], 1).ravel()), 2),
        "bbox_xyxy": pa.FixedSizeListArray.from_arrays(
            pa.array(np.stack([x, y, x + 20, y + 20], 1).ravel()), 4),
        "qa_state": ["unreviewed"] * n,
    }), OBJECTS_SCHEMA)


def build(root: Path, n_sources: int, n_objects: int) -> Dataset:
    """A dataset of ``target`` (1,000 objects) and ``n_sources - 1`` fillers, in batches."""
    ds = Dataset.open(root, create=True)
    per = max(1, (n_objects - 1000) // max(1, n_sources - 1))
    names = ["target"] + [f"s{i:04d}" for i in range(n_sources - 1)]
    for start in range(0, len(names), 100):
        c = Commit()
        for src in names[start:start + 100]:
            n = 1000 if src == "target" else per
            c.entries[src] = {"name": src, "license": "CC0-1.0", "root": str(root)}
            c.images[src] = images(src)
            c.parts[(src, "ingest")] = [objects(src, n)]
        apply_commit(ds, c)
    return ds


def layer(n: int, rep: int) -> pa.Table:
    """A review layer setting the QA state of ``n`` target objects."""
    return conform(pa.table({
        "object_key": [f"target/o{i}" for i in range(n)],
        "qa_state": ["accepted" if (i + rep) % 2 else "amended" for i in range(n)],
    }), LAYER_SCHEMA)


def time_commits(ds: Dataset, reps: int = 5) -> dict[str, float]:
    """Median seconds of a small base-part commit and of a small layer commit."""
    base, lay = [], []
    for r in range(reps):
        t0 = time.perf_counter()
        ds.write_parts({("target", "detect"): [objects("target", 200, prefix=f"d{r}-")]})
        base.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ds.write_layers({"target": layer(200, r)}, part="review")
        lay.append(time.perf_counter() - t0)
    return {"base": statistics.median(base), "layer": statistics.median(lay)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", type=int, default=1_000_000)
    args = ap.parse_args()
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n_sources in (10, 1000):
            t0 = time.perf_counter()
            ds = build(Path(tmp) / f"ds{n_sources}", n_sources, args.objects)
            built = time.perf_counter() - t0
            n = int(ds.manifest["counts"]["objects"])
            res[n_sources] = time_commits(Dataset.open(ds.root))
            print(f"{n_sources:5d} parts, {n:,} objects (built in {built:.0f} s): "
                  f"base-part commit {res[n_sources]['base'] * 1e3:.0f} ms, "
                  f"layer commit {res[n_sources]['layer'] * 1e3:.0f} ms")
    for kind in ("base", "layer"):
        print(f"ratio 1000 / 10 parts, {kind} commit: "
              f"{res[1000][kind] / res[10][kind]:.2f}x (goal <= 1.5x)")


if __name__ == "__main__":
    main()
