"""``mfcurate harvest`` on the command line and as a registered step."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from harvest_synth import OVERLAP, TILE, make_synth_dataset

from mfcurate.dataset import Dataset
from mfcurate.pipelines.steps import StepContext, all_steps

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "mfcurate", "harvest", *args],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def small_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synth_dataset(tmp_path_factory.mktemp("cli"), seed=5).dataset


def test_cli_harvest_and_errors(small_ds: Path, tmp_path: Path) -> None:
    png = tmp_path / "ov.png"
    res = _run(str(small_ds), "--sources", "synthetic", "--tile", str(TILE), "--overlap",
               str(OVERLAP), "--overlay", str(png))
    assert res.returncode == 0, res.stderr
    out = " ".join(res.stdout.split())
    assert "harvested 1 images with classical" in out
    assert "(4 of 10 skipped as glass" in out
    assert png.exists()
    counts = Dataset.open(small_ds).manifest["counts"]["by_label"]
    assert counts["background"] > 50


def test_cli_within_falls_back_without_regions(small_ds: Path) -> None:
    res = _run(str(small_ds), "--tile", str(TILE), "--overlap", str(OVERLAP),
               "--within", "tumour-region")
    assert res.returncode == 0, res.stderr
    out = " ".join(res.stdout.split())
    assert "harvested 0 images inside their tumour regions" in out
    assert "1 images have no tumour region and were harvested on all their tissue" in out


@pytest.mark.parametrize(("args", "code", "text"), [
    (["--sources", "nope"], 2, "nope"),
    (["--points-per-side", "32"], 2, "checkpoint"),
    (["--near-policy", "keep"], 2, "near_policy"),
    (["--within", "tumor"], 2, "within"),
    (["--checkpoint", "{tmp}/missing.pth"], 1, "missing.pth"),
])
def test_cli_errors_leave_dataset_unchanged(small_ds: Path, tmp_path: Path, args: list[str],
                                            code: int, text: str) -> None:
    from typer.testing import CliRunner

    from mfcurate.cli import app

    before = (small_ds / "manifest.json").read_text()
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    res = CliRunner().invoke(app, ["harvest", str(small_ds), *args])
    assert res.exit_code == code, res.output
    assert text in " ".join(res.output.split())
    assert (small_ds / "manifest.json").read_text() == before
    res = CliRunner().invoke(app, ["harvest", str(tmp_path / "not-a-dataset")])
    assert res.exit_code == 1 and "not-a-dataset" in res.output


def test_step_is_registered_and_writes_overlay(tmp_path: Path) -> None:
    slide = make_synth_dataset(tmp_path, seed=7, granulocyte=False)
    steps = all_steps()
    assert "harvest" in steps
    ctx = StepContext(dataset=slide.dataset, work_dir=tmp_path / "run")
    summary = steps["harvest"](ctx, tile=TILE, overlap=OVERLAP, sam_checkpoint=None)
    assert summary["background"] > 50 and summary["matched"] == 9
    assert (tmp_path / "run" / "harvest_overlay.png").exists()
    assert ctx.state["harvest"]["overlay"].endswith("harvest_overlay.png")
