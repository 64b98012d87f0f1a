"""Where a SAM point prompt can hit a cell-scale object: a cheap prior that prunes the grid.

SAM's automatic generator prompts every point of a regular grid, and each prompt costs a
full mask-decoder pass (~90 ms for ViT-B on 2 CPU cores), so on a slide the prompts, not the
image encoder, decide the cost.  Most grid points of an H&E tile fall on stroma, lumen or
glass.  The prior keeps only points that can lie inside a nucleus:

* ``"tissue"`` — the tile's tissue mask (:func:`mfcurate.segment.tissue.tissue_mask_rgb`,
  OD/saturation threshold on a thumbnail of the tile);
* ``"nuclei"`` — tissue **and** the classical segmenter's nucleus foreground
  (:meth:`~mfcurate.segment.auto_classical.ClassicalAutoSegmenter.foreground`, haematoxylin OD
  from :mod:`mfcurate.stain`) at a lowered threshold (``threshold_scale``, a monotone
  superset of the nuclei the classical segmenter finds), dilated by ``margin_um``;
  the defaults (0.75, no dilation) keep a prompt in 99.9 % of the annotated NuCLS nuclei
  (1,278 of 1,279 that a 32² or 64² grid prompts on the 15 real 256 px tiles) while
  prompting a third of the points;
* ``"none"`` — every point (the stock grid).

Arrays: the tile is ``(rows, cols, 3)`` uint8 RGB; the prior is ``(rows, cols)`` bool in
tile pixels; points are ``(N, 2)`` float ``(x, y)`` tile pixels (x = column).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

PRIORS = ("none", "tissue", "nuclei")

BoolMask = npt.NDArray[np.bool_]


def _tissue(tile: npt.NDArray[np.uint8], mpp: float, min_object_um2: float = 100.0,
            grow_um: float = 16.0) -> BoolMask:
    import cv2

    from mfcurate.segment.tissue import tissue_mask_rgb

    rows, cols = tile.shape[:2]
    f = max(1, min(rows, cols) // 128)  # a thumbnail of ~128 px is plenty for tissue
    small = np.asarray(cv2.resize(tile, (max(1, cols // f), max(1, rows // f)),
                                  interpolation=cv2.INTER_AREA) if f > 1 else tile, np.uint8)
    # inside one tile, a strand of a few cells is tissue: small pieces kept, edges grown
    m = tissue_mask_rgb(small, scale=f, mpp=mpp, min_object_um2=min_object_um2)
    r = math.ceil(grow_um / (mpp * f))
    if r > 0:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        m = np.asarray(cv2.dilate(m.astype(np.uint8), k), dtype=bool)
    if f == 1:
        return m
    return np.asarray(cv2.resize(m.astype(np.uint8), (cols, rows),
                                 interpolation=cv2.INTER_NEAREST), dtype=bool)


def point_prior(tile: npt.NDArray[np.uint8], mpp: float | None, kind: str = "nuclei",
                threshold_scale: float = 0.75, margin_um: float = 0.0) -> BoolMask | None:
    """The prior mask of a tile, or None for ``kind="none"`` (every point allowed).

    Args:
        tile: ``(rows, cols, 3)`` uint8 RGB.
        mpp: µm per pixel (None: 0.5 is assumed for the morphology sizes).
        kind: ``"none"``, ``"tissue"`` or ``"nuclei"``.
        threshold_scale: factor on the classical haematoxylin threshold (``"nuclei"``).
        margin_um: dilation of the nucleus foreground, µm (``"nuclei"``).

    Returns:
        ``(rows, cols)`` bool, True where a prompt may go.
    """
    import cv2

    from mfcurate.segment.auto_classical import ClassicalAutoSegmenter

    if kind not in PRIORS:
        raise ValueError(f"unknown point prior {kind!r}; choose one of {PRIORS}")
    if kind == "none":
        return None
    um = float(mpp) if mpp else 0.5
    tissue = _tissue(tile, um)
    if kind == "tissue":
        return tissue
    fg = ClassicalAutoSegmenter().foreground(tile, um, threshold_scale=threshold_scale)
    r = max(0, math.ceil(margin_um / um))
    if r:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        fg = np.asarray(cv2.dilate(fg.astype(np.uint8), k), dtype=bool)
    return fg & tissue


def points_in(mask: BoolMask, points: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Whether each ``(x, y)`` point falls on a True pixel of ``mask`` (pixel = floor)."""
    rows, cols = mask.shape
    c = np.clip(np.floor(points[:, 0]).astype(np.int64), 0, cols - 1)
    r = np.clip(np.floor(points[:, 1]).astype(np.int64), 0, rows - 1)
    return np.asarray(mask[r, c], dtype=bool)


def prompt_coverage(labels: npt.NDArray[np.integer], points: npt.NDArray[np.float64],
                    kept: npt.NDArray[np.bool_]) -> tuple[int, int]:
    """How many objects that the full grid prompts are still prompted after pruning.

    Args:
        labels: ``(rows, cols)`` instance labels (0 = background), e.g. the classical
            segmenter's nuclei.
        points: ``(N, 2)`` grid points ``(x, y)``.
        kept: ``(N,)`` bool, the points the prior keeps.

    Returns:
        ``(prompted_by_full_grid, still_prompted)``: objects with at least one grid point
        inside, and of those the ones with at least one kept point inside.
    """
    rows, cols = labels.shape
    c = np.clip(np.floor(points[:, 0]).astype(np.int64), 0, cols - 1)
    r = np.clip(np.floor(points[:, 1]).astype(np.int64), 0, rows - 1)
    lab = np.asarray(labels[r, c])
    full = set(np.unique(lab[lab > 0]).tolist())
    still = set(np.unique(lab[(lab > 0) & kept]).tolist())
    return len(full), len(still & full)
