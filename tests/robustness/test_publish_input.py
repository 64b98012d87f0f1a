"""Publish input a user can get wrong: metadata field types, a token too short to scrub."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mfcurate.publish.metadata import MetadataError, load_metadata
from mfcurate.publish.zenodo import ZenodoClient, ZenodoError
from tests.publish.synthetic_dataset import build_dataset
from tests.robustness._harness import assert_one_line_error, run, tree_digest


@pytest.mark.parametrize("md,field", [
    ({"title": "t", "creators": "Doe, Jane"}, "creators"),
    ({"title": "t", "creators": [{"affiliation": "x"}]}, "creators[0].name"),
    ({"title": ["t"]}, "title"),
    ({"keywords": "mitosis"}, "keywords"),
])
def test_metadata_types_name_the_field(md: dict, field: str, tmp_path: Path) -> None:
    p = tmp_path / "md.json"
    p.write_text(json.dumps(md))
    with pytest.raises(MetadataError, match=field.replace("[", r"\[").replace("]", r"\]")):
        load_metadata(p)


def test_publish_with_a_bad_creators_field(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    ds = build_dataset(tmp_path, n_images=1, size=128, sources=("midog++",))
    md = tmp_path / "md.json"
    md.write_text(json.dumps({"title": "t", "creators": "Doe, Jane"}))
    before = tree_digest(ds)
    res = run(capsys, "publish", ds, "--dry-run", "--metadata", md, "--out", tmp_path / "pkg")
    assert_one_line_error(res, 1, str(md), "creators")
    assert tree_digest(ds) == before
    assert not (tmp_path / "pkg").exists()


@pytest.mark.parametrize("token", ["x", "a b c d e f g h i j", "short-token"])
def test_tokens_too_short_to_scrub_are_refused(token: str) -> None:
    with pytest.raises(ZenodoError, match="characters"):
        ZenodoClient("http://127.0.0.1:9", token)


def test_a_real_looking_token_is_scrubbed() -> None:
    tok = "zen-" + "a1b2c3d4" * 7
    c = ZenodoClient("http://127.0.0.1:9", tok)
    assert c.redact(f"401 for token {tok} at /api") == "401 for token *** at /api"
