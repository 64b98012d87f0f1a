"""Harvest on the real Aperio slide CMU-1-Small-Region (0.5 µm/px); skipped when absent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mfcurate.dataset import Dataset
from mfcurate.pipelines.harvest import HarvestConfig, harvest_dataset
from mfcurate.schemas.tables import ImageRecord, images_table, objects_table

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real"
SLIDE = REAL / "images" / "wsi" / "CMU-1-Small-Region.svs"


@pytest.mark.real_data
def test_cmu_small_region(tmp_path: Path) -> None:
    if not SLIDE.exists():
        pytest.skip(f"real data not present: {SLIDE}")
    from mfcurate.io.reader import open_image

    with open_image(SLIDE) as img:
        w, h, mpp = img.width, img.height, float(img.mpp_x or 0)
    assert 0.49 < mpp < 0.51
    images = images_table([ImageRecord(
        image_key="cmu/cmu1", source="cmu", source_image_id="cmu1", path=SLIDE.name, width=w,
        height=h, mpp_x=mpp, mpp_y=mpp, vendor="aperio", is_wsi=True, file_found=True)])
    ds = tmp_path / "ds"
    Dataset.open(ds, create=True).commit_source("cmu", images, [objects_table([])],
                                                 info={"name": "CMU-1"}, root=SLIDE.parent)
    png = tmp_path / "overlay.png"
    # 512 px tiles so that glass-only tiles exist on this small region
    rep = harvest_dataset(ds, HarvestConfig(tile=512, overlap=64, min_tissue=0.05),
                          overlay=png)
    assert rep.images == 1 and rep.tiles_on_tissue < rep.tiles_total  # glass skipped
    rows = Dataset.open(ds).objects(parts=["harvest"]).to_pylist()
    assert len(rows) > 1000
    area_px = np.array([r["area_px"] for r in rows], float)
    area_um2 = np.array([r["area_um2"] for r in rows])
    np.testing.assert_allclose(area_um2, area_px * mpp * mpp)
    # the µm² filter went through 0.5 µm/px: 2.25 µm² = 9 px, 225 µm² = 900 px
    assert area_px.min() >= 2.25 / mpp**2 and area_px.max() <= 225 / mpp**2
    assert area_um2.max() > 60  # large nuclei exist, impossible if 0.25 µm/px were assumed
    assert {r["label"] for r in rows} == {"background"}
    tiles = {tuple(json.loads(r["extra"])["tile_xywh"]) for r in rows}
    assert len(tiles) <= rep.tiles_on_tissue
    assert png.exists()
