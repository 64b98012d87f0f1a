"""Dataset store: adding sources, replacing a source, atomic failures, checksums."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.compute as pc
import pytest

from mfcurate.dataset import Dataset
from mfcurate.errors import DatasetError, MfcurateError
from mfcurate.pipelines.ingest import ingest_source
from mfcurate.synth.sources import generators


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("src")
    g = generators()
    return {"midog++": g["midog++"](base / "midogpp"), "folder": g["folder"](base / "folder")}


def _snapshot(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def test_second_source_leaves_the_first_untouched(tmp_path: Path, sources: dict) -> None:
    ds_path = tmp_path / "ds"
    ingest_source("midog++", sources["midog++"].root, ds_path)
    first = Dataset.open(ds_path)
    part = first.part_path("midog++", "ingest")
    images = first.root / first.source_info("midog++")["images"]
    images_before = images.read_bytes()
    before = part.read_bytes()
    ingest_source("folder", sources["folder"].root, ds_path)
    ds = Dataset.open(ds_path)
    assert ds.sources == ["folder", "midog++"]
    assert ds.part_path("midog++", "ingest") == part and part.read_bytes() == before
    assert images.read_bytes() == images_before  # another source's commit rewrites nothing
    assert ds.images().num_rows == sources["midog++"].n_images + sources["folder"].n_images
    assert ds.verify() == []


def test_reingest_replaces_exactly_its_rows(tmp_path: Path, sources: dict) -> None:
    ds_path = tmp_path / "ds"
    ingest_source("midog++", sources["midog++"].root, ds_path)
    ingest_source("folder", sources["folder"].root, ds_path)
    n_before = Dataset.open(ds_path).count_objects()
    ingest_source("midog++", sources["midog++"].root, ds_path)
    ds = Dataset.open(ds_path)
    assert ds.count_objects() == n_before
    objects = ds.objects()
    assert pc.count_distinct(objects["object_key"]).as_py() == objects.num_rows
    files = list((ds_path / "objects").rglob("*.parquet"))
    assert len(files) == 2  # the old midog++ part was removed
    images = list((ds_path / "images").rglob("*.parquet"))
    assert len(images) == 2
    assert set(json.loads((ds_path / "manifest.json").read_text())["files"]) == \
        {f.relative_to(ds_path).as_posix() for f in files + images}


def test_failing_ingest_leaves_the_dataset_as_it_was(tmp_path: Path, sources: dict) -> None:
    ds_path = tmp_path / "ds"
    ingest_source("midog++", sources["midog++"].root, ds_path)
    before = _snapshot(ds_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "MIDOG++.json").write_text('{"images": [], "annotations": [')
    (bad / "datasets_xvalidation.csv").write_text("Slide;Dataset;Tumor;Scanner;Origin;Species\n")
    with pytest.raises(MfcurateError, match="MIDOG"):
        ingest_source("midog++", bad, ds_path)
    assert _snapshot(ds_path) == before


def test_killed_write_is_invisible(tmp_path: Path, sources: dict, monkeypatch) -> None:
    ds_path = tmp_path / "ds"
    ingest_source("midog++", sources["midog++"].root, ds_path)
    before = _snapshot(ds_path)
    import mfcurate.dataset.commit as dsmod

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(dsmod, "atomic_write_json", boom)
    with pytest.raises(KeyboardInterrupt):
        ingest_source("folder", sources["folder"].root, ds_path)
    monkeypatch.undo()
    ds = Dataset.open(ds_path)
    assert ds.sources == ["midog++"]
    assert ds.objects().num_rows == sum(sources["midog++"].counts.values())
    assert _snapshot(ds_path)["manifest.json"] == before["manifest.json"]


def test_open_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        Dataset.open(tmp_path / "nope")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file.txt").write_text("hi")
    with pytest.raises(DatasetError, match="not an mfcurate dataset"):
        Dataset.open(tmp_path / "x")
    with pytest.raises(DatasetError, match="not an mfcurate dataset"):
        Dataset.open(tmp_path / "x", create=True)


def test_verify_detects_a_changed_file(tmp_path: Path, sources: dict) -> None:
    ds_path = tmp_path / "ds"
    ingest_source("midog++", sources["midog++"].root, ds_path)
    ds = Dataset.open(ds_path)
    part = ds.part_path("midog++", "ingest")
    part.write_bytes(part.read_bytes() + b"x")
    assert any("checksum" in p for p in ds.verify())
