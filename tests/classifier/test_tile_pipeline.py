"""The overlapped detection pipeline: same candidates as the sequential one, seam rule of the
one tile grid, bounded read-ahead, failures counted or raised (never a hang)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from mfcurate.classifier.patches import PatchConfig
from mfcurate.classifier.tile_pipeline import detect_tiles
from mfcurate.io.reader import ArrayImage
from mfcurate.synth.render import render_tissue
from mfcurate.tiling import TileGrid

PATCH = PatchConfig(size_px=32, mpp=0.5, disk_radius_um=4.0)


def _predict(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A deterministic stand-in for the ensemble: mean darkness under the mask."""
    m = mask.astype(np.float64)
    dark = 1.0 - rgb.astype(np.float64).mean(axis=3) / 255.0
    return (dark * m).sum(axis=(1, 2)) / np.maximum(m.sum(axis=(1, 2)), 1.0)


@pytest.fixture(scope="module")
def image() -> ArrayImage:
    rgb, _ = render_tissue(np.random.default_rng(5), 600, 700, mpp=0.5, n_mitotic=6,
                           n_mitotic_like=6, nuclei_per_mm2=3000)
    return ArrayImage(rgb, 0.5)


def _key(cands: list) -> list[tuple[float, float, float]]:
    return sorted((round(c.x, 3), round(c.y, 3), round(c.score, 6)) for c in cands)


def test_overlapped_equals_sequential_and_one_tile(image: ArrayImage, dark_blobs: object
                                                   ) -> None:
    from mfcurate.classifier.detect import _dedup

    mpp = (0.5, 0.5)
    grid = TileGrid(image.width, image.height, 256, 64)
    seq, _ = detect_tiles(image, dark_blobs, _predict, PATCH, mpp, grid, grid.tiles(),
                              batch_size=7, prefetch=0)  # type: ignore[arg-type]
    par, t_par = detect_tiles(image, dark_blobs, _predict, PATCH, mpp, grid, grid.tiles(),
                              batch_size=7, prefetch=2)  # type: ignore[arg-type]
    assert len(seq) > 20 and _key(seq) == _key(par)
    assert t_par.tiles == len(grid) and t_par.read > 0 and t_par.segment > 0
    assert t_par.classify > 0 and t_par.tiles_failed == 0
    # the seam rule plus de-duplication gives the objects of one whole-image tile
    whole = TileGrid(image.width, image.height, 1024, 0)
    one, _ = detect_tiles(image, dark_blobs, _predict, PATCH, mpp, whole, whole.tiles(),
                          prefetch=2)  # type: ignore[arg-type]
    a, b = np.array(_key(_dedup(par, 3.0 / 0.5))), np.array(_key(one))
    assert a.shape == b.shape
    # the double's blur differs within a pixel of a tile edge: centres agree to < 0.5 px
    np.testing.assert_allclose(a[:, :2], b[:, :2], atol=0.5)


class _Slide(ArrayImage):
    """Counts reads; can fail on one tile; lets the test see how far the reader ran ahead."""

    def __init__(self, array: np.ndarray, fail_at: int | None = None) -> None:
        super().__init__(array, 0.5)
        self.reads = 0
        self.fail_at = fail_at
        self.lock = threading.Lock()

    def read_region(self, x: int, y: int, w: int, h: int, level: int = 0) -> np.ndarray:
        with self.lock:
            self.reads += 1
            n = self.reads
        if n == self.fail_at:
            raise OSError("corrupt tile")
        return super().read_region(x, y, w, h, level)


class _Watch:
    """A segmenter double recording how many tiles had been read when each one is segmented."""

    name = "watch"

    def __init__(self, slide: _Slide, inner: object) -> None:
        self.slide, self.inner, self.ahead, self.seen = slide, inner, [], 0

    def segment_tile(self, tile: np.ndarray, mpp: float) -> list:
        self.seen += 1
        threading.Event().wait(0.01)  # give the reader time to run ahead if it could
        self.ahead.append(self.slide.reads - self.seen)
        return self.inner.segment_tile(tile, mpp)  # type: ignore[attr-defined]


def test_read_ahead_is_bounded_and_bad_tiles_are_counted(image: ArrayImage,
                                                         dark_blobs: object) -> None:
    grid = TileGrid(image.width, image.height, 128, 32)
    slide = _Slide(image.array, fail_at=3)
    watch = _Watch(slide, dark_blobs)
    cands, times = detect_tiles(slide, watch, _predict, PATCH, (0.5, 0.5), grid, grid.tiles(),
                                prefetch=2)  # type: ignore[arg-type]
    assert times.tiles_failed == 1 and watch.seen == len(grid) - 1 and cands
    # queue of 2, one tile in the reader's hands, one failed read counted in ``reads``
    assert max(watch.ahead) <= 2 + 1 + 1


def test_classifier_and_segmenter_errors_are_raised(image: ArrayImage,
                                                    dark_blobs: object) -> None:
    grid = TileGrid(image.width, image.height, 128, 32)

    def bad_predict(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
        raise RuntimeError("model broke")

    with pytest.raises(RuntimeError, match="model broke"):
        detect_tiles(image, dark_blobs, bad_predict, PATCH, (0.5, 0.5), grid, grid.tiles(),
                     batch_size=4, prefetch=2)  # type: ignore[arg-type]

    class Bad:
        name = "bad"

        def segment_tile(self, tile: np.ndarray, mpp: float) -> list:
            raise ValueError("segmenter broke")

    with pytest.raises(ValueError, match="segmenter broke"):
        detect_tiles(image, Bad(), _predict, PATCH, (0.5, 0.5), grid, grid.tiles(),
                     prefetch=2)
    assert threading.active_count() < 10  # the reader and classifier threads ended
