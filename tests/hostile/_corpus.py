"""Malformed-input corpus for the source adapters, generated at test time from the fakes.

Every :class:`Case` starts from a pristine copy of a fake source written by
``mfcurate.synth.sources`` and breaks one thing in one file.  ``kind`` is one of
:data:`KINDS`; ``exit_code`` is what ``mfcurate ingest`` must return (1: the file is refused
with one line naming it; 0: the case must be read, e.g. a UTF-8 BOM, or the bad thing is
one annotation or image that is left out with a warning).  ``expect`` is text the output must
hold (a warning, or the field named in the error).
"""

from __future__ import annotations

import json
import sqlite3
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The kinds of breakage, as the issue lists them (plus the reads that must succeed).
KINDS = ("truncated", "wrong-shape", "wrong-type", "nan", "negative", "out-of-image",
         "zero-byte", "wrong-magic", "bom", "unknown-id", "null", "bomb")

Mutator = Callable[[Path], Path]


@dataclass(frozen=True)
class Case:
    """One malformed input.

    Attributes:
        source: adapter key.
        kind: one of :data:`KINDS`.
        name: short description (the test id).
        mutate: breaks the copy of the fake under the given base folder; returns the file.
        exit_code: expected exit status of ``mfcurate ingest``.
        expect: text the output must contain (None: nothing beyond the file name on errors).
        args: extra CLI arguments (``--option annotations=sqlite``...).
    """

    source: str
    kind: str
    name: str
    mutate: Mutator
    exit_code: int = 1
    expect: str | None = None
    args: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.source}:{self.kind}:{self.name}"


# ------------------------------------------------------------------ file breakers
def truncate(rel: str, frac: float = 0.5) -> Mutator:
    def m(base: Path) -> Path:
        p = base / rel
        data = p.read_bytes()
        p.write_bytes(data[: max(1, int(len(data) * frac))])
        return p
    return m


def cut_mid_line(rel: str) -> Mutator:
    """Cut a text file inside its last line (a truncated copy)."""
    def m(base: Path) -> Path:
        p = base / rel
        data = p.read_bytes().rstrip(b"\r\n")
        p.write_bytes(data[:-1] if len(data) > 1 else data)
        return p
    return m


def cut_after(rel: str, marker: str) -> Mutator:
    """Cut a text file just after the first ``marker`` (e.g. inside a quoted string)."""
    def m(base: Path) -> Path:
        p = base / rel
        data = p.read_bytes()
        p.write_bytes(data[: data.index(marker.encode()) + len(marker)])
        return p
    return m


def zero_byte(rel: str) -> Mutator:
    def m(base: Path) -> Path:
        p = base / rel
        p.write_bytes(b"")
        return p
    return m


def wrong_magic(rel: str) -> Mutator:
    """Replace the file by bytes of another format (a GIF header and noise)."""
    def m(base: Path) -> Path:
        p = base / rel
        p.write_bytes(b"GIF89a\x00\xff\xfe\x00" + bytes(range(256)) * 4)
        return p
    return m


def bom(rel: str) -> Mutator:
    """Prefix a UTF-8 byte-order mark (what Excel writes)."""
    def m(base: Path) -> Path:
        p = base / rel
        p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes())
        return p
    return m


def crlf_bom(rel: str) -> Mutator:
    """Windows line ends and a BOM, as Excel saves a csv."""
    def m(base: Path) -> Path:
        p = base / rel
        p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes().replace(b"\n", b"\r\n"))
        return p
    return m


def lines(rel: str, edit: Callable[[list[str]], list[str]]) -> Mutator:
    """Edit a text file as a list of lines (without line ends); a final newline is kept."""
    def m(base: Path) -> Path:
        p = base / rel
        out = edit(p.read_text().splitlines())
        p.write_text("".join(f"{line}\n" for line in out))
        return p
    return m


def first_line(text: str) -> Callable[[list[str]], list[str]]:
    return lambda ls: [text, *ls[1:]]


def json_edit(rel: str, edit: Callable[[Any], Any]) -> Mutator:
    """Load, edit (in place or by return value) and rewrite a JSON file (NaN allowed)."""
    def m(base: Path) -> Path:
        p = base / rel
        doc = json.loads(p.read_text())
        new = edit(doc)
        p.write_text(json.dumps(doc if new is None else new, allow_nan=True))
        return p
    return m


