"""ICPR 2012 adapter: real pixel masks, x/y order check, SlideRunner conversions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _source_checks import check_contract, ingest, label_counts, real

from mfcurate.geometry import decode_mask, mask_grid
from mfcurate.synth.sources import icpr2012 as fake


def test_contract(tmp_path: Path) -> None:
    check_contract(fake.generate(tmp_path / "src", seed=4), tmp_path)


def _masks_match_csv(root: Path, objects, order: str) -> None:  # type: ignore[no-untyped-def]
    for r in objects.to_pylist():
        stem = r["image_key"].split("/")[1]
        csv = next(root.glob(f"*/{stem}.csv"))
        line = csv.read_text().splitlines()[int(r["source_annotation_id"]) - 1]
        v = np.asarray([int(t) for t in line.split(",")]).reshape(-1, 2)
        xs, ys = (v[:, 0], v[:, 1]) if order == "xy" else (v[:, 1], v[:, 0])
        x0, y0, w, h = mask_grid(r["bbox_xyxy"])
        m = decode_mask(r["mask_rle"], h, w)
        want = np.zeros_like(m)
        want[ys - y0, xs - x0] = True
        assert np.array_equal(m, want)
        assert r["area_px"] == len(v)
        assert r["mask_origin"] == "source" and r["label_origin"] == "pixel"
        assert r["area_um2"] == pytest.approx(len(v) * 0.2456**2, rel=1e-3)


@pytest.mark.parametrize("order", ["xy", "yx"])
def test_pixel_order_found_from_overlays(tmp_path: Path, order: str) -> None:
    spec = fake.generate(tmp_path / "src", pixel_order=order)
    a, _, objects = ingest("icpr2012", spec.root)
    assert a.pixel_order == order and a.pixel_order_evidence.startswith("overlay")
    _masks_match_csv(spec.root, objects, order)


def test_pixel_order_from_sliderunner_centroids(tmp_path: Path) -> None:
    spec = fake.generate(tmp_path / "src", pixel_order="yx")
    for jpg in spec.root.glob("*/*.jpg"):
        jpg.unlink()
    a, _, objects = ingest("icpr2012", spec.root)
    assert (a.pixel_order, a.pixel_order_evidence) == ("yx", "sliderunner centroids")
    _masks_match_csv(spec.root, objects, "yx")


def test_forced_order_and_sqlite_mode(tmp_path: Path) -> None:
    spec = fake.generate(tmp_path / "src")
    a, _, _ = ingest("icpr2012", spec.root, pixel_order="xy")
    assert a.pixel_order_evidence == "option"
    _, images, objects = ingest("icpr2012", spec.root, annotations="sqlite")
    assert label_counts(objects) == spec.counts
    assert set(objects.column("mask_rle").to_pylist()) == {None}
    assert dict(zip(images.column("source_image_id").to_pylist(),
                    images.column("split").to_pylist(), strict=False)) == {
        "A00_00": "test", "A00_01": "train", "A01_02": "train"}


@pytest.mark.real_data
def test_real_sliderunner_conversions() -> None:
    root = real("icpr2012")
    a, images, objects = ingest("icpr2012", root)
    assert a.mode == "sqlite"
    split = dict(zip(images.column("image_key").to_pylist(),
                     images.column("split").to_pylist(), strict=False))
    per = {"train": 0, "test": 0}
    for k in objects.column("image_key").to_pylist():
        per[split[k]] += 1
    assert per == {"train": 226, "test": 101}
    assert list(split.values()).count("test") == 15 and len(split) == 50


def test_hpf_folders_one_level_down(tmp_path: Path) -> None:
    spec = fake.generate(tmp_path / "src")
    (tmp_path / "root" / "training").mkdir(parents=True)
    for d in spec.root.glob("A0*_v2"):
        d.rename(tmp_path / "root" / "training" / d.name)
    a, images, objects = ingest("icpr2012", tmp_path / "root")
    assert a.mode == "csv" and a.missing_images == []
    assert label_counts(objects) == spec.counts
    assert images.column("path").to_pylist()[0] == "training/A00_v2/A00_00.bmp"
