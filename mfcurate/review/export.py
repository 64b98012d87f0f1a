"""``export-review``: flagged (or all) masks as QuPath GeoJSON per image plus PNG overlays.

Output folder::

    OUT/
      geojson/<image-id>.geojson     # one FeatureCollection per image, level-0 px
      overlays/<image-id>.png        # the region around the exported masks, outlines drawn
      contact_sheet.png              # one tile per flagged mask (crop + outline + flags)
      review.json                    # dataset path, what was exported, per-image files

``geojson/`` and ``overlays/`` are built in hidden sibling folders and swapped in whole
(:func:`mfcurate.dataset.atomic_folder`); ``review.json`` is removed just before the swap and
written last, so a killed export leaves the previous complete set, or a folder without
``review.json`` that ``import-review`` refuses, never old keys over new files.

Open an image in QuPath, *File > Import objects* its GeoJSON, correct outlines (edit the
polygon), delete wrong objects or set their class to ``Rejected``, then *Export objects as
GeoJSON* over the same file and run ``mfcurate import-review DATASET OUT``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from mfcurate.dataset import (
    Dataset,
    Selection,
    atomic_folder,
    atomic_write_json,
    remove_temporaries_of,
    select_objects,
)

STATE_COLORS = {"flagged": (255, 0, 0), "unreviewed": (0, 200, 0), "amended": (0, 120, 255),
                "accepted": (0, 200, 0), "rejected": (128, 128, 128)}


@dataclass
class ExportSummary:
    """What an export wrote."""

    images: int = 0
    objects: int = 0
    flagged: int = 0
    files: dict[str, str] = field(default_factory=dict)


def safe_name(image_key: str) -> str:
    """File-system-safe stem for an image key."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", image_key)


def export_review(dataset: Path | str, out: Path | str, *, include: str = "flagged",
                  sources: Sequence[str] | None = None, max_sheet: int = 200,
                  sheet_tile: int = 96) -> ExportSummary:
    """Export objects with masks for review.

    Args:
        dataset: dataset folder.
        out: output folder (created).
        include: ``flagged`` (QA state flagged) or ``all`` (every object with a mask).
        sources: restrict to these sources.
        max_sheet: most flagged masks on the contact sheet.
        sheet_tile: contact-sheet tile side, px.
    """
    ds = Dataset.open(dataset)
    out = Path(out)
    if include not in ("flagged", "all"):
        from mfcurate.errors import UsageError

        raise UsageError(f"--include must be flagged or all, not {include!r}")
    sel = Selection.from_options(sources=sources, masked_only=True,
                                 qa_states=["flagged"] if include == "flagged" else None)
    t = select_objects(ds, sel)
    images = {r["image_key"]: r for r in ds.images(sources=sources).to_pylist()}
    out.mkdir(parents=True, exist_ok=True)
    remove_temporaries_of(out / "review.json")
    with atomic_folder(out / "geojson") as gj_dir, atomic_folder(out / "overlays") as ov_dir:
        summary, object_keys, sheet = _write_images(ds, t, images, gj_dir, ov_dir,
                                                    max_sheet=max_sheet, sheet_tile=sheet_tile)
        # the old review.json goes before the new files replace the old ones: a run killed
        # from here on leaves a folder import-review refuses, never a mixed one
        (out / "review.json").unlink(missing_ok=True)
    if sheet:
        _write_sheet(out / "contact_sheet.png", sheet, sheet_tile)
    else:
        (out / "contact_sheet.png").unlink(missing_ok=True)
    atomic_write_json(out / "review.json", {"dataset": str(Path(dataset).resolve()),
                                            "include": include, "images": summary.files,
                                            "object_keys": object_keys,
                                            "objects": summary.objects})
    return summary


