"""MIDOG-protocol scorer: crafted point sets, an independent implementation, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mfcurate.dataset import Dataset
from mfcurate.geometry import disk_mask, mask_to_record
from mfcurate.schemas.tables import ImageRecord, ObjectRecord, images_table, objects_table
from mfcurate.scoring.midog import (
    Counts,
    Detections,
    ImageTruth,
    count,
    match_points,
    score_detections,
    tune_threshold,
)

REPO = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------- crafted point sets
def test_duplicates_are_false_positives() -> None:
    tp, fp, fn, pairs = match_points([[0, 0]], [[1, 0], [0, 1], [0.5, 0.5]])
    assert (tp, fp, fn) == (1, 2, 0)
    assert pairs == [(0, 2)]  # the nearest one


def test_radius_is_inclusive_and_exact() -> None:
    assert match_points([[0, 0]], [[7.5, 0]])[:3] == (1, 0, 0)
    assert match_points([[0, 0]], [[7.5 + 1e-6, 0]])[:3] == (0, 1, 1)
    # 30 px at 0.25 µm/px is exactly 7.5 µm
    gt = np.array([[100.0, 100.0]]) * 0.25
    assert match_points(gt, np.array([[130.0, 100.0]]) * 0.25)[:3] == (1, 0, 0)
    assert match_points(gt, np.array([[131.0, 100.0]]) * 0.25)[:3] == (0, 1, 1)


def test_greedy_in_ground_truth_order_not_optimal() -> None:
    # gt0 takes the detection between both; gt1 then has none (Hungarian would give 2 TP)
    gt = [[0, 0], [10, 0]]
    det = [[5, 0], [-6, 0]]
    tp, fp, fn, pairs = match_points(gt, det)
    assert pairs == [(0, 0)] and (tp, fp, fn) == (1, 1, 1)
    # reversed ground-truth order changes the outcome
    tp2, _, _, pairs2 = match_points(gt[::-1], det)
    assert pairs2 == [(0, 0), (1, 1)] and tp2 == 2


def test_ties_go_to_the_earlier_detection() -> None:
    _, _, _, pairs = match_points([[0, 0]], [[3, 0], [-3, 0], [0, 3]])
    assert pairs == [(0, 0)]


def test_image_without_mitotic_figures_all_fp() -> None:
    assert match_points(np.zeros((0, 2)), [[1, 1], [5, 5]])[:3] == (0, 2, 0)
    assert match_points([[1, 1]], np.zeros((0, 2)))[:3] == (0, 0, 1)


def test_different_mpp_per_image() -> None:
    # a detection 20 px away: 5 µm at 0.25 µm/px (hit), 10 µm at 0.5 µm/px (miss)
    truth = {
        "a": ImageTruth("a", np.array([[100.0, 100.0]]), (0.25, 0.25), "t1", "test"),
        "b": ImageTruth("b", np.array([[100.0, 100.0]]), (0.5, 0.5), "t2", "test"),
    }
    det = Detections({"a": np.array([[120.0, 100.0]]), "b": np.array([[120.0, 100.0]])},
                     {"a": np.array([0.9]), "b": np.array([0.9])})
    overall, per_t, per_i = count(truth, det, 0.5)
    assert (per_i["a"].tp, per_i["b"].tp) == (1, 0)
    assert (overall.tp, overall.fp, overall.fn) == (1, 1, 1)
    assert per_t["t1"].f1 == 1.0 and per_t["t2"].f1 == 0.0
    # threshold is strict: score 0.9 with threshold 0.9 does not count
    assert count(truth, det, 0.9)[0].tp == 0


def test_counts_rates() -> None:
    c = Counts(3, 1, 2)
    assert c.precision == pytest.approx(0.75) and c.recall == pytest.approx(0.6)
    assert c.f1 == pytest.approx(6 / 9)
    assert Counts().f1 == 0.0 and Counts().precision == 0.0


def test_tune_threshold_picks_best_f1() -> None:
    truth = {"a": ImageTruth("a", np.array([[0.0, 0.0], [100.0, 0.0]]), (1.0, 1.0), "t", "val")}
    det = Detections({"a": np.array([[0.0, 0.0], [100.0, 0.0], [50.0, 50.0]])},
                     {"a": np.array([0.8, 0.7, 0.6])})
    thr, f1 = tune_threshold(truth, det)
    assert 0.6 <= thr < 0.7 and f1 == pytest.approx(1.0)


# ----------------------------------------------------------------- independent implementation
def _reference(gt: np.ndarray, det: np.ndarray, r: float) -> tuple[int, int, int]:
    """Straightforward O(N*M) version of the evalutils rule."""
    used: set[int] = set()
    tp = 0
    for g in gt:
        best, best_d = None, None
        for j, d in enumerate(det):
            if j in used:
                continue
            dist = float(np.sqrt(((g - d) ** 2).sum()))
            if dist <= r and (best_d is None or dist < best_d):
                best, best_d = j, dist
        if best is not None:
            used.add(best)
            tp += 1
    return tp, len(det) - tp, len(gt) - tp


def test_agrees_with_reference_on_random_sets() -> None:
    rng = np.random.default_rng(7)
    for _ in range(300):
        n, m = int(rng.integers(0, 12)), int(rng.integers(0, 15))
        gt = rng.uniform(0, 40, (n, 2)).round(1)  # rounding makes exact ties frequent
        near = gt[rng.random(n) < 0.6]
        det = np.concatenate([near + rng.normal(0, 4, near.shape).round(1),
                              rng.uniform(0, 40, (m, 2)).round(1)])
        r = float(rng.choice([2.0, 5.0, 7.5]))
        assert match_points(gt, det, r)[:3] == _reference(gt, det, r)


# ----------------------------------------------------------------- dataset + CLI
def _dataset(tmp: Path, mpp: float | None = 0.25) -> Path:
    """Two test images (two tumour types) and one val image with known MF positions."""
    imgs, objs = [], []
    for i, (split, tumour) in enumerate([("test", "breast"), ("test", "lung"), ("val", "breast")]):
        key = f"s/im{i}.png"
        imgs.append(ImageRecord(key, "s", f"im{i}.png", f"im{i}.png", 1000, 1000, mpp, mpp,
                                tumour_type=tumour, split=split, file_found=False))
        for j, (x, y, label) in enumerate([(100, 100, "mitotic_figure"),
                                           (400, 400, "mitotic_figure"),
                                           (700, 700, "mitotic_like")]):
            box, m = disk_mask((x, y), 6)
            rec = mask_to_record(m, (int(box[0]), int(box[1])))
            assert rec is not None
            b, rle, area, c = rec
            objs.append(ObjectRecord(f"{key}/{j}", key, "s", str(j), label, "pixel", c, b,
                                     mask_rle=rle, mask_origin="source", area_px=area))
    path = tmp / "ds"
    Dataset.open(path, create=True).commit_source("s", images_table(imgs),
                                                  [objects_table(objs)], info={}, root=tmp)
    return path


def _write_csv(path: Path, rows: list[tuple[str, float, float, float]]) -> Path:
    path.write_text("image,x,y,score\n" + "".join(f"{a},{b},{c},{d}\n" for a, b, c, d in rows))
    return path


def test_score_dataset_and_threshold_tuned_on_val(tmp_path: Path) -> None:
    ds = _dataset(tmp_path)
    rows = [
        ("im0.png", 101, 99, 0.9), ("s/im0.png", 402, 401, 0.8),  # 2 TP (name or key)
        ("im0.png", 700, 700, 0.7),                                # FP on the imposter
        ("im1.png", 100, 100, 0.95), ("im1.png", 101, 101, 0.96),  # TP + duplicate FP
        ("im2.png", 100, 100, 0.9), ("im2.png", 400, 400, 0.9), ("im2.png", 700, 700, 0.72),
    ]
    csv = _write_csv(tmp_path / "det.csv", rows)
    res = score_detections(csv, ds, split="test", threshold=0.5)
    assert res.overall.to_dict()["tp"] == 3 and res.overall.fp == 2 and res.overall.fn == 1
    assert res.per_tumour["s | lung"].to_dict() == {"tp": 1, "fp": 1, "fn": 1, "precision": 0.5,
                                                "recall": 0.5, "f1": 0.5}
    # no run record: nothing tells which images were never trained on, so no tuning
    untuned = score_detections(csv, ds, split="test")
    assert untuned.threshold == 0.5 and "no run record" in untuned.threshold_source
    tuned = score_detections(csv, ds, split="test", tune_split="val")
    assert tuned.threshold_source.startswith("tuned on split val")
    assert tuned.tuned_on == ["s/im2.png"]
    assert 0.72 <= tuned.threshold < 0.9  # removes the val imposter hit
    assert tuned.overall.fp == 1  # the imposter hit (0.7) is gone, the duplicate stays


def test_score_cli_json_and_plots(tmp_path: Path) -> None:
    ds = _dataset(tmp_path)
    csv = _write_csv(tmp_path / "det.csv", [("im0.png", 100, 100, 0.9), ("im1.png", 5, 5, 0.9)])
    out = tmp_path / "s.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-m", "mfcurate", "score", "--detections", str(csv),
                        "--dataset", str(ds), "--split", "test", "--threshold", "0.5",
                        "--json", str(out), "--plots", str(tmp_path / "plots")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert doc["overall"] == {"tp": 1, "fp": 1, "fn": 3, "precision": 0.5, "recall": 0.25,
                              "f1": pytest.approx(2 / 6)}
    assert set(doc["per_tumour"]) == {"s | breast", "s | lung"}
    assert doc["n_images"] == 2 and doc["n_mitotic_figures"] == 4
    assert (tmp_path / "plots" / "pr_curve.png").stat().st_size > 1000
    assert (tmp_path / "plots" / "f1_per_tumour.png").stat().st_size > 1000
    # compare two "runs" of one seed each
    r2 = subprocess.run([sys.executable, "-m", "mfcurate", "score", "--compare", str(out),
                         "--compare", str(out), "--against", str(out), "--json",
                         str(tmp_path / "cmp.json")], capture_output=True, text=True, env=env,
                        timeout=120)
    assert r2.returncode == 0, r2.stderr
    assert json.loads((tmp_path / "cmp.json").read_text())["overall"]["n_a"] == 2


def test_image_without_mpp_is_an_error_unless_given(tmp_path: Path) -> None:
    from mfcurate.errors import DatasetError

    ds = _dataset(tmp_path, mpp=None)
    csv = _write_csv(tmp_path / "det.csv", [("im0.png", 100, 100, 0.9)])
    with pytest.raises(DatasetError, match="no µm/px"):
        score_detections(csv, ds, threshold=0.5)
    res = score_detections(csv, ds, threshold=0.5, mpp=0.25)
    assert res.overall.tp == 1


def test_bad_inputs(tmp_path: Path) -> None:
    from mfcurate.errors import SourceFormatError

    ds = _dataset(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("image,x,y\nim0.png,1,2\n")
    with pytest.raises(SourceFormatError, match="missing column"):
        score_detections(bad, ds)
    bad.write_text("image,x,y,score\nim0.png,1,abc,0.5\n")
    with pytest.raises(SourceFormatError, match="line 2"):
        score_detections(bad, ds)
    bad.write_text("image,x,y,score\nnope.png,1,1,0.5\n")
    with pytest.raises(SourceFormatError, match="not in the dataset"):
        score_detections(bad, ds)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-m", "mfcurate", "score", "--detections", str(bad),
                        "--dataset", str(ds)], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 1 and "nope.png" in r.stderr and "Traceback" not in r.stderr
