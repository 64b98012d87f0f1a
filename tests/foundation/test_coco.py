"""COCO export: pycocotools loads it, counts/areas/boxes agree with the dataset."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest
from pycocotools.coco import COCO

from mfcurate.dataset import Dataset
from mfcurate.export.coco import export_coco
from mfcurate.pipelines.ingest import ingest_source
from mfcurate.schemas import COCO_CATEGORY_IDS, Label
from mfcurate.synth.sources import generators
from tests.conftest import real_path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    base = tmp_path_factory.mktemp("coco")
    g = generators()
    for key in ("midog++", "folder"):
        spec = g[key](base / key.replace("+", "p"))
        ingest_source(key, spec.root, base / "ds")
    return Dataset.open(base / "ds")


def test_round_trip_through_pycocotools(dataset: Dataset, tmp_path: Path) -> None:
    report = export_coco(dataset, tmp_path)
    objects = dataset.objects()
    images = {r["image_key"]: r for r in dataset.images().to_pylist()}
    seen = 0
    for path in report.files:
        coco = COCO(path)
        split = Path(path).stem
        for lab, cid in COCO_CATEGORY_IDS.items():
            want = sum(1 for r in objects.to_pylist()
                       if r["label"] == lab.value and images[r["image_key"]]["split"] == split)
            assert len(coco.getAnnIds(catIds=[cid])) == want
        for ann in coco.loadAnns(coco.getAnnIds()):
            seen += 1
            key = ann["mfcurate"]["object_key"]
            row = objects.filter(pc.equal(objects["object_key"], key)).to_pylist()[0]
            x0, y0, x1, y1 = row["bbox_xyxy"]
            np.testing.assert_allclose(ann["bbox"], [x0, y0, x1 - x0, y1 - y0])
            if row["mask_rle"]:
                m = coco.annToMask(ann)
                assert m.sum() == row["area_px"] == ann["area"]
                ys, xs = np.nonzero(m)
                assert xs.min() >= x0 and xs.max() < x1 and ys.min() >= y0 and ys.max() < y1
    assert seen == objects.num_rows


def test_filters_and_by_source(dataset: Dataset, tmp_path: Path) -> None:
    report = export_coco(dataset, tmp_path, by_source=True,
                         labels=["mitotic_figure"])
    names = sorted(Path(p).name for p in report.files)
    assert names == ["folder.json", "midog__.json"] or names == ["folder.json", "midog_.json"]
    for path in report.files:
        data = json.loads(Path(path).read_text())
        assert {a["category_id"] for a in data["annotations"]} <= {
            COCO_CATEGORY_IDS[Label.MITOTIC_FIGURE]}


def test_real_midog_boxes_come_out_as_50px_xywh(tmp_path: Path) -> None:
    root = real_path("midogpp")
    ingest_source("midog++", root, tmp_path / "ds")
    report = export_coco(Dataset.open(tmp_path / "ds"), tmp_path / "out",
                         splits=["test"])
    data = json.loads(Path(next(iter(report.files))).read_text())
    sizes = [(a["bbox"][2], a["bbox"][3]) for a in data["annotations"]]
    assert len(sizes) == 2467 + 2916
    assert sum(s == (50.0, 50.0) for s in sizes) > 0.98 * len(sizes)


def test_export_memory_is_bounded_by_batches(dataset: Dataset, tmp_path: Path) -> None:
    tracemalloc.start()
    export_coco(dataset, tmp_path, batch_size=4)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 50 * 2**20
