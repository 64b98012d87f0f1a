"""Pure geometry helpers: boxes, disks, and masks stored as box-relative COCO RLE.

Conventions: level-0 pixels, x = column, y = row; ``bbox_xyxy`` is a float half-open box
``[x_min, y_min, x_max, y_max]``.  A mask belongs to the integer *mask grid* of its box:
columns ``floor(x_min) .. ceil(x_max) - 1`` and rows ``floor(y_min) .. ceil(y_max) - 1``
(see :func:`mask_grid`).  Masks are boolean arrays of shape ``(rows, cols)``; their RLE is
pycocotools' compressed column-major string.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
from pycocotools import mask as mask_utils

BoxXYXY: TypeAlias = tuple[float, float, float, float]
Grid: TypeAlias = tuple[int, int, int, int]
BoolMask: TypeAlias = npt.NDArray[np.bool_]


def box_around(x: float, y: float, half_size: float) -> BoxXYXY:
    """Return the square box of half side ``half_size`` px centred on ``(x, y)``.

    Examples:
        >>> box_around(100.5, 40.0, 25)
        (75.5, 15.0, 125.5, 65.0)
    """
    return (x - half_size, y - half_size, x + half_size, y + half_size)


def clip_box(box: Sequence[float], width: float | None, height: float | None) -> BoxXYXY:
    """Clip a box to ``[0, width] x [0, height]`` (an unknown size leaves that side open).

    Examples:
        >>> clip_box((-27, 2391, 23, 2441), 7215, 5412)
        (0.0, 2391.0, 23.0, 2441.0)
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    x0, y0 = max(x0, 0.0), max(y0, 0.0)
    if width is not None:
        x1 = min(x1, float(width))
    if height is not None:
        y1 = min(y1, float(height))
    return (x0, y0, x1, y1)


def box_is_valid(box: Sequence[float]) -> bool:
    """True when the box has a positive width and height."""
    return box[2] > box[0] and box[3] > box[1]


def xyxy_to_xywh(box: Sequence[float]) -> list[float]:
    """Convert ``[x0, y0, x1, y1]`` to COCO's ``[x, y, w, h]``.

    Examples:
        >>> xyxy_to_xywh([6672.5, 706.5, 6722.5, 756.5])
        [6672.5, 706.5, 50.0, 50.0]
    """
    return [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])]


def mask_grid(box: Sequence[float]) -> Grid:
    """Integer pixel grid ``(x0, y0, width, height)`` that holds a mask of ``box``.

    Examples:
        >>> mask_grid((10.5, 20.0, 60.5, 70.0))
        (10, 20, 51, 50)
    """
    x0 = math.floor(box[0])
    y0 = math.floor(box[1])
    x1 = math.ceil(box[2])
    y1 = math.ceil(box[3])
    return (x0, y0, max(x1 - x0, 0), max(y1 - y0, 0))


def encode_mask(mask: npt.NDArray[np.generic]) -> str:
    """Encode a ``(rows, cols)`` mask as a compressed COCO RLE counts string.

    Examples:
        >>> m = np.zeros((4, 3), bool); m[1:3, 1] = True
        >>> decode_mask(encode_mask(m), 4, 3).sum()
        np.int64(2)
    """
    arr = np.asfortranarray(np.asarray(mask, dtype=np.uint8))
    rle = mask_utils.encode(arr)
    counts = rle["counts"]
    return counts.decode("ascii") if isinstance(counts, bytes) else str(counts)


def decode_mask(counts: str, height: int, width: int) -> BoolMask:
    """Decode a compressed COCO RLE counts string into a ``(height, width)`` bool mask."""
    rle = {"size": [int(height), int(width)], "counts": counts.encode("ascii")}
    return np.asarray(mask_utils.decode(rle), dtype=bool)


def rle_area(counts: str, height: int, width: int) -> int:
    """Number of foreground pixels of a compressed RLE, without decoding it."""
    rle = {"size": [int(height), int(width)], "counts": counts.encode("ascii")}
    return int(mask_utils.area(rle))


def rle_length(counts: str) -> int:
    """Total number of pixels (foreground and background) a compressed RLE describes.

    This reads pycocotools' LEB128-like string format directly, so a mask can be checked
    against the size of its grid without decoding it.

    Examples:
        >>> rle_length(encode_mask(np.ones((5, 7), bool)))
        35
    """
    total = 0
    values: list[int] = []
    pos = 0
    data = counts.encode("ascii")
    while pos < len(data):
        x = 0
        k = 0
        more = True
        while more:
            c = data[pos] - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            pos += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(values) > 2:
            x += values[-2]
        values.append(x)
        total += x
    return total


