"""Write a tiled, pyramidal Aperio-style TIFF block by block (bounded memory).

``write_pyramid(path, width, height, render, mpp)`` asks ``render(x0, y0, w, h)`` for
``(h, w, 3)`` uint8 blocks of level 0 in row-major order, one strip of ``block`` rows at a
time, and writes them as 256-px tiles; each strip is also halved (area average) into a
disk-backed level 1 (``numpy.memmap`` beside the output), from which the lower levels follow.
Peak memory is about one strip of level 0 plus the levels below level 1 (1/16 of level 0),
so a 40,000 x 30,000 px slide needs a few hundred MB.  OpenSlide reads the result (the first
page carries an Aperio description with ``MPP``), by region.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
Render = Callable[[int, int, int, int], U8]


def _tiles(level: npt.NDArray[np.uint8] | None, strips: Iterator[U8] | None, tile: int
           ) -> Iterator[U8]:
    """256-px tiles, row-major, from an array or from full-width strips (edges padded)."""
    src = strips if strips is not None else iter([level])
    carry: U8 | None = None
    for strip in src:
        assert strip is not None  # noqa: S101 - internal
        buf = strip if carry is None else np.concatenate([carry, strip], axis=0)
        n_full = buf.shape[0] // tile
        for r in range(n_full):
            yield from _row_tiles(buf[r * tile:(r + 1) * tile], tile)
        carry = buf[n_full * tile:]
    if carry is not None and carry.shape[0]:
        pad = np.full((tile - carry.shape[0], carry.shape[1], 3), 255, np.uint8)
        yield from _row_tiles(np.concatenate([carry, pad], axis=0), tile)


def _row_tiles(row: U8, tile: int) -> Iterator[U8]:
    w = row.shape[1]
    for c in range(0, w, tile):
        t = row[:, c:c + tile]
        if t.shape[1] < tile:
            t = np.concatenate([t, np.full((tile, tile - t.shape[1], 3), 255, np.uint8)], 1)
        yield np.ascontiguousarray(t)


def _halve(a: U8, strip: int = 2048) -> U8:
    """Area-average 2x reduction, ``strip`` rows at a time (``a`` may be a memmap)."""
    import cv2

    h, w = a.shape[0] // 2, a.shape[1] // 2
    out = np.empty((h, w, 3), np.uint8)
    for r in range(0, h, strip // 2):
        r1 = min(h, r + strip // 2)
        src = np.asarray(a[2 * r: 2 * r1, : 2 * w])
        out[r:r1] = cv2.resize(src, (w, r1 - r), interpolation=cv2.INTER_AREA)
    return out


def write_pyramid(path: Path | str, width: int, height: int, render: Render, mpp: float, *,
                  tile: int = 256, block: int = 1024, min_level_size: int = 512,
                  compression: str | None = "zlib") -> Path:
    """Write a ``width x height`` slide rendered by blocks; return its path.

    Args:
        path: output (``.svs`` so OpenSlide takes it as Aperio).
        width: level-0 columns.
        height: level-0 rows.
        render: ``render(x0, y0, w, h) -> (h, w, 3) uint8`` of level-0 pixels.
        mpp: µm/px of level 0.
        tile: TIFF tile size.
        block: rows (and columns) per ``render`` call; a multiple of ``2 * tile``.
        min_level_size: stop halving below this longest side.
        compression: ``zlib`` (level 1), or None for raw tiles.
    """
    import tifffile

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    desc = (f"Aperio Image Library v12.0.15 \r\n{width}x{height} [0,0 {width}x{height}] "
            f"({tile}x{tile}) RAW|AppMag = 40|MPP = {mpp:.6f}|Filename = {p.stem}")
    l1_path = p.with_name(f".{p.name}.level1")
    w1, h1 = width // 2, height // 2
    level1 = np.lib.format.open_memmap(l1_path, mode="w+", dtype=np.uint8, shape=(h1, w1, 3))

    def strips() -> Iterator[U8]:
        for y0 in range(0, height, block):
            bh = min(block, height - y0)
            strip = np.concatenate([render(x0, y0, min(block, width - x0), bh)
                                    for x0 in range(0, width, block)], axis=1)
            half = _halve(strip)
            r1 = y0 // 2
            level1[r1:r1 + half.shape[0], : half.shape[1]] = half[: h1 - r1]
            yield strip

    comp = {"compression": "zlib", "compressionargs": {"level": 1}} if compression else {}
    tmp = p.with_name(f".{p.name}.tmp")
    try:
        with tifffile.TiffWriter(tmp, bigtiff=width * height * 3 > 2**31) as tw:
            tw.write(_tiles(None, strips(), tile), shape=(height, width, 3), dtype=np.uint8,
                     tile=(tile, tile), photometric="rgb", description=desc, metadata=None,
                     subfiletype=0, **comp)  # type: ignore[arg-type]
            level1.flush()
            lv: U8 = np.asarray(level1)
            while max(lv.shape[:2]) >= min_level_size:
                lh, lw = lv.shape[:2]
                d = (f"Aperio Image Library v12.0.15 \r\n{width}x{height} -> {lw}x{lh} - "
                     f"|MPP = {mpp * (width / lw):.6f}")
                tw.write(_tiles(lv, None, tile), shape=(lh, lw, 3), dtype=np.uint8,
                         tile=(tile, tile), photometric="rgb", description=d, metadata=None,
                         subfiletype=1, **comp)  # type: ignore[arg-type]
                lv = _halve(np.asarray(lv))
        tmp.replace(p)
    finally:
        l1_path.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    return p
