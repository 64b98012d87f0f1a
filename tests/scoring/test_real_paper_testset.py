"""The paper's test set on the real MIDOG++ files: 56 human images, 674 mitotic figures."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.compute as pc

from mfcurate.dataset import Dataset
from tests.conftest import real_path

BREAST = "midog++ | human breast cancer"
MELANOMA = "midog++ | human melanoma"
NET = "midog++ | human neuroendocrine tumor"


def test_score_midogpp_human_test_split(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mfcurate.cli import app
    from mfcurate.pipelines.ingest import ingest_source

    ingest_source("midog++", real_path("midogpp"), tmp_path / "ds")
    ingest_source("midog2021", real_path("midogpp", "midog2021"), tmp_path / "ds")  # copies
    ds = Dataset.open(tmp_path / "ds")
    # a "detector" that finds every annotated object: figures are TP, imposters FP
    test = ds.images().filter(pc.equal(ds.images().column("split"), "test"))
    objs = ds.objects(columns=["image_key", "label", "centroid_xy"])
    objs = objs.filter(pc.is_in(objs.column("image_key"), value_set=test.column("image_key")))
    lines = ["image,x,y,score"] + [f"{k},{c[0]},{c[1]},0.9" for k, c in zip(
        objs.column("image_key").to_pylist(), objs.column("centroid_xy").to_pylist(),
        strict=True)]
    det = tmp_path / "det.csv"
    det.write_text("\n".join(lines) + "\n")
    out = tmp_path / "score.json"
    r = CliRunner().invoke(app, ["score", "--detections", str(det), "--dataset",
                                 str(tmp_path / "ds"), "--split", "test", "--source", "midog++",
                                 "--species", "human", "--threshold", "0.5", "--json", str(out)])
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert doc["n_images"] == 56 and doc["n_mitotic_figures"] == 674
    per = {k: v["tp"] + v["fn"] for k, v in doc["per_tumour"].items()}
    assert per == {BREAST: 339, MELANOMA: 220, NET: 115}
    # the imposters of those images (MIDOG++ paper: 574 / 150 / 239) are the false positives
    assert {k: v["fp"] for k, v in doc["per_tumour"].items()} == {
        BREAST: 574, MELANOMA: 150, NET: 239}
    assert "56 images, 674 mitotic figures" in r.output
    # --tumour and --images narrow further; the MIDOG 2021 copies never add images
    keys = tmp_path / "keys.txt"
    keys.write_text("midog++/4\nmidog++/5\nmidog2021/4\nmidog++/2\n")
    r2 = CliRunner().invoke(app, ["score", "--detections", str(det), "--dataset",
                                  str(tmp_path / "ds"), "--split", "all", "--images", str(keys),
                                  "--threshold", "0.5", "--json", str(tmp_path / "k.json")])
    assert r2.exit_code == 0, r2.output
    assert json.loads((tmp_path / "k.json").read_text())["n_images"] == 3  # not the copy
    r3 = CliRunner().invoke(app, ["score", "--detections", str(det), "--dataset",
                                  str(tmp_path / "ds"), "--split", "test", "--tumour",
                                  "human melanoma", "--threshold", "0.5", "--json",
                                  str(tmp_path / "m.json")])
    assert r3.exit_code == 0, r3.output
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["n_images"] == 11 and m["n_mitotic_figures"] == 220
