"""Write an RGB array as a tiled, pyramidal Aperio-style SVS that OpenSlide opens.

The first page carries an Aperio ``ImageDescription`` (``Aperio Image Library ... |MPP = m``)
so OpenSlide reports ``openslide.mpp-x``/``-y``; lower pyramid levels follow as tiled pages.
Tiles are deflate-compressed.  Used by the synthetic sources, tests and benchmarks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt


def write_svs(
    path: Path | str,
    rgb: npt.NDArray[np.uint8],
    mpp: float,
    *,
    tile: int = 256,
    min_level_size: int = 512,
    app_mag: int = 40,
) -> Path:
    """Write ``rgb`` (``(rows, cols, 3)`` uint8) as a pyramidal SVS.

    Args:
        path: output file (``.svs`` or ``.tif``).
        rgb: level-0 pixels.
        mpp: µm per pixel of level 0.
        tile: tile size in pixels (multiple of 16).
        min_level_size: stop adding 2x-downsampled levels below this longest side.
        app_mag: objective magnification written to the description.
    """
    import cv2
    import tifffile

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    h, w = rgb.shape[:2]
    desc = (f"Aperio Image Library v12.0.15 \r\n{w}x{h} [0,0 {w}x{h}] ({tile}x{tile}) "
            f"RAW|AppMag = {app_mag}|MPP = {mpp:.6f}|Filename = {p.stem}")
    levels = [np.ascontiguousarray(rgb[:, :, :3])]
    while max(levels[-1].shape[:2]) // 2 >= min_level_size:
        prev = levels[-1]
        levels.append(np.asarray(cv2.resize(prev, (prev.shape[1] // 2, prev.shape[0] // 2),
                                            interpolation=cv2.INTER_AREA), dtype=np.uint8))
    tmp = p.with_name(f".{p.name}.tmp")
    with tifffile.TiffWriter(tmp, bigtiff=rgb.nbytes > 2**31) as tw:
        for i, lv in enumerate(levels):
            lh, lw = lv.shape[:2]
            d = desc if i == 0 else (f"Aperio Image Library v12.0.15 \r\n{w}x{h} "
                                     f"-> {lw}x{lh} - |MPP = {mpp * (w / lw):.6f}")
            tw.write(lv, tile=(tile, tile), photometric="rgb", compression="zlib",
                     description=d, metadata=None, subfiletype=0 if i == 0 else 1)
    tmp.replace(p)
    return p
