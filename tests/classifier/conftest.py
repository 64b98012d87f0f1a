"""Fixtures of the classifier tests: a synthetic dataset and a dark-blob segmenter double."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mfcurate.segment import Instance


class DarkBlobSegmenter:
    """Test double of an AutoSegmenter: connected components of dark pixels.

    Nuclei, look-alikes and mitotic figures of ``render_tissue`` are all darker than the
    eosin background, so every planted object becomes a candidate and the classifier has to
    tell them apart.
    """

    name = "dark-blobs"

    def __init__(self, gray_threshold: float = 170.0, min_area_um2: float = 4.0) -> None:
        self.gray_threshold = gray_threshold
        self.min_area_um2 = min_area_um2

    def segment_tile(self, tile: np.ndarray, mpp: float) -> list[Instance]:
        import cv2
        from scipy import ndimage as ndi

        gray = cv2.GaussianBlur(tile.astype(np.float32).mean(axis=2), (0, 0), 0.7)
        fg = gray < self.gray_threshold
        labels, _n = ndi.label(fg)
        out = []
        min_px = self.min_area_um2 / (mpp * mpp)
        for i, sl in enumerate(ndi.find_objects(labels), start=1):
            if sl is None:
                continue
            m = labels[sl] == i
            if m.sum() < min_px:
                continue
            out.append(Instance(mask=m, offset_xy=(sl[1].start, sl[0].start), score=1.0,
                                origin="classical"))
        return out


@pytest.fixture
def dark_blobs() -> DarkBlobSegmenter:
    return DarkBlobSegmenter()


@pytest.fixture(scope="session")
def synth_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 train + 1 val + 2 test synthetic images (0.5 µm/px, 384 px), 10 MFs each."""
    from mfcurate.synth.classifier_data import SyntheticSplit, build_classifier_dataset

    root = tmp_path_factory.mktemp("cls-synth")
    return build_classifier_dataset(root, splits=SyntheticSplit(train=6, val=1, test=2),
                                    n_mitotic=10, n_mitotic_like=8, seed=3)
