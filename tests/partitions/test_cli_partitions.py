"""build-patches / train-classifier / detect --dataset through the CLI: holdout and filters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mfcurate.classifier.patches import PatchStore
from mfcurate.cli import app
from tests.partitions.conftest import add_source


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli-part") / "ds"
    rng = np.random.default_rng(1)

    def px() -> np.ndarray:
        return rng.integers(120, 255, (256, 256, 3), dtype=np.uint8)

    add_source(root, "midog++", [("1.png", "train", "human", "human breast cancer"),
                                 ("2.png", "test", "human", "human breast cancer"),
                                 ("3.png", "train", "canine", "canine lymphoma")],
               files={"1.png": px(), "2.png": px(), "3.png": px()})
    add_source(root, "ccmct", [("a.png", "train", "canine", "canine mast cell tumour"),
                               ("b.png", "test", "canine", "canine mast cell tumour")],
               files={"a.png": px(), "b.png": px()})
    return root


def test_build_patches_holds_out_midogpp_test_only(dataset: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "store"
    r = runner.invoke(app, ["build-patches", str(dataset), "--out", str(out), "--size", "16",
                            "--mpp", "0.5"])
    assert r.exit_code == 0, r.output
    assert "held out midog++:test" in " ".join(r.output.split())
    store = PatchStore(out)
    assert set(store.image_keys) == {"midog++/1.png", "midog++/3.png", "ccmct/a.png",
                                     "ccmct/b.png"}  # CCMCT's test WSI is training data
    assert store.meta["selection"]["holdout"] == [["midog++", "test"]]
    r = runner.invoke(app, ["build-patches", str(dataset), "--out", str(tmp_path / "h"),
                            "--size", "16", "--mpp", "0.5", "--species", "human",
                            "--label", "mitotic_figure", "--holdout", "none"])
    assert r.exit_code == 0, r.output
    human = PatchStore(tmp_path / "h")
    assert set(human.image_keys) == {"midog++/1.png", "midog++/2.png"}
    assert set(human.index.column("label").to_pylist()) == {"mitotic_figure"}
    r = runner.invoke(app, ["build-patches", str(dataset), "--holdout", "tupac16:test"])
    assert r.exit_code == 2 and "tupac16" in r.output


def test_train_classifier_pool_and_splits_record(dataset: Path, tmp_path: Path) -> None:
    torch.set_num_threads(2)
    runner = CliRunner()
    store = tmp_path / "store"
    r = runner.invoke(app, ["build-patches", str(dataset), "--out", str(store), "--size",
                            "16", "--mpp", "0.5", "--holdout", "none"])
    assert r.exit_code == 0, r.output
    run = tmp_path / "run"
    r = runner.invoke(app, ["train-classifier", str(dataset), "--patches", str(store),
                            "--out", str(run), "--species", "canine", "--epochs", "1",
                            "--samples-per-epoch", "8", "--batch-size", "8",
                            "--val-fraction", "0.3", "--no-progress", "--accelerator", "cpu"])
    assert r.exit_code == 0, r.output
    splits = json.loads((run / "splits.json").read_text())
    assert splits["holdout"] == [["midog++", "test"]]  # the default
    member = splits["members"][0]
    pool = set(member["train_images"]) | set(member["val_images"])
    assert pool == {"midog++/3.png", "ccmct/a.png", "ccmct/b.png"}  # canine, not held out
    untouched = (run / "val_images.txt").read_text().split()
    assert set(untouched[-len(member["val_images"]):]) == set(member["val_images"])
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["selection"]["species"] == ["canine"]


def test_detect_dataset_takes_selection_options(dataset: Path, tmp_path: Path) -> None:
    from mfcurate.classifier.detect import dataset_jobs
    from mfcurate.dataset import Selection

    jobs = dataset_jobs(dataset, "test", selection=Selection(sources=("ccmct",)))
    assert [j.name for j in jobs] == ["ccmct/b.png"]
    keys = tmp_path / "k.txt"
    keys.write_text("midog++/1.png\nccmct/a.png\n")
    from mfcurate.cli._select import selection_options

    sel = Selection.from_options(**selection_options(species=["human"], images=[keys]))
    assert [j.name for j in dataset_jobs(dataset, "all", selection=sel)] == ["midog++/1.png"]
    r = CliRunner().invoke(app, ["detect", str(tmp_path / "x.png"), "--source", "ccmct",
                                 "--models", str(tmp_path / "none")])
    assert r.exit_code == 2 and "--dataset" in r.output
