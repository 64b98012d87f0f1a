"""detect joins the masses of one multi-part figure into one detection (after classification)."""

from __future__ import annotations

import numpy as np
import pytest

from mfcurate.classifier.detect import DetectConfig, classify_image, join_figure_parts
from mfcurate.classifier.patches import PatchConfig
from mfcurate.classifier.tile_pipeline import Candidate
from mfcurate.geometry import count_parts, decode_mask, encode_mask
from mfcurate.io.reader import ArrayImage
from mfcurate.segment import Instance
from mfcurate.tiling import TileGrid

MPP = 0.5


def _ellipse(cx: float, cy: float, a: float, b: float, shape: tuple[int, int]
             ) -> np.ndarray:
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    return ((xx + 0.5 - cx) / a) ** 2 + ((yy + 0.5 - cy) / b) ** 2 <= 1.0


class _Fixed:
    """Segmenter double: the given level-0 masks (one whole-image tile)."""

    name = "fixed"

    def __init__(self, masks: list[np.ndarray]) -> None:
        self.masks = masks

    def segment_tile(self, tile: np.ndarray, mpp: float) -> list[Instance]:
        out = []
        for m in self.masks:
            rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
            out.append(Instance(m[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1],
                                (int(cols[0]), int(rows[0])), 1.0))
        return out


class _Darkness:
    """Ensemble double: P(MF) = darkness under the mask (dark masses are figures)."""

    patch = PatchConfig(size_px=32, mpp=MPP)

    def predict_members(self, rgb: np.ndarray, mask: np.ndarray, bs: int) -> np.ndarray:
        m = mask.astype(np.float64)
        dark = 1.0 - rgb.astype(np.float64).mean(axis=3) / 255.0
        return ((dark * m).sum(axis=(1, 2)) / np.maximum(m.sum(axis=(1, 2)), 1.0))[None]


def _scene() -> tuple[ArrayImage, list[np.ndarray]]:
    """Two anaphase bands 4 µm apart (dark), two dark 8 µm nuclei 2 µm apart, a pale
    nucleus 3 µm from a band (0.5 µm/px)."""
    shape = (160, 240)
    rgb = np.full((*shape, 3), 235, np.uint8)
    masks = [_ellipse(60, 60, 10, 3, shape), _ellipse(60, 60 + 6 + 8, 10, 3, shape),
             _ellipse(150, 60, 16, 16, shape), _ellipse(150 + 32 + 4, 60, 16, 16, shape),
             _ellipse(60 + 10 + 6 + 10, 60, 10, 10, shape)]
    for k, m in enumerate(masks):
        rgb[m] = 200 if k == 4 else 30
    return ArrayImage(rgb, MPP), masks


def test_two_mass_figure_gives_one_detection_two_nuclei_stay_two() -> None:
    img, masks = _scene()
    grid = TileGrid(img.width, img.height, 1024, 0)
    cfg = DetectConfig(all_tiles=True, tile=1024, overlap=0, prefetch=0)
    cands, times = classify_image(img, _Fixed(masks), _Darkness(), cfg, (MPP, MPP), grid,
                                  grid.tiles())  # type: ignore[arg-type]
    pos = [c for c in cands if c.score > cfg.threshold]
    assert len(pos) == 3 and times.figures_joined == 1
    fig = next(c for c in pos if c.n_parts > 1)
    assert fig.n_parts == 2
    assert fig.x == pytest.approx(60, abs=1) and fig.y == pytest.approx(67, abs=1)
    _x0, _y0, w, h = fig.mask_grid
    assert count_parts(decode_mask(fig.mask_rle, h, w)) == 2
    # the two dark neighbouring nuclei (50 µm² each) stay two; the pale one stays separate
    assert sorted(round(c.x) for c in pos if c.n_parts == 1) == [150, 186]
    assert len(cands) == 4
    # joining off: one detection per mass (one TP + one FP under MIDOG scoring)
    cfg_off = DetectConfig(all_tiles=True, tile=1024, overlap=0, prefetch=0, part_gap_um=-1)
    off, _ = classify_image(img, _Fixed(masks), _Darkness(), cfg_off, (MPP, MPP), grid,
                            grid.tiles())  # type: ignore[arg-type]
    assert sum(c.score > 0.5 for c in off) == 4


def test_negatives_are_never_joined() -> None:
    a = np.ones((6, 6), bool)

    def cand(x0: int, score: float) -> Candidate:
        return Candidate(x0 + 3.0, 3.0, 36, 1.0, "classical", score, (score,),
                         encode_mask(a), (x0, 0, 6, 6))

    # two figures 12 µm apart, a negative 4.5 µm from each: it never bridges them
    cs = [cand(0, 0.9), cand(15, 0.2), cand(30, 0.9)]
    out = join_figure_parts(cs, 0.5, (MPP, MPP))
    assert [c.n_parts for c in out] == [1, 1, 1]
    # the same with a positive in the middle: one three-part figure
    cs[1] = cand(15, 0.8)
    out = join_figure_parts(cs, 0.5, (MPP, MPP))
    assert len(out) == 1 and out[0].n_parts == 3 and out[0].score == 0.9
