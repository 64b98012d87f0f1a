"""Every command refuses a damaged dataset with one line and exit 1, and writes nothing.

Damage kinds: manifest that is ``[]``, invalid JSON, a future schema version; an images file
or an objects part deleted, truncated, or swapped with another source's file.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.publish.synthetic_dataset import build_dataset
from tests.robustness._harness import assert_one_line_error, run, tree_digest


def _manifest(ds: Path) -> dict:
    return json.loads((ds / "manifest.json").read_text())


def _source_file(ds: Path, source: str, kind: str) -> Path:
    m = _manifest(ds)
    entry = m["sources"][source]
    rel = entry["images"] if kind == "images" else entry["parts"]["ingest"]
    return ds / rel


def manifest_list(ds: Path) -> str:
    (ds / "manifest.json").write_text("[]")
    return "not an mfcurate manifest"


def manifest_broken_json(ds: Path) -> str:
    (ds / "manifest.json").write_text('{"format": ')
    return "invalid JSON"


def future_schema(ds: Path) -> str:
    m = _manifest(ds)
    m["schema_version"] = "99.0"
    (ds / "manifest.json").write_text(json.dumps(m))
    return "newer mfcurate"


def images_deleted(ds: Path) -> str:
    _source_file(ds, "lizard", "images").unlink()
    return "missing"


def part_deleted(ds: Path) -> str:
    _source_file(ds, "midog++", "objects").unlink()
    return "missing"


def part_truncated(ds: Path) -> str:
    p = _source_file(ds, "midog++", "objects")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return "bytes on disk"


def part_swapped(ds: Path) -> str:
    a = _source_file(ds, "midog++", "objects")
    b = _source_file(ds, "lizard", "objects")
    shutil.copyfile(b, a)
    return "midog++"


DAMAGE: dict[str, Callable[[Path], str]] = {f.__name__: f for f in (
    manifest_list, manifest_broken_json, future_schema, images_deleted, part_deleted,
    part_truncated, part_swapped)}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_dataset(tmp_path_factory.mktemp("pristine"), n_images=1, size=128)


def _commands(ds: Path, out: Path, tupac_root: Path) -> dict[str, list[str | Path]]:
    return {
        "info": ["info", ds],
        "export-coco": ["export", ds, "--format", "coco", "--out", out / "coco"],
        "export-parquet": ["export", ds, "--format", "parquet", "--out", out / "pq"],
        "report": ["report", ds, "--out", out / "report.html"],
        "refine-masks": ["refine-masks", ds],
        "ingest-into": ["ingest", "tupac16", tupac_root, "--out", ds],
    }


@pytest.fixture(scope="module")
def tupac_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mfcurate.synth.sources import generators

    root = tmp_path_factory.mktemp("tupac")
    generators()["tupac16"](root, seed=1)
    return root


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("command", ["info", "export-coco", "export-parquet", "report",
                                     "refine-masks", "ingest-into"])
def test_damaged_dataset_is_refused(damage: str, command: str, pristine: Path,
                                    tupac_root: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    ds = tmp_path / "ds"
    shutil.copytree(pristine, ds)
    needle = DAMAGE[damage](ds)
    before = tree_digest(ds)
    res = run(capsys, *_commands(ds, tmp_path / "out", tupac_root)[command])
    assert_one_line_error(res, 1, needle)
    assert tree_digest(ds) == before, "a failing command changed the dataset"


def test_verify_names_a_changed_file(pristine: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    ds = tmp_path / "ds"
    shutil.copytree(pristine, ds)
    p = _source_file(ds, "lizard", "objects")
    data = bytearray(p.read_bytes())
    data[len(data) // 3] ^= 0xFF  # same size, other content
    p.write_bytes(bytes(data))
    fast = run(capsys, "info", ds)  # the fast checks see a same-size edit only if it breaks
    if fast.code != 0:              # the file's structure (then: one line naming it)
        assert_one_line_error(fast, 1, p.name)
    res = run(capsys, "info", ds, "--verify")
    assert_one_line_error(res, 1, p.name)
