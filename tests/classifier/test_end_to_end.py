"""Acceptance: train on synthetic images on CPU, detect on held-out images, score >= 0.9 F1.

Also: splits by image never leak, ``--no-mask`` and ``--pretrained`` train through the CLI,
detection output formats, tiling does not change the candidates.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mfcurate.classifier.detect import (
    DetectConfig,
    dataset_jobs,
    hotspot_count,
    run_detection,
)
from mfcurate.classifier.patches import PatchConfig, PatchStore, build_patch_store
from mfcurate.classifier.train import TrainConfig, split_by_image, train_ensemble
from mfcurate.scoring import score_detections


@pytest.fixture(scope="module")
def trained(synth_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    torch.set_num_threads(2)
    work = tmp_path_factory.mktemp("cls-run")
    rep = build_patch_store(synth_dataset, work / "patches", PatchConfig(size_px=32, mpp=0.5))
    cfg = TrainConfig(epochs=3, batch_size=32, samples_per_epoch=192, balance="sampler",
                      splits=["train"], val_fraction=0.2, seed=11)
    train_ensemble(rep.out, work / "run", cfg)
    return {"dataset": synth_dataset, "store": rep.out, "run": work / "run", "work": work}


def test_detect_and_score_reach_f1_090(trained: dict[str, Path], dark_blobs: object) -> None:
    ds = trained["dataset"]
    jobs = dataset_jobs(ds, "test") + dataset_jobs(ds, "val")
    rep = run_detection(jobs, [trained["run"]], trained["work"] / "det",
                        cfg=DetectConfig(all_tiles=True, tile=256, overlap=48),
                        segmenter=dark_blobs)  # type: ignore[arg-type]
    # threshold tuned on the validation-split image (outside the training pool), applied to
    # the two test images; the run record (found through summary.json) allows it
    res = score_detections(rep.candidates_csv, ds, split="test", tune_split="val")
    assert res.threshold_source.startswith("tuned on split val")
    assert len(res.per_image) == 2
    assert res.overall.tp + res.overall.fn == 20  # 10 planted figures per test image
    assert res.overall.f1 >= 0.9, res.to_dict()["overall"]
    # outputs: CSV with the interface columns, QuPath GeoJSON points, summary with counts
    header = rep.detections_csv.read_text().splitlines()[0].replace('"', "")
    assert header.startswith("image,x,y,score")
    gj = json.loads(rep.geojson.read_text())
    n_det = len(rep.detections_csv.read_text().splitlines()) - 1
    assert len(gj["features"]) == n_det
    assert all(f["geometry"]["type"] == "Point" for f in gj["features"])
    summary = json.loads(rep.summary_json.read_text())
    for info in summary["images"].values():
        assert info["count_per_10hpf"]["count"] == info["mitotic_figures"]  # small image


def test_splits_are_by_image_and_recorded(trained: dict[str, Path]) -> None:
    splits = json.loads((trained["run"] / "splits.json").read_text())
    store = PatchStore(trained["store"])
    for member in splits["members"]:
        tr, va = set(member["train_images"]), set(member["val_images"])
        assert tr and va and not tr & va
        assert member["seed"] == 11
        # every training-pool patch is on exactly one side, by its image
        pool = store.positions(["train"])
        keys = store.image_keys[pool]
        assert {str(k) for k in keys} == tr | va
        assert member["n_val_patches"] == int(np.isin(keys, list(va)).sum())
    # split_by_image: reproducible, seed-dependent, disjoint, covers all images
    keys = [f"img{i}" for i in range(30)] * 5  # many objects per image
    a = split_by_image(keys, 0.1, 3)
    assert a == split_by_image(list(reversed(keys)), 0.1, 3)
    assert len(a[1]) == 3 and not set(a[0]) & set(a[1]) and set(a[0]) | set(a[1]) == set(keys)
    assert any(split_by_image(keys, 0.1, s)[1] != a[1] for s in range(4, 8))
    model = torch.load(trained["run"] / "seed-11" / "model.pt", weights_only=False)
    assert model["use_mask"] is True and model["patch"]["size_px"] == 32
    assert (trained["run"] / "seed-11" / "metrics.csv").read_text().count("val_loss") == 1


def test_cli_trains_no_mask_from_pretrained(trained: dict[str, Path], tmp_path: Path) -> None:
    from torchvision.models import resnet18

    weights = tmp_path / "r18.pth"
    torch.save(resnet18(weights=None).state_dict(), weights)
    from typer.testing import CliRunner

    from mfcurate.cli import app

    out = tmp_path / "run-nomask"
    runner = CliRunner()
    r = runner.invoke(app, [
        "train-classifier", str(trained["dataset"]), "--patches", str(trained["store"]),
        "--out", str(out), "--no-mask", "--pretrained", str(weights), "--epochs", "1",
        "--samples-per-epoch", "32", "--batch-size", "16", "--train-split", "train",
        "--val-fraction", "0", "--no-progress"])
    assert r.exit_code == 0, r.output[-2000:]
    model = torch.load(out / "seed-0" / "model.pt", weights_only=False)
    assert model["use_mask"] is False
    assert not any(k.startswith("mask_conv") for k in model["state_dict"])
    assert json.loads((out / "config.json").read_text())["train"]["pretrained"] == str(weights)
    # a bad option value is a usage error (exit 2), a missing store an input error (exit 1)
    r2 = runner.invoke(app, ["train-classifier", str(trained["dataset"]), "--patches",
                             str(trained["store"]), "--out", str(tmp_path / "x"),
                             "--balance", "odd"])
    assert r2.exit_code == 2 and "--balance" in r2.output
    r3 = runner.invoke(app, ["train-classifier", str(trained["dataset"]), "--patches",
                             str(tmp_path / "nope"), "--out", str(tmp_path / "y")])
    assert r3.exit_code == 1 and "not a patch store" in r3.output


def test_tiling_does_not_change_candidates(trained: dict[str, Path], dark_blobs: object) -> None:
    ds = trained["dataset"]
    job = dataset_jobs(ds, "test", limit=1)
    one = run_detection(job, [trained["run"]], trained["work"] / "one",
                        cfg=DetectConfig(all_tiles=True, tile=512, overlap=0),
                        segmenter=dark_blobs)  # type: ignore[arg-type]
    many = run_detection(job, [trained["run"]], trained["work"] / "many",
                         cfg=DetectConfig(all_tiles=True, tile=128, overlap=48),
                         segmenter=dark_blobs)  # type: ignore[arg-type]
    a = np.loadtxt(one.candidates_csv, delimiter=",", skiprows=1, usecols=(1, 2, 3))
    b = np.loadtxt(many.candidates_csv, delimiter=",", skiprows=1, usecols=(1, 2, 3))
    assert len(a) == len(b)
    a, b = a[np.lexsort(a[:, :2].T)], b[np.lexsort(b[:, :2].T)]
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_hotspot_count() -> None:
    # 0.25 µm/px: the 10-HPF circle has radius 868.6 µm = 3474 px
    pts = [[0, 0], [3500, 0], [3600, 0], [10000, 10000]]  # 0 and 3500 are 875 µm apart
    h = hotspot_count(pts, (0.25, 0.25))
    assert h["count"] == 2 and h["radius_um"] == pytest.approx(868.56, abs=0.01)
    assert hotspot_count([], (0.25, 0.25))["count"] == 0
    assert hotspot_count([[0, 0], [2000, 0]], (0.5, 0.5))["count"] == 1  # 1000 µm apart


def test_detect_cli_errors(trained: dict[str, Path], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mfcurate.cli import app
    from mfcurate.synth.images import write_png

    runner = CliRunner()
    img = tmp_path / "nompp.png"
    write_png(img, np.full((64, 64, 3), 200, np.uint8))  # no resolution in the file
    r = runner.invoke(app, ["detect", str(img), "--out", str(tmp_path / "d")])
    assert r.exit_code == 2 and "--models" in r.output
    r = runner.invoke(app, ["detect", str(tmp_path / "missing.png"), "--models",
                            str(trained["run"]), "--out", str(tmp_path / "d")])
    assert r.exit_code == 1 and "missing.png" in r.output
    r = runner.invoke(app, ["detect", str(img), "--models", str(trained["run"]),
                            "--all-tiles", "--out", str(tmp_path / "d")])
    assert r.exit_code == 1 and "µm/px" in r.output and "nompp.png" in r.output
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"junk")
    r = runner.invoke(app, ["detect", str(img), "--models", str(bad), "--mpp", "0.5",
                            "--out", str(tmp_path / "d")])
    assert r.exit_code == 1 and "bad.pt" in r.output


def test_training_resumes_and_refuses_other_settings(trained: dict[str, Path]) -> None:
    from mfcurate.errors import UsageError

    model = trained["run"] / "seed-11" / "model.pt"
    before = model.stat().st_mtime_ns
    cfg = TrainConfig(epochs=3, batch_size=32, samples_per_epoch=192, balance="sampler",
                      splits=["train"], val_fraction=0.2, seed=11)
    res = train_ensemble(trained["store"], trained["run"], cfg)  # done already: no training
    assert model.stat().st_mtime_ns == before and res[0].model_path == model
    cfg.lr = 0.5
    with pytest.raises(UsageError, match="other settings"):
        train_ensemble(trained["store"], trained["run"], cfg)


def test_detect_cli_classical_on_a_slide(trained: dict[str, Path], tmp_path: Path) -> None:
    """``mfcurate detect slide.svs`` with the classical segmenter on tissue tiles."""
    from typer.testing import CliRunner

    from mfcurate.cli import app
    from mfcurate.scoring.midog import match_points
    from mfcurate.synth import render_tissue
    from mfcurate.synth.wsi import write_svs

    rng = np.random.default_rng(21)
    h, w = 768, 1280
    tissue = np.zeros((h, w), bool)
    tissue[:, : w // 2 + 100] = True  # the right part is glass
    rgb, planted = render_tissue(rng, h, w, mpp=0.25, n_mitotic=6, n_mitotic_like=4,
                                 tissue_mask=tissue)
    slide = write_svs(tmp_path / "slide.svs", rgb, 0.25)
    out = tmp_path / "det"
    r = CliRunner().invoke(app, ["detect", str(slide), "--models", str(trained["run"]),
                                 "--out", str(out), "--tile", "512", "--overlap", "96"])
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "summary.json").read_text())["images"]["slide.svs"]
    assert summary["mpp"] == [pytest.approx(0.25), pytest.approx(0.25)]
    cand = np.loadtxt(out / "candidates.csv", delimiter=",", skiprows=1, usecols=(1, 2, 3),
                      ndmin=2)
    assert len(cand) == summary["candidates"] > 50
    assert (cand[:, 0] < w // 2 + 100 + 8).all()  # nothing on glass
    # (nearly) every planted mitotic figure is a candidate (within 7.5 µm)
    mf = np.array([p.centroid_xy for p in planted if p.kind == "mitotic_figure"])
    tp, *_ = match_points(mf * 0.25, cand[:, :2] * 0.25)
    assert tp >= len(mf) - 1
    gj = json.loads((out / "detections.geojson").read_text())
    assert len(gj["features"]) == summary["mitotic_figures"] == int((cand[:, 2] > 0.5).sum())
