"""Nonsense option values are refused the same way everywhere: one line, exit 2, before work."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.robustness._harness import assert_one_line_error, run

BAD = [
    (["ingest", "tupac16", "{root}", "--out", "{ds}", "--point-box-um", "0"], "--point-box-um"),
    (["ingest", "tupac16", "{root}", "--out", "{ds}", "--point-box-um", "-5"], "--point-box-um"),
    (["ingest", "tupac16", "{root}", "--out", "{ds}", "--default-mpp", "-1"], "--default-mpp"),
    (["ingest", "tupac16", "{root}", "--out", "{ds}", "--default-mpp", "inf"], "--default-mpp"),
    (["refine-masks", "{ds}", "--window-px", "-64"], "--window-px"),
    (["refine-masks", "{ds}", "--window-px", "0"], "--window-px"),
    (["refine-masks", "{ds}", "--default-mpp", "nan"], "--default-mpp"),
    (["harvest", "{ds}", "--default-mpp", "-1"], "--default-mpp"),
    (["harvest", "{ds}", "--match-radius-um", "0"], "--match-radius-um"),
    (["build-patches", "{ds}", "--default-mpp", "0"], "--default-mpp"),
    (["score", "--detections", "{ds}/d.csv", "--threshold", "nan"], "--threshold"),
    (["score", "--detections", "{ds}/d.csv", "--mpp", "-1"], "--mpp"),
    (["detect", "{ds}/s.svs", "--threshold", "5"], "--threshold"),
    (["detect", "{ds}/s.svs", "--mpp", "-0.25"], "--mpp"),
    (["export", "{ds}", "--out", "{ds}/o", "--scheduler", "not-an-address"], "--scheduler"),
    (["export", "{ds}", "--out", "{ds}/o", "--crop-size", "2"], "--crop-size"),
    (["export", "{ds}", "--out", "{ds}/o", "--label", "mitosis"], "labels"),
    (["export", "{ds}", "--out", "{ds}/o", "--bogus"], "--bogus"),
    (["nosuchcommand"], "nosuchcommand"),
    (["export"], "dataset"),
]


@pytest.mark.parametrize("argv,needle", BAD, ids=[" ".join(a[:1] + a[-2:]) for a, _ in BAD])
def test_bad_option_values(argv: list[str], needle: str, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    ds = tmp_path / "ds"
    if argv[0] == "export" and len(argv) > 1:
        from tests.publish.synthetic_dataset import build_dataset

        ds = build_dataset(tmp_path, n_images=1, size=96, sources=("lizard",))
    ds.mkdir(parents=True, exist_ok=True)
    args = [a.format(root=tmp_path / "root", ds=ds) for a in argv]
    before = sorted(p.name for p in ds.rglob("*"))
    res = run(capsys, *args)
    assert_one_line_error(res, 2, needle)
    assert sorted(p.name for p in ds.rglob("*")) == before  # refused before any work
