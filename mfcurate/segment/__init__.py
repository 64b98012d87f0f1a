"""Nucleus segmentation backends shared by refine-masks, harvest, register-phh3 and detect.

Two kinds of segmenter, each with a SAM backend and a classical default:

* a **box segmenter** turns prompt boxes inside an image window into one mask per box
  (:class:`BoxSegmenter`, used by ``refine-masks`` and ``register-phh3``);
* an **automatic segmenter** finds every cell-scale object in a tile
  (:class:`AutoSegmenter`, used by ``harvest`` and ``detect``).

Arrays are ``(rows, cols, 3)`` uint8 RGB windows; boxes are ``(N, 4)`` float ``xyxy`` in the
window's pixel frame; ``mpp`` is the window's µm per pixel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt


@dataclass
class Instance:
    """One segmented object.

    Attributes:
        mask: ``(rows, cols)`` bool mask, tight or not, whose pixel ``[0, 0]`` lies at
            ``offset_xy`` in the frame of the window it was segmented in.
        offset_xy: ``(x, y)`` of the mask's top-left pixel in that frame.
        score: quality score in [0, 1] (SAM predicted IoU, or the classical score).
        stability: SAM stability score, or None.
        origin: mask origin value (``sam_box``, ``sam_auto``, ``classical``...).
        flags: QA flags raised while segmenting.
    """

    mask: npt.NDArray[np.bool_]
    offset_xy: tuple[int, int]
    score: float
    stability: float | None = None
    origin: str = "classical"
    flags: list[str] = field(default_factory=list)


class BoxSegmenter(Protocol):
    """Segment the nucleus inside each prompt box of one window."""

    name: str

    def segment_boxes(self, window: npt.NDArray[np.uint8], boxes_xyxy: npt.NDArray[np.float64],
                      mpp: float) -> list[Instance | None]:
        """One instance (or None when nothing was found) per box, in the boxes' order."""
        ...


class AutoSegmenter(Protocol):
    """Segment every cell-scale object of a tile."""

    name: str

    def segment_tile(self, tile: npt.NDArray[np.uint8], mpp: float) -> list[Instance]:
        """All instances found in the tile (masks in the tile's frame)."""
        ...
