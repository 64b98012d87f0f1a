"""Tiles and seams, one home: the grid harvest and detect tile with, and their one seam rule.

**Grid.** Tiles of ``tile`` px (level 0) start every ``tile - overlap`` px; the last tile of a
row or column is aligned to the image edge, so every tile is full size unless the image is
smaller than one tile (then it is one clipped tile).  Neighbouring tiles overlap by at least
``overlap`` px; make it larger than the largest object, so every object lies whole inside some
tile.

**Seam rule.** An object segmented in tile ``T`` is kept unless its box touches an *inner*
edge of ``T`` (an edge that is not the image's) and another tile of the run holds the box
whole without touching any of that tile's inner edges — then that tile reports it whole.
Objects whole in two overlapping tiles are found twice; the caller merges those duplicates
(harvest by mask IoU, detect by centre distance).  The check costs ``O(log n)`` per object
(the containing tiles are found by bisection on the grid), so a whole slide's seams are linear
in the number of objects.

Boxes are ``(x0, y0, x1, y1)`` level-0 px, half-open; tiles are ``(x, y, w, h)``.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

Tile = tuple[int, int, int, int]
Box = tuple[float, float, float, float]


def _starts(n: int, tile: int, overlap: int) -> tuple[int, ...]:
    if n <= tile:
        return (0,)
    stride = tile - overlap
    s = list(range(0, n - tile, stride))
    s.append(n - tile)
    return tuple(s)


@dataclass(frozen=True)
class TileGrid:
    """The regular tile grid of one image.

    Args:
        width: image width, level-0 px.
        height: image height, level-0 px.
        tile: tile side, px.
        overlap: minimal overlap of neighbours, px (``0 <= overlap < tile``).
    """

    width: int
    height: int
    tile: int = 1024
    overlap: int = 128
    xs: tuple[int, ...] = field(init=False)
    ys: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        if self.tile <= 0 or not 0 <= self.overlap < self.tile:
            raise ValueError(f"need tile > 0 and 0 <= overlap < tile (got tile={self.tile}, "
                             f"overlap={self.overlap})")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"image size must be positive (got {self.width}x{self.height})")
        object.__setattr__(self, "xs", _starts(self.width, self.tile, self.overlap))
        object.__setattr__(self, "ys", _starts(self.height, self.tile, self.overlap))

    @property
    def tw(self) -> int:
        """Width of every tile."""
        return min(self.tile, self.width)

    @property
    def th(self) -> int:
        """Height of every tile."""
        return min(self.tile, self.height)

    def tiles(self) -> list[Tile]:
        """Every tile, row-major."""
        return [(x, y, self.tw, self.th) for y in self.ys for x in self.xs]

    def __len__(self) -> int:
        return len(self.xs) * len(self.ys)

    def touches_inner_edge(self, box: Box, tile: Tile) -> bool:
        """Whether ``box`` reaches an edge of ``tile`` that is not an image edge."""
        x0, y0, x1, y1 = box
        tx, ty, tw, th = tile
        return bool((x0 <= tx and tx > 0) or (y0 <= ty and ty > 0)
                    or (x1 >= tx + tw and tx + tw < self.width)
                    or (y1 >= ty + th and ty + th < self.height))

    def containing(self, box: Box) -> list[Tile]:
        """Tiles that hold ``box`` whole (found by bisection, not by a scan)."""
        x0, y0, x1, y1 = box
        out = []
        for ys in _range(self.ys, y0, y1, self.th):
            for xs in _range(self.xs, x0, x1, self.tw):
                out.append((xs, ys, self.tw, self.th))
        return out

    def whole_elsewhere(self, box: Box, tile: Tile, selected: set[Tile] | None = None
                        ) -> bool:
        """Whether a tile other than ``tile`` (of ``selected``) holds ``box`` away from seams."""
        for t in self.containing(box):
            if t != tile and (selected is None or t in selected) and \
                    not self.touches_inner_edge(box, t):
                return True
        return False

    def keep(self, box: Box, tile: Tile, selected: set[Tile] | None = None) -> bool:
        """The seam rule (module docstring): keep an object ``tile`` found at ``box``?"""
        return not (self.touches_inner_edge(box, tile)
                    and self.whole_elsewhere(box, tile, selected))


def _range(starts: Sequence[int], lo: float, hi: float, size: int) -> Iterable[int]:
    """Starts ``s`` with ``s <= lo`` and ``s + size >= hi``."""
    i = bisect.bisect_left(starts, hi - size)
    j = bisect.bisect_right(starts, lo)
    return starts[i:j]
