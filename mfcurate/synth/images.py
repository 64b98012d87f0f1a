"""Small helpers to write synthetic images with their µm/px."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt


def write_tiff(path: Path, rgb: npt.NDArray[np.uint8], mpp: float) -> Path:
    """Write a plain RGB TIFF whose resolution tags give ``mpp`` (pixels per centimetre)."""
    import tifffile

    path.parent.mkdir(parents=True, exist_ok=True)
    res = 1e4 / mpp
    tifffile.imwrite(path, rgb, photometric="rgb", resolution=(res, res),
                     resolutionunit="CENTIMETER", compression="zlib")
    return path


def write_png(path: Path, rgb: npt.NDArray[np.uint8], mpp: float | None = None) -> Path:
    """Write a PNG; with ``mpp`` its pHYs chunk carries the resolution as DPI."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    if mpp:
        Image.fromarray(rgb).save(path, dpi=(25400.0 / mpp, 25400.0 / mpp))
    else:
        Image.fromarray(rgb).save(path)
    return path
