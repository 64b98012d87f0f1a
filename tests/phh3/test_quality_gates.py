"""Issue 13: a registration that fails its own quality measures stops (exit 1, naming the
measure) unless ``--force``; the same file twice is a usage error; a malformed ``he_mpp``
in ``pair.json`` is one line."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mfcurate.errors import SourceFormatError, UsageError
from mfcurate.registration import RegisterOptions, register_pair
from mfcurate.registration.outputs import read_objects, read_pair_json
from mfcurate.registration.quality import (
    RegistrationQualityError,
    check_quality,
)

REPO = Path(__file__).resolve().parents[2]
CMU = REPO.parent / "shared" / "data" / "real" / "images" / "wsi" / "CMU-1-Small-Region.svs"
if not CMU.exists():
    CMU = REPO.parents[1] / "shared" / "data" / "real" / "images" / "wsi" / \
        "CMU-1-Small-Region.svs"


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "mfcurate", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300)


def test_gates_pass_a_good_transform_and_name_each_failure() -> None:
    good = {"global_method": "features", "global_inliers": 900, "tissue_overlap": 0.98,
            "ncc_after": 0.95, "refine_windows": 4, "refine_windows_ok": 4,
            "residual_median_um": 0.1}
    assert check_quality(good) == []
    bad = {**good, "global_inliers": 12, "tissue_overlap": 0.3, "ncc_after": 0.04,
           "refine_windows_ok": 1, "residual_median_um": None}
    assert [f[0] for f in check_quality(bad)] == ["inliers", "tissue_overlap", "ncc_after",
                                                  "windows_ok", "residual"]
    outline = {**good, "global_method": "tissue_outline", "channel_inliers":
               {"texture_ncc": 0.05}}
    assert [f[0] for f in check_quality(outline)] == ["inliers"]


@pytest.mark.skipif(not CMU.exists(), reason="real CMU-1-Small-Region slide absent")
def test_unrelated_slides_stop_naming_the_measure_unless_forced(pairs, tmp_path: Path) -> None:
    he = pairs.root / "eosin" / "he.svs"
    with pytest.raises(RegistrationQualityError, match="ncc_after") as ei:
        register_pair(he, CMU, tmp_path / "o1", options=RegisterOptions(overlays=0))
    assert "ncc_after" in [f[0] for f in ei.value.failed]
    assert not (tmp_path / "o1").exists() or not any((tmp_path / "o1").iterdir())
    res = register_pair(he, CMU, tmp_path / "o2",
                        options=RegisterOptions(overlays=0, force=True))
    assert "ncc_after" in res.transform.quality["failed_checks"]
    flags = read_objects(res.folder).column("qa_flags").to_pylist()
    assert all("registration_failed_region" in (f or "") for f in flags)


def test_cli_refuses_unrelated_slides_and_the_same_file_twice(pairs, tmp_path: Path) -> None:
    he = pairs.root / "eosin" / "he.svs"
    # an eosin-counterstain H&E against the other pair's pHH3: nothing matches
    r = _run("register-phh3", str(he), str(pairs.root / "hema" / "phh3.svs"), "--out",
             str(tmp_path / "out"), cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert "quality check inliers" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    # the same file twice: a usage error (exit 2), before anything is read
    r = _run("register-phh3", str(he), str(he), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "both the H&E and the pHH3" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    with pytest.raises(UsageError):
        register_pair(he, Path(str(he).replace("/he.svs", "/../eosin/he.svs")), tmp_path / "x")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("value", [0.5, "0.5", [0.5, -1], [], [True, 0.5], [0.5, 0.5, 0.5]])
def test_malformed_he_mpp_is_one_line(tmp_path: Path, value: object) -> None:
    (tmp_path / "pair.json").write_text(json.dumps({"pair_id": "p", "he_slide": "he.svs",
                                                    "he_mpp": value}))
    with pytest.raises(SourceFormatError, match=r"pair\.json: 'he_mpp' must be a list"):
        read_pair_json(tmp_path)


def test_he_mpp_forms_that_are_read(tmp_path: Path) -> None:
    for value, want in (([0.25, 0.26], [0.25, 0.26]), ([0.25], [0.25, 0.25]),
                        (None, [None, None])):
        (tmp_path / "pair.json").write_text(json.dumps({"pair_id": "p", "he_slide": "he.svs",
                                                        "he_mpp": value}))
        assert read_pair_json(tmp_path)["he_mpp"] == want


def test_cli_ingest_with_scalar_he_mpp_is_one_line(tmp_path: Path) -> None:
    pair = tmp_path / "pairs" / "p1"
    pair.mkdir(parents=True)
    (pair / "pair.json").write_text(json.dumps({"pair_id": "p1", "he_slide": "he.svs",
                                                "he_mpp": 0.5}))
    r = _run("ingest", "phh3", str(tmp_path / "pairs"), "--out", str(tmp_path / "ds"),
             cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert "he_mpp" in r.stderr and "pair.json" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_registration_does_not_import_test_helpers() -> None:
    """Library code never imports mfcurate.testing; registration never mfcurate.synth."""
    lib = REPO / "mfcurate"
    for py in lib.rglob("*.py"):
        rel = py.relative_to(lib).parts
        if rel[0] in ("testing", "synth"):
            continue
        mods: list[str] = []
        for node in ast.walk(ast.parse(py.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                mods.append(node.module)
            elif isinstance(node, ast.Import):
                mods.extend(a.name for a in node.names)
        assert not [m for m in mods if m.startswith("mfcurate.testing")], py
        if rel[0] == "registration":
            assert not [m for m in mods if m.startswith("mfcurate.synth")], py