def sql(rel: str, *statements: str) -> Mutator:
    """Run SQL on a copy of a SlideRunner database (updates only: triggers fire on insert)."""
    def m(base: Path) -> Path:
        p = base / rel
        con = sqlite3.connect(p)
        try:
            for st in statements:
                con.execute(st)
            con.commit()
        finally:
            con.close()
        return p
    return m


def bomb_png(rel: str, side: int = 100_000) -> Mutator:
    """A valid-looking PNG whose header claims ``side`` x ``side`` px (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    def m(base: Path) -> Path:
        p = base / rel
        ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
        idat = zlib.compress(b"\x00" * 4096, 9)
        p.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
                      + chunk(b"IEND", b""))
        return p
    return m


def parquet_edit(rel: str, column: str, value: Any, **more: Any) -> Mutator:
    """Set ``column`` (and the ``more`` columns) of the first row of a Parquet file."""
    def m(base: Path) -> Path:
        import pyarrow as pa
        import pyarrow.parquet as pq

        p = base / rel
        t = pq.read_table(p)
        for col, val in {column: value, **more}.items():
            vals = t.column(col).to_pylist()
            vals[0] = val
            i = t.column_names.index(col)
            t = t.set_column(i, t.schema.field(i), pa.array(vals, type=t.schema.field(i).type))
        pq.write_table(t, p)
        return p
    return m


# ------------------------------------------------------------------ per source
def _sliderunner(source: str, db: str, slide: str, args: tuple[str, ...] = ()) -> list[Case]:
    """Cases shared by every SlideRunner database ``db`` (path relative to the base)."""
    spot = "(SELECT MIN(annoId) FROM Annotations_coordinates WHERE annoId IN " \
           "(SELECT uid FROM Annotations WHERE type = 1 AND agreedClass > 0))"
    left_out = "annotations left out"
    c = [
        Case(source, "truncated", "db half", truncate(db), args=args),
        Case(source, "zero-byte", "db", zero_byte(db), args=args),
        Case(source, "wrong-magic", "db", wrong_magic(db), args=args),
        Case(source, "wrong-shape", "no Classes table", sql(db, "DROP TABLE Classes"),
             expect="missing tables", args=args),
        Case(source, "wrong-shape", "no coordinateY column",
             sql(db, "ALTER TABLE Annotations_coordinates DROP COLUMN coordinateY"), args=args),
        Case(source, "wrong-type", "text coordinate",
             sql(db, f"UPDATE Annotations_coordinates SET coordinateX = 'abc' "
                     f"WHERE annoId = {spot}"), expect="coordinateX", args=args),
        Case(source, "wrong-type", "text class",
             sql(db, f"UPDATE Annotations SET agreedClass = 'mitosis' WHERE uid = {spot}"),
             expect="agreedClass", args=args),
        Case(source, "wrong-type", "text slide",
             sql(db, f"UPDATE Annotations SET slide = 'first' WHERE uid = {spot}"),
             expect="field slide", args=args),
        Case(source, "wrong-type", "text slide width",
             sql(db, "UPDATE Slides SET width = 'wide'"), expect="width", args=args),
        Case(source, "negative", "slide width -320",
             sql(db, "UPDATE Slides SET width = -320"), expect="width", args=args),
        Case(source, "nan", "inf coordinate",
             sql(db, f"UPDATE Annotations_coordinates SET coordinateY = 9e999 "
                     f"WHERE annoId = {spot}"), expect="finite", args=args),
        Case(source, "null", "NULL coordinate (left out, counted)",
             sql(db, f"UPDATE Annotations_coordinates SET coordinateX = NULL "
                     f"WHERE annoId = {spot}"), exit_code=0, expect="NULL coordinate",
             args=args),
        Case(source, "unknown-id", "unknown slide id (left out, counted)",
             sql(db, f"UPDATE Annotations SET slide = 999 WHERE uid = {spot}"), exit_code=0,
             expect=left_out, args=args),
        Case(source, "unknown-id", "unknown class id (left out, counted)",
             sql(db, f"UPDATE Annotations SET agreedClass = 99 WHERE uid = {spot}"),
             exit_code=0, expect=left_out, args=args),
    ]
    if slide:
        c += [Case(source, "zero-byte", "image (flagged)", zero_byte(slide), exit_code=0,
                   expect="unreadable", args=args),
              Case(source, "truncated", "image (flagged)", truncate(slide, 0.4), exit_code=0,
                   expect="unreadable", args=args),
              Case(source, "wrong-magic", "image (flagged)", wrong_magic(slide), exit_code=0,
                   expect="unreadable", args=args)]
    return c


def _wsi(source: str, db: str, slide: str) -> list[Case]:
    return [*_sliderunner(source, db, slide),
            Case(source, "out-of-image", "spot far outside (dropped)",
                 sql(db, "UPDATE Annotations_coordinates SET coordinateX = 1e6 WHERE annoId = "
                         "(SELECT MIN(uid) FROM Annotations WHERE type = 1 AND "
                         "agreedClass > 0)"), exit_code=0, expect="dropped"),
            Case(source, "negative", "spot at -1000 (dropped)",
                 sql(db, "UPDATE Annotations_coordinates SET coordinateY = -1000 WHERE annoId "
                         "= (SELECT MIN(uid) FROM Annotations WHERE type = 1 AND "
                         "agreedClass > 0)"), exit_code=0, expect="dropped")]


def _point_csv(source: str, rel: str, good: str, fields: int) -> list[Case]:
    """Cases of a header-less point csv (``good`` is a valid line)."""
    extra = ",1" if fields == 3 else ""
    return [
        Case(source, "truncated", "csv mid-line", cut_mid_line(rel)),
        Case(source, "wrong-shape", "one value", lines(rel, first_line("12"))),
        Case(source, "wrong-shape", "five values", lines(rel, first_line("1,2,3,4,5"))),
        Case(source, "wrong-type", "text", lines(rel, first_line(f"ten,20{extra}")),
             expect="expected a number"),
        Case(source, "nan", "nan", lines(rel, first_line(f"nan,20{extra}")), expect="finite"),
        Case(source, "nan", "inf", lines(rel, first_line(f"20,inf{extra}")), expect="finite"),
        Case(source, "negative", "far negative (dropped)",
             lines(rel, first_line(f"-900,-900{extra}")), exit_code=0, expect="dropped"),
        Case(source, "out-of-image", "far outside (dropped)",
             lines(rel, first_line(f"90000,90000{extra}")), exit_code=0, expect="dropped"),
        Case(source, "zero-byte", "csv (no object: read)", zero_byte(rel), exit_code=0),
        Case(source, "wrong-magic", "csv is binary", wrong_magic(rel)),
        Case(source, "bom", "csv with UTF-8 BOM (read)", bom(rel), exit_code=0),
        Case(source, "bom", "csv with CRLF and BOM (read)", crlf_bom(rel), exit_code=0),
        Case(source, "wrong-type", "semicolons and text", lines(rel, first_line(f"{good};x"))),
    ]


def _image(source: str, rel: str, args: tuple[str, ...] = ()) -> list[Case]:
    return [Case(source, "zero-byte", "image (flagged)", zero_byte(rel), exit_code=0,
                 expect="unreadable", args=args),
            Case(source, "truncated", "image (flagged)", truncate(rel, 0.5), exit_code=0,
                 expect="unreadable", args=args),
            Case(source, "wrong-magic", "image (flagged)", wrong_magic(rel), exit_code=0,
                 expect="unreadable", args=args),
            Case(source, "truncated", "image with --strict", truncate(rel, 0.5),
                 expect="unreadable", args=(*args, "--strict"))]


def _icpr() -> list[Case]:
    csv = "A00_v2/A00_00.csv"
    db = ("--option", "annotations=sqlite")
    return [
        Case("icpr2012", "truncated", "csv mid-line", cut_mid_line(csv)),
        Case("icpr2012", "wrong-shape", "odd value count", lines(csv, first_line("1,2,3"))),
        Case("icpr2012", "wrong-type", "text pixel", lines(csv, first_line("1,two")),
             expect="expected a number"),
        Case("icpr2012", "nan", "nan pixel", lines(csv, first_line("nan,3")), expect="finite"),
        Case("icpr2012", "negative", "all pixels negative (dropped)",
             lines(csv, first_line("-5,-5,-6,-6")), exit_code=0, expect="dropped"),
        Case("icpr2012", "out-of-image", "pixels beyond the image (dropped)",
             lines(csv, first_line("5000,5000,5001,5001")), exit_code=0, expect="dropped"),
        Case("icpr2012", "zero-byte", "csv (no mitosis: read)", zero_byte(csv), exit_code=0),
        Case("icpr2012", "wrong-magic", "csv is binary", wrong_magic(csv)),
        Case("icpr2012", "bom", "csv with UTF-8 BOM (read)", bom(csv), exit_code=0),
        *_image("icpr2012", "A00_v2/A00_01.bmp"),
        *_sliderunner("icpr2012", "MITOS2012.sqlite", "", args=db),
    ]


def _mitos() -> list[Case]:
    csv = "A03/mitosis/A03_00Aa_mitosis.csv"
    db = ("--option", "annotations=sqlite")
    return [
        *_point_csv("mitos-atypia-14", csv, "44,82,1", 3),
        Case("mitos-atypia-14", "negative", "confidence -0.5",
             lines(csv, first_line("44,82,-0.5")), expect="confidence"),
        Case("mitos-atypia-14", "out-of-image", "confidence 7", lines(csv, first_line("44,82,7")),
             expect="confidence"),
        *_image("mitos-atypia-14", "A03/frames/x40/A03_00Ab.tiff"),
        *_sliderunner("mitos-atypia-14", "MITOS2014.sqlite", "", args=db),
    ]


def _tupac() -> list[Case]:
    csv = "mitoses_ground_truth/01/01.csv"
    st = ("--option", "annotations=stitched")
    js = "TUPACStitchInformation.json"
    return [
        *_point_csv("tupac16", csv, "181,75", 2),
        *_image("tupac16", "mitoses_image_data/02/01.tif"),
        *_sliderunner("tupac16", "TUPAC.sqlite", "", args=("--option", "annotations=tiles")),
        Case("tupac16", "truncated", "stitch JSON", truncate(js), args=st),
        Case("tupac16", "zero-byte", "stitch JSON", zero_byte(js), args=st),
        Case("tupac16", "wrong-shape", "offset of one number",
             json_edit(js, lambda d: d["cases"]["1"].update({"01.tif": [0]})), args=st),
        Case("tupac16", "wrong-type", "offset as text",
             json_edit(js, lambda d: d["cases"]["1"].update({"01.tif": ["a", 0]})), args=st),
        Case("tupac16", "nan", "offset NaN",
             json_edit(js, lambda d: d["cases"]["1"].update({"02.tif": [float("nan"), 0]})),
             args=st, expect="finite"),
    ]


def _midog(source: str, js: str, image: str, xval: bool) -> list[Case]:
    def ann(field: str, value: Any) -> Callable[[Any], None]:
        return lambda d: d["annotations"][0].update({field: value})

    def img(field: str, value: Any) -> Callable[[Any], None]:
        return lambda d: d["images"][0].update({field: value})

    c = [
        Case(source, "truncated", "JSON half", truncate(js)),
        Case(source, "zero-byte", "JSON", zero_byte(js)),
        Case(source, "wrong-magic", "JSON is binary", wrong_magic(js)),
        Case(source, "wrong-shape", "JSON is a list", json_edit(js, lambda d: [d])),
        Case(source, "wrong-shape", "categories a string",
             json_edit(js, lambda d: d.update(categories="mitotic figure")), expect="categories"),
        Case(source, "wrong-shape", "categories a list of strings",
             json_edit(js, lambda d: d.update(categories=["mitotic figure", "imposter"])),
             expect="categories"),
        Case(source, "wrong-shape", "images an object",
             json_edit(js, lambda d: d.update(images={"1": d["images"][0]})), expect="images"),
        Case(source, "wrong-shape", "bbox of three", json_edit(js, ann("bbox", [1, 2, 3])),
             expect="bbox"),
        Case(source, "wrong-shape", "bbox xywh (x2 < x1)",
             json_edit(js, ann("bbox", [100, 100, 50, 50])), expect="bbox"),
        Case(source, "wrong-type", "width 'wide'", json_edit(js, img("width", "wide")),
             expect="width"),
        Case(source, "wrong-type", "image id text", json_edit(js, img("id", "one")),
             expect="id"),
        Case(source, "wrong-type", "category_id text", json_edit(js, ann("category_id", "mf")),
             expect="category_id"),
        Case(source, "wrong-type", "bbox text", json_edit(js, ann("bbox", ["a", 1, 2, 3])),
             expect="bbox"),
        Case(source, "wrong-type", "annotation a number",
             json_edit(js, lambda d: d["annotations"].append(5)), expect="annotations"),
        Case(source, "nan", "bbox NaN",
             json_edit(js, ann("bbox", [float("nan"), 1, 60, 60])), expect="finite"),
        Case(source, "nan", "bbox Infinity",
             json_edit(js, ann("bbox", [1, 1, float("inf"), 60])), expect="finite"),
        Case(source, "negative", "width -320", json_edit(js, img("width", -320)),
             expect="width"),
        Case(source, "out-of-image", "bbox wholly outside (dropped)",
             json_edit(js, ann("bbox", [-900, -900, -850, -850])), exit_code=0,
             expect="dropped"),
        Case(source, "unknown-id", "unknown image id (left out, counted)",
             json_edit(js, ann("image_id", 777)), exit_code=0, expect="unknown image id 777"),
        Case(source, "unknown-id", "unknown category id (left out, counted)",
             json_edit(js, ann("category_id", 9)), exit_code=0, expect="unknown category id 9"),
        Case(source, "wrong-shape", "duplicate annotation id",
             json_edit(js, lambda d: d["annotations"][1].update(id=d["annotations"][0]["id"])),
             expect="duplicate"),
        Case(source, "bom", "JSON with UTF-8 BOM (read)", bom(js), exit_code=0),
        *_image(source, image),
    ]
    if xval:
        x = "datasets_xvalidation.csv"
        c += [Case(source, "bom", "xval csv with BOM (read)", bom(x), exit_code=0),
              Case(source, "zero-byte", "xval csv", zero_byte(x)),
              Case(source, "wrong-type", "xval Slide text",
                   lines(x, lambda ls: [ls[0], "one;train;x;y;z;Human", *ls[2:]]),
                   expect="Slide"),
              Case(source, "wrong-shape", "xval comma separated",
                   lines(x, lambda ls: [ln.replace(";", ",") for ln in ls])),
              Case(source, "wrong-magic", "xval csv is binary", wrong_magic(x))]
    return c


def _phh3() -> list[Case]:
    pj = "pairs/pair1/pair.json"
    pq = "pairs/pair1/objects.parquet"

    def pair(field: str, value: Any) -> Mutator:
        return json_edit(pj, lambda d: d.update({field: value}))

    return [
        Case("phh3", "wrong-shape", "he_mpp a scalar", pair("he_mpp", 0.5), expect="he_mpp"),
        Case("phh3", "wrong-shape", "he_mpp of three", pair("he_mpp", [0.5, 0.5, 0.5]),
             expect="he_mpp"),
        Case("phh3", "wrong-type", "he_mpp 'fast'", pair("he_mpp", ["fast", 0.5]),
             expect="he_mpp"),
        Case("phh3", "negative", "he_mpp -0.5", pair("he_mpp", [-0.5, -0.5]), expect="he_mpp"),
        Case("phh3", "nan", "he_mpp NaN", pair("he_mpp", [float("nan"), 0.5]), expect="he_mpp"),
        Case("phh3", "wrong-type", "he_width 'wide'", pair("he_width", "wide"),
             expect="he_width"),
        Case("phh3", "negative", "he_width -320", pair("he_width", -320), expect="he_width"),
        Case("phh3", "wrong-type", "species unknown", pair("species", "dog"), expect="species"),
        Case("phh3", "wrong-type", "he_slide a number", pair("he_slide", 5), expect="he_slide"),
        Case("phh3", "truncated", "pair.json", truncate(pj)),
        Case("phh3", "zero-byte", "pair.json", zero_byte(pj)),
        Case("phh3", "wrong-magic", "pair.json", wrong_magic(pj)),
        Case("phh3", "truncated", "objects.parquet", truncate(pq)),
        Case("phh3", "zero-byte", "objects.parquet", zero_byte(pq)),
        Case("phh3", "wrong-magic", "objects.parquet", wrong_magic(pq)),
        Case("phh3", "nan", "he_x NaN", parquet_edit(pq, "he_x", float("nan")),
             expect="he_x"),
        Case("phh3", "wrong-shape", "box x1 < x0", parquet_edit(pq, "he_x1", -5.0),
             expect="he_x0"),
        Case("phh3", "wrong-type", "unknown qa flag", parquet_edit(pq, "qa_flags", "bogus"),
             expect="qa_flags"),
        Case("phh3", "out-of-image", "box wholly outside (dropped)",
             parquet_edit(pq, "he_x0", 9000.0, he_x1=9010.0), exit_code=0, expect="dropped"),
        Case("phh3", "negative", "box partly at x < 0 (clipped)",
             parquet_edit(pq, "he_x0", -40.0), exit_code=0),
        Case("phh3", "negative", "area_px -4", parquet_edit(pq, "area_px", -4),
             expect="area_px"),
        Case("phh3", "zero-byte", "H&E slide (flagged)", zero_byte("slides/pair1_he.svs"),
             exit_code=0, expect="unreadable"),
    ]


def _folder() -> list[Case]:
    gj = "case2/field.geojson"
    toml = "mfcurate.toml"

    def feats(edit: Callable[[list[Any]], None]) -> Mutator:
        return json_edit(gj, lambda d: edit(d["features"]))

    def geom(value: Any) -> Mutator:
        return feats(lambda f: f[1].update(geometry=value))

    return [
        Case("folder", "truncated", "GeoJSON half", truncate(gj)),
        Case("folder", "zero-byte", "GeoJSON", zero_byte(gj)),
        Case("folder", "wrong-magic", "GeoJSON is binary", wrong_magic(gj)),
        Case("folder", "wrong-shape", "properties a list",
             feats(lambda f: f[0].update(properties=["Mitosis"])), expect="properties"),
        Case("folder", "wrong-shape", "point of one number",
             geom({"type": "Point", "coordinates": [5]})),
        Case("folder", "wrong-shape", "GeometryCollection of numbers",
             geom({"type": "GeometryCollection", "geometries": [1, 2]})),
        Case("folder", "wrong-type", "coordinates text",
             geom({"type": "Point", "coordinates": ["a", "b"]})),
        Case("folder", "wrong-type", "polygon coordinates a string",
             geom({"type": "Polygon", "coordinates": "square"})),
        Case("folder", "nan", "point NaN", geom({"type": "Point",
                                                 "coordinates": [float("nan"), 3]})),
        Case("folder", "negative", "point far negative (dropped)",
             geom({"type": "Point", "coordinates": [-500, -500]}), exit_code=0,
             expect="dropped"),
        Case("folder", "out-of-image", "point far outside (dropped)",
             geom({"type": "Point", "coordinates": [9000, 9000]}), exit_code=0,
             expect="dropped"),
        Case("folder", "bom", "GeoJSON with BOM (read)", bom(gj), exit_code=0),
        Case("folder", "bom", "TOML with BOM (read)", bom(toml), exit_code=0),
        Case("folder", "wrong-type", "toml mpp 'fast'",
             lines(toml, lambda ls: [*ls, '[images."case3/empty.png"]', 'mpp = "fast"']),
             expect="mpp"),
        Case("folder", "negative", "toml mpp -1",
             lines(toml, lambda ls: [*ls, '[images."case3/empty.png"]', "mpp = -1"]),
             expect="mpp"),
        Case("folder", "wrong-type", "toml species a number",
             lines(toml, lambda ls: [ln.replace('species = "canine"', "species = 5")
                                     for ln in ls]), expect="species"),
        Case("folder", "wrong-shape", "toml classes a string",
             lines(toml, lambda ls: ['classes = "Mitosis"', *[ln for ln in ls if '" = "' not in
                                                              ln and ln != "[classes]"]]),
             expect="classes"),
        Case("folder", "wrong-shape", "toml unknown key",
             lines(toml, lambda ls: [ln.replace("split = \"train\"", "spilt = \"train\"")
                                     for ln in ls]), expect="spilt"),
        Case("folder", "truncated", "toml cut inside a string", cut_after(toml, '"case2')),
        Case("folder", "bomb", "decompression-bomb PNG (flagged)", bomb_png("case3/empty.png"),
             exit_code=0, expect="too large"),
        Case("folder", "bomb", "decompression-bomb PNG with --strict",
             bomb_png("case3/empty.png"), expect="too large", args=("--strict",)),
        *_image("folder", "case2/field.png"),
    ]


def all_cases() -> list[Case]:
    """The whole corpus."""
    return [*_icpr(), *_mitos(), *_tupac(),
            *_midog("midog++", "MIDOG++.json", "images/002.tiff", xval=True),
            *_midog("midog2021", "MIDOG.json", "101.tiff", xval=False),
            *_wsi("cmc", "MITOS_WSI_CMC_CODAEL_TR_ROI.sqlite", "4eee7b944ad5e46c60ce.svs"),
            *_wsi("ccmct", "MITOS_WSI_CCMCT_ODAEL.sqlite", "ac1168b2c893d2acad38.svs"),
            *_phh3(), *_folder()]


#: Folder passed to ``mfcurate ingest`` relative to the generated base (pHH3 slides lie
#: outside their pair folders).
ROOT_IN_BASE = {"phh3": "pairs"}
