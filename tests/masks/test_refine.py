"""refine-masks end to end on synthetic datasets with exact planted masks."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import torch
from synthdata import SOURCE, env, make_dataset, object_mask, planted_mask, python

from mfcurate.dataset import Dataset
from mfcurate.pipelines.refine_masks import RefineConfig, plan_windows, refine_masks


def _rows(ds_dir):
    t = Dataset.open(ds_dir).objects()
    return {r["object_key"]: r for r in t.to_pylist()}


def test_refine_masks_classical_end_to_end(tmp_path):
    ds_dir, truth = make_dataset(tmp_path, n_images=2)
    before = _rows(ds_dir)
    summary = refine_masks(ds_dir)
    after = _rows(ds_dir)
    assert set(after) == set(before)  # nothing lost, nothing added
    refined = [k for k, r in before.items()
               if r["label"] in ("mitotic_figure", "mitotic_like") and r["mask_origin"] is None]
    assert summary.kept == len(refined) and summary.images == 2
    ious = []
    for k, r in after.items():
        b = before[k]
        # untouched columns stay
        for col in ("image_key", "label", "label_origin", "votes", "source_annotation_id",
                    "source_file", "centroid_xy"):
            assert r[col] == b[col], (k, col)
        assert json.loads(r["extra"])["note"] == json.loads(b["extra"])["note"]
        if k in refined:
            assert r["mask_origin"] == "classical" and r["mask_rle"]
            assert r["qa_state"] in ("unreviewed", "flagged")
            extra = json.loads(r["extra"])
            assert r["source_bbox_xyxy"] == b["bbox_xyxy"]  # the prompt box stays
            assert extra["refine"]["strategy"]
            assert r["area_um2"] == pytest.approx(r["area_px"] * 0.25 * 0.25)
            m = object_mask(r, (256, 256))
            assert m.sum() == r["area_px"]
            ys, xs = np.nonzero(m)  # bbox is the mask's tight box
            assert r["bbox_xyxy"] == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            g = planted_mask(truth[k], (256, 256))
            ious.append((m & g).sum() / (m | g).sum())
        else:  # source masks and non-figures are kept as they were
            assert r == b, k
    assert np.mean(ious) > 0.85, ious
    # a rerun reuses the per-image results and gives the same table
    refine_masks(ds_dir)
    assert _rows(ds_dir) == after
    assert not Dataset.open(ds_dir).verify()


def test_overwrite_replaces_source_masks(tmp_path):
    ds_dir, _ = make_dataset(tmp_path, n_images=1)
    key = f"{SOURCE}/00/0"
    assert _rows(ds_dir)[key]["mask_origin"] == "source"
    refine_masks(ds_dir)
    assert _rows(ds_dir)[key]["mask_origin"] == "source"
    refine_masks(ds_dir, RefineConfig(overwrite=True))
    r = _rows(ds_dir)[key]
    assert r["mask_origin"] == "classical"
    # the prompt is the annotation's box, not the old mask's box
    assert r["source_bbox_xyxy"] == _rows(ds_dir)[key]["source_bbox_xyxy"]
    assert json.loads(r["extra"])["refine"]["strategy"]


def test_whole_slide_source_reads_regions(tmp_path):
    ds_dir, truth = make_dataset(tmp_path, n_images=1, size=512, wsi_image=True,
                                 with_source_mask=False)
    summary = refine_masks(ds_dir, RefineConfig(window="context"))
    assert summary.kept == 6
    for k, r in _rows(ds_dir).items():
        if r["mask_origin"] == "classical":
            g = planted_mask(truth[k], (512, 512))
            m = object_mask(r, (512, 512))
            assert (m & g).sum() / (m | g).sum() > 0.6
            assert json.loads(r["extra"])["refine"]["window_px"] == 256


def test_plan_windows_covers_every_box_once():
    rng = np.random.default_rng(0)
    c = rng.uniform(0, 3000, (200, 2))
    boxes = np.concatenate([c - 25, c + 25], axis=1)
    for side in (256, 1024):
        wins = plan_windows(boxes, side)
        idx = sorted(i for _, _, ii in wins for i in ii)
        assert idx == list(range(200))
        for x, y, ii in wins:
            b = boxes[ii]
            assert (b[:, 0] >= x).all() and (b[:, 2] <= x + side).all()
            assert (b[:, 1] >= y).all() and (b[:, 3] <= y + side).all()
    assert len(plan_windows(boxes, 1024)) < len(plan_windows(boxes, 256))
    # an image no larger than the window is one window, boxes at its edges included
    edge = np.array([[0, 0, 50, 50], [974, 974, 1024, 1024], [0, 990, 30, 1024.]])
    assert plan_windows(edge, 1024, bounds=(1024, 1024)) == [(0, 0, [0, 1, 2])]


def test_cli_with_tiny_sam_checkpoint(tmp_path):
    from mfcurate.segment.sam_models import build_tiny_sam, save_checkpoint

    ds_dir, _ = make_dataset(tmp_path, n_images=1, n_mitotic=1, n_like=0,
                             with_source_mask=False)
    from typer.testing import CliRunner

    from mfcurate.cli import app

    torch.set_num_threads(1)
    ckpt = save_checkpoint(build_tiny_sam(seed=0), tmp_path / "tiny.pth")
    # in-process (the torch import is shared with the other tests); same CLI code path
    res = CliRunner().invoke(app, ["refine-masks", str(ds_dir), "--segmenter", "sam",
                                   "--sam-checkpoint", str(ckpt), "--sam-model", "tiny",
                                   "--window", "context"])
    assert res.exit_code == 0, res.output
    assert "refined 1 masks" in res.output
    rows = [r for r in _rows(ds_dir).values() if r["mask_rle"]]
    assert len(rows) == 1
    for r in rows:
        assert r["mask_origin"] in ("sam_box", "disk")
        info = json.loads(r["extra"])["refine"]
        assert info["segmenter"] == "sam" and info["window_px"] == 256
        # a random tiny SAM gives poor masks: QA must have looked at them
        assert info["initial_flags"] or r["qa_state"] == "unreviewed"


def test_cli_errors(tmp_path):
    ds_dir, _ = make_dataset(tmp_path, n_images=1)
    p = subprocess.run([python(), "-m", "mfcurate", "refine-masks", str(ds_dir),
                        "--segmenter", "sam"], env=env(), capture_output=True, text=True)
    assert p.returncode == 2 and "--sam-checkpoint" in p.stderr
    p = subprocess.run([python(), "-m", "mfcurate", "refine-masks", str(tmp_path / "nope")],
                       env=env(), capture_output=True, text=True)
    assert p.returncode == 1 and "nope" in p.stderr
    p = subprocess.run([python(), "-m", "mfcurate", "refine-masks", str(ds_dir), "--segmenter",
                        "sam", "--sam-checkpoint", str(tmp_path / "x.pth")], env=env(),
                       capture_output=True, text=True)
    assert p.returncode == 1 and "x.pth" in p.stderr


def test_registered_step_runs_with_demo_options(tmp_path):
    from rich.console import Console

    from mfcurate.pipelines.steps import StepContext, all_steps

    ds_dir, _ = make_dataset(tmp_path, n_images=1)
    console = Console(record=True)
    ctx = StepContext(dataset=ds_dir, work_dir=tmp_path, console=console)
    step = all_steps()["refine-masks"]
    assert "sam_checkpoint" in step.__code__.co_varnames  # how the demo finds SAM steps
    summary = step(ctx, sam_checkpoint=None)
    assert summary["kept"] == 5 and summary["images"] == 1
    assert "classical" in console.export_text()


def test_unreadable_image_is_a_clear_error_and_keeps_finished_work(tmp_path):
    from typer.testing import CliRunner

    from mfcurate.cli import app

    ds_dir, _ = make_dataset(tmp_path, n_images=2)
    (tmp_path / "src" / "img01.png").write_bytes(b"garbage")
    before = _rows(ds_dir)
    res = CliRunner().invoke(app, ["refine-masks", str(ds_dir)])
    assert res.exit_code == 1
    assert "img01.png" in res.output and "Traceback" not in res.output
    assert _rows(ds_dir) == before  # nothing merged
    assert len(list((ds_dir / ".work" / "refine-masks").glob("*.parquet"))) == 1
