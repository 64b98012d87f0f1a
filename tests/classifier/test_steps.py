"""The recipe steps hand their products to each other through ctx.state."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from rich.console import Console

from mfcurate.pipelines.steps import StepContext, all_steps


def test_steps_chain_through_state(synth_dataset: Path, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch, dark_blobs: object) -> None:
    torch.set_num_threads(2)
    steps = all_steps()
    for name in ("build-patches", "train-classifier", "detect", "score"):
        assert name in steps
    ctx = StepContext(dataset=synth_dataset, work_dir=tmp_path, console=Console(quiet=True),
                      seed=4)
    s1 = steps["build-patches"](ctx, preset="quick")
    assert s1["size_px"] == 32 and s1["patches"] > 0
    assert ctx.state["patch_store"] == str(tmp_path / "patches")
    s2 = steps["train-classifier"](ctx, preset="quick", epochs=1, samples_per_epoch=32, seeds=1,
                                   val_fraction=0.2, splits=["train"])
    assert s2["members"] == 1 and s2["epochs"] == 1
    assert Path(ctx.state["checkpoints"][0]).name == "model.pt"
    assert ctx.state["checkpoints"][0].startswith(str(tmp_path / "classifier"))
    # the classical segmenter belongs to another package; the step gets the test double here
    import mfcurate.classifier.detect as det

    monkeypatch.setattr(det, "_segmenter", lambda spec: dark_blobs)
    s3 = steps["detect"](ctx, preset="quick", all_tiles=True)
    assert s3["images"] == 3  # 2 test images (quick: at most 2) + the member's validation image
    assert set(ctx.state["detected_images"]) >= {"synthetic/img007.png", "synthetic/img008.png"}
    s4 = steps["score"](ctx)
    assert s4["images"] == 2 and s4["threshold_source"].startswith("tuned on the validation images")
    assert set(s4["member_f1"]) == {"seed-4"}
    assert (tmp_path / "score" / "members" / "seed-4.json").exists()
    assert (tmp_path / "score" / "score.json").exists()
    assert (tmp_path / "score" / "pr_curve.png").exists()
