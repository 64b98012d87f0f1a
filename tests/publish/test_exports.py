from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from mfcurate.dataset import Dataset
from mfcurate.errors import UsageError
from mfcurate.export.crops import export_crops
from mfcurate.export.dispatch import run_export
from mfcurate.export.geojson_export import export_geojson
from mfcurate.export.parquet_export import export_parquet
from mfcurate.geometry import decode_mask, mask_grid
from mfcurate.io.geojson import read_features
from mfcurate.io.reader import open_image
from mfcurate.schemas import SCHEMA_VERSION

REPO = Path(__file__).resolve().parents[2]


def test_parquet_export_round_trip(dataset: Path, tmp_path: Path) -> None:
    ds = Dataset.open(dataset)
    s = export_parquet(ds, tmp_path, include_rejected=True)
    objs = pq.read_table(tmp_path / "objects.parquet")
    assert objs.num_rows == ds.count_objects() == s["files"]["objects.parquet"]["rows"]
    assert objs.schema.metadata[b"mfcurate.schema_version"] == SCHEMA_VERSION.encode()
    assert sorted(objs.column("object_key").to_pylist()) == \
        sorted(ds.objects(columns=["object_key"]).column("object_key").to_pylist())
    assert pq.read_table(tmp_path / "images.parquet").num_rows == ds.images().num_rows
    meta = json.loads((tmp_path / "export.json").read_text())
    assert meta["files"]["objects.parquet"]["rows"] == objs.num_rows
    # filters
    export_parquet(ds, tmp_path / "f", labels=["mitotic_figure"], sources=["lizard"],
                   splits=["train"])
    f = pq.read_table(tmp_path / "f" / "objects.parquet").to_pylist()
    assert f and all(r["label"] == "mitotic_figure" and r["source"] == "lizard"
                     and r["qa_state"] != "rejected" for r in f)
    imgs = pq.read_table(tmp_path / "f" / "images.parquet").to_pylist()
    assert {r["split"] for r in imgs} == {"train"}
    q = export_parquet(ds, tmp_path / "q", qa_states=["rejected"])
    assert q["files"]["objects.parquet"]["rows"] > 0
    with pytest.raises(UsageError, match="labels: unknown value"):
        export_parquet(ds, tmp_path / "x", labels=["mitosis"])
    with pytest.raises(UsageError, match="not in"):
        export_parquet(ds, tmp_path / "x", sources=["tupac16"])
    with pytest.raises(UsageError, match="unknown selection option"):
        export_parquet(ds, tmp_path / "x", colour="red")


def test_geojson_export_reads_back(dataset: Path, tmp_path: Path) -> None:
    ds = Dataset.open(dataset)
    s = export_geojson(ds, tmp_path)
    index = json.loads((tmp_path / "geojson" / "index.json").read_text())["images"]
    assert len(index) == s["files"] == ds.images().num_rows
    objs = {r["object_key"]: r for r in ds.objects().to_pylist() if r["qa_state"] != "rejected"}
    seen = 0
    for info in index.values():
        feats = read_features(tmp_path / "geojson" / info["file"])
        assert len(feats) == info["objects"]
        for f in feats:
            o = objs[str(f.name)]
            assert f.properties["mfcurate"]["label"] == o["label"]
            assert f.kind == "polygon"  # every synthetic object has a mask
            x0, y0, x1, y1 = o["bbox_xyxy"]
            assert (f.coords[:, 0] >= x0).all() and (f.coords[:, 0] <= x1).all()
            assert (f.coords[:, 1] >= y0).all() and (f.coords[:, 1] <= y1).all()
            seen += 1
    assert seen == s["features"] == len(objs)


def test_crops_match_image_and_mask(dataset: Path, tmp_path: Path) -> None:
    ds = Dataset.open(dataset)
    s = export_crops(ds, tmp_path, size_px=64, labels=["mitotic_figure", "mitotic_like"])
    index = pq.read_table(tmp_path / "crops" / "index.parquet").to_pylist()
    assert s["crops"] == len(index) == s["masks"] > 0
    objs = {r["object_key"]: r for r in ds.objects().to_pylist()}
    images = {r["image_key"]: r for r in ds.images().to_pylist()}
    for row in index[:6]:
        o = objs[row["object_key"]]
        rgb = np.asarray(Image.open(tmp_path / "crops" / row["file"]))
        assert rgb.shape == (64, 64, 3)
        with open_image(ds.image_path(images[o["image_key"]])) as img:
            ref = img.read_region(row["x0"], row["y0"], 64, 64)
        assert np.array_equal(rgb, ref)
        mask = np.asarray(Image.open(tmp_path / "crops" / row["mask_file"])) > 0
        gx, _gy, w, h = mask_grid(o["bbox_xyxy"])
        m = decode_mask(o["mask_rle"], h, w)
        assert mask.sum() == m.sum() == o["area_px"]  # 64 px holds these nuclei whole
        _ys, xs = np.nonzero(mask)
        assert xs.min() + row["x0"] == gx + np.nonzero(m)[1].min()
    # rerun resumes (no new task outputs), result identical
    again = export_crops(ds, tmp_path, size_px=64, labels=["mitotic_figure", "mitotic_like"])
    assert again["crops"] == s["crops"]


def test_crops_skip_missing_images(dataset: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "src"
    ds = Dataset.open(dataset)
    root = ds.source_root("lizard")
    shutil.copytree(root, copy)
    missing = root / "img000.png"
    moved = tmp_path / "moved.png"
    shutil.move(missing, moved)
    try:
        s = export_crops(ds, tmp_path / "out", size_px=32, sources=["lizard"])
    finally:
        shutil.move(moved, missing)
    assert s["skipped_images"] == ["lizard/0"] and s["crops"] > 0


def test_dispatch_and_cli(dataset: Path, tmp_path: Path) -> None:
    out = run_export(dataset, "geojson", tmp_path / "a", with_crops=True, crop_size=32,
                     labels=["mitotic_figure"], sources=None)
    assert set(out) == {"geojson", "crops"}
    with pytest.raises(UsageError, match="choose coco"):
        run_export(dataset, "shapefile", tmp_path / "b")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-m", "mfcurate", "export", str(dataset), "--format",
                        "parquet", "--with-crops", "--crop-size", "48", "--label",
                        "mitotic_like", "--out", str(tmp_path / "c")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "c" / "objects.parquet").exists()
    assert (tmp_path / "c" / "crops" / "index.parquet").exists()
    p = subprocess.run([sys.executable, "-m", "mfcurate", "export", str(dataset), "--format",
                        "kml", "--out", str(tmp_path / "d")],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 2 and "unknown --format 'kml'" in p.stderr
