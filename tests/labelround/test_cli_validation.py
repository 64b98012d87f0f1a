"""The CLI end to end, and every validation error as one line naming the file (exit 1)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mfcurate.cli import app
from mfcurate.labelround.round import load_round
from tests.labelround.conftest import fill_sheet, qupath_export

runner = CliRunner()
MF, NOT = "mitotic_figure", "mitotic_like"


def _run(*args: str) -> tuple[int, str]:
    res = runner.invoke(app, [str(a) for a in args])
    return res.exit_code, res.output


@pytest.fixture
def round_dir(dataset: Path, tmp_path: Path) -> Path:
    code, out = _run("label-round", "new", dataset, "--raters", "r1,r2,r3", "--out",
                     tmp_path / "round1", "--sample", "8", "--seed", "2")
    assert code == 0, out
    assert "round round1: 8 objects for 3 raters" in out
    return tmp_path / "round1"


def _one_file(round_dir: Path, rater: str) -> Path:
    return sorted((round_dir / "packages" / rater / "geojson").glob("*.geojson"))[0]


def _error_line(out: str, name: str) -> str:
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1, out
    assert name in lines[0] and lines[0].startswith("error:"), out
    return lines[0]


def test_cli_round(round_dir: Path, dataset: Path, tmp_path: Path) -> None:
    rnd = load_round(round_dir)
    votes = {o.object_key: (MF if i % 2 else NOT) for i, o in enumerate(rnd.objects)}
    files = []
    for rater in ("r1", "r2"):
        for p in sorted((round_dir / "packages" / rater / "geojson").glob("*.geojson")):
            files.append(qupath_export(p, tmp_path / "back" / rater / p.name, votes))
    files.append(fill_sheet(round_dir / "packages/r3/r3-sheet.csv",
                            tmp_path / "back" / "r3-sheet.csv", votes))
    code, out = _run("label-round", "import", round_dir, *files)
    assert code == 0, out
    assert "24 votes added" in out
    code, out = _run("label-round", "import", round_dir, *files)
    assert code == 0 and "0 votes added" in out and "unchanged" in out
    code, out = _run("label-round", "resolve", round_dir, "--rule", "unanimous")
    assert code == 0, out
    assert "resolved 8 of 8 objects" in out and "Fleiss' kappa 1.000" in out
    code, out = _run("info", dataset)
    assert code == 0, out
    assert "label rounds" in out and "round1" in out
    assert re.search(r"round1 .*all .*8 .*3 .*1\.00", out), out
    report = tmp_path / "r.html"
    code, out = _run("report", dataset, "--out", report, "--examples", "0")
    assert code == 0, out
    html = report.read_text()
    assert "<h2>Label rounds</h2>" in html and "agreement round1" in html


def test_unknown_object(round_dir: Path, tmp_path: Path) -> None:
    src = _one_file(round_dir, "r1")
    bad = qupath_export(src, tmp_path / "r1" / "bad.geojson", {})
    doc = json.loads(bad.read_text())
    doc["features"][0]["properties"]["name"] = "midog++/0/999"
    doc["features"][0]["id"] = "00000000-0000-0000-0000-000000000000"
    bad.write_text(json.dumps(doc))
    code, out = _run("label-round", "import", round_dir, bad)
    assert code == 1
    assert "unknown object 'midog++/0/999'" in _error_line(out, "bad.geojson")
    assert not (round_dir / "votes.csv").exists()


def test_drawn_annotation_is_ignored(round_dir: Path, tmp_path: Path) -> None:
    src = _one_file(round_dir, "r1")
    f = qupath_export(src, tmp_path / "r1" / "drawn.geojson", {})
    doc = json.loads(f.read_text())
    doc["features"].append({"type": "Feature", "id": "8d9e2f7e-7f3a-4a55-b0c2-1f0f5d7f6a11",
                            "geometry": {"type": "Point", "coordinates": [5.0, 5.0]},
                            "properties": {"objectType": "annotation"}})
    f.write_text(json.dumps(doc))
    code, out = _run("label-round", "import", round_dir, f)
    assert code == 0 and "1 features drawn by raters ignored" in out, out


def test_duplicated_vote_in_a_file_and_across_files(round_dir: Path, tmp_path: Path) -> None:
    src = _one_file(round_dir, "r1")
    keys = [f["properties"]["name"] for f in json.loads(src.read_text())["features"]]
    good = qupath_export(src, tmp_path / "r1" / "good.geojson", dict.fromkeys(keys, MF))
    dup = tmp_path / "r1" / "dup.geojson"
    doc = json.loads(good.read_text())
    doc["features"].append(doc["features"][0])
    dup.write_text(json.dumps(doc))
    code, out = _run("label-round", "import", round_dir, dup)
    assert code == 1 and "duplicated vote" in _error_line(out, "dup.geojson")
    code, out = _run("label-round", "import", round_dir, good)
    assert code == 0, out
    copy = tmp_path / "r1" / "copy.geojson"
    shutil.copy(good, copy)
    code, out = _run("label-round", "import", round_dir, copy)
    assert code == 1 and "already voted" in _error_line(out, "copy.geojson")
    code, out = _run("label-round", "import", round_dir, copy, "--replace")
    assert code == 0, out


def test_wrong_rater(round_dir: Path, tmp_path: Path) -> None:
    src = _one_file(round_dir, "r1")
    f = qupath_export(src, tmp_path / "r1" / "mine.geojson", {})
    code, out = _run("label-round", "import", round_dir, f, "--rater", "r2")
    assert code == 1 and "wrong rater" in _error_line(out, "mine.geojson")
    placed = qupath_export(src, tmp_path / "r3" / "x.geojson", {})  # in r3's folder
    code, out = _run("label-round", "import", round_dir, placed)
    assert code == 1 and "wrong rater" in _error_line(out, "x.geojson")
    code, out = _run("label-round", "import", round_dir, f, "--rater", "nobody")
    assert code == 1 and "not a rater" in _error_line(out, "mine.geojson")
    sheet = fill_sheet(round_dir / "packages/r1/r1-sheet.csv", tmp_path / "r2-sheet.csv", {})
    code, out = _run("label-round", "import", round_dir, sheet)  # r1's rows, r2's file name
    assert code == 1 and "wrong rater" in _error_line(out, "r2-sheet.csv")


def test_sheet_errors(round_dir: Path, tmp_path: Path) -> None:
    sheet = round_dir / "packages/r1/r1-sheet.csv"
    text = sheet.read_text().splitlines()
    bad_class = tmp_path / "r1-a.csv"
    bad_class.write_text("\n".join([text[0], text[1].replace(",,", ",Tumor,", 1)]) + "\n")
    code, out = _run("label-round", "import", round_dir, bad_class)
    assert code == 1 and "'Tumor' is not one of" in _error_line(out, "r1-a.csv")
    dup = tmp_path / "r1-b.csv"
    dup.write_text("\n".join([text[0], text[1], text[1]]) + "\n")
    code, out = _run("label-round", "import", round_dir, dup)
    assert code == 1 and "line 3: duplicated vote" in _error_line(out, "r1-b.csv")
    unknown = tmp_path / "r1-c.csv"
    unknown.write_text("object_key,vote\nnot/an/object,MF\n")
    code, out = _run("label-round", "import", round_dir, unknown)
    assert code == 1 and "unknown object" in _error_line(out, "r1-c.csv")


def test_usage_errors(round_dir: Path, dataset: Path) -> None:
    code, out = _run("label-round", "resolve", round_dir, "--rule", "plurality")
    assert code == 2 and "--rule" in out
    code, out = _run("label-round", "new", dataset, "--raters", "a,a", "--out",
                     round_dir.parent / "x", "--sample", "3")
    assert code == 2 and "twice" in out
    code, out = _run("label-round", "new", dataset, "--raters", "a", "--out", round_dir,
                     "--sample", "3")
    assert code == 2 and "already holds a round" in out
    code, out = _run("label-round", "resolve", round_dir)
    assert code == 1 and "no votes imported yet" in out
