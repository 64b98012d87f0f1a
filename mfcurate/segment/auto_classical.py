"""Classical automatic nucleus segmentation: haematoxylin OD, threshold, watershed.

The default automatic segmenter when no SAM checkpoint is given (``harvest``, ``detect``):

1. colour deconvolution with the Ruifrok-Johnston H&E vectors (as ``skimage.color.rgb2hed``):
   ``OD = -log10((RGB + 1) / 256)``, haematoxylin = first row of ``OD @ inv(stains)``;
2. light Gaussian smoothing, threshold (Otsu of the tile, never below ``min_threshold``);
3. opening and hole filling at nucleus scale;
4. distance-transform watershed seeded by the h-maxima of the distance map (so touching
   nuclei split but elongated ones do not);
5. area filter in µm² through the tile's µm/px (``min_area_um2`` .. ``max_area_um2``,
   the SAM-AUG defaults 2.25 .. 225 µm²).

Sizes are given in µm and converted with the ``mpp`` passed to :meth:`segment_tile`, so the
same settings work at 0.25 and 0.5 µm/px.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from mfcurate.segment import Instance
from mfcurate.stain import haematoxylin_od

__all__ = ["ClassicalAutoSegmenter", "haematoxylin_od"]


class ClassicalAutoSegmenter:
    """Automatic nucleus segmenter from the haematoxylin channel (no model needed).

    Args:
        min_area_um2: smallest object kept (mask area, µm²).
        max_area_um2: largest object kept (mask area, µm²).
        threshold: fixed haematoxylin OD threshold, or None for Otsu per tile.
        min_threshold: lower bound of the Otsu threshold (keeps stroma out on nucleus-poor
            tiles).
        smooth_um: Gaussian sigma in µm before thresholding.
        split_depth_um: h of the h-maxima seeds in µm: a neck between two nuclei must be at
            least this much narrower than their radii to split them.
    """

    name = "classical"

    def __init__(self, min_area_um2: float = 2.25, max_area_um2: float = 225.0,
                 threshold: float | None = None, min_threshold: float = 0.2,
                 smooth_um: float = 0.25, split_depth_um: float = 0.6) -> None:
        if min_area_um2 < 0 or max_area_um2 <= min_area_um2:
            raise ValueError("need 0 <= min_area_um2 < max_area_um2")
        self.min_area_um2 = float(min_area_um2)
        self.max_area_um2 = float(max_area_um2)
        self.threshold = threshold
        self.min_threshold = float(min_threshold)
        self.smooth_um = float(smooth_um)
        self.split_depth_um = float(split_depth_um)

    def foreground(self, tile: npt.NDArray[np.uint8], mpp: float,
                   threshold_scale: float = 1.0) -> npt.NDArray[np.bool_]:
        """Nucleus foreground ``(rows, cols)`` bool: haematoxylin threshold, opening, holes filled.

        Args:
            tile: ``(rows, cols, 3)`` uint8 RGB.
            mpp: µm per pixel of the tile.
            threshold_scale: the OD threshold is multiplied by this; below 1 the foreground
                grows monotonically (every step is increasing), so ``threshold_scale < 1``
                gives a superset of the nuclei :meth:`labels` finds (the SAM point prior).
        """
        import cv2
        from scipy import ndimage as ndi
        from skimage.filters import threshold_otsu

        if mpp <= 0:
            raise ValueError(f"mpp must be positive, got {mpp}")
        h = haematoxylin_od(tile)
        sigma = self.smooth_um / mpp
        if sigma > 0.3:
            h = np.asarray(cv2.GaussianBlur(h, (0, 0), sigma), dtype=np.float32)
        if self.threshold is not None:
            thr = float(self.threshold)
        else:
            thr = self.min_threshold
            if float(h.max()) - float(h.min()) > 1e-3:
                thr = max(float(threshold_otsu(h)), self.min_threshold)
        fg = (h > thr * threshold_scale).astype(np.uint8)
        r_open = max(1, round(0.4 / mpp))
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r_open + 1, 2 * r_open + 1))
        fg = np.asarray(cv2.morphologyEx(fg, cv2.MORPH_OPEN, k), dtype=np.uint8)
        return np.asarray(ndi.binary_fill_holes(fg.astype(bool)), dtype=bool)

    def labels(self, tile: npt.NDArray[np.uint8], mpp: float) -> npt.NDArray[np.int32]:
        """Instance label image ``(rows, cols)`` int32 (0 = background), before area filter."""
        import cv2
        from scipy import ndimage as ndi
        from skimage.morphology import h_maxima
        from skimage.segmentation import watershed

        fg_b = self.foreground(tile, mpp)
        if not fg_b.any():
            return np.zeros(fg_b.shape, np.int32)
        dist = cv2.distanceTransform(fg_b.astype(np.uint8), cv2.DIST_L2, 5)
        dist = cv2.GaussianBlur(dist, (0, 0), max(0.5, 0.3 / mpp))
        depth = max(self.split_depth_um / mpp, 0.5)
        seeds = h_maxima(dist, depth) & fg_b
        markers, _ = ndi.label(seeds)
        lab = watershed(-dist, markers, mask=fg_b)
        # components without a seed (tiny) keep their own label
        missing = fg_b & (lab == 0)
        if missing.any():
            extra, _n = ndi.label(missing)
            lab = np.where(missing, extra + lab.max(), lab)
        return np.asarray(lab, dtype=np.int32)

    def segment_tile(self, tile: npt.NDArray[np.uint8], mpp: float) -> list[Instance]:
        """All nuclei of a tile.

        Args:
            tile: ``(rows, cols, 3)`` uint8 RGB.
            mpp: µm per pixel of the tile.

        Returns:
            Instances with tight masks, ``offset_xy`` in the tile frame, ``score`` = solidity
            (area / convex hull area), origin ``classical``.
        """
        import cv2
        from scipy import ndimage as ndi

        lab = self.labels(tile, mpp)
        px_um2 = mpp * mpp
        min_px = self.min_area_um2 / px_um2
        max_px = self.max_area_um2 / px_um2
        out: list[Instance] = []
        for i, sl in enumerate(ndi.find_objects(lab), start=1):
            if sl is None:
                continue
            m = lab[sl] == i
            area = int(m.sum())
            if area < min_px or area > max_px:
                continue
            cnts, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_SIMPLE)
            hull = max((cv2.contourArea(cv2.convexHull(c)) for c in cnts), default=0.0)
            solidity = min(1.0, area / hull) if hull > 0 else 1.0
            out.append(Instance(mask=m, offset_xy=(int(sl[1].start), int(sl[0].start)),
                                score=float(round(solidity, 4)), stability=None,
                                origin="classical"))
        return out


def nucleus_radius_px(mpp: float, radius_um: float = 3.5) -> int:
    """A typical nucleus radius in pixels at ``mpp`` (helper for callers sizing margins)."""
    return math.ceil(radius_um / mpp)
