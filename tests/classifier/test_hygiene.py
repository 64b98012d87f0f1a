"""Label hygiene on the `mfcurate demo` pipeline (issue 12 acceptance), classical and SAM.

A smaller recipe than pipelines/demo.toml (three sources; ingest, refine-masks, harvest,
build-patches) run through the `demo` command, then checked with brute-force oracles:

* some mitotic-figure masks have two or more parts (the synthetic sources plant anaphase,
  telophase and tripolar figures);
* no negative patch is centred inside a mitotic figure's box;
* disk masks are at most 0.5 % of each class's patches.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mfcurate.classifier.hygiene import hygiene_figures, negatives_in_figure_boxes
from mfcurate.classifier.patches import PatchStore
from mfcurate.dataset import Dataset, Selection, select_objects
from mfcurate.geometry import decode_mask, mask_grid

RECIPE = """
name = "hygiene"
[run]
dataset = "dataset"
preset = "quick"
seed = 0
workers = 1

{sources}
[steps.ingest]
[steps.refine-masks]
[steps.harvest]
{harvest}
[steps.build-patches]
"""


SOURCES = {"midog++": "midogpp", "ccmct": "ccmct", "tupac16": "tupac16",
           "mitos-atypia-14": "mitos-atypia-14"}


def _run_demo(tmp: Path, sources: tuple[str, ...], harvest: str = "",
              sam: Path | None = None) -> Path:
    from mfcurate.cli import app

    recipe = tmp / "hygiene.toml"
    src = "".join(f'[[sources]]\nkey = "{k}"\nroot = "sources/{SOURCES[k]}"\n\n'
                  for k in sources)
    recipe.write_text(RECIPE.format(harvest=harvest, sources=src))
    out = tmp / "out"
    args = ["demo", "--out", str(out), "--recipe", str(recipe)]
    if sam is not None:
        args += ["--sam-checkpoint", str(sam), "--sam-model", "tiny"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    return out


def _n_parts(row: dict) -> int:
    import cv2

    _, _, w, h = mask_grid(row["bbox_xyxy"])
    m = decode_mask(row["mask_rle"], h, w).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    return int((areas >= 0.1 * areas.max()).sum()) if n > 1 else 0


def _check(out: Path, labels_present: set[str]) -> dict:
    ds = Dataset.open(out / "dataset")
    objs = select_objects(ds, Selection()).to_pylist()
    store = PatchStore(out / "patches")
    idx = store.index.to_pylist()
    assert idx and store.meta["n_patches"] == len(idx)
    mfs = [r for r in objs if r["label"] == "mitotic_figure"]
    # brute force: no negative patch is centred inside a mitotic figure's box
    by_key = {r["object_key"]: r for r in objs}
    for p in idx:
        if p["target"] == 1:
            continue
        r = by_key[p["object_key"]]
        x, y = r["centroid_xy"]
        for f in mfs:
            if f["image_key"] != r["image_key"]:
                continue
            for b in (f["bbox_xyxy"], f["source_bbox_xyxy"]):
                assert b is None or not (b[0] <= x <= b[2] and b[1] <= y <= b[3]), \
                    (p["object_key"], f["object_key"])
    # disk masks at most 0.5 % of each class's patches
    labels = {p["label"] for p in idx}
    assert labels_present <= labels
    for lab in labels:
        rows = [p for p in idx if p["label"] == lab]
        disk = sum(p["mask_kind"] == "disk" for p in rows)
        assert disk <= 0.005 * len(rows), (lab, disk, len(rows))
    figs = hygiene_figures(out / "dataset", out / "patches")
    assert figs["negatives_in_mf_box"] == {"dataset": 0, "patches": 0}
    assert figs["mf_masks"] == sum(1 for r in mfs if r["mask_rle"]
                                   and r["mask_origin"] != "disk")
    assert figs["mf_multi_part"] == sum(1 for r in mfs if r["mask_rle"]
                                        and r["mask_origin"] != "disk" and _n_parts(r) >= 2)
    # the harvest linked pieces of figures to them, never as negatives
    part = ds.objects(parts=["harvest"]).to_pylist()
    frags = [r for r in part if r["qa_flags"] == ["fragment_of_figure"]]
    keys = {r["object_key"] for r in objs}
    for r in frags:
        assert r["qa_state"] == "rejected" and r["object_key"] not in keys
        assert by_key[r["parent_key"]]["label"] == r["label"]
    figs["fragments"] = len(frags)
    return figs


def test_demo_hygiene_classical(tmp_path: Path) -> None:
    figs = _check(_run_demo(tmp_path, ("midog++", "ccmct", "tupac16")),
                  {"mitotic_figure", "mitotic_like", "background", "tumour_cell"})
    assert figs["mf_multi_part"] >= 2, figs  # multi-part figures keep their masses
    assert figs["fragments"] >= 1, figs


def test_demo_hygiene_tiny_sam(tmp_path: Path) -> None:
    from mfcurate.segment.sam_models import build_tiny_sam, save_checkpoint

    torch.set_num_threads(1)
    ckpt = save_checkpoint(build_tiny_sam(seed=0), tmp_path / "tiny.pth")
    # one small source and a 2 x 2 point grid: a tiny random SAM is slow on 1024 px inputs
    out = _run_demo(tmp_path, ("mitos-atypia-14",), "points_per_side = 2\n"
                    "pred_iou_thresh = 0.0\nstability_score_thresh = 0.0", sam=ckpt)
    figs = _check(out, {"mitotic_figure", "mitotic_like"})
    ds = Dataset.open(out / "dataset")
    origins = {r["mask_origin"] for r in select_objects(ds, Selection()).to_pylist()
               if r["label"] in ("mitotic_figure", "tumour_cell")}
    assert origins == {"sam_box"}  # the SAM path was taken, and gave every object a mask
    assert figs["mf_masks"] > 0
    log = (out / "run-log.json").read_text()
    assert '"backend": "sam"' in log


def test_negatives_in_figure_boxes_per_image() -> None:
    import pyarrow as pa

    t = pa.table({
        "object_key": ["a/mf", "a/in", "a/out", "b/in-other-image", "a/mf2"],
        "image_key": ["a", "a", "a", "b", "a"],
        "label": ["mitotic_figure", "other_cell", "background", "background",
                  "mitotic_figure"],
        "centroid_xy": [[10.0, 10.0], [14.0, 6.0], [40.0, 40.0], [10.0, 10.0], [11.0, 11.0]],
        "bbox_xyxy": [[5.0, 5.0, 15.0, 15.0], None, None, None, [9.0, 9.0, 13.0, 13.0]],
        "source_bbox_xyxy": [[0.0, 0.0, 20.0, 20.0], None, None, None, None],
    })
    assert negatives_in_figure_boxes(t).tolist() == [False, True, False, False, False]


@pytest.mark.parametrize("include_disk", [False, True])
def test_training_filter_counts(include_disk: bool) -> None:
    import pyarrow as pa

    from mfcurate.classifier.hygiene import training_filter

    t = pa.table({
        "object_key": ["mf", "neg-disk", "neg-none", "neg-ok", "neg-in"],
        "image_key": ["a"] * 5,
        "label": ["mitotic_figure", "tumour_cell", "granulocyte", "tumour_cell", "other_cell"],
        "centroid_xy": [[10.0, 10.0], [50.0, 50.0], [60.0, 60.0], [70.0, 70.0], [12.0, 12.0]],
        "bbox_xyxy": [[5.0, 5.0, 15.0, 15.0]] * 5,
        "source_bbox_xyxy": [None] * 5,
        "mask_rle": ["x", "x", None, "x", "x"],
        "mask_origin": ["sam_box", "disk", None, "sam_box", "sam_box"],
    })
    keep, counts = training_filter(t, include_disk=include_disk)
    assert keep.tolist() == [True, include_disk, include_disk, True, False]
    assert counts["in_figure_box_skipped"] == {"other_cell": 1}
    assert counts["disk_skipped"] == ({} if include_disk else
                                      {"granulocyte": 1, "tumour_cell": 1})
