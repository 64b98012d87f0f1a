"""What ``register-phh3`` writes for one pair, and reading it back.

A pair folder holds:

* ``pair.json``: slide paths, µm/px, sizes, tumour type/species, counterstain, method,
  channel, counts and timings;
* ``transform.json``: the :class:`~mfcurate.registration.transform.PairTransform`;
* ``objects.parquet`` and ``objects.csv``: one row per transferred object
  (:data:`PAIR_OBJECTS_SCHEMA`; the ``phh3`` source adapter ingests them);
* ``objects.geojson``: the H&E masks as QuPath GeoJSON;
* ``overlays/``: PNG side-by-side and checkerboard views, before and after refinement.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from mfcurate.registration.transfer import TransferredObject

PAIR_FILE = "pair.json"
TRANSFORM_FILE = "transform.json"
OBJECTS_PARQUET = "objects.parquet"
OBJECTS_CSV = "objects.csv"
GEOJSON_FILE = "objects.geojson"
OVERLAY_DIR = "overlays"

PAIR_OBJECTS_SCHEMA = pa.schema([
    ("object_id", pa.string()),
    ("he_x", pa.float64()), ("he_y", pa.float64()),
    ("he_x0", pa.float64()), ("he_y0", pa.float64()),
    ("he_x1", pa.float64()), ("he_y1", pa.float64()),
    ("mask_rle", pa.string()),
    ("area_px", pa.int64()),
    ("area_um2", pa.float64()),
    ("mask_origin", pa.string()),
    ("mask_score", pa.float64()),
    ("phh3_x", pa.float64()), ("phh3_y", pa.float64()),
    ("phh3_x0", pa.float64()), ("phh3_y0", pa.float64()),
    ("phh3_x1", pa.float64()), ("phh3_y1", pa.float64()),
    ("phh3_area_px", pa.int64()),
    ("dab_mean", pa.float64()),
    ("residual_um", pa.float64()),
    ("qa_flags", pa.string()),
])
"""Per-object table of a pair: H&E geometry (level-0 px, box-relative RLE), pHH3 geometry,
DAB mean OD, local registration residual (µm) and ``;``-separated QA flags."""


def objects_to_table(objects: Sequence[TransferredObject], mpp_xy: tuple[float, float]
                     ) -> pa.Table:
    """The pair's objects as a :data:`PAIR_OBJECTS_SCHEMA` table."""
    rows: dict[str, list[Any]] = {n: [] for n in PAIR_OBJECTS_SCHEMA.names}
    for o in objects:
        vals = {
            "object_id": o.object_id, "he_x": o.centroid_xy[0], "he_y": o.centroid_xy[1],
            "he_x0": o.bbox_xyxy[0], "he_y0": o.bbox_xyxy[1], "he_x1": o.bbox_xyxy[2],
            "he_y1": o.bbox_xyxy[3], "mask_rle": o.mask_rle, "area_px": o.area_px,
            "area_um2": o.area_px * mpp_xy[0] * mpp_xy[1], "mask_origin": o.mask_origin,
            "mask_score": o.mask_score, "phh3_x": o.phh3_centroid_xy[0],
            "phh3_y": o.phh3_centroid_xy[1], "phh3_x0": o.phh3_bbox_xyxy[0],
            "phh3_y0": o.phh3_bbox_xyxy[1], "phh3_x1": o.phh3_bbox_xyxy[2],
            "phh3_y1": o.phh3_bbox_xyxy[3], "phh3_area_px": o.phh3_area_px,
            "dab_mean": o.dab_mean if np.isfinite(o.dab_mean) else None,
            "residual_um": o.residual_um, "qa_flags": ";".join(o.qa_flags),
        }
        for k, v in vals.items():
            rows[k].append(v)
    return pa.table({n: pa.array(rows[n], type=PAIR_OBJECTS_SCHEMA.field(n).type)
                     for n in PAIR_OBJECTS_SCHEMA.names}, schema=PAIR_OBJECTS_SCHEMA)


def write_objects(folder: Path, table: pa.Table) -> None:
    """Write ``objects.parquet`` and ``objects.csv`` (plain files: the folder is a temp dir)."""
    pq.write_table(table, folder / OBJECTS_PARQUET, compression="zstd")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(table.column_names)
    for row in table.to_pylist():
        w.writerow(["" if row[n] is None else row[n] for n in table.column_names])
    (folder / OBJECTS_CSV).write_text(buf.getvalue())


