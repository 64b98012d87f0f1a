"""Publish package of the real MIDOG++ annotations (skipped when ../shared/data/real is absent)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from mfcurate.publish.croissant import validate_croissant
from mfcurate.publish.package import build_package

pytestmark = pytest.mark.real_data


def test_midogpp_release(real: Any, tmp_path: Path) -> None:
    from mfcurate.pipelines.ingest import ingest_source

    root = real("midogpp", "MIDOG++.json").parent
    report = ingest_source("midog++", root, tmp_path / "ds")
    res = build_package(tmp_path / "ds", tmp_path / "release")
    assert res.license == "CC0-1.0"  # MIDOG++.json declares CC0
    manifest = json.loads((tmp_path / "release" / "manifest.json").read_text())
    objs = pq.read_table(tmp_path / "release" / "objects.parquet")
    assert objs.num_rows == manifest["counts"]["objects"] == report.n_objects
    assert manifest["counts"]["images"] == report.n_images == 503
    # seven tumour types, as in the MIDOG++ paper
    assert len(manifest["counts"]["tumour_types"]) == 7
    assert validate_croissant(tmp_path / "release" / "croissant.json") == []
    dep = json.loads((tmp_path / "release" / ".publish" / "deposit.json").read_text())
    assert {"identifier": "10.1038/s41597-023-02327-4", "relation": "isDerivedFrom",
            "resource_type": "dataset"} in dep["related_identifiers"]
    sheet = (tmp_path / "release" / "DATASHEET.md").read_text()
    assert "human breast cancer" in sheet and "canine lymphoma" in sheet
