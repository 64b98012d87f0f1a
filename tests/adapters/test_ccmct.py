"""CCMCT adapter: per-database class ids, other cell classes, real region-only databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from _source_checks import check_contract, ingest, label_counts, real

from mfcurate.synth.sources import ccmct as fake


@pytest.mark.parametrize("schema", ["old", "new"])
def test_contract_both_schemas(tmp_path: Path, schema: str) -> None:
    spec = fake.generate(tmp_path / "src", seed=2, schema=schema)
    check_contract(spec, tmp_path)


def test_class_ids_and_other_cells(tmp_path: Path) -> None:
    spec = fake.generate(tmp_path / "src")
    _, images, objects = ingest("ccmct", spec.root)
    counts = label_counts(objects)
    assert counts["granulocyte"] > 0 and counts["tumour_cell"] > 0  # kept as their own labels
    rows = objects.to_pylist()
    by_label = {r["label"]: r["source_label"] for r in rows}
    assert by_label["mitotic_like"] == "Mitotic figure lookalike"  # class 7, not 1
    assert by_label["granulocyte"] == "Granulocyte"
    assert images.column("split").to_pylist() == ["train", "train", "test"]


@pytest.mark.parametrize("database", ["tumorzone", "highmcareas"])
@pytest.mark.real_data
def test_real_region_databases_hold_no_cells(database: str) -> None:
    root = real("ccmct")
    a, images, objects = ingest("ccmct", root, database=database)
    assert images.num_rows == 32
    assert objects.num_rows == 0
    assert images.column("split").to_pylist().count("test") == 11
    assert len(a.missing_images) == 32  # slides absent: reported, not fatal


@pytest.mark.real_data
def test_real_default_database_is_found() -> None:
    root = real("ccmct")
    a, _images, objects = ingest("ccmct", root)
    assert a.variant in {"odael", "heael", "mel", "tumorzone", "highmcareas"}
    if a.variant == "tumorzone":
        assert objects.num_rows == 0 and a.skipped_non_cells == 2
