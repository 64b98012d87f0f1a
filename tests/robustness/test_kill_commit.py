"""SIGKILL-like death at every write of a commit: the dataset is the old one or the new one.

A child process ingests a source into a copy of a dataset and dies with ``os._exit`` (no
cleanup, like SIGKILL) at the k-th ``os.replace`` or ``fsync`` of the atomic writers, for
every k until the ingest completes.  After each death: the dataset opens, every file matches
the manifest, it equals the old dataset or the finished one, and a rerun succeeds and
leaves no temporary behind.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mfcurate.dataset import Dataset
from tests.publish.synthetic_dataset import build_dataset

CHILD = r"""
import os, sys
import mfcurate.dataset.files as files
from mfcurate.cli import main

which, nth = sys.argv[1], int(sys.argv[2])
real = getattr(os, which)
calls = {"n": 0}

def dying(*args, **kwargs):
    calls["n"] += 1
    if calls["n"] == nth:
        os._exit(137)
    return real(*args, **kwargs)

setattr(files.os, which, dying)
sys.exit(main(["ingest", "tupac16", sys.argv[3], "--out", sys.argv[4]]))
"""


def _state(ds: Path) -> str:
    m = json.loads((ds / "manifest.json").read_text())
    return "new" if "tupac16" in m["sources"] else "old"


def _temporaries(ds: Path) -> list[Path]:
    return [p for p in ds.rglob(".*") if p.is_file() and p.name.endswith(".tmp")]


@pytest.mark.parametrize("which", ["replace", "fsync"])
def test_killed_at_every_write(which: str, tmp_path: Path) -> None:
    from mfcurate.synth.sources import generators

    pristine = build_dataset(tmp_path / "pristine", n_images=1, size=128)
    src = tmp_path / "tupac"
    generators()["tupac16"](src, seed=1)
    old_manifest = (pristine / "manifest.json").read_bytes()
    deaths = 0
    for nth in range(1, 40):
        ds = tmp_path / f"ds{nth}"
        shutil.copytree(pristine, ds)
        p = subprocess.run([sys.executable, "-c", CHILD, which, str(nth), str(src), str(ds)],
                           capture_output=True, text=True, timeout=300)
        if p.returncode == 0:
            break
        assert p.returncode == 137, p.stderr
        deaths += 1
        opened = Dataset.open(ds)
        assert opened.verify() == []
        if _state(ds) == "old":
            assert (ds / "manifest.json").read_bytes() == old_manifest
        rerun = subprocess.run([sys.executable, "-m", "mfcurate", "ingest", "tupac16", str(src),
                                "--out", str(ds)], capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr
        assert _state(ds) == "new" and Dataset.open(ds).verify() == []
        assert _temporaries(ds) == []
        shutil.rmtree(ds)
    assert deaths >= 3  # the commit has several write points, each one was hit
