"""MITOS-ATYPIA-14 adapter (``mfcurate ingest mitos-atypia-14 ROOT``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from mfcurate.adapters import fields as F
from mfcurate.adapters import register
from mfcurate.adapters._point_csv import read_number_rows
from mfcurate.adapters._sliderunner_source import spot_label, vote_records
from mfcurate.adapters.base import SourceAdapter, SourceInfo
from mfcurate.adapters.fields import Where
from mfcurate.errors import SourceNotFoundError, UsageError
from mfcurate.schemas.tables import ImageRecord, ObjectRecord
from mfcurate.schemas.vocab import Label, Split

#: Scanner letter -> (scanner, nominal µm/px of the x40 frames).
SCANNERS = {"A": ("Aperio ScanScope XT", 0.2455), "H": ("Hamamatsu NanoZoomer 2.0-HT", 0.2273)}
_DB = ("MITOS2014.sqlite", "databases/MITOS2014.sqlite")


@dataclass(frozen=True)
class _Ann:
    frame: str
    ann_id: str
    x: float
    y: float
    label: Label
    source_label: str | None
    source_file: str
    confidence: float | None = None
    votes: list[dict[str, str | None]] | None = None
    line: int | None = None


@register
class MitosAtypia14(SourceAdapter):
    """MITOS-ATYPIA-14 challenge training set: x40 breast-cancer frames, MF and non-MF points.

    **Source card.**  MITOS-ATYPIA-14 grand challenge (ICPR 2014), Roux L, Racoceanu D,
    Capron F, et al., "MITOS & ATYPIA - Detection of mitosis and evaluation of nuclear
    atypia score in breast cancer histological images", Image Pervasive Access Lab (IPAL)
    (2014); https://mitos-atypia-14.grand-challenge.org.  No explicit licence (research use
    after registration); the challenge has no DOI.  SlideRunner conversion (scanner A, with
    the three raters' votes): DeepMicroscopy/SlideRunner ``databases/MITOS2014.sqlite``;
    cite also Aubreville et al., SlideRunner, BVM 2018, doi 10.1007/978-3-662-56537-7_81.

    **Layout under ROOT**: ``<slide>/frames/x40/<frame>.tiff`` (e.g.
    ``A03/frames/x40/A03_00Aa.tiff``; slides A03 A04 A05 A07 A10 A11 A12 A14 A15 A17 A18,
    and H.. for the Hamamatsu scanner; the slide folders may also sit one level down, e.g.
    ``mitos_atypia_2014_training_aperio/A03/...``), ``<slide>/mitosis/<frame>_mitosis.csv`` and
    ``<frame>_not_mitosis.csv``; or ``MITOS2014.sqlite``.

    **Counts** (scanner A): 1,200 x40 frames (865 with a label), 749 mitotic figures, 2,884
    non-mitoses (``mitotic_like``).

    **Quirks handled**: csv lines are ``x,y,confidence`` (x = column; no header); the
    confidence encodes the pathologists' agreement and is kept in ``confidence`` (csv
    mode only: the DB keeps the three raters' votes instead, as ``votes``).  ``*_mitosis.csv``
    must not swallow ``*_not_mitosis.csv``.  An empty or missing csv = no object.  Frames
    without any csv but with an image are images with zero objects.  DB: old schema,
    ``orderIdx`` NULL, read-only.  Every frame is ``train`` (test labels were not released).

    Options: ``annotations`` = ``csv`` | ``sqlite`` (default: csv when ``*/mitosis/`` exists).
    """

    key: ClassVar[str] = "mitos-atypia-14"
    info: ClassVar[SourceInfo] = SourceInfo(
        name="MITOS-ATYPIA-14",
        citation="Roux L, Racoceanu D, Capron F, et al. MITOS & ATYPIA - Detection of mitosis "
                 "and evaluation of nuclear atypia score in breast cancer histological images. "
                 "ICPR 2014 contest, IPAL (2014).",
        doi="",
        homepage="https://mitos-atypia-14.grand-challenge.org",
        license="research-only",
        annotation_kind="centroid",
        nominal_mpp=0.2455,
    )

    @classmethod
    def expected_files(cls) -> Sequence[str]:
        return ["A03/mitosis/A03_00Aa_mitosis.csv", "*/mitosis/*_mitosis.csv", _DB[0]]

    def locate(self) -> None:
        want = str(self.config.options.get("annotations") or "").lower() or None
        if want not in (None, "csv", "sqlite"):
            raise UsageError(f"mitos-atypia-14: option annotations={want!r}; choose csv or "
                             "sqlite")
        self.csv_files = sorted([*self.root.glob("*/mitosis/*.csv"),
                                 *self.root.glob("*/*/mitosis/*.csv")])
        #: frame -> slide folder relative to ROOT (``A03`` or ``<scanner set>/A03``)
        self.slide_dirs: dict[str, str] = {}
        self.db_path: Path | None = None
        if want == "csv" or (want is None and self.csv_files):
            if not self.csv_files:
                raise SourceNotFoundError(self.root, ["*/mitosis/*_mitosis.csv"], self.key)
            self.mode = "csv"
        else:
            self.db_path = self.find(*_DB)
            self.mode = "sqlite"
        self._frames: list[str] | None = None
        self._anns: list[_Ann] | None = None

    def _rel(self, p: Path) -> str:
        return p.relative_to(self.root).as_posix()

    def frame_path(self, frame: str) -> str:
        """Image path of a frame relative to ROOT (``A03/frames/x40/A03_00Aa.tiff``)."""
        slide_dir = self.slide_dirs.get(frame, frame.split("_")[0])
        return f"{slide_dir}/frames/x40/{frame}.tiff"

    def _collect(self) -> tuple[list[str], list[_Ann]]:
        if self._frames is not None and self._anns is not None:
            return self._frames, self._anns
        frames: set[str] = set()
        for p in [*self.root.glob("*/frames/x40/*.tif*"),
                  *self.root.glob("*/*/frames/x40/*.tif*")]:
            frames.add(p.stem)
            self.slide_dirs.setdefault(p.stem, self._rel(p.parents[2]))
        anns: list[_Ann] = []
        if self.mode == "csv":
            for f in self.csv_files:
                stem = f.stem
                if stem.endswith("_not_mitosis"):
                    frame, label, name, prefix = stem[:-12], Label.MITOTIC_LIKE, "not mitosis", "n"
                elif stem.endswith("_mitosis"):
                    frame, label, name, prefix = stem[:-8], Label.MITOTIC_FIGURE, "mitosis", "m"
                else:
                    continue
                frames.add(frame)
                self.slide_dirs.setdefault(frame, self._rel(f.parents[1]))
                for k, (lineno, vals) in enumerate(
                        read_number_rows(f, min_fields=2, max_fields=3,
                                         names=("x", "y", "confidence")), start=1):
                    conf = F.number(vals[2], Where(f, f"line {lineno}"), "confidence", lo=0.0,
                                    hi=1.0) if len(vals) > 2 else None
                    anns.append(_Ann(frame, f"{prefix}{k}", vals[0], vals[1], label, name,
                                     self._rel(f), confidence=conf, line=lineno))
        else:
            if self.db_path is None:
                raise RuntimeError("no database located")
            db = self.read_database(self.db_path)
            src = self._rel(self.db_path)
            by_uid = {s.uid: Path(s.filename).stem for s in db.slides.values()}
            frames.update(by_uid.values())
            for sp in db.spots:
                cname = db.classes.get(sp.class_id)
                lab = spot_label(sp.class_id, cname, {1: Label.MITOTIC_FIGURE,
                                                     2: Label.MITOTIC_LIKE})
                if lab is None:
                    continue
                anns.append(_Ann(by_uid[sp.slide_uid], str(sp.uid), sp.x, sp.y, lab, cname, src,
                                 votes=vote_records(sp)))
        anns.sort(key=lambda a: (a.frame, a.ann_id[:1], len(a.ann_id), a.ann_id))
        self._frames, self._anns = sorted(frames), anns
        return self._frames, self._anns

    def build_image_records(self) -> dict[str, ImageRecord]:
        frames, _ = self._collect()
        out: dict[str, ImageRecord] = {}
        for fr in frames:
            rel = self.frame_path(fr)
            if not (self.root / rel).exists():
                alt = self.root / rel[:-1]  # .tif
                rel = self._rel(alt) if alt.exists() else rel
            scanner, nominal = SCANNERS.get(fr[:1], (None, self.info.nominal_mpp))
            out[fr] = self.region_image(
                fr, rel, split=Split.TRAIN.value, tumour_type="human breast cancer",
                species="human", scanner=scanner, nominal_mpp=nominal)
        return out

    def iter_objects(self) -> Iterator[ObjectRecord]:
        records = self.images_by_id
        _, anns = self._collect()
        for a in anns:
            img = records[a.frame]
            rec = self.point_object(
                img, a.ann_id, a.x, a.y, label=a.label.value, source_label=a.source_label,
                source_file=a.source_file, votes=a.votes, confidence=a.confidence,
                extra=self.extra_json(line=a.line))
            if rec is not None:
                yield rec
