"""Ingest throughput and peak memory for MIDOG++ (real JSON when present, else synthetic).

Baseline in the same run: ``json.load`` of the same file plus one pass over its annotations
(with the same libraries imported), i.e. the least any reader must do.  Prints rows/s, peak
memory and the overhead ratio.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from _util import REAL, run_child


def _synthetic_root(tmp: Path, n_images: int = 500, per_image: int = 50) -> Path:
    root = tmp / "midogpp"
    root.mkdir()
    images, anns = [], []
    aid = 1
    for i in range(1, n_images + 1):
        images.append({"id": i, "file_name": f"{i:03d}.tiff", "width": 7215, "height": 5412,
                       "tumor_type": "human breast cancer", "license": 1})
        for k in range(per_image):
            x, y = 100 + 97 * k % 7000, 100 + 53 * k % 5200
            anns.append({"bbox": [x - 25, y - 25, x + 25, y + 25], "category_id": 1 + k % 2,
                         "image_id": i, "id": aid, "labels": [1 + k % 2, 1 + k % 2]})
            aid += 1
    (root / "MIDOG++.json").write_text(json.dumps({
        "images": images, "annotations": anns, "licenses": [],
        "categories": [{"id": 1, "name": "mitotic figure"},
                       {"id": 2, "name": "not mitotic figure"}]}))
    lines = ["Slide;Dataset;Tumor;Scanner;Origin;Species"]
    lines += [f"{i};train;human breast cancer;Aperio CS2;X;Human" for i in range(1, n_images + 1)]
    (root / "datasets_xvalidation.csv").write_text("\n".join(lines) + "\n")
    return root


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        real = REAL / "midogpp"
        root = real if (real / "MIDOG++.json").exists() else _synthetic_root(Path(tmp))
        kind = "real" if root == real else "synthetic"
        ingest = run_child(f"""
import time
from mfcurate.pipelines.ingest import ingest_source
t = time.perf_counter()
rep = ingest_source("midog++", {str(root)!r}, {str(Path(tmp) / 'ds')!r})
RESULT = {{"seconds": time.perf_counter() - t, "rows": rep.n_objects}}
""")
        base = run_child(f"""
import json, time
import mfcurate.pipelines.ingest  # same imports as the ingest, so memory compares like for like
t = time.perf_counter()
d = json.load(open({str(root / 'MIDOG++.json')!r}))
n = sum(1 for a in d["annotations"] if a["bbox"][2] > a["bbox"][0])
RESULT = {{"seconds": time.perf_counter() - t, "rows": n}}
""")
    rate = ingest["rows"] / ingest["seconds"]
    print(f"MIDOG++ ({kind} JSON): {ingest['rows']:,} objects")
    print(f"  mfcurate ingest : {ingest['seconds']:.2f} s, {rate:,.0f} rows/s, "
          f"peak RSS {ingest['peak_rss_mb']:.0f} MB")
    print(f"  baseline json.load + one pass: {base['seconds']:.2f} s, "
          f"peak RSS {base['peak_rss_mb']:.0f} MB")
    print(f"  ratio ingest / baseline: time x{ingest['seconds'] / base['seconds']:.1f}, "
          f"memory x{ingest['peak_rss_mb'] / base['peak_rss_mb']:.1f}")


if __name__ == "__main__":
    main()
