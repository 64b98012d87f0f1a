"""new -> QuPath -> import -> resolve on the synthetic dataset, with QuPath's conventions."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest

from mfcurate.classifier.detect import CANDIDATE_SCHEMA
from mfcurate.dataset import Dataset, Selection
from mfcurate.errors import UsageError
from mfcurate.labelround.classes import CLASS_NAMES, pack_rgb, unpack_rgb
from mfcurate.labelround.ops import import_votes, new_round, resolve_round
from mfcurate.labelround.round import load_round
from tests.labelround.conftest import fill_sheet, qupath_export

MF, NOT, UNC = "mitotic_figure", "mitotic_like", "uncertain"
RATERS = ["r1", "r2", "r3"]


def _packages(round_dir: Path, rater: str) -> list[Path]:
    return sorted((round_dir / "packages" / rater / "geojson").glob("*.geojson"))


def _export_all(round_dir: Path, rater: str, votes: dict[str, str | None], out: Path,
                style: str = "0.4") -> list[Path]:
    return [qupath_export(p, out / rater / p.name, votes, style)
            for p in _packages(round_dir, rater)]


def test_colour_packing_matches_qupath() -> None:
    # QuPath 0.2/0.3 store (200, 0, 0) as -3670016 (opaque ARGB, signed 32 bit)
    assert pack_rgb((200, 0, 0)) == -3670016
    assert unpack_rgb(-3670016) == (200, 0, 0)
    assert unpack_rgb(pack_rgb((70, 130, 180))) == (70, 130, 180)


def test_packages_are_blind_and_shuffled(dataset: Path, tmp_path: Path) -> None:
    r = new_round(dataset, tmp_path / "round1", RATERS, sample=1000, seed=3)
    rnd = r.round
    assert len(rnd.objects) >= 10
    orders = [rnd.order[x] for x in RATERS]
    assert all(sorted(o) == sorted(orders[0]) for o in orders)
    assert len({tuple(o) for o in orders}) == 3
    for rater in RATERS:
        folder = r.packages[rater]
        text = " ".join(p.read_text() for p in folder.rglob("*") if p.is_file())
        for word in ("mitotic_figure", "mitotic_like", "background", "classification",
                     "flagged", "votes"):
            assert word not in text  # no label, no class, no vote of anyone
        with (folder / f"{rater}-sheet.csv").open() as fh:
            sheet = list(csv.DictReader(fh))
        assert [s["object_key"] for s in sheet] == rnd.order[rater]
        listed = (folder / "images.txt").read_text().split()
        assert listed and all(Path(p).exists() for p in listed)
        feats = [f for p in _packages(tmp_path / "round1", rater)
                 for f in json.loads(p.read_text())["features"]]
        assert len(feats) == len(rnd.objects)
        f = feats[0]
        assert f["properties"]["objectType"] == "annotation"
        assert f["geometry"]["type"] in ("Polygon", "MultiPolygon")
        assert f["id"] == rnd.feature_id(rater, f["properties"]["name"])
    assert load_round(tmp_path / "round1").order == rnd.order


def test_qupath_round_trip_import_resolve_idempotent(dataset: Path, tmp_path: Path) -> None:
    rd = tmp_path / "round1"
    rnd = new_round(dataset, rd, RATERS, sample=1000).round
    keys = [o.object_key for o in rnd.objects]
    truth = {k: (MF if i % 3 == 0 else NOT) for i, k in enumerate(keys)}
    v1 = dict(truth)
    v2 = {k: (UNC if i == 1 else v) for i, (k, v) in enumerate(truth.items())}
    v3 = {k: (MF if i in (1, 2) else v) for i, (k, v) in enumerate(truth.items())}
    v3[keys[4]] = None  # r3 abstains once
    out = tmp_path / "returned"
    f1 = _export_all(rd, "r1", v1, out, "0.4")
    f2 = _export_all(rd, "r2", v2, out, "0.3")
    f3 = [fill_sheet(rd / "packages/r3/r3-sheet.csv", out / "r3-sheet.csv", v3)]
    res = import_votes(rd, [*f1, *f2, *f3])
    assert res.added == 3 * len(keys) - 1 and res.abstained == 1
    ds = Dataset.open(dataset)
    objs = {r["object_key"]: r for r in ds.objects().to_pylist()}
    votes = objs[keys[0]]["votes"]
    assert [v["annotator"] for v in votes] == RATERS
    assert all(v["round"] == "round1" and v["time"] for v in votes)
    manifest = (dataset / "manifest.json").read_bytes()
    ledger = (rd / "votes.csv").read_bytes()
    again = import_votes(rd, [*f1, *f2, *f3])  # idempotent
    assert again.unchanged_files == again.files and again.added == 0
    assert (dataset / "manifest.json").read_bytes() == manifest
    assert (rd / "votes.csv").read_bytes() == ledger
    res = resolve_round(rd, "majority")
    ds = Dataset.open(dataset)
    objs = {r["object_key"]: r for r in ds.objects().to_pylist()}
    before = {r["object_key"]: r["label"] for r in
              ds.objects(exclude_parts=["labels"]).to_pylist()}
    for i, k in enumerate(keys):
        row = objs[k]
        assert row["label_origin"] == "consensus"
        info = json.loads(row["extra"])["labels"]
        assert info["rule"] == "majority" and info["round"] == "round1"
        want = truth[k]
        if i == 1:  # truth not MF; r1 not MF, r2 uncertain, r3 MF: a tie
            want = UNC
        if want == NOT and before[k] in ("background", "mitotic_like"):
            want = before[k]
        assert row["label"] == want, (i, k)
    assert res.equivocal == pytest.approx(2 / len(keys), abs=1e-3)  # objects 1 and 2
    assert res.unresolved == pytest.approx(1 / len(keys), abs=1e-3)  # object 1
    assert (rd / "agreement.png").read_bytes()[:4] == b"\x89PNG"
    manifest = (dataset / "manifest.json").read_bytes()
    resolve_round(rd, "majority")  # a rerun writes nothing
    assert (dataset / "manifest.json").read_bytes() == manifest


def test_changed_file_replaces_its_votes_and_keeps_times(dataset: Path, tmp_path: Path) -> None:
    rd = tmp_path / "round1"
    rnd = new_round(dataset, rd, ["r1", "r2"], sample=5, seed=1).round
    keys = [o.object_key for o in rnd.objects]
    out = tmp_path / "ret"
    files = _export_all(rd, "r1", dict.fromkeys(keys, MF), out)
    import_votes(rd, files)
    first = {r["object_key"]: r for r in csv.DictReader((rd / "votes.csv").open())}
    changed = dict.fromkeys(keys, MF)
    changed[keys[0]] = NOT
    files = _export_all(rd, "r1", changed, out)
    res = import_votes(rd, files)
    assert res.changed == 1 and res.added == 0
    now = {r["object_key"]: r for r in csv.DictReader((rd / "votes.csv").open())}
    assert now[keys[0]]["label"] == NOT
    assert now[keys[1]]["time"] == first[keys[1]]["time"]


def test_class_names_are_qupaths() -> None:
    assert list(CLASS_NAMES) == ["Mitotic figure", "Not mitotic figure", "Uncertain"]


def test_detections_become_detect_objects(dataset: Path, tmp_path: Path) -> None:
    ds = Dataset.open(dataset)
    im = ds.images().to_pylist()[0]
    existing = ds.objects(columns=["image_key", "centroid_xy"]).to_pylist()
    near = next(o["centroid_xy"] for o in existing if o["image_key"] == im["image_key"])
    cands = tmp_path / "det" / "candidates.csv"
    cands.parent.mkdir()
    rows = [(im["image_key"], 20.5, 30.5, 0.9, 30.0), (im["image_key"], 60.0, 80.0, 0.2, 30.0),
            (Path(im["path"]).name, 120.0, 40.0, 0.7, None),
            (im["image_key"], near[0] + 1, near[1], 0.95, 30.0),
            ("nosuchimage", 10.0, 10.0, 0.9, 30.0), (im["image_key"], 9999.0, 10.0, 0.9, 30.0)]
    table = pa.table({"image": [r[0] for r in rows], "x": [r[1] for r in rows],
                      "y": [r[2] for r in rows], "score": [r[3] for r in rows],
                      "area_um2": [r[4] for r in rows], "seg_score": [0.8] * len(rows),
                      "origin": ["classical"] * len(rows),
                      "member_scores": [str(r[3]) for r in rows]}, schema=CANDIDATE_SCHEMA)
    pacsv.write_csv(table, cands)  # as `mfcurate detect` writes it (quoted header)
    assert cands.read_text().startswith('"image","x","y","score"')
    # the file name is unique within the chosen source (both sources have an img000.png)
    one = Selection(sources=(im["source"],))
    r = new_round(dataset, tmp_path / "round1", ["a", "b"], candidates=cands,
                  match_um=0.5, selection=one)
    assert r.new_detections == 2
    assert r.counts["below min score"] == 1
    assert r.counts["image not in the selection"] == 1
    assert r.counts["outside its image"] == 1
    assert r.counts["detector: matches a labelled object"] + r.counts.get(
        "detector: existing uncertain/flagged object", 0) == 1
    ds = Dataset.open(dataset)
    det = ds.part(im["source"], "detect").to_pylist()
    assert len(det) == 2
    assert {d["label"] for d in det} == {"uncertain"}
    assert {d["label_origin"] for d in det} == {"model"}
    assert det[0]["confidence"] in (0.9, 0.7)
    x0, y0, x1, y1 = det[0]["bbox_xyxy"]
    assert x0 < det[0]["centroid_xy"][0] < x1 and y0 < det[0]["centroid_xy"][1] < y1
    # a rerun of `new` on the same candidates finds them as uncertain objects, adds none
    r2 = new_round(dataset, tmp_path / "round2", ["a", "b"], candidates=cands, match_um=0.5,
                   selection=one)
    assert r2.new_detections == 0
    assert r2.counts["detector: existing uncertain/flagged object"] >= 2
    n = pc.sum(pc.equal(Dataset.open(dataset).objects().column("label"), "uncertain"))
    assert n.as_py() == 2


def test_two_rounds_keep_each_others_votes(dataset: Path, tmp_path: Path) -> None:
    r1 = new_round(dataset, tmp_path / "round1", ["a", "b"], sample=6, seed=1).round
    keys = [o.object_key for o in r1.objects]
    out = tmp_path / "back"
    import_votes(tmp_path / "round1", [p for r in ("a", "b") for p in _export_all(
        tmp_path / "round1", r, {k: (MF if r == "a" else NOT) for k in keys}, out / "1")])
    resolve_round(tmp_path / "round1", "majority")  # all ties: uncertain
    ds = Dataset.open(dataset)
    labels = {r["object_key"]: r["label"] for r in ds.objects().to_pylist()}
    assert {labels[k] for k in keys} == {UNC}
    # the senior pass: a round of one rater over what round 1 left uncertain
    with pytest.raises(UsageError, match="already used"):
        new_round(dataset, tmp_path / "elsewhere" / "round1", ["s"], include=["uncertain"])
    r2 = new_round(dataset, tmp_path / "round2", ["s"], include=["uncertain"]).round
    assert sorted(o.object_key for o in r2.objects) == sorted(keys)
    files = _export_all(tmp_path / "round2", "s", dict.fromkeys(keys, MF), out / "2")
    import_votes(tmp_path / "round2", [files[0].parent])  # a folder stands for its files
    resolve_round(tmp_path / "round2", "majority")
    objs = {r["object_key"]: r for r in Dataset.open(dataset).objects().to_pylist()}
    for k in keys:
        assert objs[k]["label"] == MF
        assert sorted((v["round"], v["annotator"]) for v in objs[k]["votes"]) == [
            ("round1", "a"), ("round1", "b"), ("round2", "s")]
    from mfcurate.labelround.summary import dataset_agreement

    agree = dataset_agreement(Dataset.open(dataset))
    assert set(agree) == {"round1", "round2"}
    assert agree["round1"]["overall"]["unresolved"] == 1.0
    assert agree["round2"]["overall"]["unresolved"] == 0.0


def test_older_and_list_exports(dataset: Path, tmp_path: Path) -> None:
    rd = tmp_path / "round1"
    rnd = new_round(dataset, rd, ["r1", "r2"], sample=4, seed=5).round
    keys = [o.object_key for o in rnd.objects]
    # QuPath 0.2: id "PathAnnotationObject", no objectType; the folder tells the rater
    old = _export_all(rd, "r1", dict.fromkeys(keys, NOT), tmp_path / "v02", "0.2")
    assert json.loads(old[0].read_text())["features"][0]["id"] == "PathAnnotationObject"
    # a plain list of features (export without "FeatureCollection"), a derived class
    lst = []
    for p in _export_all(rd, "r2", dict.fromkeys(keys, MF), tmp_path / "list"):
        feats = json.loads(p.read_text())["features"]
        feats[0]["properties"]["classification"] = {"names": ["Mitotic figure"],
                                                    "color": [220, 20, 60]}
        p.write_text(json.dumps(feats))
        lst.append(p)
    res = import_votes(rd, [*old, *lst])
    assert res.added == 2 * len(keys)
    votes = {(r["object_key"], v["annotator"]): v["label"]
             for r in Dataset.open(dataset).objects().to_pylist() for v in r["votes"] or []}
    assert all(votes[(k, "r1")] == NOT and votes[(k, "r2")] == MF for k in keys)