def mask_to_record(
    mask: npt.NDArray[np.generic], offset_xy: tuple[int, int]
) -> tuple[BoxXYXY, str, int, tuple[float, float]] | None:
    """Crop a mask to its tight box and encode it.

    Args:
        mask: ``(rows, cols)`` boolean mask whose pixel ``[0, 0]`` lies at level-0 pixel
            ``offset_xy`` (x, y).
        offset_xy: level-0 position of the mask's top-left pixel.

    Returns:
        ``(bbox_xyxy, rle_counts, area_px, centroid_xy)`` with the box tight around the
        foreground (integer edges), or ``None`` for an empty mask.

    Examples:
        >>> m = np.zeros((10, 10), bool); m[2:5, 3:7] = True
        >>> box, rle, area, c = mask_to_record(m, (100, 200))
        >>> box, area, c
        ((103.0, 202.0, 107.0, 205.0), 12, (105.0, 203.5))
    """
    m = np.asarray(mask, dtype=bool)
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(m.any(axis=0))
    r0, r1 = int(rows[0]), int(rows[-1]) + 1
    c0, c1 = int(cols[0]), int(cols[-1]) + 1
    crop = m[r0:r1, c0:c1]
    ys, xs = np.nonzero(crop)
    ox, oy = offset_xy
    box = (float(ox + c0), float(oy + r0), float(ox + c1), float(oy + r1))
    centroid = (float(ox + c0 + xs.mean() + 0.5), float(oy + r0 + ys.mean() + 0.5))
    return box, encode_mask(crop), int(crop.sum()), centroid


def clip_mask_to_image(mask: npt.NDArray[np.generic], offset_xy: tuple[int, int],
                       width: int | None, height: int | None
                       ) -> tuple[BoolMask, tuple[int, int], bool]:
    """Cut a mask to the image ``[0, width) x [0, height)``.

    Args:
        mask: ``(rows, cols)`` mask whose pixel ``[0, 0]`` lies at level-0 ``offset_xy``.
        offset_xy: level-0 position (x, y) of the mask's top-left pixel.
        width: image width in px (None: unknown, no clipping along x).
        height: image height in px (None: unknown, no clipping along y).

    Returns:
        ``(mask, offset_xy, clipped)``: the part inside the image (possibly empty), its
        offset, and whether foreground pixels were cut off.
    """
    m = np.asarray(mask, dtype=bool)
    ox, oy = int(offset_xy[0]), int(offset_xy[1])
    x0, y0 = max(0, -ox), max(0, -oy)
    x1 = m.shape[1] if width is None else min(m.shape[1], int(width) - ox)
    y1 = m.shape[0] if height is None else min(m.shape[0], int(height) - oy)
    x1, y1 = max(x1, x0), max(y1, y0)
    inside = m[y0:y1, x0:x1]
    clipped = int(inside.sum()) != int(m.sum())
    return inside, (ox + x0, oy + y0), clipped


