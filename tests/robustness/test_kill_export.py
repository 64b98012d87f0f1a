"""A GeoJSON export killed (SIGKILL) at every write: ``OUT/geojson`` is the old set or none.

A child ``mfcurate export`` (:func:`tests.robustness._harness.run_killed`) exports into a
folder that already holds a complete export of another selection and kills itself with
SIGKILL at the k-th ``os.replace`` (every per-image file, the index, and the two renames of
the swap), for every k until the export completes.  After each death ``OUT/geojson`` is
byte-identical to the previous export, or (killed between the two renames of the swap)
missing with the previous set kept aside; nothing partial is visible.  A rerun restores or
replaces it cleanly: the result equals an uninterrupted export and no hidden leftover remains.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from pathlib import Path

import pytest

from mfcurate.export.geojson_export import export_geojson
from tests.publish.synthetic_dataset import build_dataset
from tests.robustness._harness import run_killed, tree_digest


def _hidden(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith("."))


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_geojson_export_killed_at_every_write(tmp_path: Path) -> None:
    ds = build_dataset(tmp_path / "data", n_images=1, size=128)
    previous = tmp_path / "previous"
    export_geojson(ds, previous, labels=["mitotic_figure"])  # the export a user already has
    reference = tmp_path / "reference"
    export_geojson(ds, reference)  # the uninterrupted new export
    old, new = tree_digest(previous / "geojson"), tree_digest(reference / "geojson")
    assert old != new and "index.json" in new
    deaths, restored = 0, 0
    for nth in range(1, 20):
        out = tmp_path / f"out{nth}"
        shutil.copytree(previous, out)
        p = run_killed(nth, "export", ds, "--format", "geojson", "--out", out, timeout=60)
        if p.returncode == 0:
            break
        assert p.returncode == -signal.SIGKILL, p.stderr
        deaths += 1
        if (out / "geojson").exists():
            assert tree_digest(out / "geojson") == old  # never a partial or mixed set
        else:  # killed between the renames of the swap: the old set waits aside
            restored += 1
            assert any(n.endswith(".old") for n in _hidden(out))
        assert _hidden(out)  # the killed run's build folder is all that is new
        export_geojson(ds, out)  # the rerun
        assert tree_digest(out / "geojson") == new
        assert _hidden(out) == []
        index = json.loads((out / "geojson" / "index.json").read_text())
        assert sum(v["objects"] for v in index["images"].values()) > 0
        shutil.rmtree(out)
    assert deaths >= 4 and restored == 1  # every file, the index and both renames were hit


def test_killed_first_export_leaves_no_folder(tmp_path: Path) -> None:
    ds = build_dataset(tmp_path / "data", n_images=1, size=128)
    out = tmp_path / "out"
    p = run_killed(2, "export", ds, "--format", "geojson", "--out", out, timeout=60)
    assert p.returncode == -signal.SIGKILL, p.stderr
    assert not (out / "geojson").exists()
    assert [n for n in _hidden(out) if n.startswith(".geojson.")]
    summary = export_geojson(ds, out)
    assert _hidden(out) == [] and summary["files"] == 2


def _review_set(out: Path) -> dict[str, str]:
    """Digests of the visible set (the contact sheet aside; hidden leftovers aside)."""
    return {k: v for k, v in tree_digest(out).items()
            if not k.startswith(("contact_sheet", "."))}


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_export_review_killed_at_every_write(tmp_path: Path) -> None:
    from mfcurate.errors import SourceFormatError
    from mfcurate.review.export import export_review
    from mfcurate.review.importer import import_review

    ds = build_dataset(tmp_path / "data", n_images=1, size=128)
    previous, reference = tmp_path / "previous", tmp_path / "reference"
    export_review(ds, previous)  # flagged masks only
    export_review(ds, reference, include="all")
    old, new = _review_set(previous), _review_set(reference)
    assert old != new and "review.json" in old
    deaths = refused = 0
    for nth in range(1, 20):
        out = tmp_path / f"out{nth}"
        shutil.copytree(previous, out)
        p = run_killed(nth, "export-review", ds, "--out", out, "--include", "all", timeout=60)
        if p.returncode == 0:
            break
        assert p.returncode == -signal.SIGKILL, p.stderr
        deaths += 1
        if (out / "review.json").exists():  # the previous set, whole
            assert _review_set(out) == old
        else:  # an interrupted folder: import-review refuses it, nothing is applied
            refused += 1
            with pytest.raises(SourceFormatError, match="interrupted"):
                import_review(ds, out)
        export_review(ds, out, include="all")
        assert _review_set(out) == new and _hidden(out) == []
        shutil.rmtree(out)
    assert deaths >= 4 and refused >= 2


@pytest.mark.parametrize(("fmt", "leftovers"), [
    ("parquet", [".objects.parquet.0badf00d.tmp", ".export.json.12345678.tmp"]),
    ("coco", [".train.json.deadbeef.tmp"]),
])
def test_export_rerun_removes_a_killed_runs_temporaries(fmt: str, leftovers: list[str],
                                                        tmp_path: Path) -> None:
    from mfcurate.dataset import Dataset
    from mfcurate.export.coco import export_coco
    from mfcurate.export.parquet_export import export_parquet

    ds = build_dataset(tmp_path / "data", n_images=1, size=96)
    out = tmp_path / "out"
    out.mkdir()
    for name in [*leftovers, ".notes.tmp"]:  # the last is the user's own, not an export's
        (out / name).write_bytes(b"half")
    if fmt == "parquet":
        export_parquet(ds, out)
    else:
        export_coco(Dataset.open(ds), out)
    assert _hidden(out) == [".notes.tmp"]


def test_recover_folder_touches_only_its_own_leftovers(tmp_path: Path) -> None:
    from mfcurate.dataset import atomic_folder, recover_folder, remove_stale_temporaries

    target = tmp_path / "set"
    kept = [".set.notes.tmp", ".settings.0123abcd.tmp", ".set.0123abcd.txt", "set2"]
    for name in kept:
        (tmp_path / name).mkdir()
    (tmp_path / ".set.0123abcd.tmp").mkdir()  # a killed build
    (tmp_path / ".set.0123abcd.tmp" / "a.geojson").write_text("{")
    older, newer = tmp_path / ".set.00000000.old", tmp_path / ".set.11111111.old"
    older.mkdir()
    newer.mkdir()
    os.utime(older, (1, 1))
    (newer / "a.geojson").write_text("previous")  # moved aside by a swap killed midway
    assert recover_folder(target) == 2  # the build and the older copy
    assert (target / "a.geojson").read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*kept, "set"])
    with pytest.raises(RuntimeError), atomic_folder(target) as build:
        (build / "b.geojson").write_text("new")
        raise RuntimeError("a failed export")
    assert sorted(p.name for p in target.iterdir()) == ["a.geojson"]  # left as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*kept, "set"])
    (target / ".x.geojson.89abcdef.tmp").write_text("{")
    (target / ".sub.89abcdef.tmp").mkdir()
    (target / ".sub.89abcdef.tmp" / ".y.89abcdef.tmp").write_text("{")
    assert remove_stale_temporaries(target) == 2
    assert sorted(p.name for p in target.iterdir()) == ["a.geojson"]
