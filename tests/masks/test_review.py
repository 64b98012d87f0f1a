"""Review round trip: export-review -> (a person edits in QuPath) -> import-review."""

from __future__ import annotations

import json
import subprocess

from synthdata import env, make_dataset, python
from typer.testing import CliRunner

from mfcurate.cli import app
from mfcurate.dataset import Dataset
from mfcurate.pipelines.refine_masks import refine_masks


def _rows(ds_dir):
    return {r["object_key"]: r for r in Dataset.open(ds_dir).objects().to_pylist()}


def _flag(ds_dir, keys):
    """Mark some refined objects flagged (as QA would) in the refine layer that holds them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ds = Dataset.open(ds_dir)
    t = ds.layer("synthetic", "refine")
    hit = pc.is_in(t.column("object_key"), value_set=pa.array(keys))
    t = t.set_column(t.column_names.index("qa_state"), "qa_state",
                     pc.if_else(hit, "flagged", t.column("qa_state")))
    flags = [["box_edge"] if h else f for h, f in
             zip(hit.to_pylist(), t.column("qa_flags").to_pylist(), strict=True)]
    t = t.set_column(t.column_names.index("qa_flags"), "qa_flags",
                     pa.array(flags, pa.list_(pa.string())))
    ds.write_layers({"synthetic": t}, part="refine")


def test_export_edit_import_round_trip(tmp_path):
    ds_dir, _ = make_dataset(tmp_path, n_images=2)
    refine_masks(ds_dir)
    keys = ["synthetic/00/1", "synthetic/00/2", "synthetic/01/3"]
    _flag(ds_dir, keys)
    before = _rows(ds_dir)
    out = tmp_path / "review"
    res = CliRunner().invoke(app, ["export-review", str(ds_dir), "--out", str(out)])
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "review.json").read_text())
    assert set(meta["images"]) == {"synthetic/00", "synthetic/01"}
    assert (out / "contact_sheet.png").stat().st_size > 0
    assert (out / "overlays" / "synthetic_00.png").exists()
    gj0 = out / meta["images"]["synthetic/00"]
    doc = json.loads(gj0.read_text())
    names = sorted(f["properties"]["name"] for f in doc["features"])
    assert names == keys[:2]
    for f in doc["features"]:
        assert f["geometry"]["type"] in ("Polygon", "MultiPolygon")
        assert f["properties"]["objectType"] == "annotation"
    # the reviewer: replaces the outline of 00/1 by a 10 px square, rejects 00/2 by class;
    # deletes 01/3 from its file, and draws a new object of their own
    for f in doc["features"]:
        if f["properties"]["name"] == keys[0]:
            f["geometry"] = {"type": "Polygon", "coordinates": [[[100, 100], [110, 100],
                                                                [110, 110], [100, 110],
                                                                [100, 100]]]}
        else:
            f["properties"]["classification"] = {"name": "Rejected"}
    doc["features"].append({"type": "Feature", "geometry": {"type": "Point",
                                                            "coordinates": [5, 5]},
                            "properties": {"name": "my new cell"}})
    gj0.write_text(json.dumps(doc))
    gj1 = out / meta["images"]["synthetic/01"]
    d1 = json.loads(gj1.read_text())
    d1["features"] = []
    gj1.write_text(json.dumps(d1))
    res = CliRunner().invoke(app, ["import-review", str(ds_dir), str(out)])
    assert res.exit_code == 0, res.output
    assert "1 amended, 2 rejected" in res.output and "1 unknown" in res.output
    after = _rows(ds_dir)
    assert set(after) == set(before)
    a = after[keys[0]]
    assert a["mask_origin"] == "manual" and a["qa_state"] == "amended"
    assert a["bbox_xyxy"] == [100.0, 100.0, 110.0, 110.0] and a["area_px"] == 100
    assert a["area_um2"] == 100 * 0.0625
    review = json.loads(a["extra"])["review"]
    assert review["previous_qa_state"] == "flagged"
    assert review["previous_mask_origin"] == "classical"
    for k in keys[1:]:
        assert after[k]["qa_state"] == "rejected"
        assert after[k]["mask_rle"] == before[k]["mask_rle"]  # the mask is not lost
    for k in set(before) - set(keys):
        assert after[k] == before[k]
    # a later refine-masks run keeps reviewed objects
    refine_masks(ds_dir)
    after2 = _rows(ds_dir)
    for k in keys:
        assert after2[k]["qa_state"] == after[k]["qa_state"]
        assert after2[k]["mask_rle"] == after[k]["mask_rle"]


def test_unchanged_outlines_and_bad_files(tmp_path):
    ds_dir, _ = make_dataset(tmp_path, n_images=1)
    refine_masks(ds_dir)
    from mfcurate.review.export import export_review
    from mfcurate.review.importer import import_review

    out = tmp_path / "r"
    s = export_review(ds_dir, out, include="all")
    assert s.objects == 9  # five refined figures, three tumour cells and the source mask
    res = import_review(ds_dir, out, accept_unchanged=True)
    assert res.accepted == 9 and res.amended == 0 and res.rejected == 0
    states = {r["qa_state"] for r in _rows(ds_dir).values() if r["mask_rle"]}
    assert states == {"accepted"}
    gj = next((out / "geojson").glob("*.geojson"))
    gj.write_text("{not json")
    p = subprocess.run([python(), "-m", "mfcurate", "import-review", str(ds_dir), str(out)],
                       env=env(), capture_output=True, text=True)
    assert p.returncode == 1 and gj.name in p.stderr
    assert not Dataset.open(ds_dir).verify()
