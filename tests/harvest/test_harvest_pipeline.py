"""End-to-end harvest on a synthetic slide with planted nuclei (classical backend)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from harvest_synth import MPP, OVERLAP, SOURCE, TILE, TISSUE_COLS, SynthSlide, make_synth_dataset

from mfcurate.dataset import Dataset
from mfcurate.geometry import decode_mask, mask_grid
from mfcurate.pipelines.harvest import HarvestConfig, HarvestReport, harvest_dataset

CFG = HarvestConfig(tile=TILE, overlap=OVERLAP)


def _full(box: list[float], rle: str, shape: tuple[int, int]) -> np.ndarray:
    x0, y0, w, h = mask_grid(box)
    out = np.zeros(shape, bool)
    out[y0:y0 + h, x0:x0 + w] = decode_mask(rle, h, w)
    return out


@pytest.fixture(scope="module")
def harvested(synth_slide: SynthSlide, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[SynthSlide, HarvestReport, Path]:
    png = tmp_path_factory.mktemp("ov") / "overlay.png"
    rep = harvest_dataset(synth_slide.dataset, CFG, overlay=png)
    return synth_slide, rep, png


def _objects(ds_dir: Path, part: str) -> list[dict]:
    return Dataset.open(ds_dir).objects(parts=[part]).to_pylist()


def test_recall_of_planted_nuclei(harvested: tuple[SynthSlide, HarvestReport, Path]) -> None:
    slide, _rep, _ = harvested
    rows = _objects(slide.dataset, "harvest")
    shape = slide.rgb.shape[:2]
    lab = np.zeros(shape, np.int32)
    areas = {}
    for i, r in enumerate(rows, start=1):
        m = _full(r["bbox_xyxy"], r["mask_rle"], shape)
        lab[m] = i
        areas[i] = int(m.sum())
    hits = 0
    for p in slide.planted:
        x, y = p.offset_xy
        h, w = p.mask.shape
        full = np.zeros(shape, bool)
        full[y:y + h, x:x + w] = p.mask
        ids, cnt = np.unique(lab[full], return_counts=True)
        best = max((c / (full.sum() + areas[i] - c) for i, c in zip(ids, cnt, strict=True)
                    if i), default=0.0)
        hits += best >= 0.5
    recall = hits / len(slide.planted)
    assert len(slide.planted) > 100
    assert recall >= 0.9, recall


def test_no_duplicates_and_glass_skipped(harvested: tuple[SynthSlide, HarvestReport, Path]
                                         ) -> None:
    slide, rep, _ = harvested
    rows = _objects(slide.dataset, "harvest")
    assert rep.tiles_on_tissue < rep.tiles_total  # glass tiles never segmented
    assert rep.seam_duplicates > 0  # the overlap produced duplicates, and they were removed
    shape = slide.rgb.shape[:2]
    masks = [_full(r["bbox_xyxy"], r["mask_rle"], shape) for r in rows]
    boxes = np.array([r["bbox_xyxy"] for r in rows])
    for i in range(len(rows)):
        ov = np.flatnonzero((boxes[:, 0] < boxes[i, 2]) & (boxes[:, 2] > boxes[i, 0]) &
                            (boxes[:, 1] < boxes[i, 3]) & (boxes[:, 3] > boxes[i, 1]))
        for j in ov[ov > i]:
            inter = (masks[i] & masks[j]).sum()
            assert inter / (masks[i] | masks[j]).sum() <= 0.5
    # nothing on the glass half, every tile of the report lies on tissue
    assert max(r["centroid_xy"][0] for r in rows) < TISSUE_COLS + 5
    for r in rows:
        tx, _ty, _tw, _th = json.loads(r["extra"])["tile_xywh"]
        assert tx < TISSUE_COLS


def test_labels_and_exclusion(harvested: tuple[SynthSlide, HarvestReport, Path]) -> None:
    slide, rep, _ = harvested
    rows = _objects(slide.dataset, "harvest")
    ingest = {r["object_key"]: r for r in _objects(slide.dataset, "ingest")}
    figs = {k: r for k, r in ingest.items() if r["label"] in ("mitotic_figure", "mitotic_like")}
    assert rep.matched == len(figs)
    radius_px = CFG.exclusion_radius_um / MPP
    for r in rows:
        assert r["label_origin"] == "model"
        assert r["mask_origin"] == "classical"
        assert 2.25 <= r["area_um2"] <= 225.0
        assert r["object_key"].startswith(f"{slide.image_key}/harvest/")
        if r["label"] == "background":
            for a in ingest.values():
                d = math.dist(r["centroid_xy"], a["centroid_xy"])
                assert d > radius_px, (r["object_key"], a["object_key"], d)
        elif r["qa_flags"] in (["duplicate_of_annotation"], ["fragment_of_figure"]):
            assert r["parent_key"] in figs
            assert r["label"] == figs[r["parent_key"]]["label"]
            assert r["qa_state"] == "rejected"
        else:
            assert r["label"] == "other_cell" and r["qa_flags"] == ["near_annotation"]
            assert r["qa_state"] == "flagged" and r["parent_key"] in ingest
    # the granulocyte annotation is not a figure: nothing matches it, its neighbourhood
    # is flagged, never background
    gran = [k for k, a in ingest.items() if a["label"] == "granulocyte"]
    assert gran and not any(r["parent_key"] == gran[0] and r["label"] == "granulocyte"
                            for r in rows)


def _inside(xy: list[float], box: list[float]) -> bool:
    return box[0] <= xy[0] <= box[2] and box[1] <= xy[1] <= box[3]


def test_no_fragment_of_a_figure_is_a_negative(
        harvested: tuple[SynthSlide, HarvestReport, Path]) -> None:
    slide, rep, _ = harvested
    rows = _objects(slide.dataset, "harvest")
    ingest = {r["object_key"]: r for r in _objects(slide.dataset, "ingest")}
    figs = {k: r for k, r in ingest.items() if r["label"] in ("mitotic_figure", "mitotic_like")}
    negatives = [r for r in rows if r["qa_state"] != "rejected"]
    shape = slide.rgb.shape[:2]
    # no negative is centred inside a figure's box (the annotation's or its mask's)
    for r in negatives:
        for a in figs.values():
            assert not _inside(r["centroid_xy"], a["source_bbox_xyxy"]), r["object_key"]
    parts = [r for r in rows if r["qa_flags"] == ["fragment_of_figure"]]
    assert rep.parts == len(parts) > 0
    for r in parts:
        assert _inside(r["centroid_xy"], figs[r["parent_key"]]["source_bbox_xyxy"])
    # the planted multi-part figures: every object overlapping a mass belongs to the figure
    multi = {k: p for k, p in slide.annotated.items() if p.n_parts >= 2}
    assert multi, "the synthetic slide plants multi-part figures"
    for key, p in multi.items():
        x, y = p.offset_xy
        h, w = p.mask.shape
        truth = np.zeros(shape, bool)
        truth[y:y + h, x:x + w] = p.mask
        for r in rows:
            m = _full(r["bbox_xyxy"], r["mask_rle"], shape)
            if (m & truth).sum() > 0.5 * m.sum():
                assert r["parent_key"] == key and r["qa_state"] == "rejected", r["object_key"]
    # a separate neighbouring nucleus (outside every figure box) stays a valid negative
    near = [r for r in rows if r["qa_flags"] == ["near_annotation"]
            and r["parent_key"] in figs]
    assert near and all(r["label"] == "other_cell" and r["qa_state"] == "flagged"
                        for r in near)


def test_annotation_masks_filled(harvested: tuple[SynthSlide, HarvestReport, Path]) -> None:
    slide, rep, _ = harvested
    ingest = {r["object_key"]: r for r in _objects(slide.dataset, "ingest")}
    assert rep.annotation_masks_filled == rep.matched
    shape = slide.rgb.shape[:2]
    for key, planted in slide.annotated.items():
        a = ingest[key]
        if a["label"] == "granulocyte":
            assert a["mask_rle"] is None  # other rows untouched
            continue
        assert a["mask_origin"] == "classical"
        m = _full(a["bbox_xyxy"], a["mask_rle"], shape)
        x, y = planted.offset_xy
        h, w = planted.mask.shape
        truth = np.zeros(shape, bool)
        truth[y:y + h, x:x + w] = planted.mask
        assert (m & truth).sum() / (m | truth).sum() >= 0.5
        extra = json.loads(a["extra"])
        assert extra["harvest-fill"]["from"].startswith(f"{slide.image_key}/harvest/")
        assert len(a["source_bbox_xyxy"]) == 4 and a["source_bbox_xyxy"] != a["bbox_xyxy"]


def test_overlay_written(harvested: tuple[SynthSlide, HarvestReport, Path]) -> None:
    _, rep, png = harvested
    import cv2

    img = cv2.imread(str(png))
    assert img is not None and img.shape[:2] == (TILE, TILE)
    assert rep.overlay == str(png)


def test_rerun_resumes_and_is_deterministic(harvested: tuple[SynthSlide, HarvestReport, Path],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    slide, rep, _ = harvested
    before = _objects(slide.dataset, "harvest")
    import mfcurate.pipelines.harvest as hv

    def boom(payload: dict) -> None:
        raise AssertionError("a finished tile task was recomputed")

    monkeypatch.setattr(hv, "harvest_tiles", boom)
    rep2 = harvest_dataset(slide.dataset, CFG)
    after = _objects(slide.dataset, "harvest")
    assert [r["object_key"] for r in after] == [r["object_key"] for r in before]
    assert [r["mask_rle"] for r in after] == [r["mask_rle"] for r in before]
    assert rep2.background == rep.background
    # annotation masks filled by the first run are refreshed, not duplicated
    assert rep2.annotation_masks_filled == rep.annotation_masks_filled


def test_near_policy_drop_and_regions(tmp_path: Path) -> None:
    slide = make_synth_dataset(tmp_path, seed=3)
    cfg = HarvestConfig(tile=TILE, overlap=OVERLAP, near_policy="drop", regions="annotations",
                        region_margin_um=10.0, fill_annotation_masks=False)
    rep = harvest_dataset(slide.dataset, cfg, sources=[SOURCE])
    rows = _objects(slide.dataset, "harvest")
    assert rep.near == 0 and rep.near_dropped > 0
    assert {r["label"] for r in rows} <= {"background", "mitotic_figure", "mitotic_like"}
    assert rep.tiles_on_tissue <= rep.tiles_total
    ingest = _objects(slide.dataset, "ingest")
    assert all(r["mask_rle"] is None for r in ingest)  # fill disabled
    # only tiles near annotations were segmented
    margin = 10.0 / MPP
    boxes = np.array([r["bbox_xyxy"] for r in ingest]) + np.array([-1, -1, 1, 1]) * margin
    for r in rows:
        tx, ty, tw, th = json.loads(r["extra"])["tile_xywh"]
        assert ((boxes[:, 0] < tx + tw) & (boxes[:, 2] > tx) & (boxes[:, 1] < ty + th) &
                (boxes[:, 3] > ty)).any()
    with pytest.raises(Exception, match="not in"):
        harvest_dataset(slide.dataset, cfg, sources=["nope"])
