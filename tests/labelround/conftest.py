"""A small synthetic dataset (copied per test) and helpers that play QuPath and raters."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from mfcurate.labelround.classes import CLASS_COLORS, CLASS_OF_VOTE, pack_rgb
from tests.publish.synthetic_dataset import build_dataset


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_dataset(tmp_path_factory.mktemp("lr"), n_images=2, size=256)


@pytest.fixture
def dataset(built: Path, tmp_path: Path) -> Path:
    """A fresh copy of the dataset (its images stay where they are)."""
    dst = tmp_path / "ds"
    shutil.copytree(built, dst)
    return dst


def qupath_export(package_file: Path, out: Path, votes: dict[str, str | None],
                  style: str = "0.4") -> Path:
    """Write what QuPath writes after a rater classified the package's annotations.

    ``votes``: object key -> vote label (None: left unclassified).  ``style``: ``0.4``
    (``classification: {name, color: [r, g, b]}``, UUID ids, ``objectType``), ``0.3``
    (``colorRGB`` packed int) or ``0.2`` (``id: "PathAnnotationObject"``, no objectType).
    QuPath keeps only its own properties (name, classification, measurements...), writes
    ``isLocked`` only when true and pretty-prints.
    """
    doc = json.loads(package_file.read_text())
    feats = []
    for f in doc["features"]:
        key = f["properties"]["name"]
        props: dict[str, Any] = {}
        if style != "0.2":
            props["objectType"] = "annotation"
        props["name"] = key
        vote = votes.get(key)
        if vote is not None:
            cls = CLASS_OF_VOTE[vote]
            if style == "0.4":
                props["classification"] = {"name": cls, "color": list(CLASS_COLORS[cls])}
            else:
                props["classification"] = {"name": cls, "colorRGB": pack_rgb(CLASS_COLORS[cls])}
        props["measurements"] = f["properties"].get("measurements", {})
        feat: dict[str, Any] = {"type": "Feature"}
        feat["id"] = "PathAnnotationObject" if style == "0.2" else f["id"]
        feat["geometry"] = f["geometry"]
        feat["properties"] = props
        feats.append(feat)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"type": "FeatureCollection", "features": feats}, indent=2))
    return out


def fill_sheet(sheet: Path, out: Path, votes: dict[str, str | None]) -> Path:
    """The rater's sheet with the ``vote`` column filled in (QuPath class names)."""
    import csv

    with sheet.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        v = votes.get(r["object_key"])
        r["vote"] = "" if v is None else CLASS_OF_VOTE[v]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return out
