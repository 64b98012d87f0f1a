"""Stain maths, one home: optical density, colour deconvolution, the haematoxylin channel.

Conventions (every module of mfcurate uses these and no other):

* **Optical density** of a uint8 intensity ``I`` is ``OD = -log10(max(I, 1) / 255)``: 0 on
  white glass, about 2.4 at ``I = 1``.  It is computed through a 256-entry lookup table.
* **Stain vectors** are unit-norm OD colours, one per row: the Ruifrok-Johnston
  haematoxylin, eosin and DAB vectors of :data:`HED_STAINS` (the matrix behind
  ``skimage.color.rgb2hed``).
* **Concentrations** are in OD units: ``OD = conc @ stains``, so ``conc = OD @ inv(stains)``.
  ``skimage.color.rgb2hed`` returns the same concentrations divided by 6 (it scales by
  ``ln(1e-6)`` instead of ``ln(10)``); a test checks the two agree.
* :func:`stains_to_rgb` is the exact inverse (Beer-Lambert), used by the synthetic renderer.

All functions take ``(rows, cols, 3)`` uint8 RGB and return float32 arrays of the same rows
and columns.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]

#: Ruifrok-Johnston unit OD vectors, rows: haematoxylin, eosin, DAB (as skimage.rgb2hed).
HED_STAINS: npt.NDArray[np.float64] = np.array(
    [[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]], dtype=np.float64)
HED_STAINS = HED_STAINS / np.linalg.norm(HED_STAINS, axis=1, keepdims=True)

#: Row of each stain in :data:`HED_STAINS`.
HAEMATOXYLIN, EOSIN, DAB = 0, 1, 2

#: OD of every uint8 intensity (a lookup table is much faster than a log per pixel).
_OD_LUT = (-np.log10(np.maximum(np.arange(256, dtype=np.float64), 1.0) / 255.0)
           ).astype(np.float32)


def optical_density(rgb: U8) -> F32:
    """``(rows, cols, 3)`` float32 optical density of a uint8 RGB image (see module doc)."""
    import cv2

    arr = np.ascontiguousarray(np.asarray(rgb)[:, :, :3], dtype=np.uint8)
    return np.asarray(cv2.LUT(arr, _OD_LUT), dtype=np.float32)


def deconvolve(rgb: U8, stains: npt.NDArray[np.float64] = HED_STAINS,
               channels: tuple[int, ...] = (HAEMATOXYLIN, EOSIN, DAB)) -> F32:
    """Stain concentrations in OD units: ``(rows, cols, len(channels))`` float32.

    Args:
        rgb: ``(rows, cols, 3)`` uint8 RGB.
        stains: ``(3, 3)`` unit OD vectors, one stain per row (H, E, DAB by default).
        channels: which stains' concentrations to compute (rows of ``stains``).

    Returns:
        Concentrations, not clipped (glass and other stains can give small negatives).
    """
    import cv2

    inv = np.linalg.inv(np.asarray(stains, dtype=np.float64)).astype(np.float32)
    m = np.ascontiguousarray(inv.T[list(channels)])
    out = cv2.transform(optical_density(rgb), m)
    return np.asarray(out, dtype=np.float32).reshape(rgb.shape[0], rgb.shape[1], len(channels))


def haematoxylin_od(rgb: U8, stains: npt.NDArray[np.float64] = HED_STAINS) -> F32:
    """Haematoxylin concentration (OD units, clipped at 0): ``(rows, cols)`` float32.

    About 0 on glass and eosin-only stroma, 0.3-1.5 on nuclei.
    """
    h = deconvolve(rgb, stains, channels=(HAEMATOXYLIN,))[:, :, 0]
    return np.maximum(h, 0.0).astype(np.float32, copy=False)


def summed_od(rgb: U8) -> F32:
    """Sum of the three channels' OD: ``(rows, cols)`` float32 (how much stain at all)."""
    return optical_density(rgb).sum(axis=2, dtype=np.float32)


def stains_to_rgb(conc: npt.NDArray[np.floating], stains: npt.NDArray[np.float64] = HED_STAINS
                  ) -> U8:
    """Render ``(rows, cols, k)`` concentrations (OD units) of the first ``k`` stains to RGB.

    The inverse of :func:`deconvolve` up to uint8 rounding (Beer-Lambert:
    ``I = 255 * 10^-OD``).
    """
    od = np.asarray(conc, dtype=np.float64) @ stains[: conc.shape[2]]
    rgb = 255.0 * np.exp(-od * np.log(10.0))
    return np.clip(rgb, 0, 255).round().astype(np.uint8)
