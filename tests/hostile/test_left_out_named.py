"""Annotations that cannot be placed are left out *named and counted*; unreadable images are
flagged (``file_found`` false) and named; nothing silently becomes ``other_cell``."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from mfcurate.adapters import AdapterConfig, get_adapter
from mfcurate.errors import SourceFormatError, UsageError
from mfcurate.synth.sources import generators


def _run(key: str, root: Path, **options: str):  # type: ignore[no-untyped-def]
    a = get_adapter(key)(root, AdapterConfig(options=options))
    images, objects = a.to_tables()
    return a, images, objects


def _sql(path: Path, statement: str) -> None:
    con = sqlite3.connect(path)
    con.execute(statement)
    con.commit()
    con.close()


_FIRST_SPOT = ("(SELECT MIN(uid) FROM Annotations WHERE type = 1 AND agreedClass > 0)")


@pytest.mark.parametrize(("statement", "why"), [
    (f"UPDATE Annotations_coordinates SET coordinateX = NULL WHERE annoId = {_FIRST_SPOT}",
     "NULL coordinate"),
    (f"UPDATE Annotations SET slide = 999 WHERE uid = {_FIRST_SPOT}",
     "slide 999 is not in Slides"),
    (f"UPDATE Annotations SET agreedClass = 99 WHERE uid = {_FIRST_SPOT}",
     "class id 99 is not in Classes"),
])
def test_sqlite_left_out_are_named(tmp_path: Path, statement: str, why: str) -> None:
    spec = generators()["cmc"](tmp_path / "cmc")
    _, _, before = _run("cmc", spec.root)
    db = spec.root / "MITOS_WSI_CMC_CODAEL_TR_ROI.sqlite"
    uid = sqlite3.connect(db).execute(f"SELECT {_FIRST_SPOT}").fetchone()[0]
    _sql(db, statement)
    a, _, after = _run("cmc", spec.root)
    assert a.skipped == [f"{db.name}: annotation {uid}: {why}"]
    assert after.num_rows == before.num_rows - 1
    assert Counter(after.column("label").to_pylist())["other_cell"] == 0


def test_mitos_sqlite_null_coordinate(tmp_path: Path) -> None:
    spec = generators()["mitos-atypia-14"](tmp_path / "m")
    db = spec.root / "MITOS2014.sqlite"
    _sql(db, "UPDATE Annotations_coordinates SET coordinateY = NULL WHERE annoId = 2")
    a, _, objects = _run("mitos-atypia-14", spec.root, annotations="sqlite")
    assert a.skipped == ["MITOS2014.sqlite: annotation 2: NULL coordinate"]
    assert objects.num_rows == sum(spec.counts.values()) - 1


def test_json_unknown_ids_are_named(tmp_path: Path) -> None:
    spec = generators()["midog++"](tmp_path / "m")
    js = spec.root / "MIDOG++.json"
    doc = json.loads(js.read_text())
    doc["annotations"][0]["image_id"] = 777
    doc["annotations"][1]["category_id"] = 9
    js.write_text(json.dumps(doc))
    a, _, objects = _run("midog++", spec.root)
    ids = [doc["annotations"][k]["id"] for k in (0, 1)]
    assert a.skipped == [f"MIDOG++.json: annotations[0] (id {ids[0]}): unknown image id 777",
                         f"MIDOG++.json: annotations[1] (id {ids[1]}): unknown category id 9"]
    assert objects.num_rows == sum(spec.counts.values()) - 2


def test_unreadable_image_is_flagged_and_strict_refuses(tmp_path: Path) -> None:
    spec = generators()["midog++"](tmp_path / "m")
    img = spec.root / "images" / "002.tiff"
    img.write_bytes(img.read_bytes()[: img.stat().st_size // 2])
    a, images, objects = _run("midog++", spec.root)
    found = dict(zip(images.column("image_key").to_pylist(),
                     images.column("file_found").to_pylist(), strict=True))
    assert found == {"midog++/1": True, "midog++/2": False, "midog++/3": True}
    assert list(a.unreadable) == ["images/002.tiff"]
    assert a.missing_images[0].startswith("images/002.tiff (unreadable: ")
    assert objects.num_rows == sum(spec.counts.values())  # annotations kept
    with pytest.raises(SourceFormatError, match=r"002\.tiff: unreadable image"):
        get_adapter("midog++")(spec.root, AdapterConfig(strict=True)).to_tables()


def test_implausible_header_mpp_falls_back_midogpp(tmp_path: Path) -> None:
    import tifffile

    spec = generators()["midog++"](tmp_path / "m")
    img = spec.root / "images" / "001.tiff"
    rgb = tifffile.imread(img)
    tifffile.imwrite(img, rgb, photometric="rgb", resolution=(72.0, 72.0),
                     resolutionunit="INCH")  # 352.8 µm/px: a screen default
    _, images, _ = _run("midog++", spec.root)
    mpp = dict(zip(images.column("image_key").to_pylist(), images.column("mpp_x").to_pylist(),
                   strict=True))
    assert mpp["midog++/1"] == pytest.approx(0.23)  # the scanner's (Hamamatsu XR) nominal


@pytest.mark.parametrize("bad", [{"point_box_um": 0.0}, {"point_box_um": -3.0},
                                 {"point_box_um": float("nan")}, {"default_mpp": -1.0},
                                 {"default_mpp": 0.0}])
def test_adapter_config_refuses_nonsense(bad: dict[str, float]) -> None:
    with pytest.raises(UsageError):
        AdapterConfig(**bad)  # type: ignore[arg-type]


def test_check_readable_on_broken_images(tmp_path: Path) -> None:
    import numpy as np
    import tifffile
    from _corpus import bomb_png

    from mfcurate.io import reader

    rgb = np.full((64, 64, 3), 200, np.uint8)
    tifffile.imwrite(tmp_path / "ok.tif", rgb, photometric="rgb")
    assert reader.check_readable(tmp_path / "ok.tif") is None
    data = (tmp_path / "ok.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[: len(data) // 2])
    assert reader.check_readable(tmp_path / "cut.tif") is not None
    why = reader.check_readable(bomb_png("bomb.png")(tmp_path))
    assert why is not None and "too large" in why
    old = reader.MAX_DECODE_PIXELS
    try:
        reader.MAX_DECODE_PIXELS = 64 * 63
        why = reader.check_readable(tmp_path / "ok.tif")
        assert why is not None and "too large to decode whole" in why
    finally:
        reader.MAX_DECODE_PIXELS = old
