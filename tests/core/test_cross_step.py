"""Cross-step invariants (issue 11): after ingest -> refine -> harvest -> register -> review,
``info``, the report, every export, publish and the manifest agree on every count, and an
object's ``area_um2`` is ``area_px * mpp_x * mpp_y`` whichever step wrote it."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from mfcurate.dataset import Dataset, Selection, select_images, select_objects, summarize

SOURCES = ("midog++", "tupac16", "ccmct")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset through every step that writes objects, plus a review round."""
    from mfcurate.recipe import Recipe, run_recipe
    from mfcurate.review.export import export_review
    from mfcurate.review.importer import import_review
    from mfcurate.synth.sources import generators

    work = tmp_path_factory.mktemp("xstep")
    gens = generators()
    for key in SOURCES:
        gens[key](work / "sources" / key, seed=3)
    recipe = Recipe.from_dict({
        "name": "cross-step", "run": {"work_dir": str(work), "dataset": "dataset", "seed": 0},
        "sources": [{"key": k, "root": f"sources/{k}"} for k in SOURCES],
        "steps": {"ingest": {}, "refine-masks": {}, "harvest": {},
                  "register-phh3": {"synthetic_pairs": 1, "size": 1024}},
    })
    run_recipe(recipe)
    ds_dir = work / "dataset"
    review = work / "review"
    export_review(ds_dir, review, include="all")
    meta = json.loads((review / "review.json").read_text())
    first = review / next(iter(meta["images"].values()))
    doc = json.loads(first.read_text())
    feats = doc["features"]
    assert len(feats) >= 2
    feats[0]["properties"]["classification"] = {"name": "Rejected"}
    x, y = feats[1]["geometry"]["coordinates"][0][0]
    feats[1]["geometry"] = {"type": "Polygon", "coordinates": [[[x, y], [x + 9, y], [x + 9, y + 7],
                                                                [x, y + 7], [x, y]]]}
    first.write_text(json.dumps(doc))
    import_review(ds_dir, review)
    return ds_dir


def _live(t: dict[str, Any]) -> int:
    return int(t["objects"]) - int(t["rejected"])


def test_every_reader_counts_the_same(built: Path, tmp_path: Path) -> None:
    from mfcurate.export.coco import export_coco
    from mfcurate.export.geojson_export import export_geojson
    from mfcurate.export.parquet_export import export_parquet
    from mfcurate.pipelines.summary import counts_table
    from mfcurate.report.stats import dataset_stats

    ds = Dataset.open(built)
    assert {*SOURCES, "phh3"} <= set(ds.sources)
    truth = summarize(ds, Selection(include_rejected=True))
    n = _live(truth["total"])
    by_label = truth["total"]["by_label"]
    assert n > 0 and truth["total"]["rejected"] > 0  # harvest duplicates + the review

    # the manifest's incremental counts
    assert _live(ds.manifest["counts"]) == n
    assert ds.manifest["counts"]["by_label"] == by_label
    # info
    rows = counts_table(ds)
    assert sum(r.mitotic_figure + r.mitotic_like + r.other for r in rows) == n
    assert sum(r.mitotic_figure for r in rows) == by_label.get("mitotic_figure", 0)
    assert sum(r.images for r in rows) == select_images(ds, Selection()).num_rows
    # report (Table 1)
    t1 = dataset_stats(ds).table1()
    assert int(t1[t1["source"] == "All"]["total"].iloc[0]) == n
    # exports
    coco = export_coco(ds, tmp_path / "coco")
    assert sum(a for _, a in coco.files.values()) == n
    assert export_parquet(ds, tmp_path / "pq")["files"]["objects.parquet"]["rows"] == n
    assert export_geojson(ds, tmp_path / "gj")["features"] == n


def test_publish_counts_its_selection(built: Path, tmp_path: Path) -> None:
    from mfcurate.publish.package import build_package

    ds = Dataset.open(built)
    only = ["midog++"]
    want = _live(summarize(ds, Selection(sources=tuple(only), include_rejected=True))["total"])
    res = build_package(ds, tmp_path / "pkg", filters={"sources": only})
    assert pq.read_metadata(res.out_dir / "objects.parquet").num_rows == want


def test_area_um2_is_one_formula_for_every_step(built: Path) -> None:
    ds = Dataset.open(built)
    mpp = {r["image_key"]: (r["mpp_x"], r["mpp_y"])
           for r in ds.images(columns=["image_key", "mpp_x", "mpp_y"]).to_pylist()}
    objs = select_objects(ds, Selection(include_rejected=True),
                          columns=["image_key", "mask_origin", "area_px", "area_um2"])
    origins = set()
    for r in objs.to_pylist():
        if r["area_px"] is None:
            continue
        mx, my = mpp[r["image_key"]]
        assert r["area_um2"] is not None
        assert math.isclose(r["area_um2"], r["area_px"] * mx * my, rel_tol=1e-6), r
        origins.add(r["mask_origin"])
    # masks written by refine (classical), harvest, the pHH3 transfer and the reviewer
    assert {"classical", "phh3", "manual"} <= origins, origins
