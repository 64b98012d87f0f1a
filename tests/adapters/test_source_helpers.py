"""Shared helpers of the issue-3 adapters: labels, votes, csv reader, SQLite checks."""

from __future__ import annotations

import doctest
import shutil
from pathlib import Path

import pytest
from _source_checks import ingest, real

import mfcurate.adapters._labels as labels_mod
import mfcurate.adapters._mpp as mpp_mod
import mfcurate.adapters._sliderunner_source as srs_mod
from mfcurate.adapters import AdapterConfig, get_adapter
from mfcurate.adapters._point_csv import read_number_rows
from mfcurate.adapters._sliderunner_source import spot_label, vote_records
from mfcurate.adapters.sliderunner import Spot, Vote, check_sqlite_file
from mfcurate.errors import SourceFormatError, SourceNotFoundError
from mfcurate.schemas.vocab import Label
from mfcurate.synth.sources import cmc as fake_cmc


@pytest.mark.parametrize("module", [labels_mod, mpp_mod, srs_mod])
def test_doctests(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.attempted > 0 and result.failed == 0


def test_spot_label_order() -> None:
    ccmct = {1: Label.GRANULOCYTE, 2: Label.MITOTIC_FIGURE, 3: Label.TUMOUR_CELL,
             7: Label.MITOTIC_LIKE}
    assert spot_label(1, "Granulocyte", ccmct) == Label.GRANULOCYTE
    assert spot_label(1, "Mitotic cell look-alike", ccmct) == Label.MITOTIC_LIKE  # name wins
    assert spot_label(7, "Klasse 7", ccmct) == Label.MITOTIC_LIKE  # id fallback
    assert spot_label(9, "Klasse 9", ccmct) == Label.OTHER_CELL  # unknown cell class kept
    assert spot_label(0, "Mitotic figure", ccmct) is None  # no agreed class
    assert spot_label(1, "Tumorzone", ccmct) is None  # region, even with a cell id
    assert spot_label(2, "Mitose", {}) == Label.MITOTIC_FIGURE


def test_vote_records_drop_machines_and_consensus() -> None:
    sp = Spot(1, 1, 2, 0.0, 0.0, [Vote("a", "Mitotic figure"), Vote("RetinaNet", None),
                                  Vote("b", None), Vote("a", "Hard negative"),
                                  Vote("Consensus", "Mitotic figure")])
    assert vote_records(sp) == [{"annotator": "a", "label": "mitotic_like"},
                                {"annotator": "b", "label": None}]
    assert vote_records(Spot(2, 1, 2, 0.0, 0.0, [])) is None


def test_point_csv_reader(tmp_path: Path) -> None:
    f = tmp_path / "a.csv"
    f.write_bytes(b"")
    assert read_number_rows(f, min_fields=2) == []
    f.write_text("1,2\n\n3.5, 4,0.8\n")
    assert read_number_rows(f, min_fields=2, max_fields=3) == [(1, [1.0, 2.0]),
                                                               (3, [3.5, 4.0, 0.8])]
    f.write_text("1,2\n3,4")
    with pytest.raises(SourceFormatError, match=r"a\.csv: file ends in the middle"):
        read_number_rows(f, min_fields=2)
    f.write_text("1,2,3\n")
    with pytest.raises(SourceFormatError, match="line 1: odd number"):
        read_number_rows(f, min_fields=2, even=True)
    f.write_text("row,col\n")
    with pytest.raises(SourceFormatError, match="line 1: field 1: expected a number"):
        read_number_rows(f, min_fields=2)


@pytest.mark.real_data
def test_truncated_real_database_is_reported(tmp_path: Path) -> None:
    src = real("icpr2012", "MITOS2012.sqlite")
    check_sqlite_file(src)
    dst = tmp_path / "MITOS2012.sqlite"
    shutil.copyfile(src, dst)
    data = dst.read_bytes()
    for cut in (len(data) // 2, len(data) - 4096, 50):
        dst.write_bytes(data[:cut])
        with pytest.raises(SourceFormatError, match=r"MITOS2012\.sqlite"):
            ingest("icpr2012", tmp_path)


def test_strict_mode_and_missing_slides(tmp_path: Path) -> None:
    spec = fake_cmc.generate(tmp_path / "src")
    slide = spec.root / "fa4959e484beec77543b.svs"
    slide.unlink()
    a, images, objects = ingest("cmc", spec.root)
    assert a.missing_images == ["fa4959e484beec77543b.svs"]
    row = next(r for r in images.to_pylist() if r["source_image_id"] == "fa4959e484beec77543b")
    assert row["file_found"] is False and row["mpp_x"] == 0.25 and row["width"] is None
    assert objects.num_rows == sum(spec.counts.values())  # annotations kept
    with pytest.raises(SourceNotFoundError, match=r"fa4959e484beec77543b\.svs"):
        get_adapter("cmc")(spec.root, AdapterConfig(strict=True)).to_tables()
