"""Property-based cases (hypothesis) for the csv and JSON readers.

Whatever the bytes, a reader returns typed values or raises :class:`SourceFormatError`
(naming the file); it never raises anything else, and what it returns is what was written.
"""

from __future__ import annotations

import copy
import json
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mfcurate.adapters import AdapterConfig, get_adapter
from mfcurate.adapters._point_csv import read_number_rows
from mfcurate.errors import SourceFormatError
from mfcurate.io.geojson import read_features
from mfcurate.synth.sources import generators

FAST = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=10)


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


# ------------------------------------------------------------------ point csv
@FAST
@given(data=st.binary(max_size=120))
def test_csv_any_bytes(scratch: Path, data: bytes) -> None:
    f = scratch / "any.csv"
    f.write_bytes(data)
    try:
        rows = read_number_rows(f, min_fields=2, max_fields=3)
    except SourceFormatError as exc:
        assert exc.path == f
        return
    for _, vals in rows:
        assert 2 <= len(vals) <= 3 and all(math.isfinite(v) for v in vals)


_token = st.sampled_from(["1", "-2.5", "1e3", "nan", "inf", "-inf", "", " ", "x", "0x1f",
                          "1,5", ";", "\t", "1_0", "\u00a0", "٣"])


@FAST
@given(lines=st.lists(st.lists(_token, min_size=1, max_size=4).map(",".join), max_size=5),
       bom=st.booleans(), crlf=st.booleans())
def test_csv_token_soup(scratch: Path, lines: list[str], bom: bool, crlf: bool) -> None:
    end = "\r\n" if crlf else "\n"
    f = scratch / "soup.csv"
    f.write_bytes((b"\xef\xbb\xbf" if bom else b"") + "".join(ln + end for ln in lines).encode())
    try:
        rows = read_number_rows(f, min_fields=2, max_fields=3, names=("row", "col"))
    except SourceFormatError as exc:
        assert exc.path == f and "\n" not in str(exc)
        return
    for _, vals in rows:
        assert 2 <= len(vals) <= 3 and all(math.isfinite(v) for v in vals)


@FAST
@given(rows=st.lists(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=3),
                     max_size=6), bom=st.booleans(), crlf=st.booleans())
def test_csv_round_trip(scratch: Path, rows: list[list[float]], bom: bool, crlf: bool) -> None:
    end = "\r\n" if crlf else "\n"
    f = scratch / "ok.csv"
    text = "".join(",".join(repr(v) for v in r) + end for r in rows)
    f.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    got = read_number_rows(f, min_fields=2, max_fields=3)
    assert [v for _, v in got] == rows
    assert [n for n, _ in got] == list(range(1, len(rows) + 1))


# ------------------------------------------------------------------ MIDOG++ JSON
@pytest.fixture(scope="module")
def midog(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    spec = generators()["midog++"](tmp_path_factory.mktemp("m") / "midog")
    return spec.root, json.loads((spec.root / "MIDOG++.json").read_text())


_PATHS: list[tuple[Any, ...]] = [
    ("images",), ("annotations",), ("categories",), ("images", 0), ("annotations", 0),
    ("categories", 0), *(("images", 0, k) for k in ("id", "file_name", "width", "height",
                                                    "tumor_type")),
    *(("annotations", 0, k) for k in ("bbox", "category_id", "image_id", "id", "labels")),
    ("annotations", 0, "bbox", 0), ("annotations", 0, "bbox", 3), ("annotations", 0, "labels", 0),
    ("categories", 0, "id"), ("categories", 0, "name")]


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for k in path[:-1]:
        doc = doc[k]
    doc[path[-1]] = value


@settings(max_examples=80, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(_PATHS), value=json_values)
def test_midog_json_field_replaced(midog: tuple[Path, dict[str, Any]], path: tuple[Any, ...],
                                   value: Any) -> None:
    root, pristine = midog
    doc = copy.deepcopy(pristine)
    _set(doc, path, value)
    js = root / "MIDOG++.json"
    js.write_text(json.dumps(doc, allow_nan=True))
    try:
        images, _ = get_adapter("midog++")(
            root, AdapterConfig(probe_images=False)).to_tables()
    except SourceFormatError as exc:
        assert exc.path == js, exc
        assert "\n" not in str(exc)
        return
    finally:
        js.write_text(json.dumps(pristine))
    assert images.num_rows == 3
    for w in images.column("width").to_pylist():
        assert w is None or (isinstance(w, int) and w > 0)


# ------------------------------------------------------------------ GeoJSON
_features = st.lists(st.fixed_dictionaries(
    {"type": st.just("Feature"),
     "geometry": json_values | st.fixed_dictionaries(
         {"type": st.sampled_from(["Point", "MultiPoint", "Polygon", "MultiPolygon",
                                   "GeometryCollection", "Line"]),
          "coordinates": json_values}),
     "properties": json_values}), max_size=3)


@FAST
@given(doc=st.one_of(json_values, _features.map(
    lambda f: {"type": "FeatureCollection", "features": f})))
def test_geojson_anything(scratch: Path, doc: Any) -> None:
    f = scratch / "a.geojson"
    f.write_text(json.dumps(doc, allow_nan=True))
    try:
        feats = read_features(f)
    except SourceFormatError as exc:
        assert exc.path == f
        return
    for feat in feats:
        assert feat.kind in ("point", "polygon")
        assert feat.coords.ndim == 2 and feat.coords.shape[1] == 2
        assert all(math.isfinite(v) for v in feat.coords.ravel())
        assert feat.class_name is None or isinstance(feat.class_name, str)


# ------------------------------------------------------------------ TUPAC stitch offsets
@pytest.fixture(scope="module")
def tupac(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generators()["tupac16"](tmp_path_factory.mktemp("t") / "tupac").root


@FAST
@given(cases=json_values)
def test_tupac_stitch_json(tupac: Path, cases: Any) -> None:
    js = tupac / "TUPACStitchInformation.json"
    pristine = js.read_text()
    js.write_text(json.dumps({"cases": cases}, allow_nan=True))
    try:
        a = get_adapter("tupac16")(tupac, AdapterConfig(options={"annotations": "stitched"},
                                                        probe_images=False))
        offsets = a._stitch_offsets()
    except SourceFormatError as exc:
        assert exc.path == js
        return
    finally:
        js.write_text(pristine)
    for tiles in offsets.values():
        for ox, oy in tiles.values():
            assert math.isfinite(ox) and math.isfinite(oy)