def disk_mask(center_xy: tuple[float, float], radius_px: float) -> tuple[BoxXYXY, BoolMask]:
    """Rasterise a disk; return its grid box and a ``(rows, cols)`` mask on that grid.

    A pixel belongs to the disk when its centre lies within ``radius_px`` of ``center_xy``.

    Examples:
        >>> box, m = disk_mask((10.0, 10.0), 2.0)
        >>> box, int(m.sum())
        ((8.0, 8.0, 12.0, 12.0), 12)
    """
    cx, cy = center_xy
    x0, y0 = math.floor(cx - radius_px), math.floor(cy - radius_px)
    x1, y1 = math.ceil(cx + radius_px), math.ceil(cy + radius_px)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    m = (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= radius_px**2
    return (float(x0), float(y0), float(x1), float(y1)), m


def image_rle_from_box_mask(
    counts: str, grid: Grid, image_height: int, image_width: int
) -> dict[str, object]:
    """Turn a box-relative mask into an image-relative compressed RLE (COCO export).

    Memory is proportional to the mask, never to the image.

    Args:
        counts: box-relative compressed RLE.
        grid: ``(x0, y0, w, h)`` mask grid in image pixels.
        image_height: rows of the image.
        image_width: columns of the image.

    Returns:
        ``{"size": [H, W], "counts": str}`` in pycocotools' compressed form.
    """
    x0, y0, w, h = grid
    m = decode_mask(counts, h, w)
    rows, cols = np.nonzero(m)
    rows = rows + y0
    cols = cols + x0
    keep = (rows >= 0) & (rows < image_height) & (cols >= 0) & (cols < image_width)
    idx = np.sort(cols[keep].astype(np.int64) * image_height + rows[keep].astype(np.int64))
    total = int(image_height) * int(image_width)
    if idx.size == 0:
        runs = [total]
    else:
        breaks = np.flatnonzero(np.diff(idx) != 1)
        starts = np.concatenate(([idx[0]], idx[breaks + 1]))
        ends = np.concatenate((idx[breaks], [idx[-1]])) + 1
        runs_arr = np.empty(starts.size * 2 + 1, dtype=np.int64)
        runs_arr[0] = starts[0]
        runs_arr[1::2] = ends - starts
        runs_arr[2:-1:2] = starts[1:] - ends[:-1]
        runs_arr[-1] = total - ends[-1]
        runs = runs_arr.tolist()
    rle = mask_utils.frPyObjects({"size": [int(image_height), int(image_width)], "counts": runs},
                                 int(image_height), int(image_width))
    counts_out = rle["counts"]
    return {
        "size": [int(image_height), int(image_width)],
        "counts": counts_out.decode("ascii") if isinstance(counts_out, bytes) else counts_out,
    }


def mask_polygons(counts: str, grid: Grid, tolerance_px: float = 0.5) -> list[list[float]]:
    """Outer contours of a box-relative mask as flat ``[x0, y0, x1, y1, ...]`` level-0 lists.

    The contour is traced on the mask upsampled 2x, so vertices lie a quarter pixel inside the
    pixel edges; it is simplified by ``tolerance_px``.  Polygons approximate the mask (QuPath,
    GeoJSON, COCO for images too large for RLE); the RLE stays the exact form.
    """
    import cv2

    x0, y0, w, h = grid
    m = decode_mask(counts, h, w).astype(np.uint8)
    big = cv2.resize(m, (w * 2, h * 2), interpolation=cv2.INTER_NEAREST)
    padded = np.pad(big, 1)
    contours, _ = cv2.findContours(padded, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polys: list[list[float]] = []
    for c in contours:
        c = cv2.approxPolyDP(c, tolerance_px * 2, True)
        if len(c) < 3:
            continue
        pts = (c[:, 0, :].astype(np.float64) - 1 + 0.5) / 2.0
        pts[:, 0] += x0
        pts[:, 1] += y0
        polys.append([round(float(v), 2) for v in pts.reshape(-1)])
    return polys


#: A connected component is a *part* of a mask when its area is at least this fraction of
#: the mask's largest component (smaller specks are noise).  Used by the box-prompted mask QA
#: (:mod:`mfcurate.segment.qa`, which keeps every part inside the prompt box: anaphase and
#: telophase figures are two or more chromatin masses) and by the hygiene figures.
MIN_PART_FRAC = 0.1


def mask_parts(mask: npt.NDArray[np.generic], min_frac: float = MIN_PART_FRAC
               ) -> tuple[npt.NDArray[np.int32], list[int]]:
    """8-connected components of a mask and which of them are significant parts.

    Args:
        mask: ``(rows, cols)`` mask (non-zero = inside).
        min_frac: smallest part, as a fraction of the largest component's area.

    Returns:
        ``(labels, parts)``: the ``(rows, cols)`` int32 component labels (0 = outside) and
        the labels of the parts, largest first.

    Examples:
        >>> m = np.zeros((7, 11), bool); m[1:5, 1:5] = True; m[1:5, 6:10] = True; m[6, 5] = True
        >>> mask_parts(m)[1]
        [1, 2]
    """
    import cv2

    n, lab, stats, _ = cv2.connectedComponentsWithStats(
        np.asarray(mask, dtype=bool).astype(np.uint8), connectivity=8)
    if n <= 1:
        return lab.astype(np.int32), []
    areas = stats[1:, cv2.CC_STAT_AREA]
    order = np.argsort(-areas, kind="stable")
    big = float(areas[order[0]])
    parts = [int(k) + 1 for k in order if areas[k] >= min_frac * big]
    return lab.astype(np.int32), parts


def count_parts(mask: npt.NDArray[np.generic], min_frac: float = MIN_PART_FRAC) -> int:
    """Number of significant parts of a mask (see :func:`mask_parts`)."""
    return len(mask_parts(mask, min_frac)[1])


def points_in_boxes(points_xy: npt.ArrayLike, boxes_xyxy: npt.ArrayLike
                    ) -> npt.NDArray[np.int64]:
    """Index pairs ``(i, k)`` with point ``i`` inside box ``k`` (boundary included).

    An STRtree over the boxes answers all points at once, so the cost grows with the
    number of points and boxes, not their product.

    Args:
        points_xy: ``(n, 2)`` points (x, y).
        boxes_xyxy: ``(m, 4)`` boxes.

    Returns:
        ``(2, p)`` int64 array: row 0 the point indices, row 1 the box indices.

    Examples:
        >>> points_in_boxes([[1, 1], [5, 5]], [[0, 0, 2, 2], [4, 4, 9, 9], [0, 0, 9, 9]]).T
        array([[0, 0],
               [0, 2],
               [1, 1],
               [1, 2]])
    """
    import shapely

    p = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    if len(p) == 0 or len(b) == 0:
        return np.zeros((2, 0), np.int64)
    tree = shapely.STRtree(shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3]))
    pairs = np.asarray(tree.query(shapely.points(p), predicate="intersects"), dtype=np.int64)
    order = np.lexsort((pairs[1], pairs[0]))
    return pairs[:, order]
