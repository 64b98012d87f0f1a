"""TUPAC16 adapter: row,col csv, empty files, stitched -> tile mapping, real counts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from _source_checks import check_contract, ingest, label_counts, real

from mfcurate.errors import SourceFormatError
from mfcurate.synth.sources import tupac16 as fake

REPO = Path(__file__).resolve().parents[2]


def _points(objects) -> list[tuple[str, float, float, str]]:  # type: ignore[no-untyped-def]
    return sorted((k.rsplit("/", 1)[0], c[0], c[1], lab) for k, c, lab in zip(
        objects.column("object_key").to_pylist(), objects.column("centroid_xy").to_pylist(),
        objects.column("label").to_pylist(), strict=True))


def test_contract(tmp_path: Path) -> None:
    check_contract(fake.generate(tmp_path / "src", seed=3), tmp_path)


def test_all_modes_agree_on_the_fake(tmp_path: Path) -> None:
    spec = fake.generate(tmp_path / "src")
    pts = {m: _points(ingest("tupac16", spec.root, annotations=m)[2])
           for m in ("csv", "tiles", "stitched", "alternative")}
    assert pts["csv"] == pts["alternative"]
    mitoses = [p for p in pts["csv"] if p[3] == "mitotic_figure"]
    assert mitoses == pts["tiles"] == pts["stitched"]
    assert len(mitoses) == spec.counts["mitotic_figure"]


def test_row_col_order(tmp_path: Path) -> None:
    spec = fake.generate(tmp_path / "src")
    f = spec.root / "mitoses_ground_truth" / "01" / "01.csv"
    row, col = (int(v) for v in f.read_text().splitlines()[0].split(","))
    _, _, objects = ingest("tupac16", spec.root)
    first = next(r for r in objects.to_pylist() if r["object_key"] == "tupac16/01/01/m1")
    assert first["centroid_xy"] == [col, row]  # x = column = second field


def test_bad_line_names_file_and_line(tmp_path: Path) -> None:
    spec = fake.generate(tmp_path / "src")
    f = spec.root / "nonmitoses_ground_truth" / "24" / "01.csv"
    f.write_text(f.read_text() + "12;abc\n")
    with pytest.raises(SourceFormatError, match=r"01\.csv: line \d+"):
        ingest("tupac16", spec.root)


@pytest.mark.real_data
def test_real_original_labels() -> None:
    root = real("tupac16")
    for mode in ("tiles", "stitched"):
        _, images, objects = ingest("tupac16", root, annotations=mode)
        cases = {k.split("/")[1] for k in images.column("image_key").to_pylist()}
        assert (len(cases), images.num_rows) == (73, 656)
        assert label_counts(objects) == {"mitotic_figure": 1552}
    tiles = _points(ingest("tupac16", root, annotations="tiles")[2])
    stitched = _points(ingest("tupac16", root, annotations="stitched")[2])
    assert [p[1:] for p in tiles] == [p[1:] for p in stitched]  # offsets map back exactly


@pytest.mark.real_data
def test_real_alternative_labels_db() -> None:
    root = real("tupac16")
    _, images, objects = ingest("tupac16", root, annotations="alternative")
    assert images.num_rows == 656
    assert label_counts(objects) == {"mitotic_figure": 1999, "mitotic_like": 10483}


@pytest.mark.real_data
def test_real_alternative_labels_csv_via_cli(tmp_path: Path) -> None:
    root = real("tupac16", "TUPAC_AL")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "mfcurate", "ingest", "tupac16", str(root),
                           "--out", str(tmp_path / "ds")], capture_output=True, text=True,
                          env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr
    from mfcurate.dataset import Dataset

    ds = Dataset.open(tmp_path / "ds")
    objects = ds.objects(["tupac16"])
    assert label_counts(objects) == {"mitotic_figure": 1999, "mitotic_like": 10483}
    assert ds.images().num_rows == 656


def test_release_part_folders(tmp_path: Path) -> None:
    spec = fake.generate(tmp_path / "src")
    (spec.root / "mitoses_image_data").rename(spec.root / "mitoses_image_data_part_1")
    a, images, objects = ingest("tupac16", spec.root)
    assert a.missing_images == []
    assert set(images.column("width").to_pylist()) == {fake.TILE}
    assert label_counts(objects) == spec.counts


def test_alternative_labels_win_and_are_recorded(tmp_path: Path) -> None:
    import shutil

    from mfcurate.adapters import AdapterConfig, get_adapter

    spec = fake.generate(tmp_path / "src")
    root = spec.root
    (root / "TUPAC_AL").mkdir()
    for folder in ("mitoses_ground_truth", "nonmitoses_ground_truth"):
        shutil.copytree(root / folder, root / "TUPAC_AL" / folder)
    shutil.rmtree(root / "nonmitoses_ground_truth")  # the root csv is now the original set
    first = root / "mitoses_ground_truth" / "01" / "01.csv"
    first.write_text("".join(first.read_text().splitlines(keepends=True)[1:]))

    def read(**options: str):  # type: ignore[no-untyped-def]
        a = get_adapter("tupac16")(root, AdapterConfig(options=options))
        return a, label_counts(a.to_tables()[1])

    a, counts = read()
    assert a.label_set == "alternative" and counts == spec.counts
    assert a.source_card()["label_set"] == ("alternative labels (Bertram et al. 2020), read "
                                            "from TUPAC_AL/mitoses_ground_truth/")
    a, counts = read(label_set="original")
    assert (a.mode, a.label_set) == ("csv", "original")
    assert counts == {"mitotic_figure": spec.counts["mitotic_figure"] - 1}
    shutil.rmtree(root / "TUPAC_AL")
    shutil.rmtree(root / "mitoses_ground_truth")
    a, counts = read()  # DBs only: the alternative DB beats TUPAC.sqlite and the stitched one
    assert (a.mode, a.label_set) == ("alternative", "alternative") and counts == spec.counts
    a, _ = read(label_set="original")
    assert a.mode == "tiles" and "original TUPAC16 labels" in a.labels_read


def test_info_prints_the_label_set(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mfcurate.cli import app

    spec = fake.generate(tmp_path / "src")
    runner = CliRunner()
    ds = tmp_path / "ds"
    assert runner.invoke(app, ["ingest", "tupac16", str(spec.root), "--out", str(ds)]
                         ).exit_code == 0
    res = runner.invoke(app, ["info", str(ds)])
    assert res.exit_code == 0
    assert "tupac16: alternative labels (Bertram et al. 2020), read from " \
           "mitoses_ground_truth/" in res.output
