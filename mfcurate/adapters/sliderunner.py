"""Reader for SlideRunner / EXACT SQLite databases (MIDOG, CMC, CCMCT, TUPAC, MITOS conversions).

The schema differs between database vintages, so columns are selected by name: old databases
have no ``deleted``/``guid``/``description`` columns, ``orderIdx`` may be NULL, and coordinates
declared INTEGER may hold REAL values.  Databases are opened read-only (``mode=ro``): their
triggers call functions only SlideRunner registers, so any write would fail anyway.

Annotation types (SlideRunner enum): 1 spot, 2 area (rectangle), 3 polygon, 4 special spot,
5 circle, 6 image annotation.  Cells are spots (type 1); everything else is a region.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mfcurate.adapters.fields import (
    Where,
    integer,
    req_integer,
    req_number,
    req_text,
    size_px,
    text,
)
from mfcurate.errors import SourceFormatError

SPOT = 1
AREA = 2
POLYGON = 3


@dataclass(frozen=True)
class Vote:
    """One annotator's vote: person name and the class name they chose (None = class 0)."""

    person: str
    class_name: str | None


@dataclass
class Spot:
    """One spot annotation (a cell), coordinates in level-0 px (x = column)."""

    uid: int
    slide_uid: int
    class_id: int
    x: float
    y: float
    votes: list[Vote] = field(default_factory=list)


@dataclass(frozen=True)
class Slide:
    """A row of ``Slides``: file name, optional case folder, optional size."""

    uid: int
    filename: str
    directory: str | None
    width: int | None
    height: int | None


@dataclass
class Region:
    """A non-spot annotation (rectangle, polygon...) with its vertices in order."""

    uid: int
    slide_uid: int
    type: int
    class_id: int
    vertices: list[tuple[float, float]]


@dataclass
class SlideRunnerDB:
    """Everything an adapter needs from a SlideRunner database."""

    path: Path
    slides: dict[int, Slide]
    classes: dict[int, str]
    spots: list[Spot]
    regions: list[Region]
    skipped_deleted: int = 0
    #: annotations left out, each named with why (NULL coordinate, unknown slide or class).
    problems: list[str] = field(default_factory=list)


def _columns(con: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in con.execute(f"PRAGMA table_info({table})")}


