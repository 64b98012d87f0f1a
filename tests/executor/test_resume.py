"""The executor: a run killed with SIGKILL resumes to exactly the uninterrupted result; the
same run through worker processes and a Dask LocalCluster gives the same table."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import pyarrow as pa
import pytest
from synthdata import REPO, env, make_dataset, python

from mfcurate.dataset import Dataset
from mfcurate.executor import Task, run_tasks
from mfcurate.pipelines.refine_masks import WORK_SUBDIR, refine_masks

N_IMAGES = 16


def _table(ds_dir):
    t = Dataset.open(ds_dir).objects()
    return t.take(pa.compute.sort_indices(t, sort_keys=[("object_key", "ascending")]))


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    ds_dir, _ = make_dataset(root, n_images=N_IMAGES, size=192, n_mitotic=2, n_like=2)
    pristine = root / "pristine"
    shutil.copytree(ds_dir, pristine)
    reference = root / "reference"
    shutil.copytree(ds_dir, reference)
    refine_masks(reference)  # the uninterrupted run
    return root, ds_dir, pristine, reference


def test_sigkill_midway_then_resume_gives_the_uninterrupted_result(datasets):
    _, ds_dir, _, reference = datasets
    work = ds_dir / ".work" / WORK_SUBDIR
    cmd = [python(), "-m", "mfcurate", "refine-masks", str(ds_dir)]
    proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list(work.glob("*.parquet"))) >= 2:
            break
        time.sleep(0.005)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = {p: p.stat().st_mtime_ns for p in work.glob("*.parquet")}
    assert 0 < len(done) < N_IMAGES, len(done)
    # killed before the merge: the dataset is still the committed, unrefined one
    assert not Dataset.open(ds_dir).verify()
    assert _table(ds_dir).column("mask_origin").null_count > 0
    p = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    outputs = list(work.glob("*.parquet"))
    assert len(outputs) == N_IMAGES
    assert not list(work.glob(".*.tmp"))
    for f, mtime in done.items():  # finished images were not recomputed
        assert f.stat().st_mtime_ns == mtime
    got, want = _table(ds_dir), _table(reference)
    keys = got.column("object_key").to_pylist()
    assert len(keys) == len(set(keys))  # none duplicated
    assert keys == want.column("object_key").to_pylist()  # none lost
    assert got.equals(want)


def test_process_pool_and_dask_localcluster_give_the_same_table(datasets, monkeypatch):
    root, _, pristine, reference = datasets
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the Dask workers import this checkout
    want = _table(reference)
    pool = root / "pool"
    shutil.copytree(pristine, pool)
    calls = []
    s = refine_masks(pool, workers=2, progress=lambda **kw: calls.append(kw))
    assert _table(pool).equals(want)
    assert sum(c.get("n", 0) for c in calls) == N_IMAGES
    assert sum(c.get("objects", 0) for c in calls) == s.kept
    dask = root / "dask"
    shutil.copytree(pristine, dask)
    refine_masks(dask, scheduler="local")
    assert _table(dask).equals(want)


def _square(x: int) -> pa.Table:
    return pa.table({"x": [x], "y": [x * x]})


def test_run_tasks_skips_done_and_replaces_corrupt_outputs(tmp_path):
    tasks = [Task(key=f"t{i}", payload=i) for i in range(4)]
    outs = run_tasks(_square, tasks, tmp_path)
    outs[1].write_bytes(b"truncated")  # a corrupt output is recomputed
    (tmp_path / ".stale.parquet.1234.tmp").write_bytes(b"x")  # a killed write's leftover
    seen = []
    outs2 = run_tasks(_square, tasks, tmp_path, progress=lambda **kw: seen.append(kw))
    assert outs2 == outs
    assert seen[0] == {"n": 3, "total": 4}
    assert [s.get("objects") for s in seen[1:]] == [1]
    assert not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(ValueError, match="unique"):
        run_tasks(_square, [tasks[0], tasks[0]], tmp_path)
