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
    scols = _columns(con, "Slides")
    sel = ["uid", "filename"] + [c if c in scols else "NULL" for c in ("directory", "width",
                                                                        "height")]
    slides = {}
    for uid, fn, d, w, h in con.execute(f"SELECT {', '.join(sel)} FROM Slides"):
        if fn is None:
            raise SourceFormatError(path, f"Slides row uid={uid} has no filename")
        slides[int(uid)] = Slide(int(uid), str(fn), None if d in (None, "") else str(d),
                                 int(w) if w else None, int(h) if h else None)
    classes = {int(u): str(n) for u, n in con.execute("SELECT uid, name FROM Classes")}
    persons: dict[int, str] = {}
    if "Persons" in tables:
        persons = {int(u): str(n) for u, n in con.execute("SELECT uid, name FROM Persons")}

    acols = _columns(con, "Annotations")
    deleted_sel = "deleted" if "deleted" in acols else "0"
    ann = con.execute(
        f"SELECT uid, slide, type, agreedClass, {deleted_sel} FROM Annotations ORDER BY uid"
    ).fetchall()
    ccols = _columns(con, "Annotations_coordinates")
    order = "orderIdx" if "orderIdx" in ccols else "NULL"
    coords: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for anno, x, y in con.execute(
        f"SELECT annoId, coordinateX, coordinateY FROM Annotations_coordinates "
        f"ORDER BY annoId, CASE WHEN {order} IS NULL THEN 1 ELSE 0 END, {order}, uid"
    ):
        if x is None or y is None:
            continue
        coords[int(anno)].append((float(x), float(y)))

    votes: dict[int, list[Vote]] = defaultdict(list)
    if "Annotations_label" in tables:
        for anno, person, cls in con.execute(
            "SELECT annoId, person, class FROM Annotations_label ORDER BY annoId, uid"
        ):
            name = persons.get(int(person), str(person)) if person is not None else "unknown"
            cname = classes.get(int(cls)) if cls else None
            votes[int(anno)].append(Vote(name, cname))

    spots: list[Spot] = []
    regions: list[Region] = []
    skipped = 0
    for uid, slide, typ, agreed, deleted in ann:
        if deleted:
            skipped += 1
            continue
        pts = coords.get(int(uid), [])
        if int(typ or 0) in spot_types:
            if not pts:
                continue
            x, y = pts[0]
            spots.append(Spot(int(uid), int(slide), int(agreed or 0), x, y,
                              votes.get(int(uid), [])))
        elif with_regions and pts:
            regions.append(Region(int(uid), int(slide), int(typ), int(agreed or 0), pts))
    return SlideRunnerDB(path, slides, classes, spots, regions, skipped)


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