def check_sqlite_file(path: Path) -> None:
    """Raise :class:`SourceFormatError` when ``path`` is not a complete SQLite file.

    SQLite reads a truncated file without complaint until a query touches a missing page, so
    the header is checked: the magic string, and (where the header's page count is valid,
    i.e. its change counter equals its version-valid-for number) that the file holds
    ``page_size * page_count`` bytes.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(100)
    except OSError as exc:
        raise SourceFormatError(path, f"cannot read ({exc})") from exc
    if len(head) < 100 or not head.startswith(b"SQLite format 3\x00"):
        raise SourceFormatError(path, "not a SQLite database (bad or truncated header)")
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    n_pages = int.from_bytes(head[28:32], "big")
    valid = n_pages > 0 and head[24:28] == head[92:96]
    if page_size and size % page_size:
        raise SourceFormatError(path, f"truncated SQLite file ({size} bytes is not a multiple "
                                      f"of the page size {page_size})")
    if valid and size < n_pages * page_size:
        raise SourceFormatError(path, f"truncated SQLite file ({size} bytes, the header "
                                      f"declares {n_pages} pages of {page_size} bytes)")


def open_readonly(path: Path) -> sqlite3.Connection:
    """Open a SQLite file read-only (``mode=ro``); SourceFormatError if it is not SQLite.

    A truncated file (see :func:`check_sqlite_file`) is a SourceFormatError too.
    """
    check_sqlite_file(path)
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        con.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.DatabaseError as exc:
        raise SourceFormatError(path, f"not a readable SQLite database ({exc})") from exc
    return con


def read_sliderunner(path: Path, *, with_regions: bool = False,
                     spot_types: Sequence[int] = (SPOT,)) -> SlideRunnerDB:
    """Read slides, classes, spots (with votes) and optionally regions of a database.

    Args:
        path: the ``.sqlite`` file.
        with_regions: also return rectangles/polygons (tumour zones, ROIs).
        spot_types: annotation types read as cells (default: type 1 spots only).

    Raises:
        SourceFormatError: not SQLite, or the SlideRunner tables/columns are missing.
    """
    con = open_readonly(path)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        need = {"Slides", "Annotations", "Annotations_coordinates", "Classes"}
        if not need <= tables:
            raise SourceFormatError(path, f"not a SlideRunner database (missing tables "
                                          f"{sorted(need - tables)})")
        try:
            return _read(con, path, tables, with_regions, spot_types)
        except sqlite3.DatabaseError as exc:
            raise SourceFormatError(path, f"cannot read SlideRunner tables ({exc})") from exc
    finally:
        con.close()


def _read(con: sqlite3.Connection, path: Path, tables: set[str], with_regions: bool,
          spot_types: Sequence[int]) -> SlideRunnerDB:
    slides = _read_slides(con, path)
    classes: dict[int, str] = {}
    for u, n in con.execute("SELECT uid, name FROM Classes"):
        at = Where(path, f"Classes row uid={u!r}")
        classes[req_integer(u, at, "uid")] = text(n, at, "name", optional=True) or ""
    persons: dict[int, str] = {}
    if "Persons" in tables:
        for u, n in con.execute("SELECT uid, name FROM Persons"):
            at = Where(path, f"Persons row uid={u!r}")
            persons[req_integer(u, at, "uid")] = str(n) if n is not None else "unknown"

    acols = _columns(con, "Annotations")
    deleted_sel = "deleted" if "deleted" in acols else "0"
    ann = con.execute(
        f"SELECT uid, slide, type, agreedClass, {deleted_sel} FROM Annotations ORDER BY uid"
    ).fetchall()
    coords, null_coords = _read_coordinates(con, path)
    votes = _read_votes(con, path, tables, classes, persons)

    spots: list[Spot] = []
    regions: list[Region] = []
    skipped = 0
    problems: list[str] = []
    for row in ann:
        at = Where(path, f"Annotations row uid={row[0]!r}")
        uid = req_integer(row[0], at, "uid")
        slide = req_integer(row[1], at, "slide")
        typ = integer(row[2], at, "type", optional=True) or 0
        agreed = integer(row[3], at, "agreedClass", optional=True) or 0
        if integer(row[4], at, "deleted", optional=True):
            skipped += 1
            continue
        pts = coords.get(uid, [])
        is_spot = typ in spot_types
        if not is_spot and not with_regions:
            continue
        if slide not in slides:
            problems.append(f"annotation {uid}: slide {slide} is not in Slides")
            continue
        if agreed and agreed not in classes:
            problems.append(f"annotation {uid}: class id {agreed} is not in Classes")
            continue
        if not pts:
            why = "NULL coordinate" if uid in null_coords else "no coordinate"
            problems.append(f"annotation {uid}: {why}")
            continue
        if is_spot:
            x, y = pts[0]
            spots.append(Spot(uid, slide, agreed, x, y, votes.get(uid, [])))
        else:
            regions.append(Region(uid, slide, typ, agreed, pts))
    return SlideRunnerDB(path, slides, classes, spots, regions, skipped, problems)


def _read_slides(con: sqlite3.Connection, path: Path) -> dict[int, Slide]:
    scols = _columns(con, "Slides")
    sel = ["uid", "filename"] + [c if c in scols else "NULL" for c in ("directory", "width",
                                                                        "height")]
    slides: dict[int, Slide] = {}
    for uid, fn, d, w, h in con.execute(f"SELECT {', '.join(sel)} FROM Slides"):
        at = Where(path, f"Slides row uid={uid!r}")
        u = req_integer(uid, at, "uid")
        name = req_text(fn, at, "filename", nonempty=True)
        directory = None if d in (None, "") else str(d)
        slides[u] = Slide(u, name, directory, size_px(w, at, "width"),
                          size_px(h, at, "height"))
    return slides


def _read_coordinates(con: sqlite3.Connection, path: Path
                      ) -> tuple[dict[int, list[tuple[float, float]]], set[int]]:
    """Vertices per annotation in order, and the annotations with a NULL coordinate."""
    ccols = _columns(con, "Annotations_coordinates")
    order = "orderIdx" if "orderIdx" in ccols else "NULL"
    coords: dict[int, list[tuple[float, float]]] = defaultdict(list)
    nulls: set[int] = set()
    for uid, anno, x, y in con.execute(
        f"SELECT uid, annoId, coordinateX, coordinateY FROM Annotations_coordinates "
        f"ORDER BY annoId, CASE WHEN {order} IS NULL THEN 1 ELSE 0 END, {order}, uid"
    ):
        at = Where(path, f"Annotations_coordinates row uid={uid!r}")
        a = req_integer(anno, at, "annoId")
        if x is None or y is None:
            nulls.add(a)
            continue
        coords[a].append((req_number(x, at, "coordinateX"), req_number(y, at, "coordinateY")))
    return coords, nulls


def _read_votes(con: sqlite3.Connection, path: Path, tables: set[str], classes: dict[int, str],
                persons: dict[int, str]) -> dict[int, list[Vote]]:
    votes: dict[int, list[Vote]] = defaultdict(list)
    if "Annotations_label" not in tables:
        return votes
    for uid, anno, person, cls in con.execute(
        "SELECT uid, annoId, person, class FROM Annotations_label ORDER BY annoId, uid"
    ):
        at = Where(path, f"Annotations_label row uid={uid!r}")
        a = req_integer(anno, at, "annoId")
        p = integer(person, at, "person", optional=True)
        c = integer(cls, at, "class", optional=True)
        name = persons.get(p, str(p)) if p is not None else "unknown"
        votes[a].append(Vote(name, classes.get(c) if c else None))
    return votes


def last_vote_per_person(votes: Sequence[Vote], exclude: Sequence[str] = ()) -> list[Vote]:
    """Each person's last vote, ordered by first appearance, skipping ``exclude`` persons.

    SlideRunner keeps every re-vote; the effective vote is the last one.
    """
    last: dict[str, Vote] = {}
    for v in votes:
        if v.person in exclude:
            continue
        last.pop(v.person, None)
        last[v.person] = v
    order = []
    seen = set()
    for v in votes:
        if v.person in last and v.person not in seen:
            order.append(last[v.person])
            seen.add(v.person)
    return order