def _write_images(ds: Dataset, t: pa.Table, images: dict[str, dict[str, Any]], gj_dir: Path,
                  ov_dir: Path, *, max_sheet: int, sheet_tile: int
                  ) -> tuple[ExportSummary, dict[str, list[str]], list[npt.NDArray[np.uint8]]]:
    """Write each image's GeoJSON into ``gj_dir`` and overlay PNG into ``ov_dir``.

    Returns:
        ``(summary, image_key -> exported object keys, contact-sheet tiles)``; the summary's
        files are relative to the export folder (``geojson/<stem>.geojson``).
    """
    from mfcurate.io.geojson import objects_to_features, write_feature_collection

    summary = ExportSummary()
    object_keys: dict[str, list[str]] = {}
    sheet: list[npt.NDArray[np.uint8]] = []
    for key in sorted(set(t.column("image_key").to_pylist())):
        rows = t.filter(pc.equal(t.column("image_key"), key))
        rows = rows.take(pc.sort_indices(rows, sort_keys=[("object_key", "ascending")]))
        stem = safe_name(key)
        write_feature_collection(gj_dir / f"{stem}.geojson", objects_to_features(rows))
        path = ds.image_path(images[key])
        if path.exists():
            tiles = _draw(path, rows, ov_dir / f"{stem}.png", sheet_tile)
            sheet.extend(tiles[: max(max_sheet - len(sheet), 0)])
        summary.files[key] = f"geojson/{stem}.geojson"
        object_keys[key] = rows.column("object_key").to_pylist()
        summary.images += 1
        summary.objects += rows.num_rows
        summary.flagged += int(pc.sum(pc.equal(rows.column("qa_state"), "flagged")).as_py()
                               or 0)
    return summary, object_keys, sheet


def _outline(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    import cv2

    er = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    return mask & ~er


def _draw(path: Path, rows: pa.Table, out: Path, tile: int) -> list[npt.NDArray[np.uint8]]:
    """Write the overlay of one image's exported masks; return contact-sheet tiles."""
    import cv2
    from PIL import Image

    from mfcurate.geometry import decode_mask, mask_grid
    from mfcurate.io.reader import open_image

    recs = rows.to_pylist()
    boxes = np.array([r["bbox_xyxy"] for r in recs], dtype=np.float64)
    pad = 32
    x0, y0 = int(boxes[:, 0].min()) - pad, int(boxes[:, 1].min()) - pad
    x1, y1 = int(np.ceil(boxes[:, 2].max())) + pad, int(np.ceil(boxes[:, 3].max())) + pad
    w, h = min(x1 - x0, 4096), min(y1 - y0, 4096)
    with open_image(path) as img:
        region = img.read_region(x0, y0, w, h).copy()
        tiles = []
        for r in recs:
            gx, gy, gw, gh = mask_grid(r["bbox_xyxy"])
            m = decode_mask(r["mask_rle"], gh, gw)
            ol = _outline(m)
            colour = STATE_COLORS.get(r["qa_state"], (255, 255, 0))
            ys, xs = np.nonzero(ol)
            ys, xs = ys + gy - y0, xs + gx - x0
            ok = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
            region[ys[ok], xs[ok]] = colour
            if r["qa_state"] == "flagged":
                cx, cy = (int(v) for v in r["centroid_xy"])
                half = tile // 2
                crop = img.read_region(cx - half, cy - half, tile, tile).copy()
                ys, xs = np.nonzero(ol)
                ys, xs = ys + gy - (cy - half), xs + gx - (cx - half)
                ok = (ys >= 0) & (ys < tile) & (xs >= 0) & (xs < tile)
                crop[ys[ok], xs[ok]] = colour
                flags = ",".join(r["qa_flags"] or [])[:18]
                cv2.putText(crop, flags, (2, tile - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.28,
                            (0, 0, 0), 1, cv2.LINE_AA)
                tiles.append(crop)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(region).save(out)
    return tiles


def _write_sheet(path: Path, tiles: list[npt.NDArray[np.uint8]], tile: int) -> None:
    from PIL import Image

    cols = min(len(tiles), 10)
    rows = -(-len(tiles) // cols)
    sheet = np.full((rows * (tile + 2), cols * (tile + 2), 3), 255, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        sheet[r * (tile + 2):r * (tile + 2) + tile, c * (tile + 2):c * (tile + 2) + tile] = t
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(path)


