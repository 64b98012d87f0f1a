"""Patches cut from a real Aperio slide (CMU-1-Small-Region.svs, 0.499 µm/px); skipped if absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mfcurate.classifier.patches import PatchConfig, PatchStore, build_patch_store
from mfcurate.dataset import Dataset
from mfcurate.schemas.tables import ImageRecord, ObjectRecord, images_table, objects_table

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real"


def _slide() -> Path:
    p = (REAL / "images" / "wsi" / "CMU-1-Small-Region.svs").resolve()
    if not p.exists():
        pytest.skip(f"real data not present: {p}")
    return p


@pytest.mark.real_data
def test_patches_from_real_svs_are_resampled(tmp_path: Path) -> None:
    from mfcurate.io import open_image

    slide = _slide()
    src = open_image(slide)
    assert src.mpp_x == pytest.approx(0.499, abs=1e-3)
    centres = [(500.5, 400.5), (1200.0, 1100.0), (3.0, 5.0)]  # the last one at the corner
    key = "real/CMU-1-Small-Region.svs"
    img = ImageRecord(key, "real", slide.name, slide.name, src.width, src.height, src.mpp_x,
                      src.mpp_y, split="train", file_found=True)
    objs = [ObjectRecord(f"{key}/{i}", key, "real", str(i), "background", "centroid", c,
                         (c[0] - 5 if c[0] > 5 else 0.0, c[1] - 5 if c[1] > 5 else 0.0,
                          c[0] + 5, c[1] + 5)) for i, c in enumerate(centres)]
    ds = tmp_path / "ds"
    Dataset.open(ds, create=True).commit_source("real", images_table([img]),
                                                [objects_table(objs)], info={},
                                                root=slide.parent)
    # centroids without masks: cut with disk stand-ins (left out of training by default)
    rep = build_patch_store(ds, cfg=PatchConfig(size_px=64, mpp=0.25), include_disk=True)
    store = PatchStore(rep.out)
    order = {r["object_key"]: i for i, r in enumerate(store.index.to_pylist())}
    for i, (cx, cy) in enumerate(centres[:2]):
        rgb, mask, _ = store.get([order[f"{key}/{i}"]])
        # 64 px at 0.25 µm/px = 16 µm = ~32 px of the slide: compare with that window
        half = 8.0 / src.mpp_x
        x0, y0 = round(cx - half), round(cy - half)
        win = src.read_region(x0, y0, round(2 * half), round(2 * half)).astype(float)
        import cv2

        small = cv2.resize(rgb[0], win.shape[1::-1], interpolation=cv2.INTER_AREA).astype(float)
        assert np.abs(small.mean((0, 1)) - win.mean((0, 1))).max() < 4
        corr = np.corrcoef(small[..., 1].ravel(), win[..., 1].ravel())[0, 1]
        assert corr > 0.9
        assert mask[0].sum() > 0 and store.index.column("mask_kind")[order[f"{key}/{i}"]].as_py() \
            == "disk"
    corner, *_ = store.get([order[f"{key}/2"]])
    assert (corner[0, :10, :10] == 255).all()  # outside the slide: white glass
    src.close()
