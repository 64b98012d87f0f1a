"""``label-round new`` and ``import`` killed (SIGKILL) at every write, then rerun.

``new`` commits the round's new detections to the dataset's ``detect`` part and then writes
one package per rater.  Killed at the k-th ``os.replace`` (the pending marker, the part, the
manifest, every package file, each package swap, ``round.json``), for every k, and rerun
with the same options: the detections are those of an uninterrupted run (same count, same
keys, same rows, none twice), ``round.json`` and every package are byte-identical to it, no
marker or hidden build remains, and a second rerun changes nothing (``manifest.json`` and
the round folder byte-identical).  ``import`` killed between its ledger and its layer
commit: the rerun completes it with the same votes and times, no vote twice.
"""

from __future__ import annotations

import csv
import json
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from mfcurate.dataset import Dataset
from tests.labelround.conftest import qupath_export
from tests.publish.synthetic_dataset import build_dataset
from tests.robustness._harness import counted_writes, run, run_killed, tree_digest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A one-image dataset and a candidates file: two candidates round to one pixel."""
    tmp = tmp_path_factory.mktemp("klr")
    ds = build_dataset(tmp / "data", n_images=1, size=128, sources=("midog++",))
    cands = tmp / "candidates.csv"
    cands.write_text("image,x,y,score\nmidog++/0,20.2,30,0.9\nmidog++/0,20.4,30,0.8\n"
                     "midog++/0,100,110,0.7\nmidog++/0,60,5,0.2\n")
    return ds, cands


def _new(ds: Path, out: Path, cands: Path) -> list[str | Path]:
    return ["label-round", "new", ds, "--raters", "a,b", "--out", out, "--candidates", cands,
            "--id", "r1", "--seed", "1"]


def _fresh(src: Path, *paths: Path) -> None:
    """A new copy of the dataset at ``paths[0]``; nothing at the other paths."""
    for p in paths:
        shutil.rmtree(p, ignore_errors=True)
    shutil.copytree(src, paths[0])


def _state(ds: Path, out: Path) -> dict[str, Any]:
    """The round as written: its detections, round.json (but its time) and packages."""
    d = Dataset.open(ds)
    assert d.verify() == []
    det = sorted(d.part("midog++", "detect").to_pylist(), key=lambda r: r["object_key"])
    rnd = json.loads((out / "round.json").read_text())
    rnd.pop("created")
    hidden = [p.name for p in [*out.iterdir(), *(out / "packages").iterdir()]
              if p.name.startswith(".")]
    return {"detect": det, "round": rnd, "packages": tree_digest(out / "packages"),
            "files": sorted(p.name for p in out.iterdir()), "hidden": hidden}


def _phase(dst: Path, ds: Path, out: Path) -> str:
    """Which part of ``new`` a write belongs to: ``commit`` or ``package-<rater>``."""
    if dst.is_relative_to(out / "packages"):
        name = dst.relative_to(out / "packages").parts[0]  # the package or its build
        return "package-" + (name[1:].rsplit(".", 2)[0] if name.startswith(".") else name)
    assert dst.is_relative_to(ds) or dst.parent == out, dst
    return "commit"  # the marker, the detect part, the manifest, round.json


@pytest.fixture(scope="module")
def reference(pristine: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
              ) -> dict[str, Any]:
    """The uninterrupted round, and its writes by phase (``phase -> [k, ...]``, 1-based)."""
    from mfcurate.cli import main

    src, cands = pristine
    work = tmp_path_factory.mktemp("klr-run")
    ds, out = work / "ds", work / "round"  # the same paths for every run
    shutil.copytree(src, ds)
    with counted_writes() as writes:
        assert main([str(a) for a in _new(ds, out, cands)]) == 0
    phases: dict[str, list[int]] = {}
    for k, call in enumerate(writes.call_args_list, start=1):
        phases.setdefault(_phase(Path(call.args[1]), ds, out), []).append(k)
    state = _state(ds, out)
    shutil.rmtree(ds)
    shutil.rmtree(out)
    return {"ds": ds, "out": out, "state": state, "phases": phases,
            "writes": writes.call_count}


def test_reference_round(reference: dict[str, Any]) -> None:
    ref = reference["state"]
    assert [r["object_key"] for r in ref["detect"]] == [
        "midog++/0/det-r1-100-110", "midog++/0/det-r1-20-30", "midog++/0/det-r1-20-30-2"]
    assert ref["files"] == ["packages", "round.json"] and ref["hidden"] == []
    assert [o["new"] for o in ref["round"]["objects"]] == [True] * 3
    assert ref["round"]["selection"]["counts"] == {"below min score": 1,
                                                   "detector: new detection": 3}
    phases = reference["phases"]
    assert sorted(phases) == ["commit", "package-a", "package-b"]
    assert len(phases["commit"]) == 4  # marker, detect part, manifest, round.json
    assert len(phases["package-a"]) == len(phases["package-b"]) == 6  # 5 files and the swap


@pytest.mark.parametrize("half", [0, 1])  # (a test each, to stay short)
@pytest.mark.parametrize("phase", ["commit", "package-a", "package-b"])
def test_new_killed_at_every_write(phase: str, half: int, reference: dict[str, Any],
                                   pristine: tuple[Path, Path],
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Killed at each write of (half of) a phase in turn; the rerun equals the reference."""
    src, cands = pristine
    ds, out, ref = reference["ds"], reference["out"], reference["state"]
    writes = reference["phases"][phase]
    mid = (len(writes) + 1) // 2
    for nth in (writes[:mid] if half == 0 else writes[mid:]):
        _fresh(src, ds, out)
        p = run_killed(nth, *_new(ds, out, cands))
        assert p.returncode == -signal.SIGKILL, (nth, p.stderr)
        res = run(capsys, *_new(ds, out, cands))  # the rerun completes the round
        assert res.code == 0, (nth, res.err)
        assert _state(ds, out) == ref, nth  # nothing twice, nothing lost, packages whole
        manifest, folder = (ds / "manifest.json").read_bytes(), tree_digest(out)
        again = run(capsys, *_new(ds, out, cands))  # a rerun of a finished round: a no-op
        assert again.code == 0 and "nothing to do" in " ".join(again.out.split())
        assert (ds / "manifest.json").read_bytes() == manifest and tree_digest(out) == folder
    if phase == "commit" and half == 1:  # the child counts the writes as this process did
        _fresh(src, ds, out)
        done = run_killed(reference["writes"] + 1, *_new(ds, out, cands))
        assert done.returncode == 0, done.stderr
        assert _state(ds, out) == ref
    for p in (ds, out):
        shutil.rmtree(p)


