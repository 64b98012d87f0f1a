"""CMC adapter: fake databases in both schemas, class ids, split erratum."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from _source_checks import check_contract, ingest, label_counts

from mfcurate.adapters import AdapterConfig, get_adapter
from mfcurate.errors import SourceNotFoundError
from mfcurate.synth.sources import cmc as fake


@pytest.mark.parametrize("schema", ["new", "old"])
def test_contract_both_schemas(tmp_path: Path, schema: str) -> None:
    spec = fake.generate(tmp_path / "src", seed=1, schema=schema)
    check_contract(spec, tmp_path)


def test_split_erratum_votes_and_real_coordinates(tmp_path: Path) -> None:
    spec = fake.generate(tmp_path / "src")
    a, images, objects = ingest("cmc", spec.root)
    split = dict(zip(images.column("source_image_id").to_pylist(),
                     images.column("split").to_pylist(), strict=False))
    assert split["4eee7b944ad5e46c60ce"] == "test"
    assert split["fa4959e484beec77543b"] == "train"
    assert set(images.column("is_wsi").to_pylist()) == {True}
    assert set(images.column("mpp_x").to_pylist()) == {0.25}
    rows = objects.to_pylist()
    # class-0 votes are kept with a null label; each person's last vote counts
    assert all((r["votes"][-1]["annotator"], r["votes"][-1]["label"]) == ("expert 3", None)
               for r in rows)
    assert all(r["votes"][0]["label"] == r["label"] for r in rows)
    # REAL coordinates survive (x.5 planted by the generator)
    con = sqlite3.connect(f"file:{spec.annotation_files[0]}?mode=ro", uri=True)
    n_real = con.execute("SELECT count(*) FROM Annotations_coordinates "
                         "WHERE typeof(coordinateX) = 'real'").fetchone()[0]
    con.close()
    assert n_real > 0
    assert any(r["centroid_xy"][0] % 1 == 0.5 for r in rows)
    # 50 px box (12.5 µm at 0.25 µm/px) around each point
    r = rows[0]
    assert r["bbox_xyxy"][2] - r["bbox_xyxy"][0] == pytest.approx(50.0)
    assert a.skipped_non_cells == 2  # the two agreedClass-0 spots


def test_labels_by_id_when_names_are_unknown(tmp_path: Path) -> None:
    spec = fake.generate(tmp_path / "src")
    db = spec.annotation_files[0]
    con = sqlite3.connect(db)
    con.execute("DROP TRIGGER setRandomcolor")
    con.execute("UPDATE Classes SET name = 'Klasse ' || uid WHERE uid IN (1, 2)")
    con.commit()
    con.close()
    _, _, objects = ingest("cmc", spec.root)
    assert label_counts(objects) == spec.counts


def test_database_option(tmp_path: Path) -> None:
    spec = fake.generate(tmp_path / "src")
    with pytest.raises(SourceNotFoundError):
        get_adapter("cmc")(spec.root, AdapterConfig(options={"database": "mel"}))
    a = get_adapter("cmc")(spec.root, AdapterConfig(
        options={"database": "MITOS_WSI_CMC_CODAEL_TR_ROI.sqlite"}))
    assert a.to_tables()[1].num_rows == sum(spec.counts.values())


@pytest.mark.real_data
def test_real_cmc_databases() -> None:
    from _source_checks import real

    root = real("cmc")
    dbs = sorted(root.glob("*.sqlite"))
    if not dbs:
        pytest.skip("no CMC database saved under shared/data/real/cmc")
    for db in dbs:
        _, images, objects = ingest("cmc", root, database=db.name)
        assert images.num_rows == 21
        assert set(label_counts(objects)) <= {"mitotic_figure", "mitotic_like"}
