"""CLI: exit codes (0 / 1 bad data / 2 usage), help with examples, demo end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mfcurate.cli import app
from mfcurate.synth.sources import generators

runner = CliRunner()


@pytest.fixture(scope="module")
def midog(tmp_path_factory: pytest.TempPathFactory):
    return generators()["midog++"](tmp_path_factory.mktemp("m") / "midogpp")


def test_help_lists_commands_with_examples() -> None:
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for cmd in ("ingest", "export", "info", "demo"):
        assert cmd in res.output
    res = runner.invoke(app, ["ingest", "--help"])
    assert res.exit_code == 0 and "Example" in res.output


def test_ingest_info_export(tmp_path: Path, midog) -> None:
    ds = tmp_path / "ds"
    res = runner.invoke(app, ["ingest", "midog++", str(midog.root), "--out", str(ds)])
    assert res.exit_code == 0, res.output
    assert "ingested midog++" in res.output
    res = runner.invoke(app, ["info", str(ds), "--verify"])
    assert res.exit_code == 0 and "human breast cancer" in res.output
    res = runner.invoke(app, ["export", str(ds), "--format", "coco", "--out", str(tmp_path / "c")])
    assert res.exit_code == 0 and (tmp_path / "c" / "train.json").exists()


def test_exit_codes(tmp_path: Path, midog) -> None:
    res = runner.invoke(app, ["ingest", "nosuch", str(tmp_path), "--out", str(tmp_path / "d")])
    assert res.exit_code == 2 and "unknown source" in res.output
    res = runner.invoke(app, ["ingest", "midog++", str(tmp_path / "missing"), "--out",
                              str(tmp_path / "d")])
    assert res.exit_code == 1 and "missing" in res.output
    res = runner.invoke(app, ["ingest", "midog++", str(midog.root)])
    assert res.exit_code == 2  # --out is required
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "MIDOG++.json").write_text("{not json")
    (bad / "datasets_xvalidation.csv").write_text("Slide;Dataset;Tumor;Scanner;Origin;Species\n")
    res = runner.invoke(app, ["ingest", "midog++", str(bad), "--out", str(tmp_path / "d")])
    assert res.exit_code == 1 and "MIDOG++.json" in res.output and "line 1" in res.output
    assert not (tmp_path / "d" / "images.parquet").exists()
    res = runner.invoke(app, ["export", str(tmp_path / "nods"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1
    res = runner.invoke(app, ["export", str(tmp_path / "nods"), "--format", "xml", "--out", "o"])
    assert res.exit_code in (1, 2)