def test_new_refuses_a_round_id_of_another_folder(pristine: tuple[Path, Path],
                                                  reference: dict[str, Any], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Detections of round r1 without r1's marker in the folder: another folder's round."""
    from tests.robustness._harness import assert_one_line_error

    src, cands = pristine
    ds = tmp_path / "ds"
    shutil.copytree(src, ds)
    nth = reference["phases"]["package-a"][0]  # killed after the commit
    p = run_killed(nth, *_new(ds, tmp_path / "first", cands))
    assert p.returncode == -signal.SIGKILL and "detect" in Dataset.open(ds).parts("midog++")
    before = tree_digest(ds)
    res = run(capsys, *_new(ds, tmp_path / "second", cands))
    assert_one_line_error(res, 2, "round id 'r1' is already used")
    assert tree_digest(ds) == before and not (tmp_path / "second").exists()
    other = run(capsys, "label-round", "new", ds, "--raters", "a", "--out",
                tmp_path / "first", "--candidates", cands, "--id", "r1")
    assert other.code == 0  # the first folder resumes, here with one rater
    res = run(capsys, *_new(ds, tmp_path / "first", cands))
    assert_one_line_error(res, 2, "already holds a round")  # finished with other options
    det = Dataset.open(ds).part("midog++", "detect").column("object_key").to_pylist()
    assert len(det) == len(set(det)) == 3


def test_import_killed_at_every_write(pristine: tuple[Path, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    src, cands = pristine
    ds, rd = tmp_path / "ds", tmp_path / "round"
    shutil.copytree(src, ds)
    assert run(capsys, *_new(ds, rd, cands)).code == 0
    rnd = json.loads((rd / "round.json").read_text())
    votes: dict[str, str | None] = {
        o["object_key"]: ("mitotic_figure" if i % 2 else "mitotic_like")
        for i, o in enumerate(rnd["objects"])}
    files = [qupath_export(p, tmp_path / "back" / r / p.name, votes)
             for r in ("a", "b") for p in sorted((rd / "packages" / r / "geojson").iterdir())]
    pristine_round, pristine_ds = tmp_path / "round0", tmp_path / "ds0"
    shutil.copytree(rd, pristine_round)
    shutil.copytree(ds, pristine_ds)
    with counted_writes() as writes:
        assert run(capsys, "label-round", "import", rd, *files).code == 0
    n_writes = writes.call_count
    assert n_writes == 3  # the ledger, the labels part, the manifest

    def stored() -> list[tuple[str, ...]]:  # the dataset's votes
        return sorted((r["object_key"], v["annotator"], v["label"], v["time"])
                      for r in Dataset.open(ds).layer("midog++", "labels").to_pylist()
                      for v in r["votes"])

    def ledger() -> list[tuple[str, ...]]:  # the round's ledger
        if not (rd / "votes.csv").exists():
            return []
        with (rd / "votes.csv").open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        return sorted((r["object_key"], r["rater"], r["label"], r["time"]) for r in rows)

    for nth in range(1, n_writes + 1):
        _fresh(pristine_ds, ds)
        _fresh(pristine_round, rd)
        p = run_killed(nth, "label-round", "import", rd, *files)
        assert p.returncode == -signal.SIGKILL, (nth, p.stderr)
        kept = set(stored()) | set(ledger())  # what the killed import recorded
        assert run(capsys, "label-round", "import", rd, *files).code == 0
        assert stored() == ledger() and len(stored()) == 2 * len(votes), nth  # none twice
        assert kept <= set(stored()), nth  # a recorded vote keeps its time
        manifest, ledger_bytes = ((ds / "manifest.json").read_bytes(),
                                  (rd / "votes.csv").read_bytes())
        again = run(capsys, "label-round", "import", rd, *files)
        assert again.code == 0 and f"({len(files)} unchanged)" in again.out
        assert (ds / "manifest.json").read_bytes() == manifest
        assert (rd / "votes.csv").read_bytes() == ledger_bytes