def read_objects(folder: Path) -> pa.Table:
    """Read a pair's objects (Parquet if present, else CSV), conformed to the schema.

    Raises:
        SourceFormatError: the file is unreadable, truncated or misses columns.
    """
    from mfcurate.errors import SourceFormatError

    pqp, csvp = folder / OBJECTS_PARQUET, folder / OBJECTS_CSV
    if pqp.exists():
        try:
            t = pq.read_table(pqp)
        except (OSError, pa.ArrowInvalid) as exc:
            raise SourceFormatError(pqp, f"not a readable Parquet file ({exc})") from exc
        path = pqp
    elif csvp.exists():
        path = csvp
        t = _read_csv(csvp)
    else:
        raise SourceFormatError(folder, f"no {OBJECTS_PARQUET} or {OBJECTS_CSV}")
    missing = [n for n in PAIR_OBJECTS_SCHEMA.names if n not in t.column_names]
    if missing:
        raise SourceFormatError(path, f"missing column(s) {', '.join(missing)}")
    try:
        return pa.table({n: t.column(n).cast(PAIR_OBJECTS_SCHEMA.field(n).type)
                         for n in PAIR_OBJECTS_SCHEMA.names}, schema=PAIR_OBJECTS_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SourceFormatError(path, f"bad values ({exc})") from exc


def _read_csv(path: Path) -> pa.Table:
    from mfcurate.errors import SourceFormatError

    text = path.read_text()
    if text and not text.endswith("\n"):
        raise SourceFormatError(path, "truncated (the last line has no end)")
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise SourceFormatError(path, "empty file (no header)")
    header = rows[0]
    cols: dict[str, list[Any]] = {h: [] for h in header}
    for ln, r in enumerate(rows[1:], start=2):
        if len(r) != len(header):
            raise SourceFormatError(path, f"line {ln}: {len(r)} fields, expected {len(header)}")
        for h, v in zip(header, r, strict=True):
            cols[h].append(v)
    arrays = {}
    for h, vals in cols.items():
        typ = PAIR_OBJECTS_SCHEMA.field(h).type if h in PAIR_OBJECTS_SCHEMA.names else pa.string()
        try:
            if pa.types.is_floating(typ):
                arrays[h] = pa.array([float(v) if v != "" else None for v in vals], typ)
            elif pa.types.is_integer(typ):
                arrays[h] = pa.array([int(v) if v != "" else None for v in vals], typ)
            else:
                arrays[h] = pa.array([v if (v != "" or h == "qa_flags") else None
                                      for v in vals], typ)
        except ValueError as exc:
            raise SourceFormatError(path, f"column {h}: {exc}") from exc
    return pa.table(arrays)


def read_pair_json(folder: Path) -> dict[str, Any]:
    """Read ``pair.json``; SourceFormatError when absent or malformed."""
    from mfcurate.errors import SourceFormatError

    p = folder / PAIR_FILE
    try:
        d = json.loads(p.read_text())
    except FileNotFoundError as exc:
        raise SourceFormatError(p, "missing") from exc
    except (OSError, ValueError) as exc:
        raise SourceFormatError(p, f"not valid JSON ({exc})") from exc
    if not isinstance(d, dict) or "pair_id" not in d or "he_slide" not in d:
        raise SourceFormatError(p, "needs at least 'pair_id' and 'he_slide'")
    if not isinstance(d["he_slide"], str) or not d["he_slide"]:
        raise SourceFormatError(p, f"'he_slide' must be a path (text), not {d['he_slide']!r}")
    if not isinstance(d["pair_id"], (str, int)) or isinstance(d["pair_id"], bool):
        raise SourceFormatError(p, f"'pair_id' must be text, not {d['pair_id']!r}")
    d["he_mpp"] = _mpp_pair(p, d.get("he_mpp"))
    return d


def _mpp_pair(p: Path, v: Any) -> list[float | None]:
    """``he_mpp`` as ``[mpp_x, mpp_y]`` (null allowed); anything else is a format error."""
    import math

    from mfcurate.errors import SourceFormatError

    if v is None:
        return [None, None]
    ok = isinstance(v, list) and 1 <= len(v) <= 2 and all(
        x is None or (isinstance(x, (int, float)) and not isinstance(x, bool)
                      and math.isfinite(x) and x > 0) for x in v)
    if not ok:
        raise SourceFormatError(p, f"'he_mpp' must be a list [mpp_x, mpp_y] of positive "
                                   f"µm/px values, not {v!r}")
    x = None if v[0] is None else float(v[0])
    y = x if len(v) < 2 or v[1] is None else float(v[1])
    return [x, y]


def write_geojson(folder: Path, table: pa.Table, pair_id: str) -> None:
    """QuPath GeoJSON of the H&E masks (classification: mitotic figure)."""
    from mfcurate.io.geojson import objects_to_features, write_feature_collection

    rows = table.to_pylist()
    t = pa.table({
        "object_key": [f"phh3/{pair_id}/{r['object_id']}" for r in rows],
        "label": ["mitotic_figure"] * len(rows),
        "centroid_xy": [[r["he_x"], r["he_y"]] for r in rows],
        "bbox_xyxy": [[r["he_x0"], r["he_y0"], r["he_x1"], r["he_y1"]] for r in rows],
        "mask_rle": [r["mask_rle"] for r in rows],
        "mask_origin": [r["mask_origin"] for r in rows],
        "qa_state": ["flagged" if r["qa_flags"] else "unreviewed" for r in rows],
        "qa_flags": [r["qa_flags"].split(";") if r["qa_flags"] else None for r in rows],
        "area_um2": [r["area_um2"] for r in rows],
    })
    write_feature_collection(folder / GEOJSON_FILE, objects_to_features(t))


# ------------------------------------------------------------------ overlays
def _checker(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8], n: int = 8
             ) -> npt.NDArray[np.uint8]:
    h, w = a.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    sel = ((yy * n // h + xx * n // w) % 2 == 0)[:, :, None]
    return np.where(sel, a, b)


def write_overlays(folder: Path, he_img: Any, ph_img: Any, transform: Any, affine_only: Any,
                   centres_he: Sequence[tuple[float, float]], size: int = 256,
                   max_patches: int = 3, objects: pa.Table | None = None) -> list[Path]:
    """PNG views of a few H&E patches, before (global affine only) and after refinement.

    Side by side (H&E | pHH3 warped into the H&E frame) and a checkerboard of the two.
    Each PNG is 2 rows (before, after) of [H&E, pHH3 warped, checkerboard]; the outlines
    of the transferred masks (``objects``) are drawn in green on the H&E of the lower row.
    """
    import cv2
    from PIL import Image

    d = folder / OVERLAY_DIR
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, (cx, cy) in enumerate(list(centres_he)[:max_patches]):
        x0, y0 = int(cx) - size // 2, int(cy) - size // 2
        he = he_img.read_region(x0, y0, size, size, level=0)
        rows = []
        for tr in (affine_only, transform):
            gy, gx = np.mgrid[0:size, 0:size]
            pts = np.stack([gx.ravel() + x0 + 0.5, gy.ravel() + y0 + 0.5], 1).astype(float)
            yp = tr.he_to_phh3(pts)
            px0 = int(np.floor(yp[:, 0].min())) - 2
            py0 = int(np.floor(yp[:, 1].min())) - 2
            pw = int(np.ceil(yp[:, 0].max())) - px0 + 3
            phh = int(np.ceil(yp[:, 1].max())) - py0 + 3
            src = ph_img.read_region(px0, py0, pw, phh, level=0)
            mx = (yp[:, 0] - px0 - 0.5).reshape(size, size).astype(np.float32)
            my = (yp[:, 1] - py0 - 0.5).reshape(size, size).astype(np.float32)
            warped = cv2.remap(src, mx, my, cv2.INTER_LINEAR, borderValue=(255, 255, 255))
            rows.append(np.hstack([he, warped, _checker(he, warped)]))
        if objects is not None:
            rows[1][:, :size] = _outlines(rows[1][:, :size].copy(), objects, x0, y0)
        img = np.vstack(rows)
        img[size - 1:size + 1] = 0
        p = d / f"patch_{k + 1}.png"
        Image.fromarray(img).save(p)
        paths.append(p)
    return paths


def _outlines(he: npt.NDArray[np.uint8], objects: pa.Table, x0: int, y0: int
              ) -> npt.NDArray[np.uint8]:
    """Draw the outline of every object mask that meets the patch (level-0 origin x0, y0)."""
    import cv2

    from mfcurate.geometry import decode_mask, mask_grid

    h, w = he.shape[:2]
    canvas = np.zeros((h, w), np.uint8)
    for r in objects.to_pylist():
        bx0, by0, bw, bh = mask_grid([r["he_x0"], r["he_y0"], r["he_x1"], r["he_y1"]])
        if bx0 + bw <= x0 or by0 + bh <= y0 or bx0 >= x0 + w or by0 >= y0 + h:
            continue
        m = decode_mask(r["mask_rle"], bh, bw)
        cx0, cy0 = max(bx0, x0), max(by0, y0)
        cx1, cy1 = min(bx0 + bw, x0 + w), min(by0 + bh, y0 + h)
        canvas[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0] |= \
            m[cy0 - by0:cy1 - by0, cx0 - bx0:cx1 - bx0].astype(np.uint8)
    contours, _ = cv2.findContours(canvas, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(he, contours, -1, (0, 200, 0), 1)
    return he
