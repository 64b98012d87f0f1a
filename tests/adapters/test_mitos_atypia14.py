"""MITOS-ATYPIA-14 adapter: x,y,confidence csv, votes in the SQLite conversion, real counts."""

from __future__ import annotations

from pathlib import Path

import pytest
from _source_checks import check_contract, ingest, label_counts, real

from mfcurate.synth.sources import mitos_atypia14 as fake


def test_contract(tmp_path: Path) -> None:
    check_contract(fake.generate(tmp_path / "src", seed=5), tmp_path)


def test_confidence_and_not_mitosis_files(tmp_path: Path) -> None:
    spec = fake.generate(tmp_path / "src")
    _, _, objects = ingest("mitos-atypia-14", spec.root)
    rows = objects.to_pylist()
    f = spec.root / "A03" / "mitosis" / "A03_00Aa_mitosis.csv"
    x, y, conf = (float(v) for v in f.read_text().splitlines()[1].split(","))
    r = next(r for r in rows if r["object_key"] == "mitos-atypia-14/A03_00Aa/m2")
    assert r["centroid_xy"] == [x, y] and r["confidence"] == conf
    assert r["label"] == "mitotic_figure"
    assert {r["label"] for r in rows if r["source_file"].endswith("_not_mitosis.csv")} == \
        {"mitotic_like"}


def test_sqlite_votes(tmp_path: Path) -> None:
    spec = fake.generate(tmp_path / "src")
    _, _, objects = ingest("mitos-atypia-14", spec.root, annotations="sqlite")
    assert label_counts(objects) == spec.counts
    votes = objects.column("votes").to_pylist()
    assert {len(v) for v in votes} == {2, 3}
    assert all(v[0]["annotator"] == "MITOS2014_1" for v in votes)


@pytest.mark.real_data
def test_real_sqlite_counts() -> None:
    root = real("mitos_atypia14")
    _, images, objects = ingest("mitos-atypia-14", root)
    assert images.num_rows == 1200
    assert label_counts(objects) == {"mitotic_figure": 749, "mitotic_like": 2884}
    assert len(set(objects.column("image_key").to_pylist())) == 865


def test_slide_folders_one_level_down(tmp_path: Path) -> None:
    spec = fake.generate(tmp_path / "src")
    nested = tmp_path / "root"
    nested.mkdir()
    (spec.root).rename(nested / "mitos_atypia_2014_training_aperio")
    (nested / "mitos_atypia_2014_training_aperio" / "MITOS2014.sqlite").unlink()
    a, images, objects = ingest("mitos-atypia-14", nested)
    assert a.missing_images == []
    assert images.column("path").to_pylist()[0] == \
        "mitos_atypia_2014_training_aperio/A03/frames/x40/A03_00Aa.tiff"
    assert label_counts(objects) == spec.counts
