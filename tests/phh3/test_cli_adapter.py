"""The command line (subprocess), ingestion through the ``phh3`` adapter, and the step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc

from mfcurate.dataset import Dataset

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "mfcurate", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300)


def test_cli_single_pair_into_a_dataset(pairs, tmp_path: Path) -> None:
    r = _run("register-phh3", str(pairs.root / "eosin" / "he.svs"),
             str(pairs.root / "eosin" / "phh3.svs"), "--out", str(tmp_path / "out"),
             "--dataset", str(tmp_path / "ds"), "--pair-id", "case1", "--overlays", "1",
             "--species", "canine", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "registered case1" in r.stdout and "ingested phh3" in r.stdout
    ds = Dataset.open(tmp_path / "ds")
    objs = ds.objects(["phh3"])
    assert objs.num_rows >= 28
    assert set(objs.column("label").to_pylist()) == {"mitotic_figure"}
    assert set(objs.column("label_origin").to_pylist()) == {"ihc"}
    assert set(objs.column("mask_origin").to_pylist()) == {"phh3"}
    extra = json.loads(objs.column("extra")[0].as_py())
    assert {"phh3_xy", "residual_um", "dab_mean", "pair_id"} <= set(extra)
    img = ds.images(["phh3"]).to_pylist()[0]
    assert img["image_key"] == "phh3/case1" and img["species"] == "canine"
    assert ds.image_path(img).resolve() == (pairs.root / "eosin" / "he.svs").resolve()
    assert img["file_found"] and img["mpp_x"] == 0.5


def test_cli_errors(pairs, tmp_path: Path) -> None:
    junk = tmp_path / "junk.svs"
    junk.write_bytes(b"garbage" * 50)
    r = _run("register-phh3", str(pairs.root / "eosin" / "he.svs"), str(junk), "--out",
             str(tmp_path / "out"), cwd=tmp_path)
    assert r.returncode == 1
    assert "junk.svs" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "he").exists()
    r = _run("register-phh3", "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert r.returncode == 2 and "--pairs" in r.stderr
    r = _run("register-phh3", "a.svs", "b.svs", "--method", "magic", cwd=tmp_path)
    assert r.returncode == 2 and "deconv or rgb" in r.stderr


def test_adapter_ingests_the_batch_output(batch, tmp_path: Path) -> None:
    from mfcurate.pipelines.phh3 import ingest_pairs

    out, rows = batch
    n_img, n_obj = ingest_pairs(out, tmp_path / "ds")
    assert n_img == 2 and n_obj == sum(r["n_objects"] for r in rows)
    ds = Dataset.open(tmp_path / "ds")
    objs = ds.objects(["phh3"])
    flagged = objs.filter(pc.equal(objs["qa_state"], "flagged"))
    for f in flagged.column("qa_flags").to_pylist():
        assert f  # a flagged object says why
    imgs = ds.images(["phh3"]).to_pylist()
    assert {i["tumour_type"] for i in imgs} == {"canine mast cell tumour"}


def test_step_is_registered() -> None:
    import inspect

    from mfcurate.pipelines.steps import all_steps

    fn = all_steps()["register-phh3"]
    assert {"pairs", "out", "synthetic_pairs", "method"} <= set(inspect.signature(fn).parameters)
