"""Output paths that cannot be written: one line naming the path, exit 1, nothing half-written.

Cases: ``--out`` is an existing file or lies under one; a path component over the OS
limit; a full disk (ENOSPC) and a read-only file system (EROFS) injected into the atomic
writers, at the first write and later ones (tests run as root, so permissions cannot be
used to make a folder read-only).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

from tests.publish.synthetic_dataset import build_dataset
from tests.robustness._harness import assert_one_line_error, run, tree_digest


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_dataset(tmp_path_factory.mktemp("pristine"), n_images=1, size=128)


@pytest.fixture
def ds(pristine: Path, tmp_path: Path) -> Path:
    d = tmp_path / "ds"
    shutil.copytree(pristine, d)
    return d


@pytest.fixture(scope="module")
def tupac_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mfcurate.synth.sources import generators

    root = tmp_path_factory.mktemp("tupac")
    generators()["tupac16"](root, seed=1)
    return root


EXPORTS = {
    "coco": ["--format", "coco"],
    "parquet": ["--format", "parquet"],
    "geojson": ["--format", "geojson"],
}


@pytest.mark.parametrize("fmt", sorted(EXPORTS))
@pytest.mark.parametrize("where", ["is-a-file", "under-a-file", "name-too-long"])
def test_unwritable_out(fmt: str, where: str, ds: Path, tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    out = {"is-a-file": blocker, "under-a-file": blocker / "sub",
           "name-too-long": tmp_path / ("x" * 300)}[where]
    before = tree_digest(ds)
    res = run(capsys, "export", ds, *EXPORTS[fmt], "--out", out)
    cause = {"is-a-file": "", "under-a-file": "Not a directory",
             "name-too-long": "File name too long"}[where]
    assert_one_line_error(res, 1, cause)
    assert str(tmp_path) in res.err  # names the path
    assert blocker.read_text() == "not a folder"
    assert tree_digest(ds) == before


@pytest.mark.parametrize("code,text", [(errno.ENOSPC, "No space left on device"),
                                       (errno.EROFS, "Read-only file system")])
@pytest.mark.parametrize("nth", [1, 2])
def test_disk_full_during_ingest_loses_nothing(code: int, text: str, nth: int, ds: Path,
                                               tupac_root: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import mfcurate.dataset.files as files

    real_fsync = os.fsync
    calls = {"n": 0}

    def failing_fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == nth:
            raise OSError(code, os.strerror(code))
        real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", failing_fsync)
    before = tree_digest(ds)
    res = run(capsys, "ingest", "tupac16", tupac_root, "--out", ds)
    assert_one_line_error(res, 1, text, str(ds))
    assert tree_digest(ds) == before  # no temporary, no half-written file, same manifest
    monkeypatch.setattr(files.os, "fsync", real_fsync)
    assert run(capsys, "ingest", "tupac16", tupac_root, "--out", ds).code == 0
    assert run(capsys, "info", ds, "--verify").code == 0


def test_disk_full_during_export(ds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import mfcurate.dataset.files as files

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", full)
    out = tmp_path / "pq"
    res = run(capsys, "export", ds, "--format", "parquet", "--out", out)
    assert_one_line_error(res, 1, "No space left on device", str(out))
    assert not [p for p in out.rglob("*") if p.is_file()]  # no partial or hidden file
