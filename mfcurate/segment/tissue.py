"""Tissue detection on a low-resolution level and tile selection over tissue.

Used by ``harvest`` (SAM-AUG background objects), ``detect`` and ``register-phh3`` so that
background glass is never sent to a model.

Conventions: level-0 pixels, x = column, y = row.  A tile is ``(x, y, w, h)`` in level-0
pixels with ``(x, y)`` its top-left corner.  The tissue mask is a ``(rows, cols)`` bool
array on a thumbnail grid; ``scale`` is level-0 pixels per mask pixel.

The tissue rule: optical density ``OD = -log10((RGB + 1) / 256)``; a pixel is tissue when its
largest channel OD or its HSV saturation exceeds a threshold (Otsu over the thumbnail,
clamped to a sane range so that an all-tissue or all-glass image is not split in half),
followed by a closing, hole filling and removal of specks smaller than ``min_object_um2``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from mfcurate.errors import SourceFormatError
from mfcurate.io.reader import ImageSource
from mfcurate.stain import optical_density

Tile = tuple[int, int, int, int]
BoolMask = npt.NDArray[np.bool_]

#: OD threshold bounds: below 0.05 is clean glass, above 0.25 everything stained is tissue.
_OD_RANGE = (0.05, 0.25)
_SAT_RANGE = (0.06, 0.25)


def tissue_mask_rgb(rgb: npt.NDArray[np.uint8], scale: float = 1.0,
                    mpp: float | None = None, min_object_um2: float = 2500.0) -> BoolMask:
    """Tissue mask of an RGB array (usually a thumbnail).

    Args:
        rgb: ``(rows, cols, 3)`` uint8.
        scale: level-0 pixels per pixel of ``rgb`` (for the size of the morphology).
        mpp: level-0 µm per pixel, or None (then 0.25 is assumed for the speck size only).
        min_object_um2: tissue pieces smaller than this (µm²) are dropped as dust.

    Returns:
        ``(rows, cols)`` bool mask, True on tissue.
    """
    import cv2
    from skimage.filters import threshold_otsu

    arr = np.asarray(rgb[:, :, :3], dtype=np.float32)
    od = optical_density(rgb).max(axis=2)
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb[:, :, :3]), cv2.COLOR_RGB2HSV)
    sat = hsv[:, :, 1].astype(np.float32) / 255.0
    # blood/dark pixels are tissue; pure black (scanner padding) is not
    black = arr.max(axis=2) < 25

    def _thr(values: npt.NDArray[np.float32], lo: float, hi: float) -> float:
        if values.size == 0 or float(values.max()) - float(values.min()) < 1e-6:
            return lo
        return float(np.clip(threshold_otsu(values), lo, hi))

    t_od = _thr(od, *_OD_RANGE)
    t_sat = _thr(sat, *_SAT_RANGE)
    mask = ((od > t_od) | (sat > t_sat)) & ~black
    um_per_px = (mpp or 0.25) * scale
    radius = max(1, round(8.0 / um_per_px))  # close gaps of ~16 µm
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    m8 = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, k)
    from scipy import ndimage as ndi

    filled = ndi.binary_fill_holes(m8.astype(bool))
    min_px = min_object_um2 / (um_per_px**2)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(
        np.asarray(filled, dtype=np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_px
    return np.asarray(keep[labels], dtype=bool)


def tissue_mask(image: ImageSource, max_size: int = 1024,
                min_object_um2: float = 2500.0) -> tuple[BoolMask, float]:
    """Tissue mask of a whole image from a low-resolution level.

    Args:
        image: an opened image (:func:`mfcurate.io.reader.open_image` or ``ArrayImage``).
        max_size: longest side of the thumbnail the mask is computed on.
        min_object_um2: tissue pieces smaller than this are dropped.

    Returns:
        ``(mask, scale)``: ``(rows, cols)`` bool mask and level-0 pixels per mask pixel.
    """
    thumb, scale = image.thumbnail(max_size)
    mpp = _mpp(image)
    return tissue_mask_rgb(thumb, scale, mpp, min_object_um2), float(scale)


def tile_grid(width: int, height: int, tile: int = 1024, overlap: int = 128) -> list[Tile]:
    """All tiles of an image (the one grid of :mod:`mfcurate.tiling`).

    Examples:
        >>> tile_grid(2000, 900, tile=1024, overlap=128)
        [(0, 0, 1024, 900), (976, 0, 1024, 900)]
    """
    from mfcurate.tiling import TileGrid

    return TileGrid(width, height, tile, overlap).tiles()


def _mask_fraction(mask: BoolMask, scale: float, t: Tile) -> float:
    x, y, w, h = t
    c0, r0 = math.floor(x / scale), math.floor(y / scale)
    c1 = max(math.ceil((x + w) / scale), c0 + 1)
    r1 = max(math.ceil((y + h) / scale), r0 + 1)
    sub = mask[r0:r1, c0:c1]
    return float(sub.mean()) if sub.size else 0.0


def regions_mask(regions: Sequence[Any], shape: tuple[int, int], scale: float) -> BoolMask:
    """Rasterise regions onto a mask grid.

    Args:
        regions: shapely geometries (level-0 px) or ``(x0, y0, x1, y1)`` boxes.
        shape: ``(rows, cols)`` of the grid.
        scale: level-0 pixels per grid pixel.

    Returns:
        ``(rows, cols)`` bool, True inside any region.
    """
    import cv2
    from shapely import affinity
    from shapely.geometry import box as sbox

    out = np.zeros(shape, np.uint8)
    for reg in regions:
        geom = sbox(*reg) if isinstance(reg, (tuple, list)) else reg
        geom = affinity.scale(geom, 1.0 / scale, 1.0 / scale, origin=(0, 0))
        polys = list(getattr(geom, "geoms", [geom]))
        for poly in polys:
            if poly.is_empty or not hasattr(poly, "exterior"):
                continue
            ext = np.round(np.asarray(poly.exterior.coords)).astype(np.int32)
            cv2.fillPoly(out, [ext], 1)
            for hole in poly.interiors:
                cv2.fillPoly(out, [np.round(np.asarray(hole.coords)).astype(np.int32)], 0)
        if not polys and not geom.is_empty:
            x0, y0, x1, y1 = geom.bounds
            out[int(y0):math.ceil(y1) + 1, int(x0):math.ceil(x1) + 1] = 1
    return out.astype(bool)


def tissue_tiles(
    image: ImageSource,
    tile: int = 1024,
    overlap: int = 128,
    mask: tuple[BoolMask, float] | None = None,
    regions: Sequence[Any] | None = None,
    min_tissue: float = 0.02,
    max_size: int = 1024,
) -> list[Tile]:
    """Tiles of an image that cover tissue (and, optionally, only some regions).

    This is the public entry point ``harvest`` and ``detect`` use::

        tiles = tissue_tiles(img, tile=1024, overlap=128)
        for x, y, w, h in tiles:
            rgb = img.read_region(x, y, w, h)

    Args:
        image: an opened image.
        tile: tile side in level-0 px.
        overlap: minimal overlap of neighbouring tiles in level-0 px (make it larger than
            the largest object so that every object is whole in some tile).
        mask: a precomputed ``(tissue_mask, scale)``; computed with :func:`tissue_mask`
            when None.
        regions: optional regions of interest (shapely geometries or ``(x0, y0, x1, y1)``
            boxes, level-0 px); only tissue inside them counts.
        min_tissue: minimal fraction of a tile that must be tissue (inside the regions).
        max_size: thumbnail size for the tissue mask when ``mask`` is None.

    Returns:
        Selected tiles ``(x, y, w, h)`` in level-0 px, row-major order.
    """
    tmask, scale = mask if mask is not None else tissue_mask(image, max_size)
    if regions is not None:
        tmask = tmask & regions_mask(regions, tmask.shape, scale)
    grid = tile_grid(image.width, image.height, tile, overlap)
    out = []
    for t in grid:
        frac = _mask_fraction(tmask, scale, t)
        if frac > 0 and frac >= min_tissue:
            out.append(t)
    return out


def load_geojson_regions(path: Path) -> list[Any]:
    """Read polygons (level-0 px) from a GeoJSON file (QuPath export or FeatureCollection).

    Raises:
        SourceFormatError: the file is not GeoJSON with polygon geometries.
    """
    from shapely.geometry import shape

    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SourceFormatError(path, f"not a readable GeoJSON file ({exc})") from exc
    if isinstance(data, dict) and data.get("type") == "FeatureCollection":
        geoms = [f.get("geometry") for f in data.get("features", [])]
    elif isinstance(data, dict) and data.get("type") == "Feature":
        geoms = [data.get("geometry")]
    elif isinstance(data, list):
        geoms = [f.get("geometry", f) if isinstance(f, dict) else None for f in data]
    elif isinstance(data, dict) and "coordinates" in data:
        geoms = [data]
    else:
        raise SourceFormatError(path, "expected a GeoJSON FeatureCollection, Feature or geometry")
    out = []
    for g in geoms:
        if not g:
            continue
        try:
            geom = shape(g)
        except Exception as exc:  # shapely raises several types on bad geometry
            raise SourceFormatError(path, f"invalid geometry ({exc})") from exc
        if geom.geom_type in ("Polygon", "MultiPolygon"):
            out.append(geom)
    if not out:
        raise SourceFormatError(path, "no Polygon/MultiPolygon geometry found")
    return out


def _mpp(image: ImageSource) -> float | None:
    if image.mpp_x and image.mpp_y:
        return math.sqrt(float(image.mpp_x) * float(image.mpp_y))
    return image.mpp_x or image.mpp_y
