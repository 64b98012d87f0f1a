"""The paper's build and its ablations as recipes: every step and option known; the paper
run refuses to run silently on CPU; an ablation runs end to end in its quick form."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest
import torch

from mfcurate.classifier.train import TrainConfig
from mfcurate.errors import UsageError
from mfcurate.pipelines.steps import all_steps
from mfcurate.recipe import Recipe, _check_options, resolve_paths, run_recipe, step_name

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted((REPO / "pipelines").glob("*.toml"))
TRAIN_OPTIONS = {f.name for f in fields(TrainConfig)} | {"out", "patch_store", "preset",
                                                          "only_sources"}


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_step_and_option_is_known(path: Path, tmp_path: Path) -> None:
    recipe = Recipe.load(path)
    registry = all_steps()
    for key, options in recipe.steps.items():
        fn = registry[step_name(key)]
        _check_options(fn, key, resolve_paths(options, tmp_path), str(path))
        if step_name(key) == "train-classifier":
            assert set(options) <= TRAIN_OPTIONS, (key, set(options) - TRAIN_OPTIONS)
    if path.name.startswith("ablation-"):
        compares = [k for k in recipe.steps if step_name(k) == "compare"]
        assert compares and step_name(list(recipe.steps)[-1]) == "compare"
        scored = {k.partition(":")[2] for k in recipe.steps if step_name(k) == "score"}
        for c in compares:
            assert {recipe.steps[c]["a"], recipe.steps[c]["b"]} <= scored
        assert recipe.run["holdout"] == ["midog++:test"]
        assert recipe.run["test_set"] == {"only_sources": ["midog++"], "species": ["human"]}


def test_paper_recipe_is_the_papers() -> None:
    recipe = Recipe.load(REPO / "pipelines" / "omgnet-pancancer.toml")
    assert [s["key"] for s in recipe.sources] == ["icpr2012", "tupac16", "ccmct", "cmc",
                                                   "midog++", "folder"]
    opts = {s["key"]: s["options"] for s in recipe.sources}
    assert opts["tupac16"]["annotations"] == "alternative"
    assert opts["ccmct"]["database"] == "ODAEL" and opts["cmc"]["database"] == "codael-roi"
    for name in ("refine-masks", "harvest", "detect"):
        assert recipe.steps[name]["sam_model"] == "vit_h"
        assert recipe.steps[name]["sam_checkpoint"].endswith("sam_vit_h_4b8939.pth")
    h = recipe.steps["harvest"]
    assert (h["points_per_side"], h["pred_iou_thresh"], h["stability_score_thresh"],
            h["min_area_um2"], h["max_area_um2"]) == (64, 0.8, 0.8, 2.25, 225.0)
    assert (h["regions"], h["within"]) == ("annotations", "tumour-region")
    t = recipe.steps["train-classifier"]
    assert (t["lr"], t["epochs"], t["seeds"]) == (1e-3, 30, 5) and t["pretrained"]
    assert t["holdout"] == ["midog++:test"] == recipe.steps["build-patches"]["holdout"]
    assert recipe.run["preset"] == "paper"


@pytest.mark.skipif(torch.cuda.is_available(), reason="the check is for machines without GPU")
def test_paper_run_without_gpu_says_what_and_how_long(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as err:
        run_recipe(REPO / "pipelines" / "omgnet-pancancer.toml",
                   overrides={"work_dir": str(tmp_path / "w")})
    msg = str(err.value)
    assert "no GPU" in msg and "5 seed(s) x 30 epochs" in msg and "CPU hours" in msg
    assert "--quick" in msg
    assert not (tmp_path / "w" / "run-log.json").exists()  # nothing ran


@pytest.mark.slow
def test_ablation_runs_end_to_end_quick(tmp_path: Path) -> None:
    """Fig. 6b (Original vs SAM-AUG) in its CI-sized form on synthetic data."""
    from rich.console import Console

    from mfcurate.synth.classifier_data import SyntheticSplit, build_classifier_dataset

    torch.set_num_threads(2)
    ds = build_classifier_dataset(tmp_path / "synth", splits=SyntheticSplit(train=3, test=1),
                                  size_px=256, n_mitotic=6, n_mitotic_like=4, seed=5)
    overrides: dict[str, object] = {
        "work_dir": str(tmp_path / "w"), "dataset": str(ds), "preset": "quick", "workers": 1,
        "holdout": ["synthetic:test"], "test_set": {"only_sources": ["synthetic"]}}
    for arm in ("original", "sam-aug"):
        overrides[f"steps.train-classifier:{arm}.epochs"] = 1
        overrides[f"steps.train-classifier:{arm}.samples_per_epoch"] = 32
        overrides[f"steps.train-classifier:{arm}.val_fraction"] = 0.0
    res = run_recipe(REPO / "pipelines" / "ablation-samaug.toml", overrides=overrides,
                     console=Console(quiet=True))
    steps = {s["name"]: s["summary"] for s in res["steps"]}
    assert steps["build-patches"]["holdout"] == ["synthetic:test"]
    assert steps["train-classifier:original"]["members"] == 2
    for arm in ("original", "sam-aug"):
        assert set(steps[f"score:{arm}"]["member_f1"]) == {"seed-0", "seed-1"}
        assert steps[f"score:{arm}"]["images"] == 1 and steps[f"score:{arm}"]["threshold"] == 0.5
    cmp = steps["compare:original-vs-sam-aug"]
    assert cmp["overall"]["n_a"] == cmp["overall"]["n_b"] == 2 and 0 < cmp["overall"]["p"] <= 1
    doc = json.loads((tmp_path / "w" / "compare-original-vs-sam-aug.json").read_text())
    assert doc["a"] == "original" and doc["metric"] == "f1"
    # the original arm trained on figures and look-alikes only
    splits = json.loads((tmp_path / "w" / "original" / "splits.json").read_text())
    assert splits["selection"]["labels"] == ["mitotic_figure", "mitotic_like"]
    assert all(not k.endswith("img003.png") for m in splits["members"]
               for k in m["train_images"] + m["val_images"])  # the test image is held out
