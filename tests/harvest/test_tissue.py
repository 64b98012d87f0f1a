"""Tissue mask, tile grid and region selection."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mfcurate.errors import SourceFormatError
from mfcurate.io.reader import ArrayImage
from mfcurate.segment.tissue import (
    load_geojson_regions,
    tile_grid,
    tissue_mask,
    tissue_tiles,
)
from mfcurate.synth.render import render_tissue


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 5000), st.integers(1, 5000), st.sampled_from([256, 512, 1024]),
       st.integers(0, 200))
def test_tile_grid_covers_with_overlap(w: int, h: int, tile: int, overlap: int) -> None:
    tiles = tile_grid(w, h, tile, overlap)
    xs = sorted({t[0] for t in tiles})
    ys = sorted({t[1] for t in tiles})
    for x, y, tw, th in tiles:
        assert x >= 0 and y >= 0 and x + tw <= w and y + th <= h
        assert tw == min(tile, w) and th == min(tile, h)
    assert xs[0] == 0 and xs[-1] + min(tile, w) == w
    assert ys[0] == 0 and ys[-1] + min(tile, h) == h
    for a, b in itertools.pairwise(xs):
        assert a + tile - b >= overlap  # neighbours overlap by at least `overlap`
    for a, b in itertools.pairwise(ys):
        assert a + tile - b >= overlap


def test_tile_grid_rejects_bad_overlap() -> None:
    with pytest.raises(ValueError, match="overlap"):
        tile_grid(100, 100, 64, 64)


@pytest.fixture(scope="module")
def half_glass() -> tuple[ArrayImage, np.ndarray]:
    h, w = 512, 1536
    tissue = np.zeros((h, w), bool)
    tissue[:, :700] = True
    rgb, _ = render_tissue(np.random.default_rng(2), h, w, mpp=0.5, nuclei_per_mm2=2000,
                           tissue_mask=tissue)
    return ArrayImage(rgb, 0.5), tissue


def test_tissue_mask_finds_tissue_not_glass(half_glass: tuple[ArrayImage, np.ndarray]) -> None:
    img, truth = half_glass
    mask, scale = tissue_mask(img, max_size=512)
    assert scale == pytest.approx(3.0)
    small = truth[::3, ::3][:mask.shape[0], :mask.shape[1]]
    agree = (mask == small).mean()
    assert agree > 0.97
    assert mask[:, :200].mean() > 0.95 and mask[:, 300:].mean() < 0.02


def test_tissue_tiles_skip_glass_and_respect_regions(
        half_glass: tuple[ArrayImage, np.ndarray], tmp_path: Path) -> None:
    img, _ = half_glass
    all_tiles = tile_grid(img.width, img.height, 256, 32)
    tiles = tissue_tiles(img, tile=256, overlap=32)
    assert 0 < len(tiles) < len(all_tiles)
    assert all(x < 700 for x, _, _, _ in tiles)
    assert max(x for x, _, _, _ in tiles) >= 700 - 256  # the tissue edge is covered
    gj = tmp_path / "roi.geojson"
    gj.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {},
         "geometry": {"type": "Polygon",
                      "coordinates": [[[0, 0], [200, 0], [200, 200], [0, 200], [0, 0]]]}}]}))
    regions = load_geojson_regions(gj)
    roi_tiles = tissue_tiles(img, tile=256, overlap=32, regions=regions)
    assert roi_tiles and all(x < 200 and y < 200 for x, y, _, _ in roi_tiles)
    box_tiles = tissue_tiles(img, tile=256, overlap=32, regions=[(900, 0, 1400, 500)])
    assert box_tiles == []  # a region on glass selects nothing


def test_geojson_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.geojson"
    bad.write_text("{not json")
    with pytest.raises(SourceFormatError, match=r"bad\.geojson"):
        load_geojson_regions(bad)
    pts = tmp_path / "points.geojson"
    pts.write_text(json.dumps({"type": "Feature", "geometry": {"type": "Point",
                                                              "coordinates": [1, 2]}}))
    with pytest.raises(SourceFormatError, match="no Polygon"):
        load_geojson_regions(pts)
