"""The publish package carries the region polygons (``regions.parquet``) of the released images.

A dataset of the fake CMC (``_ROI`` tumour + exclusion polygons) and CCMCT (Tumorzone DB)
sources, and MIDOG++ without regions, as the demo ingests them.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import shapely

from mfcurate.dataset import Dataset
from mfcurate.pipelines.ingest import ingest_source
from mfcurate.publish.croissant import validate_croissant
from mfcurate.publish.package import build_package, verify_package
from mfcurate.schemas.tables import REGIONS_SCHEMA
from mfcurate.synth.sources import generators

#: CMC's licence is unknown and CCMCT's is NoDerivatives: the release states CC BY-NC-ND 4.0.
LICENSE = "CC-BY-NC-ND-4.0"


@pytest.fixture(scope="module")
def regions_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("pubregions")
    out = tmp / "ds"
    for key in ("cmc", "ccmct", "midog++"):
        spec = generators()[key](tmp / key.replace("+", "p"), seed=2)
        ingest_source(key, spec.root, out)
    return out


@pytest.fixture(scope="module")
def package(regions_ds: Path, metadata: dict[str, object],
            tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pkgregions") / "release"
    build_package(regions_ds, out, metadata=metadata, license=LICENSE,
                  filters={"sources": ["cmc", "ccmct"]})
    return out


def test_regions_table_checksummed_and_whole(package: Path, regions_ds: Path,
                                             tmp_path: Path) -> None:
    ds = Dataset.open(regions_ds)
    manifest = json.loads((package / "manifest.json").read_text())
    (entry,) = [e for e in manifest["files"] if e["path"] == "regions.parquet"]
    assert entry["kind"] == "table" and entry["bytes"] > 0
    assert verify_package(package) == []
    table = pq.read_table(package / "regions.parquet")
    assert table.schema.equals(REGIONS_SCHEMA, check_metadata=False)
    assert table.schema.metadata[b"table"] == b"regions"
    assert sorted(table.column("region_key").to_pylist()) == \
        sorted(ds.regions().column("region_key").to_pylist())
    for row in table.to_pylist()[:4]:
        geom = shapely.from_wkb(row["geometry_wkb"])
        assert geom.is_valid and geom.area == pytest.approx(row["area_px"])
    copy = tmp_path / "copy"
    shutil.copytree(package, copy)
    (copy / "regions.parquet").write_bytes(b"tampered")
    assert verify_package(copy) == ["regions.parquet: checksum or size differs from "
                                    "manifest.json"]


def test_croissant_describes_and_loads_regions(package: Path) -> None:
    import mlcroissant as mlc

    assert validate_croissant(package / "croissant.json") == []
    doc = json.loads((package / "croissant.json").read_text())
    (rs,) = [r for r in doc["recordSet"] if r["@id"] == "regions"]
    names = {f["name"] for f in rs["field"]}
    assert names == set(REGIONS_SCHEMA.names)
    wkb = next(f for f in rs["field"] if f["name"] == "geometry_wkb")
    assert "WKB" in wkb["description"] and wkb["source"]["fileObject"]["@id"] == \
        "regions.parquet"
    table = pq.read_table(package / "regions.parquet").to_pylist()
    by_key = {r["region_key"]: r for r in table}
    records = list(mlc.Dataset(jsonld=package / "croissant.json").records("regions"))
    assert sorted(r["regions/region_key"].decode() for r in records) == sorted(by_key)
    for r in records:
        src = by_key[r["regions/region_key"].decode()]
        assert r["regions/geometry_wkb"] == src["geometry_wkb"]
        assert r["regions/region_class"].decode() == src["region_class"]
        assert r["regions/bbox_xyxy"] == pytest.approx(src["bbox_xyxy"])


def test_datasheet_counts_regions_per_source_and_class(package: Path) -> None:
    sheet = (package / "DATASHEET.md").read_text()
    table = pq.read_table(package / "regions.parquet")
    counts = Counter(zip(table.column("source").to_pylist(),
                         table.column("region_class").to_pylist(), strict=True))
    assert "### Region polygons (`regions.parquet`)" in sheet
    assert f"- {table.num_rows} polygons" in sheet and "level-0 pixels" in sheet
    assert {s for s, _ in counts} == {"cmc", "ccmct"}
    for (src, cls), n in counts.items():
        assert any(line.startswith(f"| {src} | {cls} | {n} |") for line in sheet.splitlines()
                   ), (src, cls, n)


def test_only_regions_of_selected_images(regions_ds: Path, tmp_path: Path) -> None:
    ds = Dataset.open(regions_ds)
    build_package(regions_ds, tmp_path / "train", license=LICENSE,
                  filters={"sources": ["cmc", "ccmct"], "splits": ["train"]})
    images = set(pq.read_table(tmp_path / "train" / "images.parquet")
                 .column("image_key").to_pylist())
    got = pq.read_table(tmp_path / "train" / "regions.parquet")
    want = [r for r in ds.regions().to_pylist() if r["image_key"] in images]
    assert 0 < got.num_rows == len(want) < ds.regions().num_rows
    assert set(got.column("image_key").to_pylist()) <= images
    assert verify_package(tmp_path / "train") == []


def test_release_without_regions_has_no_regions_file(regions_ds: Path, tmp_path: Path) -> None:
    """MIDOG++ draws no regions: the package is the tables, documents and manifest as before."""
    build_package(regions_ds, tmp_path / "m", filters={"sources": ["midog++"]})
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert [e["path"] for e in manifest["files"]] == [
        "CITATION.cff", "DATASHEET.md", "croissant.json", "images.parquet", "objects.parquet"]
    doc = json.loads((tmp_path / "m" / "croissant.json").read_text())
    assert [r["@id"] for r in doc["recordSet"]] == ["images", "objects"]
    sheet = (tmp_path / "m" / "DATASHEET.md").read_text()
    assert "Region polygons" not in sheet and "regions.parquet" not in sheet
