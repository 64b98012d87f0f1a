"""Writers shared by the fake SlideRunner sources: the database in both schemas, WSI sources.

:func:`write_sliderunner_db` writes a SlideRunner SQLite file the way the real ones look:

* ``schema="old"`` is the MITOS2012 / CCMCT-Tumorzone vintage: ``Annotations(uid, slide, type,
  agreedClass)`` without ``deleted``/``guid``/``description``, ``Classes`` without ``color``;
* ``schema="new"`` is the MIDOG / TUPAC-AL vintage: ``Annotations`` with ``guid``,
  ``lastModified``, ``deleted``, ``description``, ``clickable``; ``Annotations_coordinates`` with
  ``coordinateZ``; ``Annotations_label.exact_id``; and SlideRunner's triggers, which call
  functions only SlideRunner registers (so any write through plain sqlite3 fails, as with the
  real files).

Coordinates are stored as given (Python floats become SQLite REAL in an INTEGER column, as in
MIDOG.sqlite); ``order_null`` writes ``orderIdx`` NULL as in TUPAC.sqlite and the MITOS DBs.
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

_OLD = [
    "CREATE TABLE `Annotations_label` (`uid` INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE, "
    "`person` INTEGER, `class` INTEGER, `annoId` INTEGER)",
    "CREATE TABLE `Annotations_coordinates` (`uid` INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE,"
    "`coordinateX` INTEGER,`coordinateY` INTEGER,`slide` INTEGER,`annoId` INTEGER,"
    "`orderIdx` INTEGER)",
    "CREATE TABLE `Annotations` (`uid` INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE,"
    "`slide` INTEGER,`type` INTEGER,`agreedClass` INTEGER)",
    "CREATE TABLE `Classes` (`uid` INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE,`name` TEXT)",
    "CREATE TABLE `Persons` (`uid` INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE,`name` TEXT)",
    "CREATE TABLE `Slides` (`uid` INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE,`filename` TEXT,"
    "`width` INTEGER,`height` INTEGER, `directory` TEXT)",
    "CREATE TABLE `Log` (`uid` INTEGER PRIMARY KEY AUTOINCREMENT,`dateTime` FLOAT,"
    "`labelId` INTEGER)",
]
_NEW = [
    "CREATE TABLE `Annotations_label` (`uid` INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE, "
    "`person` INTEGER, `class` INTEGER, `exact_id` INTEGER, `annoId` INTEGER)",
    "CREATE TABLE `Annotations_coordinates` (`uid` INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE,"
    "`coordinateX` INTEGER,`coordinateY` INTEGER,`coordinateZ` INTEGER DEFAULT 0,"
    "`slide` INTEGER,`annoId` INTEGER,`orderIdx` INTEGER)",
    "CREATE TABLE `Annotations` (`uid` INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE,"
    "`slide` INTEGER,`guid` TEXT,`lastModified` REAL DEFAULT 1616148830.5508225,"
    "`deleted` INTEGER DEFAULT 0,`type` INTEGER,`agreedClass` INTEGER,`description` TEXT,"
    "`clickable` INTEGER DEFAULT 1)",
    "CREATE TABLE `Classes` (`uid` INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE,`name` TEXT,"
    "`color` TEXT)",
    "CREATE TABLE `Persons` (`uid` INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE,`name` TEXT,"
    "`isExactUser` INTEGER DEFAULT 0)",
    "CREATE TABLE `Slides` (`uid` INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE,`filename` TEXT,"
    "`width` INTEGER,`height` INTEGER,`directory` TEXT,`uuid` TEXT,`exactImageID` TEXT, "
    "`EXACTUSER` INTEGER DEFAULT 0)",
    "CREATE TABLE `Log` (`uid` INTEGER PRIMARY KEY AUTOINCREMENT,`dateTime` FLOAT,"
    "`labelId` INTEGER)",
]
_TRIGGERS = [
    "CREATE TRIGGER updateAnnotation_INSERT AFTER INSERT ON Annotations BEGIN "
    "UPDATE Annotations SET lastModified=pycurrent_time() where uid==new.uid; END",
    "CREATE TRIGGER updateAnnotation_ins AFTER INSERT ON Annotations BEGIN "
    "UPDATE Annotations SET guid=generate_uuid() where uid==new.uid and guid is Null; END",
    "CREATE TRIGGER setRandomcolor AFTER INSERT ON Classes BEGIN "
    "UPDATE Classes SET color=randcolor() where uid==new.uid and color is Null; END",
]


@dataclass
class FakeAnnotation:
    """One annotation row with its coordinates and votes.

    Attributes:
        uid: ``Annotations.uid``.
        slide: ``Slides.uid``.
        type: SlideRunner type (1 spot, 2 rectangle, 3 polygon, 4 special spot).
        agreed: ``agreedClass`` (0 = none).
        coords: vertices ``(x, y)`` in level-0 px (x = column); floats stay REAL.
        votes: ``(person uid, class uid)`` rows of ``Annotations_label`` (class 0 allowed).
        deleted: soft-deleted (only the new schema can say so).
        order_null: write ``orderIdx`` NULL.
    """

    uid: int
    slide: int
    type: int
    agreed: int
    coords: list[tuple[float, float]]
    votes: list[tuple[int, int]] = field(default_factory=list)
    deleted: bool = False
    order_null: bool = False


@dataclass
class FakeSlide:
    """One ``Slides`` row."""

    uid: int
    filename: str
    directory: str | None = None
    width: int | None = None
    height: int | None = None


def write_sliderunner_db(path: Path, *, schema: str, slides: list[FakeSlide],
                         classes: dict[int, str], persons: dict[int, str],
                         annotations: list[FakeAnnotation], seed: int = 0) -> Path:
    """Write a SlideRunner database in the ``old`` or ``new`` schema (see module doc)."""
    if schema not in {"old", "new"}:
        raise ValueError(f"schema must be 'old' or 'new', not {schema!r}")
    new = schema == "new"
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    rng = np.random.default_rng(seed)
    con = sqlite3.connect(path)
    try:
        # fake data: no fsync per statement (neither setting is stored in the file)
        con.execute("PRAGMA synchronous = OFF")
        con.execute("PRAGMA journal_mode = MEMORY")
        for ddl in _NEW if new else _OLD:
            con.execute(ddl)
        for s in slides:
            con.execute("INSERT INTO Slides (uid, filename, width, height, directory) "
                        "VALUES (?, ?, ?, ?, ?)", (s.uid, s.filename, s.width, s.height,
                                                   s.directory))
        for uid, name in classes.items():
            if new:
                con.execute("INSERT INTO Classes (uid, name, color) VALUES (?, ?, ?)",
                            (uid, name, f"#{int(rng.integers(0, 1 << 24)):06x}"))
            else:
                con.execute("INSERT INTO Classes (uid, name) VALUES (?, ?)", (uid, name))
        for uid, name in persons.items():
            con.execute("INSERT INTO Persons (uid, name) VALUES (?, ?)", (uid, name))
        for a in annotations:
            if new:
                guid = str(uuid.UUID(int=int(rng.integers(0, 1 << 62)) << 64 | a.uid))
                con.execute("INSERT INTO Annotations (uid, slide, guid, deleted, type, "
                            "agreedClass) VALUES (?, ?, ?, ?, ?, ?)",
                            (a.uid, a.slide, guid, int(a.deleted), a.type, a.agreed))
            else:
                if a.deleted:
                    raise ValueError("the old schema has no 'deleted' column")
                con.execute("INSERT INTO Annotations (uid, slide, type, agreedClass) "
                            "VALUES (?, ?, ?, ?)", (a.uid, a.slide, a.type, a.agreed))
            for k, (x, y) in enumerate(a.coords):
                con.execute("INSERT INTO Annotations_coordinates (coordinateX, coordinateY, "
                            "slide, annoId, orderIdx) VALUES (?, ?, ?, ?, ?)",
                            (_num(x), _num(y), a.slide, a.uid, None if a.order_null else k + 1))
            for person, cls in a.votes:
                con.execute("INSERT INTO Annotations_label (person, class, annoId) "
                            "VALUES (?, ?, ?)", (person, cls, a.uid))
        if new:
            for trig in _TRIGGERS:
                con.execute(trig)
        con.commit()
    finally:
        con.close()
    return path


def _num(v: float) -> int | float:
    """Integers stay INTEGER, halves stay REAL (as in the real files)."""
    return int(v) if float(v).is_integer() else float(v)


@dataclass
class WsiFakePlan:
    """What a fake whole-slide SlideRunner source holds.

    Attributes:
        key: adapter key.
        db_name: database file name under ROOT.
        schema: ``old`` or ``new``.
        slides: slide file names; the last one gets no cell annotation.
        classes: ``Classes`` rows (uid -> name), as the real database names them.
        mf_id: class uid of mitotic figures.
        like_id: class uid of look-alikes.
        nucleus_classes: ``(class uid, label value)`` given to planted ordinary nuclei.
        region_class: class uid of the region polygons/rectangles.
        exclude_class: class uid of an "exclude from tumour region" polygon drawn on every
            slide with cells (None: none).
        options: adapter options the ingest needs.
    """

    key: str
    db_name: str
    schema: str
    slides: list[str]
    classes: dict[int, str]
    mf_id: int
    like_id: int
    nucleus_classes: list[tuple[int, str]]
    region_class: int
    exclude_class: int | None = None
    options: dict[str, str] = field(default_factory=dict)

#: The exclusion polygon of every slide with cells (level-0 px of the 384 x 256 fake slide).
EXCLUDE_POLYGON: list[tuple[float, float]] = [(250.0, 10.0), (378.0, 10.0), (378.0, 120.0),
                                              (250.0, 120.0)]


def build_wsi_fake(root: Path, seed: int, plan: WsiFakePlan) -> tuple[Path, dict[str, int],
                                                                      list[str]]:
    """Write slides (``.svs``) and the SlideRunner DB; return (db path, counts, empty ids).

    Regions: a polygon of ``region_class`` on every slide, a rectangle of it on every slide
    with cells, and (``exclude_class``) the :data:`EXCLUDE_POLYGON` on every slide with cells.

    Every planted mitotic figure / look-alike becomes a type-1 spot at its centroid
    (rounded to 0.5 px, so some coordinates are REAL); planted nuclei take the
    ``nucleus_classes`` in turn.  Traps written on purpose: a region polygon (type 3) and
    rectangle (type 2) per slide, a type-4 special spot and a type-1 spot with
    ``agreedClass`` 0, class-0 and repeated votes, ``orderIdx`` NULL on every third spot,
    and (new schema) soft-deleted spots.  None of those may become objects.
    """
    from mfcurate.synth.render import render_tissue
    from mfcurate.synth.wsi import write_svs

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    mpp = 0.25
    h, w = 256, 384
    persons = {1: "expert 1", 2: "expert 2", 3: "expert 3"}
    slides: list[FakeSlide] = []
    anns: list[FakeAnnotation] = []
    counts: dict[str, int] = {}
    uid = 0
    new = plan.schema == "new"

    def add(slide: int, typ: int, agreed: int, coords: list[tuple[float, float]],
            votes: list[tuple[int, int]] | None = None, deleted: bool = False) -> None:
        nonlocal uid
        uid += 1
        anns.append(FakeAnnotation(uid, slide, typ, agreed, coords, votes or [],
                                   deleted=deleted, order_null=uid % 3 == 0))

    for s_idx, name in enumerate(plan.slides, start=1):
        empty = s_idx == len(plan.slides)
        n_mf = 0 if empty else 2 + int(rng.integers(0, 2))
        n_like = 0 if empty else 2
        rgb, planted = render_tissue(rng, h, w, mpp=mpp, n_mitotic=n_mf,
                                     n_mitotic_like=n_like)
        write_svs(root / name, rgb, mpp)
        slides.append(FakeSlide(s_idx, name))
        # regions first (as in the _ROI databases), never cells
        add(s_idx, 3, plan.region_class, [(5.0, 5.0), (w - 6.0, 7.0), (w - 8.0, h - 6.0),
                                          (4.0, h - 9.0)])
        if empty:
            continue
        add(s_idx, 2, plan.region_class, [(20.0, 20.0), (200.0, 150.0)])
        if plan.exclude_class is not None:
            add(s_idx, 3, plan.exclude_class, list(EXCLUDE_POLYGON))
        add(s_idx, 4, 0, [(30.0, 40.0)])
        add(s_idx, 1, 0, [(60.0, 70.0)], [(1, 0)])
        nuc_i = 0
        for p in planted:
            cx, cy = (round(v * 2.0) / 2.0 for v in p.centroid_xy)
            if p.kind == "mitotic_figure":
                cls, lab = plan.mf_id, "mitotic_figure"
            elif p.kind == "mitotic_like":
                cls, lab = plan.like_id, "mitotic_like"
            elif nuc_i < 2 * len(plan.nucleus_classes):
                cls, lab = plan.nucleus_classes[nuc_i % len(plan.nucleus_classes)]
                nuc_i += 1
            else:
                continue
            other = plan.like_id if cls == plan.mf_id else plan.mf_id
            votes = [(1, other), (1, cls), (2, cls), (3, 0)]  # re-vote and a class-0 vote
            add(s_idx, 1, cls, [(cx, cy)], votes)
            counts[lab] = counts.get(lab, 0) + 1
            if new and p.kind == "mitotic_figure":
                add(s_idx, 1, plan.mf_id, [(cx + 3.5, cy + 2.0)], [(1, plan.mf_id)],
                    deleted=True)
    db = write_sliderunner_db(root / plan.db_name, schema=plan.schema, slides=slides,
                              classes=plan.classes, persons=persons, annotations=anns,
                              seed=seed)
    empty_ids = [Path(plan.slides[-1]).stem]
    return db, counts, empty_ids


def write_tumorzone_db(path: Path, slides: list[str], seed: int = 0) -> dict[str, int]:
    """The CCMCT Tumorzone database of the fake slides (old schema, German class names).

    As the real ``MITOS_WSI_CCMCT_Tumorzone.sqlite``: classes ``1 Tumorzone``, ``2
    Nekrosezone``, ``3 unscharfe scan-area``, ``4 nicht tumorgewebe excludieren``; per slide a
    tumour polygon reaching past the left edge (x = -6), a necrosis polygon and an exclusion
    polygon inside it, and unlabelled type-4 special spots (``agreedClass`` 0).  Traps on the
    first slide: a self-intersecting (bow-tie) blurred polygon (repaired with make_valid), a
    two-vertex tumour polygon (dropped) and a type-1 spot of class ``Tumorzone`` (never a
    cell).

    Returns:
        Region polygons per normalised class that the adapter must keep.
    """
    classes = {1: "Tumorzone", 2: "Nekrosezone", 3: "unscharfe scan-area",
               4: "nicht tumorgewebe excludieren"}
    anns: list[FakeAnnotation] = []
    counts: dict[str, int] = {}

    def add(slide: int, typ: int, agreed: int, coords: list[tuple[float, float]],
            kind: str | None = None) -> None:
        anns.append(FakeAnnotation(len(anns) + 1, slide, typ, agreed, coords))
        if kind is not None:
            counts[kind] = counts.get(kind, 0) + 1

    for s_idx, _name in enumerate(slides, start=1):
        add(s_idx, 3, 1, [(-6.0, 0.0), (240.0, 0.0), (260.0, 130.0), (240.0, 256.0),
                          (0.0, 256.0)], "tumour")
        add(s_idx, 3, 2, [(20.0, 180.0), (70.0, 180.0), (70.0, 240.0), (20.0, 240.0)],
            "necrosis")
        add(s_idx, 3, 4, [(150.0, 20.0), (220.0, 20.0), (220.0, 90.0), (150.0, 90.0)],
            "exclude")
        for k in range(3):
            add(s_idx, 4, 0, [(40.0 + 50 * k, 60.0)])
    add(1, 3, 3, [(100.0, 150.0), (160.0, 210.0), (160.0, 150.0), (100.0, 210.0)], "blurred")
    add(1, 3, 1, [(10.0, 10.0), (30.0, 30.0)])
    add(1, 1, 1, [(50.0, 50.0)])
    write_sliderunner_db(path, schema="old", slides=[FakeSlide(i, n) for i, n in
                                                     enumerate(slides, start=1)],
                         classes=classes, persons={1: "expert 1"}, annotations=anns, seed=seed)
    return counts
