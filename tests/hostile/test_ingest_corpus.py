"""``mfcurate ingest`` on every case of the malformed-input corpus (see ``_corpus.py``).

For each case: no traceback; the expected exit code; on failure exactly one ``error:`` line,
naming the broken file; and the dataset the command was pointed at byte-identical afterwards.
"""

from __future__ import annotations

import hashlib
import shutil
from collections import Counter
from pathlib import Path

import pytest
from _corpus import KINDS, ROOT_IN_BASE, Case, all_cases
from typer.testing import CliRunner

from mfcurate.cli import app
from mfcurate.synth.sources import generators

CASES = all_cases()
runner = CliRunner()


def tree_digest(root: Path) -> str:
    """sha256 over every path name and file content under ``root``."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(p.relative_to(root).as_posix().encode() + b"\0")
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One generated fake per source (base folders; never modified)."""
    base = tmp_path_factory.mktemp("pristine")
    out = {}
    gens = generators()
    for key in sorted({c.source for c in CASES}):
        gens[key](base / key)
        out[key] = base / key
    return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory, pristine: dict[str, Path]) -> Path:
    """A dataset holding one source, copied for each failing command."""
    ds = tmp_path_factory.mktemp("ds") / "ds"
    res = runner.invoke(app, ["ingest", "midog2021", str(pristine["midog2021"]), "--out",
                              str(ds)])
    assert res.exit_code == 0, res.output
    return ds


def test_corpus_covers_every_kind_per_source() -> None:
    per = Counter((c.source, c.kind) for c in CASES)
    required = ("truncated", "wrong-shape", "wrong-type", "nan", "negative", "out-of-image",
                "zero-byte", "wrong-magic")
    for source in generators():
        missing = [k for k in required if not per[(source, k)]]
        assert not missing, f"{source} lacks {missing}"
    assert {c.kind for c in CASES} <= set(KINDS)
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_ingest_case(case: Case, pristine: dict[str, Path], dataset: Path,
                     tmp_path: Path) -> None:
    base = tmp_path / "src"
    shutil.copytree(pristine[case.source], base)
    broken = case.mutate(base)
    ds = tmp_path / "ds"
    shutil.copytree(dataset, ds)
    before = tree_digest(ds)
    root = base / ROOT_IN_BASE.get(case.source, "")
    res = runner.invoke(app, ["ingest", case.source, str(root), "--out", str(ds), *case.args])
    out = res.output
    assert "Traceback" not in out
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code == case.exit_code, out
    if case.expect:
        assert case.expect in out, out
    if case.exit_code:
        errors = [ln for ln in out.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1, out
        assert broken.name in errors[0], out
        assert tree_digest(ds) == before, "a failing ingest changed the dataset"
    else:
        assert "error:" not in out, out
