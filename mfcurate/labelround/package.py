"""Rater packages: QuPath GeoJSON per image, a project-free image list and a CSV sheet.

Every rater gets the same objects, in their own shuffled order, and nothing else: no label,
no other rater's vote, no detector score.  A feature is an unclassified QuPath annotation
(the mask outline, or the object's box when it has no mask) whose ``name`` is the object
key and whose ``id`` is a UUID of (round, rater, object); its measurement ``Review order``
is its place in the rater's order.  QuPath keeps ``id``, ``name``, ``classification`` and
``measurements`` through *File > Import objects* and *Export objects as GeoJSON*, which is
what the import reads back.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mfcurate.dataset import Dataset, atomic_folder, atomic_write_bytes
from mfcurate.labelround.classes import CLASS_NAMES
from mfcurate.labelround.round import Round
from mfcurate.review.export import safe_name

#: Columns of a rater's sheet; the rater fills ``vote`` (and may fill ``comment``).
SHEET_COLUMNS = ("order", "round", "rater", "object_key", "image_key", "x", "y", "image_path",
                 "vote", "comment")

_README = """Label round {round_id} - package of rater {rater}

{n} objects on {m} images. For each object choose one class:
  {classes}

QuPath (no project needed): open an image listed in images.txt, File > Import objects
from file, choose geojson/<image>.geojson (images.csv says which file belongs to which
image). Add the three classes above to the class list if they are missing (exact names),
select each annotation (the Annotations list follows your review order; the measurement
"Review order" numbers them) and set its class. Leave an object unclassified to abstain.
Then File > Export objects as GeoJSON (all objects, pretty or not) over the same file and
send the geojson/ folder back. Do not rename or delete the annotations.

Spreadsheet: fill the "vote" column of {rater}-sheet.csv with one of the class names
(or MF / not MF / ?) and send the file back.
"""


def _geometry(row: dict[str, Any]) -> dict[str, Any]:
    """Mask outline polygon(s) of an object, else its box as a polygon (level-0 px)."""
    from mfcurate.geometry import mask_grid, mask_polygons

    rle = row.get("mask_rle")
    if rle:
        polys = mask_polygons(rle, mask_grid(row["bbox_xyxy"]))
        rings = [[[p[i], p[i + 1]] for i in range(0, len(p), 2)] for p in polys]
        rings = [[*r, r[0]] for r in rings if len(r) >= 3]
        if len(rings) == 1:
            return {"type": "Polygon", "coordinates": [rings[0]]}
        if rings:
            return {"type": "MultiPolygon", "coordinates": [[r] for r in rings]}
    x0, y0, x1, y1 = (float(v) for v in row["bbox_xyxy"])
    return {"type": "Polygon",
            "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def object_rows(ds: Dataset, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Geometry columns of the given objects (effective rows), keyed by object key."""
    want = pa.array(sorted(set(keys)), pa.string())
    out: dict[str, dict[str, Any]] = {}
    for t in ds.iter_objects(columns=["object_key", "image_key", "centroid_xy", "bbox_xyxy",
                                      "mask_rle"]):
        t = t.filter(pc.is_in(t.column("object_key"), value_set=want))
        for r in t.to_pylist():
            out[r["object_key"]] = r
    return out


def package_folder(out: Path, rater: str) -> Path:
    """The folder of a rater's package in round folder ``out``."""
    return out / "packages" / safe_name(rater)


def write_packages(ds: Dataset, rnd: Round, out: Path) -> dict[str, Path]:
    """Write every rater's package under ``out/packages``; return ``rater -> folder``.

    Each rater's folder is built beside its place and swapped in whole
    (:func:`mfcurate.dataset.atomic_folder`): killed midway, a rater has a whole package or
    none, and ``round.json`` (written after all packages) is missing.  The bytes depend on the
    round only, so a resumed ``new`` rewrites a package it had finished identically.
    """
    rows = object_rows(ds, [o.object_key for o in rnd.objects])
    images = {r["image_key"]: r for r in ds.images().to_pylist()}
    folders: dict[str, Path] = {}
    for rater in rnd.raters:
        folder = package_folder(out, rater)
        with atomic_folder(folder) as build:  # a rater gets a whole package or none
            _write_package(ds, rnd, rater, rows, images, build)
        folders[rater] = folder
    return folders


def _write_package(ds: Dataset, rnd: Round, rater: str, rows: dict[str, dict[str, Any]],
                   images: dict[str, dict[str, Any]], folder: Path) -> None:
    """Write one rater's GeoJSON files, image lists, sheet and README into ``folder``."""
    import json

    order = rnd.order[rater]
    rank = {k: i + 1 for i, k in enumerate(order)}
    per_image: dict[str, list[str]] = {}
    for k in order:
        per_image.setdefault(rows[k]["image_key"], []).append(k)
    listing = []
    for image_key in sorted(per_image, key=lambda ik: rank[per_image[ik][0]]):
        feats = [_feature(rnd, rater, rows[k], rank[k]) for k in per_image[image_key]]
        rel = f"geojson/{safe_name(image_key)}.geojson"
        doc = {"type": "FeatureCollection", "features": feats}
        atomic_write_bytes(folder / rel, json.dumps(doc, indent=2).encode())
        listing.append((image_key, rel, len(feats)))
    _write_image_lists(ds, images, listing, folder)
    _write_sheet(ds, rnd, rater, rows, images, folder / f"{safe_name(rater)}-sheet.csv")
    text = _README.format(round_id=rnd.round_id, rater=rater, n=len(order), m=len(listing),
                          classes=", ".join(f"'{c}'" for c in CLASS_NAMES))
    atomic_write_bytes(folder / "README.txt", text.encode())


def _feature(rnd: Round, rater: str, row: dict[str, Any], rank: int) -> dict[str, Any]:
    return {"type": "Feature", "id": rnd.feature_id(rater, row["object_key"]),
            "geometry": _geometry(row),
            "properties": {"objectType": "annotation", "name": row["object_key"],
                           "measurements": {"Review order": rank}}}


def _write_image_lists(ds: Dataset, images: dict[str, dict[str, Any]],
                       listing: list[tuple[str, str, int]], folder: Path) -> None:
    paths = [str(ds.image_path(images[k]).resolve()) for k, _, _ in listing]
    atomic_write_bytes(folder / "images.txt", ("\n".join(paths) + "\n").encode())
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["image_key", "image_path", "width", "height", "mpp_x", "mpp_y", "objects",
                "geojson"])
    for (key, rel, n), path in zip(listing, paths, strict=True):
        im = images[key]
        w.writerow([key, path, im["width"], im["height"], im["mpp_x"], im["mpp_y"], n, rel])
    atomic_write_bytes(folder / "images.csv", buf.getvalue().encode())


def _write_sheet(ds: Dataset, rnd: Round, rater: str, rows: dict[str, dict[str, Any]],
                 images: dict[str, dict[str, Any]], path: Path) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(SHEET_COLUMNS)
    for i, k in enumerate(rnd.order[rater], start=1):
        r = rows[k]
        cx, cy = r["centroid_xy"]
        w.writerow([i, rnd.round_id, rater, k, r["image_key"], f"{cx:.1f}", f"{cy:.1f}",
                    str(ds.image_path(images[r["image_key"]]).resolve()), "", ""])
    atomic_write_bytes(path, buf.getvalue().encode())
