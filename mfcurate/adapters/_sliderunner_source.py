"""Shared pieces of the SlideRunner-database sources (CMC, CCMCT and the DB modes of others).

:func:`spot_label` turns a spot's ``agreedClass`` into a vocabulary label: by the class *name*
first (case-insensitive, :func:`~mfcurate.adapters._labels.label_for_name`), then by the
database's own *id* table (class ids differ per database: CCMCT 1 = granulocyte, CMC 1 =
look-alike).  Region classes (tumour zones, ROIs) and class 0 are not cells.

:class:`SlideRunnerWSISource` is the base of the whole-slide sources: one SlideRunner database
(chosen with the ``database`` option) over a folder of ``.svs`` slides, split by slide file name.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import pyarrow as pa

from mfcurate.adapters._labels import is_region_name, label_for_name
from mfcurate.adapters._mpp import plausible_mpp
from mfcurate.adapters.base import SourceAdapter
from mfcurate.adapters.sliderunner import (
    AREA,
    POLYGON,
    SlideRunnerDB,
    Spot,
    last_vote_per_person,
)
from mfcurate.errors import SourceFormatError, SourceNotFoundError
from mfcurate.regions import RegionBuilder
from mfcurate.schemas.tables import ImageRecord, ObjectRecord
from mfcurate.schemas.vocab import Label, Split

#: Persons whose "votes" are not a human's opinion: machine detectors and consensus rows.
NON_VOTERS: tuple[str, ...] = ("retinanet", "consensus")


def spot_label(class_id: int, class_name: str | None,
               id_table: Mapping[int, Label]) -> Label | None:
    """Vocabulary label of a spot, or None when the spot is not a cell.

    Order: class 0 -> None; a region class name (``Tumorzone``...) -> None; a known cell class
    name -> its label; otherwise the database's id table; otherwise ``other_cell`` (an
    unknown cell class is kept, with its name in ``source_label``).

    Examples:
        >>> spot_label(7, "Mitotic figure look-alike", {}).value
        'mitotic_like'
        >>> spot_label(1, "weird name", {1: Label.GRANULOCYTE}).value
        'granulocyte'
        >>> spot_label(3, "unscharfe scan-area", {3: Label.TUMOUR_CELL}) is None
        True
    """
    if not class_id:
        return None
    if is_region_name(class_name):
        return None
    by_name = label_for_name(class_name)
    if by_name is not None:
        return by_name
    if class_id in id_table:
        return id_table[class_id]
    return Label.OTHER_CELL


def vote_records(spot: Spot,
                 exclude: Sequence[str] = NON_VOTERS) -> list[dict[str, str | None]] | None:
    """Each human annotator's last vote as ``{annotator, label}`` (label None for class 0).

    Machine persons and ``Consensus`` pseudo-persons (case-insensitive) are left out; the
    consensus is the object's label.  None when nobody voted.
    """
    skip = {e.lower() for e in exclude}
    persons = sorted({v.person for v in spot.votes if v.person.lower() in skip})
    votes = last_vote_per_person(spot.votes, exclude=persons)
    out: list[dict[str, str | None]] = []
    for v in votes:
        lab = label_for_name(v.class_name) if v.class_name else None
        out.append({"annotator": v.person, "label": lab.value if lab is not None else None})
    return out or None


class SlideRunnerWSISource(SourceAdapter):
    """Base of a source shipped as SlideRunner database(s) over whole-slide images.

    Subclasses set the class variables below; everything else (database choice, slide lookup,
    split by file name, spot -> object) is shared.

    Options (``AdapterConfig.options``): ``database`` = a variant name from
    :attr:`databases` (case-insensitive) or a path (relative to ROOT, or absolute) of a
    SlideRunner ``.sqlite`` file.  Default: the first variant of :attr:`databases` found.

    **Regions.**  Rectangles (type 2) and polygons (type 3) of the database, and of the
    :meth:`region_databases` (CCMCT's separate Tumorzone file), become the ``regions`` table
    (:mod:`mfcurate.regions`), matched to the slides by file name; special spots (type 4),
    circles and class-0 regions are not regions.  Invalid polygons are repaired
    (``make_valid``) or dropped with a line in :attr:`skipped`.
    """

    #: variant name -> candidate paths relative to ROOT (first found wins).
    databases: ClassVar[dict[str, tuple[str, ...]]]
    #: per-database class ids, used when a class name is not recognised.
    class_ids: ClassVar[dict[int, Label]]
    #: slide file stems of the published test set (everything else is train).
    test_slides: ClassVar[frozenset[str]]
    species: ClassVar[str] = "canine"
    tumour_type: ClassVar[str | None] = None
    scanner: ClassVar[str | None] = None
    #: folders under ROOT searched for slide files, in order.
    image_dirs: ClassVar[tuple[str, ...]] = ("", "WSI", "slides", "images")

    @classmethod
    def expected_files(cls) -> Sequence[str]:
        return [p for cands in cls.databases.values() for p in cands]

    def locate(self) -> None:
        want = self.config.options.get("database")
        self.variant: str
        if want:
            variants = {k.lower(): k for k in self.databases}
            if str(want).lower() in variants:
                self.variant = variants[str(want).lower()]
                self.db_path = self.find(*self.databases[self.variant])
            else:
                p = Path(str(want))
                p = p if p.is_absolute() else self.root / p
                if not p.is_file():
                    raise SourceNotFoundError(self.root, [str(want), *self.databases], self.key)
                self.db_path = p
                self.variant = p.stem
        else:
            for name, cands in self.databases.items():
                try:
                    self.db_path = self.find(*cands)
                except SourceNotFoundError:
                    continue
                self.variant = name
                break
            else:
                raise SourceNotFoundError(self.root, self.expected_files(), self.key)
        self._db: SlideRunnerDB | None = None
        self.skipped_non_cells = 0

    def region_databases(self) -> list[Path]:
        """Further SlideRunner files holding only regions of the same slides (default none)."""
        return []

    def database(self) -> SlideRunnerDB:
        """The parsed database (read once)."""
        if self._db is None:
            self._db = self.read_database(self.db_path, with_regions=True)
        return self._db

    def source_file(self, path: Path | None = None) -> str:
        """A database path as written to ``source_file`` (relative to ROOT when inside it).

        Default: the annotation database.
        """
        p = self.db_path if path is None else path
        try:
            return p.relative_to(self.root).as_posix()
        except ValueError:
            return p.as_posix()

    def _slide_path(self, filename: str) -> str:
        for d in self.image_dirs:
            rel = f"{d}/{filename}" if d else filename
            if (self.root / rel).exists():
                return rel
        return filename

    def split_of(self, stem: str) -> str:
        """Published split of a slide by its file stem."""
        return Split.TEST.value if stem in self.test_slides else Split.TRAIN.value

    def build_image_records(self) -> dict[int, ImageRecord]:
        db = self.database()
        out: dict[int, ImageRecord] = {}
        seen: dict[str, str] = {}
        for slide in sorted(db.slides.values(), key=lambda s: (s.filename, s.uid)):
            stem = Path(slide.filename).stem
            if stem in seen:
                raise SourceFormatError(self.db_path, f"slide {slide.filename!r} listed twice "
                                                      f"(also as {seen[stem]!r})")
            seen[stem] = slide.filename
            rel = self._slide_path(slide.filename)
            probed = self.probe(rel)
            w = probed.width if probed else slide.width
            h = probed.height if probed else slide.height
            mx = self.mpp_or_default(plausible_mpp(probed.mpp_x) if probed else None)
            my = self.mpp_or_default(plausible_mpp(probed.mpp_y) if probed else None)
            out[slide.uid] = ImageRecord(
                image_key=self.image_key(stem), source=self.key, source_image_id=stem, path=rel,
                width=w, height=h, mpp_x=mx, mpp_y=my, scanner=self.scanner,
                vendor=probed.vendor if probed else None, tumour_type=self.tumour_type,
                species=self.species, is_wsi=True, split=self.split_of(stem), fold=None,
                license=self.info.license, file_found=self.file_ok(rel))
        return out

    def iter_objects(self) -> Iterator[ObjectRecord]:
        db = self.database()
        records = self.images_by_id
        src = self.source_file()
        spots = sorted(db.spots, key=lambda s: (records[s.slide_uid].source_image_id
                                                if s.slide_uid in records else "", s.uid))
        for sp in spots:
            img = records.get(sp.slide_uid)
            if img is None:  # read_sliderunner leaves these out; kept for other readers
                self.skip(f"{self.source_file()}: annotation {sp.uid}",
                          f"slide {sp.slide_uid} is not in Slides")
                continue
            name = db.classes.get(sp.class_id)
            label = spot_label(sp.class_id, name, self.class_ids)
            if label is None:
                self.skipped_non_cells += 1
                continue
            rec = self.point_object(
                img, str(sp.uid), sp.x, sp.y, label=label.value, source_label=name,
                source_file=src, votes=vote_records(sp),
                extra=self.extra_json(class_id=sp.class_id, database=self.variant))
            if rec is not None:
                yield rec

    def regions_table(self) -> pa.Table:
        """Region polygons of the database and the :meth:`region_databases` (level-0 px)."""
        by_stem = {img.source_image_id: img for img in self.images_by_id.values()}
        builder = RegionBuilder(self.key)
        dbs = [self.database()] + [self.read_database(p, with_regions=True)
                                   for p in self.region_databases()]
        for db in dbs:
            src = self.source_file(db.path)
            unmatched: set[str] = set()
            for reg in db.regions:
                if reg.type not in (AREA, POLYGON) or not reg.class_id:
                    continue
                slide = db.slides.get(reg.slide_uid)
                img = by_stem.get(Path(slide.filename).stem) if slide else None
                if img is None:
                    unmatched.add(slide.filename if slide else str(reg.slide_uid))
                    continue
                builder.add(image_key=img.image_key, ann_id=str(reg.uid), source_file=src,
                            file_stem=db.path.stem, class_name=db.classes.get(reg.class_id),
                            vertices=reg.vertices,
                            kind="rectangle" if reg.type == AREA else "polygon",
                            mpp_x=img.mpp_x, mpp_y=img.mpp_y)
            if unmatched:
                self.skip(f"{src}: regions on {len(unmatched)} slide(s)",
                          f"not in the annotation database (e.g. {sorted(unmatched)[0]})")
        self.skipped.extend(builder.dropped)
        self.regions_repaired = list(builder.repaired)
        return builder.table()
