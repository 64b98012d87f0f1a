"""The adapter contract, parametrised over every registered adapter and its fake generator."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from mfcurate.adapters import AdapterConfig, all_adapters
from mfcurate.errors import MfcurateError, SourceNotFoundError
from mfcurate.schemas import (
    IMAGES_SCHEMA,
    OBJECTS_SCHEMA,
    REGIONS_SCHEMA,
    validate_images,
    validate_objects,
    validate_regions,
)
from mfcurate.synth.sources import generators

REPO = Path(__file__).resolve().parents[2]
ADAPTERS = all_adapters()
GENERATORS = generators()
KEYS = sorted(ADAPTERS)


def test_every_adapter_has_a_generator_and_a_docs_page() -> None:
    assert set(GENERATORS) == set(ADAPTERS)
    for key, cls in ADAPTERS.items():
        page = REPO / "docs" / "sources" / f"{key.replace('+', 'p')}.md"
        assert page.exists(), f"missing {page}"
        assert cls.info.citation or key == "folder"
        assert cls.__doc__ and len(cls.__doc__) > 200, f"{key}: source card missing"


@pytest.fixture(params=[k for k in KEYS if k in GENERATORS])
def generated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    key = request.param
    root = tmp_path_factory.mktemp(key.replace("+", "p"))
    spec = GENERATORS[key](root, seed=3)
    return key, spec


def _tables(key: str, spec) -> tuple[pa.Table, pa.Table]:
    adapter = ADAPTERS[key](spec.root, AdapterConfig(options=dict(spec.options)))
    images, objects = adapter.to_tables()
    regions = adapter.regions_table()  # reads the region files too (CCMCT's Tumorzone)
    assert regions.schema.equals(REGIONS_SCHEMA)
    validate_regions(regions, images)
    counts = {v["values"].as_py(): v["counts"].as_py()
              for v in pc.value_counts(regions["region_class"])}
    assert counts == spec.regions, f"{key}: regions {counts} != {spec.regions}"
    return images, objects


def test_schema_counts_and_determinism(generated) -> None:
    key, spec = generated
    images, objects = _tables(key, spec)
    assert images.schema.equals(IMAGES_SCHEMA)
    assert objects.schema.equals(OBJECTS_SCHEMA)
    validate_images(images)
    validate_objects(objects, images)
    assert images.num_rows == spec.n_images
    counts = {v["values"].as_py(): v["counts"].as_py() for v in pc.value_counts(objects["label"])}
    assert counts == {k: v for k, v in spec.counts.items() if v}
    again_images, again_objects = _tables(key, spec)
    assert again_images.equals(images)
    assert again_objects.equals(objects)


def test_boxes_inside_their_images(generated) -> None:
    key, spec = generated
    images, objects = _tables(key, spec)
    size = {r["image_key"]: (r["width"], r["height"]) for r in images.to_pylist()}
    for row in objects.to_pylist():
        w, h = size[row["image_key"]]
        x0, y0, x1, y1 = row["bbox_xyxy"]
        assert 0 <= x0 < x1 and 0 <= y0 < y1
        if w is not None:
            assert x1 <= w and y1 <= h


def test_image_without_annotations_gives_zero_rows(generated) -> None:
    key, spec = generated
    images, objects = _tables(key, spec)
    for iid in spec.empty_image_ids:
        image_key = f"{key}/{iid}"
        assert image_key in images.column("image_key").to_pylist()
        rows = objects.filter(pc.equal(objects["image_key"], image_key))
        assert rows.num_rows == 0
        assert rows.schema.equals(OBJECTS_SCHEMA)


def test_missing_root_names_the_path(tmp_path: Path) -> None:
    for key, cls in ADAPTERS.items():
        missing = tmp_path / "nowhere" / key.replace("+", "p")
        with pytest.raises(SourceNotFoundError) as err:
            cls(missing)
        assert str(missing) in str(err.value)


def test_truncated_annotation_file_names_the_file(generated, tmp_path: Path) -> None:
    key, spec = generated
    assert spec.annotation_files, "the generator must name its annotation files"
    for f in spec.annotation_files:
        original = f.read_bytes()
        try:
            f.write_bytes(original[: len(original) // 2])
            with pytest.raises(MfcurateError) as err:
                _tables(key, spec)
            assert f.name in str(err.value), f"{key}: error does not name {f}: {err.value}"
        finally:
            f.write_bytes(original)


def test_garbage_annotation_file_names_the_file(generated) -> None:
    key, spec = generated
    for f in spec.annotation_files:
        original = f.read_bytes()
        try:
            f.write_bytes(b"\x00\xffnot what it should be\n" * 3)
            with pytest.raises(MfcurateError) as err:
                _tables(key, spec)
            assert f.name in str(err.value)
        finally:
            f.write_bytes(original)
