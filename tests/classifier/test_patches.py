"""Patch store: resampling, mask placement, disk fallback, rejected objects, resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mfcurate.classifier.patches import PatchConfig, PatchStore, build_patch_store, resample_patch
from mfcurate.dataset import Dataset
from mfcurate.geometry import disk_mask, mask_to_record
from mfcurate.io.reader import ArrayImage
from mfcurate.schemas.tables import ImageRecord, ObjectRecord, images_table, objects_table
from mfcurate.synth.images import write_png


def _disk_image(size: int, center: tuple[float, float], r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    img = np.full((size, size, 3), 230, np.uint8)
    img[(xx + 0.5 - center[0]) ** 2 + (yy + 0.5 - center[1]) ** 2 <= r * r] = (60, 30, 120)
    return img


def test_resample_is_centred_and_scale_aware() -> None:
    cfg = PatchConfig(size_px=32, mpp=0.25)
    # the same 4 µm-radius disk imaged at 0.25 and at 0.5 µm/px
    for mpp, r_px in ((0.25, 16.0), (0.5, 8.0)):
        c = (101.3, 87.6)
        img = ArrayImage(_disk_image(200, c, r_px), mpp)
        box, m = disk_mask(c, r_px)
        rec = mask_to_record(m, (int(box[0]), int(box[1])))
        assert rec is not None
        centroid = rec[3]  # the rasterised disk's own centre, as objects store it
        rgb, mask = resample_patch(img.read_region, centroid, (mpp, mpp), cfg, m,
                                   (int(box[0]), int(box[1])))
        assert rgb.shape == (32, 32, 3) and mask.shape == (32, 32)
        area = mask.sum()
        assert abs(area - np.pi * 16**2) / (np.pi * 16**2) < 0.08  # 16 target px radius
        ys, xs = np.nonzero(mask)
        # within half a target pixel (sub-pixel centres are rounded by the 0.5 threshold)
        assert abs(xs.mean() + 0.5 - 16) < 0.5 and abs(ys.mean() + 0.5 - 16) < 0.5
        dark = rgb[..., 0] < 150
        assert (dark == mask.astype(bool)).mean() > 0.95  # mask sits on the dark object


def test_resample_at_image_border_pads_white() -> None:
    cfg = PatchConfig(size_px=16, mpp=0.5)
    img = ArrayImage(np.zeros((40, 40, 3), np.uint8), 0.5)
    rgb, mask = resample_patch(img.read_region, (2.0, 2.0), (0.5, 0.5), cfg)
    assert rgb[0, 0].tolist() == [255, 255, 255] and rgb[15, 15].tolist() == [0, 0, 0]
    assert mask.sum() > 0  # the disk fallback


def _dataset(tmp: Path) -> Path:
    rng = np.random.default_rng(0)
    img_dir = tmp / "imgs"
    images, objects = [], []
    for i in range(2):
        name = f"a{i}.png"
        write_png(img_dir / name, rng.integers(0, 255, (120, 120, 3), dtype=np.uint8), 0.5)
        key = f"s/{name}"
        images.append(ImageRecord(key, "s", name, name, 120, 120, 0.5, 0.5, tumour_type="t",
                                  split="train" if i == 0 else "test", file_found=True))
        box, m = disk_mask((60.0, 60.0), 6)
        b, rle, area, c = mask_to_record(m, (int(box[0]), int(box[1])))  # type: ignore[misc]
        objects.append(ObjectRecord(f"{key}/mf", key, "s", "mf", "mitotic_figure", "pixel", c,
                                    b, mask_rle=rle, mask_origin="source", area_px=area))
        objects.append(ObjectRecord(f"{key}/pt", key, "s", "pt", "mitotic_like", "centroid",
                                    (30.0, 30.0), (24.0, 24.0, 36.0, 36.0)))
        objects.append(ObjectRecord(f"{key}/rej", key, "s", "rej", "mitotic_figure", "centroid",
                                    (90.0, 90.0), (84.0, 84.0, 96.0, 96.0), qa_state="rejected"))
        # a negative with a real mask centred inside the figure's box: never a negative patch
        fb, fm = disk_mask((63.0, 63.0), 2)
        f = mask_to_record(fm, (int(fb[0]), int(fb[1])))
        assert f is not None
        objects.append(ObjectRecord(f"{key}/frag", key, "s", "frag", "other_cell", "centroid",
                                    f[3], f[0], mask_rle=f[1], mask_origin="classical",
                                    area_px=f[2]))
        # a negative with a real mask well outside it: a valid negative
        nb, nm = disk_mask((100.0, 30.0), 6)
        g = mask_to_record(nm, (int(nb[0]), int(nb[1])))
        assert g is not None
        objects.append(ObjectRecord(f"{key}/nb", key, "s", "nb", "tumour_cell", "centroid",
                                    g[3], g[0], mask_rle=g[1], mask_origin="classical",
                                    area_px=g[2]))
    ds = tmp / "ds"
    Dataset.open(ds, create=True).commit_source("s", images_table(images),
                                                [objects_table(objects)], info={}, root=img_dir)
    return ds


def test_build_store_labels_flags_and_resume(tmp_path: Path) -> None:
    ds = _dataset(tmp_path)
    cfg = PatchConfig(size_px=24, mpp=0.5, disk_radius_um=3.0)
    # default: disk stand-ins and negatives inside a figure's box are left out, and counted
    rep = build_patch_store(ds, cfg=cfg, out=tmp_path / "clean")
    assert (rep.n_patches, rep.n_positive, rep.n_disk, rep.n_rejected_skipped) == (4, 2, 0, 2)
    assert (rep.n_disk_skipped, rep.n_in_figure_box_skipped) == (2, 2)
    assert rep.skipped_by_label == {"disk": {"mitotic_like": 2},
                                    "in_figure_box": {"other_cell": 2}}
    meta = PatchStore(rep.out).meta
    assert meta["disk_skipped_by_label"] == {"mitotic_like": 2}
    assert meta["in_figure_box_skipped_by_label"] == {"other_cell": 2}
    assert meta["patches_by_label"] == {"mitotic_figure": 2, "tumour_cell": 2}
    assert meta["disk_by_label"] == {}
    assert "2 without a real mask (mitotic_like 2)" in rep.summary()
    # include_disk: the stand-ins come back with a disk mask, flagged in the index
    rep = build_patch_store(ds, cfg=cfg, shard_size=3, include_disk=True)
    assert (rep.n_patches, rep.n_positive, rep.n_disk, rep.n_rejected_skipped) == (6, 2, 2, 2)
    assert rep.n_in_figure_box_skipped == 2  # never, whatever the mask
    store = PatchStore(rep.out)
    idx = store.index.to_pylist()
    assert {r["object_key"] for r in idx} == {f"s/a{i}.png/{k}" for i in (0, 1)
                                              for k in ("mf", "pt", "nb")}
    by_key = {r["object_key"]: i for i, r in enumerate(idx)}
    _rgb, mask, target = store.get([by_key["s/a1.png/pt"], by_key["s/a0.png/mf"]])
    assert target.tolist() == [0, 1]
    assert idx[by_key["s/a1.png/pt"]]["mask_kind"] == "disk"
    assert mask[0].sum() == pytest.approx(np.pi * 36, rel=0.15)  # r = 3 µm = 6 px
    assert {r["image_split"] for r in idx} == {"train", "test"}
    assert len(list((rep.out / store.meta["data"]).glob("rgb-*.npy"))) == 2  # 6 rows, 3/shard
    # the crop equals the image pixels around the centre (same mpp: no resampling)
    from PIL import Image

    src = np.asarray(Image.open(tmp_path / "imgs" / "a0.png"))
    full, *_ = store.get([by_key["s/a0.png/mf"]])
    c = 60.0  # centroid of the disk
    np.testing.assert_array_equal(full[0], src[int(c) - 12:int(c) + 12, int(c) - 12:int(c) + 12])
    # resume: a rerun reuses every per-image result
    tasks = sorted((rep.out / ".tasks").glob("*.parquet"))
    mtimes = [p.stat().st_mtime_ns for p in tasks]
    rep2 = build_patch_store(ds, cfg=cfg, include_disk=True)
    assert [p.stat().st_mtime_ns for p in tasks] == mtimes
    assert rep2.n_patches == 6
    assert len(list(rep.out.glob("data-*"))) == 1  # the old data folder is gone


def test_missing_mpp_is_an_error(tmp_path: Path) -> None:
    from mfcurate.errors import DatasetError

    ds = _dataset(tmp_path)
    d = Dataset.open(ds)
    imgs = d.images().to_pylist()
    for im in imgs:
        im["mpp_x"] = im["mpp_y"] = None
    objs = d.objects()
    d.commit_source("s", images_table([ImageRecord(**im) for im in imgs]), [objs], info={},
                    root=tmp_path / "imgs")
    with pytest.raises(DatasetError, match="no µm/px"):
        build_patch_store(ds)
    assert build_patch_store(ds, default_mpp=0.5, cfg=PatchConfig(size_px=16)).n_patches == 4
