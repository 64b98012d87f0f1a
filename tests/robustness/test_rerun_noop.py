"""A rerun of a finished step changes nothing, and a resumed harvest equals an uninterrupted one.

Issue 13: a second harvest of a finished dataset changed all parts (its match rule read its
own earlier output).  Under the derive contract every step reads the dataset without its own
parts, so rerunning refine-masks or harvest must leave ``manifest.json`` byte-identical.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.robustness._harness import run

SOURCES = ("midog++", "ccmct")


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mfcurate.synth.sources import generators

    work = tmp_path_factory.mktemp("rerun")
    ds = work / "ds"
    from mfcurate.cli import main

    gens = generators()
    for key in SOURCES:
        gens[key](work / key, seed=5)
        assert main(["ingest", key, str(work / key), "--out", str(ds)]) == 0
    return ds


def test_rerun_of_refine_and_harvest_is_a_no_op(ingested: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    ds = tmp_path / "ds"
    shutil.copytree(ingested, ds)
    assert run(capsys, "refine-masks", ds).code == 0
    assert run(capsys, "harvest", ds).code == 0
    first = (ds / "manifest.json").read_bytes()
    assert run(capsys, "refine-masks", ds).code == 0
    assert run(capsys, "harvest", ds).code == 0
    assert (ds / "manifest.json").read_bytes() == first


def test_resumed_harvest_equals_uninterrupted(ingested: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Harvest one source (as if killed after its first commit), then all: same parts."""
    import json

    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(ingested, a)
    shutil.copytree(ingested, b)
    assert run(capsys, "harvest", a).code == 0
    assert run(capsys, "harvest", b, "--source", SOURCES[0]).code == 0
    assert run(capsys, "harvest", b).code == 0

    def parts(ds: Path) -> dict[str, str]:
        m = json.loads((ds / "manifest.json").read_text())
        return {f"{s}/{p}": m["files"][rel]["sha256"]
                for s, e in m["sources"].items() for p, rel in e["parts"].items()}

    assert parts(a) == parts(b)


def test_steps_refuse_when_no_image_can_be_read(ingested: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Source images deleted after ingest: one line, exit 1, the dataset untouched."""
    import json

    from tests.robustness._harness import assert_one_line_error, tree_digest

    ds = tmp_path / "ds"
    shutil.copytree(ingested, ds)
    m = json.loads((ds / "manifest.json").read_text())
    for src in list(m["sources"]):  # point the sources at empty folders
        empty = tmp_path / f"gone-{src.replace('+', 'p')}"
        empty.mkdir()
        m["sources"][src]["root"] = str(empty)
    (ds / "manifest.json").write_text(json.dumps(m))
    before = tree_digest(ds)
    for cmd in ("refine-masks", "harvest"):
        res = run(capsys, cmd, ds)
        assert_one_line_error(res, 1, "could be read")
        assert tree_digest(ds) == before
