from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from mfcurate.dataset import Dataset
from mfcurate.publish.croissant import CroissantError, validate_croissant
from mfcurate.publish.package import (
    PackageError,
    build_package,
    file_digests,
    plan_shards,
    verify_package,
)


@pytest.fixture(scope="module")
def package(dataset: Path, metadata: dict[str, object],
            tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pkg") / "release"
    res = build_package(dataset, out, version="1.2.0", metadata=metadata, include_crops=True,
                        include_images=True, max_archive_bytes=150_000)
    assert not res.problems and not res.reused
    return out


def test_manifest_checksums(package: Path) -> None:
    m = json.loads((package / "manifest.json").read_text())
    names = {e["path"] for e in m["files"]}
    assert {"images.parquet", "objects.parquet", "crops-index.parquet", "croissant.json",
            "DATASHEET.md", "CITATION.cff"} <= names
    on_disk = {p.relative_to(package).as_posix() for p in package.rglob("*")
               if p.is_file() and ".publish" not in p.parts}
    assert on_disk == names | {"manifest.json"}  # flat: Zenodo keys = file names
    for e in m["files"]:
        assert file_digests(package / e["path"]) == (e["md5"], e["sha256"], e["bytes"])
    assert m["license"] == "CC-BY-NC-SA-4.0"
    assert verify_package(package) == []


def test_archives_sharded_and_complete(package: Path) -> None:
    m = json.loads((package / "manifest.json").read_text())
    crops = [e["path"] for e in m["files"] if e["path"].startswith("crops-")
             and e["path"].endswith(".tar")]
    assert len(crops) >= 2  # 150 kB shards force several
    members = []
    for name in crops:
        assert (package / name).stat().st_size <= 150_000
        with tarfile.open(package / name) as tar:
            members += [t.name for t in tar.getmembers()]
    index = pq.read_table(package / "crops-index.parquet")
    expected = set(index.column("file").to_pylist()) | \
        {f for f in index.column("mask_file").to_pylist() if f}
    assert {m_.removeprefix("crops/") for m_ in members} == expected
    imgs = [e["path"] for e in m["files"] if e["path"].startswith("images-")]
    assert sorted(imgs) == ["images-lizard-000.tar", "images-midog-000.tar"]


def test_published_tables_drop_rejected(package: Path, dataset: Path) -> None:
    ds = Dataset.open(dataset)
    all_objs = ds.objects(columns=["object_key", "qa_state"])
    kept = pq.read_table(package / "objects.parquet")
    n_rejected = all_objs.column("qa_state").to_pylist().count("rejected")
    assert n_rejected > 0 and kept.num_rows == all_objs.num_rows - n_rejected
    assert "rejected" not in kept.column("qa_state").to_pylist()


def test_croissant_validates_and_loads_objects(package: Path) -> None:
    import mlcroissant as mlc

    assert validate_croissant(package / "croissant.json") == []
    doc = json.loads((package / "croissant.json").read_text())
    assert doc["license"] == "https://creativecommons.org/licenses/by-nc-sa/4.0/"
    assert doc["creator"][0]["name"] == "Doe, Jane"
    records = list(mlc.Dataset(jsonld=package / "croissant.json").records("objects"))
    table = pq.read_table(package / "objects.parquet")
    got = sorted(r["objects/object_key"].decode() for r in records)
    assert got == sorted(table.column("object_key").to_pylist())
    by_key = {r["object_key"]: r for r in table.to_pylist()}
    for r in records[:5]:
        src = by_key[r["objects/object_key"].decode()]
        assert r["objects/mask_rle"].decode() == src["mask_rle"]
        assert r["objects/area_um2"] == pytest.approx(src["area_um2"])
        assert r["objects/bbox_xyxy"] == pytest.approx(src["bbox_xyxy"])
        assert r["objects/centroid_xy"] == pytest.approx(src["centroid_xy"])


def test_croissant_rejects_missing_fields(package: Path, tmp_path: Path) -> None:
    doc = json.loads((package / "croissant.json").read_text())
    del doc["license"]
    bad = tmp_path / "croissant.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(CroissantError, match="license"):
        validate_croissant(bad)
    doc = json.loads((package / "croissant.json").read_text())
    del doc["conformsTo"]
    bad.write_text(json.dumps(doc))
    with pytest.raises(CroissantError):
        validate_croissant(bad)


def test_datasheet_citation_and_deposit_metadata(package: Path) -> None:
    sheet = (package / "DATASHEET.md").read_text()
    for needle in ("## Motivation", "## Composition", "## Collection process",
                   "## Uses", "## Distribution", "## Maintenance", "MIDOG++", "Lizard",
                   "CC0-1.0", "CC-BY-NC-SA-4.0", "10.1038/s41597-023-02327-4",
                   "Segment Anything", "fixed-radius disk"):
        assert needle in sheet, needle
    cff = yaml.safe_load((package / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["version"] == "1.2.0"
    assert cff["authors"][0] == {"family-names": "Doe", "given-names": "Jane",
                                 "affiliation": "Nowhere Institute",
                                 "orcid": "https://orcid.org/0000-0002-1825-0097"}
    assert {r["doi"] for r in cff["references"]} == {"10.1038/s41597-023-02327-4",
                                                     "10.48550/arXiv.2108.11195"}
    dep = json.loads((package / ".publish" / "deposit.json").read_text())
    assert dep["upload_type"] == "dataset" and dep["license"] == "cc-by-nc-sa-4.0"
    rel = {(r["identifier"], r["relation"]) for r in dep["related_identifiers"]}
    assert ("10.1038/s41597-023-02327-4", "isDerivedFrom") in rel
    assert ("10.48550/arXiv.2108.11195", "isDerivedFrom") in rel
    assert dep["description"].startswith("<p>Test release.</p>")
    assert "objects" in dep["description"] and dep["communities"] == [{"identifier": "mfcurate"}]


def test_reuse_and_rebuild_keep_state(dataset: Path, metadata: dict[str, object],
                                      tmp_path: Path) -> None:
    out = tmp_path / "rel"
    build_package(dataset, out, metadata=metadata)
    state = out / ".publish" / "state.json"
    state.write_text('{"marker": 1}')
    again = build_package(dataset, out, metadata=metadata)
    assert again.reused
    (out / "objects.parquet").write_bytes(b"tampered")
    assert verify_package(out) != []
    rebuilt = build_package(dataset, out, metadata=metadata)
    assert not rebuilt.reused and verify_package(out) == []
    assert state.read_text() == '{"marker": 1}'


def test_limits_stop_before_writing(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "rel"
    with pytest.raises(PackageError, match="over the limit of 5 per record"):
        build_package(dataset, out, include_crops=True, max_archive_bytes=20_000, max_files=5)
    with pytest.raises(PackageError, match="bytes, over the limit"):
        build_package(dataset, out, include_images=True, max_record_bytes=50_000)
    assert not out.exists()
    assert not list(tmp_path.glob(".rel.*"))


def test_plan_shards() -> None:
    items = [(f"f{i}", Path(f"/x/{i}"), 1000) for i in range(10)]
    shards = plan_shards(items, 10240 + 3 * 2560)
    assert [len(s) for s in shards] == [3, 3, 3, 1]
    assert sum(len(s) for s in plan_shards([("big", Path("/b"), 10**6), *items], 20000)) == 11
    assert plan_shards([("big", Path("/b"), 10**6)], 20000)[0][0][0] == "big"


def test_license_override_and_source_subset(dataset: Path, tmp_path: Path) -> None:
    from mfcurate.errors import UsageError

    res = build_package(dataset, tmp_path / "cc0", filters={"sources": ["midog++"]})
    assert res.license == "CC0-1.0"
    assert set(pq.read_table(tmp_path / "cc0" / "objects.parquet")
               .column("source").to_pylist()) == {"midog++"}
    res = build_package(dataset, tmp_path / "by", filters={"sources": ["midog++"]},
                        license="CC-BY-4.0")
    assert res.license == "CC-BY-4.0"
    with pytest.raises(UsageError):
        build_package(dataset, tmp_path / "x", license="CC-BY-4.0")


def test_empty_dataset_is_refused(tmp_path: Path) -> None:
    Dataset.open(tmp_path / "empty", create=True)
    with pytest.raises(PackageError, match="empty"):
        build_package(tmp_path / "empty", tmp_path / "rel")
    assert not (tmp_path / "rel").exists()
