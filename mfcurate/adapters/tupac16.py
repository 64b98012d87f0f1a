"""TUPAC16 auxiliary mitosis dataset adapter (``mfcurate ingest tupac16 ROOT``)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from mfcurate.adapters import fields as F
from mfcurate.adapters import register
from mfcurate.adapters._point_csv import read_number_rows
from mfcurate.adapters._sliderunner_source import spot_label, vote_records
from mfcurate.adapters.base import SourceAdapter, SourceInfo
from mfcurate.adapters.fields import Where
from mfcurate.errors import SourceFormatError, SourceNotFoundError, UsageError
from mfcurate.io.reader import probe_image
from mfcurate.schemas.tables import ImageRecord, ObjectRecord
from mfcurate.schemas.vocab import Label, Split

#: Side of the HPF tiles of cases 01-23 (the stitched images are mosaics of these).
TILE_PX = 2000

_DBS: dict[str, tuple[str, ...]] = {
    "tiles": ("TUPAC.sqlite", "databases/TUPAC.sqlite"),
    "alternative": ("TUPAC_alternativeLabels_augmented_training.sqlite",
                    "databases/TUPAC_alternativeLabels_augmented_training.sqlite"),
    "stitched": ("TUPAC_stitched.sqlite", "databases/TUPAC_stitched.sqlite"),
    "alternative-manual": ("TUPAC_alternativeLabels_training.sqlite",
                           "databases/TUPAC_alternativeLabels_training.sqlite"),
}
_STITCH_JSON = ("TUPACStitchInformation.json", "databases/TUPACStitchInformation.json")
_MODES = ("csv", *_DBS)
#: Default search order: the alternative labels (what the paper used) win over the original.
_ORDER: tuple[tuple[str, str], ...] = (
    ("csv", "alternative"), ("alternative", "alternative"),
    ("alternative-manual", "alternative"), ("csv", "original"), ("tiles", "original"),
    ("stitched", "original"))
_LABEL_SETS = {"alternative": "alternative labels (Bertram et al. 2020)",
               "original": "original TUPAC16 labels (Veta et al. 2019)"}


@dataclass(frozen=True)
class _Ann:
    image_id: str  # "<case>/<tile stem>"
    ann_id: str
    x: float
    y: float
    label: Label
    source_label: str | None
    source_file: str
    votes: list[dict[str, str | None]] | None = None
    extra: str | None = None


@register
class TUPAC16(SourceAdapter):
    """TUPAC16 auxiliary mitosis set: 73 breast-cancer cases, 656 HPF images, point labels.

    **Source card.**  Veta M, Heng YJ, Stathonikos N, et al., "Predicting breast tumor
    proliferation from whole-slide images: the TUPAC16 challenge", Med Image Anal 54:111-121
    (2019), doi 10.1016/j.media.2019.02.012; images and original labels after registration at
    tupac.grand-challenge.org (no explicit data licence: research use).  Alternative labels:
    Bertram CA, Veta M, Marzahl C, et al., "Are pathologist-defined labels reproducible?
    Comparison of the TUPAC16 mitotic figure dataset with an alternative set of labels",
    LABELS@MICCAI 2020, doi 10.1007/978-3-030-61166-8_22 (DeepMicroscopy/TUPAC16_AlternativeLabels,
    no licence file).  0.25 µm/px (40x).

    **Layout under ROOT**: images ``mitoses_image_data/<case>/<tile>.tif`` (or the
    release's ``mitoses_image_data_part_1/2/3/<case>/<tile>.tif``; cases ``01-73``;
    01-23 have 10-67 tiles of 2000x2000 px, 24-73 one ``01.tif`` of 5657x5657 px);
    labels ``mitoses_ground_truth/<case>/<tile>.csv`` and, for the alternative labels,
    ``nonmitoses_ground_truth/<case>/<tile>.csv`` (hard negatives); or one of the SlideRunner
    databases ``TUPAC.sqlite`` (per tile), ``TUPAC_stitched.sqlite``,
    ``TUPAC_alternativeLabels_augmented_training.sqlite``,
    ``TUPAC_alternativeLabels_training.sqlite`` (stitched coordinates; they need
    ``TUPACStitchInformation.json``).

    **Counts**: original labels 73 cases, 656 images, 1,552 mitotic figures (587 images with
    at least one); alternative labels (augmented, what OMG-Net used) 1,999 mitotic figures and
    10,483 hard negatives (``mitotic_like``); the manual-only alternative DB 1,898 / 5,340.

    **Quirks handled**:

    * The csv lines are ``row,col`` (**y first**), no header; an optional third column
      (a submission's confidence) is ignored.  An empty csv, or a missing one, is a tile with
      no object (145 of the 656 alternative-label mitosis files are empty).  The 0/1-based
      origin is not documented (a 1 px effect); values are used as written.
    * Every image is keyed by tile: ``tupac16/<case>/<tile>`` (e.g. ``tupac16/01/25``), in
      all modes, so the csv, tile-DB and stitched-DB ingests give the same keys.
    * Stitched databases (``NN_stitched1.tif`` for cases 1-23) are mapped back to the tiles
      with ``TUPACStitchInformation.json`` (``cases[case][tile] = [x_off, y_off]``,
      stitched = tile + offset); a point in no tile is dropped and reported.  Cases 24-73
      are ``NN.tif`` in the stitched DBs and ``NN/01.tif`` on disk.  (The repo ships the
      offsets as a pickle; convert it to this JSON yourself - pickles are not loaded.)
    * SlideRunner DBs: ``orderIdx`` is NULL (never filtered on), old/new schema, read-only;
      the German class ``Mitose`` is a mitotic figure, ``Hard negative`` mitotic-like; the
      ``Consensus`` pseudo-person is left out of ``votes``.
    * The 73 cases were the challenge's training set (test labels never released): every
      image is ``train``.

    * **Which labels.**  When both sets are present the alternative labels (what OMG-Net and
      Bertram et al. used) win: the default order is alternative csv (``TUPAC_AL/`` or a
      ``mitoses_ground_truth`` with a ``nonmitoses_ground_truth`` beside it), the
      ``alternative`` DB, the ``alternative-manual`` DB, then the original csv, ``tiles`` and
      ``stitched`` DBs.  The set read and its file go into the manifest (``label_set``,
      printed by ``mfcurate info``).

    Options: ``annotations`` = ``csv`` | ``tiles`` | ``alternative`` | ``stitched`` |
    ``alternative-manual`` (default: the first found in the order above); ``label_set`` =
    ``alternative`` | ``original`` (default: alternative when present); ``hard_negatives`` =
    ``yes`` (default) | ``no`` (csv mode: read ``nonmitoses_ground_truth/``).
    """

    key: ClassVar[str] = "tupac16"
    info: ClassVar[SourceInfo] = SourceInfo(
        name="TUPAC16 auxiliary mitosis dataset",
        citation="Veta M, et al. Predicting breast tumor proliferation from whole-slide "
                 "images: the TUPAC16 challenge. Med Image Anal 54, 111-121 (2019). "
                 "Alternative labels: Bertram CA, et al. LABELS@MICCAI 2020.",
        doi="10.1016/j.media.2019.02.012",
        homepage="https://tupac.grand-challenge.org",
        license="research-only",
        annotation_kind="centroid",
        nominal_mpp=0.25,
    )

    @classmethod
    def expected_files(cls) -> Sequence[str]:
        return ["mitoses_ground_truth/", *(p for c in _DBS.values() for p in c[:1])]

    def locate(self) -> None:
        want = str(self.config.options.get("annotations") or "").lower() or None
        if want is not None and want not in _MODES:
            raise UsageError(f"tupac16: option annotations={want!r}; choose one of "
                             f"{', '.join(_MODES)}")
        label_set = str(self.config.options.get("label_set") or "").lower() or None
        if label_set not in (None, "alternative", "original"):
            raise UsageError(f"tupac16: option label_set={label_set!r}; choose alternative or "
                             "original")
        self.mode = ""
        self.db_path: Path | None = None
        self.csv_dir = self.root
        for mode, labels in _ORDER:
            if (want is not None and mode != want) or (label_set and labels != label_set):
                continue
            if mode == "csv":
                found = self._csv_folder(labels)
                if found is None:
                    continue
                self.csv_dir = found
            else:
                try:
                    self.db_path = self.find(*_DBS[mode])
                except SourceNotFoundError:
                    continue
            self.mode, self.label_set = mode, labels
            break
        if not self.mode:
            looked = ["mitoses_ground_truth/", "TUPAC_AL/mitoses_ground_truth/"] \
                if want in (None, "csv") else []
            looked += [p for m in _MODES[1:] if want in (None, m) for p in _DBS[m]]
            raise SourceNotFoundError(self.root, looked, self.key)
        what = self._rel(self.csv_dir / "mitoses_ground_truth") + "/" if self.mode == "csv" \
            else self._rel(self.db_path) if self.db_path is not None else ""
        variant = " (manual only)" if self.mode == "alternative-manual" else ""
        #: which label set was read and from where (recorded in the manifest, shown by info)
        self.labels_read = f"{_LABEL_SETS[self.label_set]}{variant}, read from {what}"
        #: image folders: ``mitoses_image_data`` or the release's ``..._part_N`` archives
        self.image_dirs = sorted(d for d in self.root.glob("mitoses_image_data*") if d.is_dir())
        self._anns: list[_Ann] | None = None
        self._ids: list[str] | None = None

    def _csv_folder(self, labels: str) -> Path | None:
        """Folder holding ``mitoses_ground_truth/`` with the given label set, or None.

        The alternative labels ship ``TUPAC_AL/{mitoses,nonmitoses}_ground_truth``; a root
        ``mitoses_ground_truth`` is the alternative set when ``nonmitoses_ground_truth`` (hard
        negatives, which only the alternative labels have) lies beside it, else the original.
        """
        for base in (self.root / "TUPAC_AL", self.root):
            if not (base / "mitoses_ground_truth").is_dir():
                continue
            alt = base.name == "TUPAC_AL" or (base / "nonmitoses_ground_truth").is_dir()
            if (labels == "alternative") == alt:
                return base
        return None

    def source_card(self) -> dict[str, Any]:  # type: ignore[override]
        """The source card plus ``label_set``: which labels were read, from which file."""
        return {**super().source_card(), "label_set": self.labels_read}

    # ------------------------------------------------------------------ reading
    def _rel(self, p: Path) -> str:
        return p.relative_to(self.root).as_posix() if p != self.root else "."

    def _disk_images(self) -> set[str]:
        out: set[str] = set()
        for d in self.image_dirs:
            for p in d.glob("*/*.tif"):
                out.add(f"{p.parent.name}/{p.stem}")
        return out

    def image_rel(self, iid: str) -> str:
        """Path of a tile relative to ROOT (``mitoses_image_data/01/25.tif`` when absent)."""
        for d in self.image_dirs:
            if (d / f"{iid}.tif").exists():
                return self._rel(d / f"{iid}.tif")
        return f"mitoses_image_data/{iid}.tif"

    def _read_csv_mode(self) -> tuple[list[str], list[_Ann]]:
        folders = [("mitoses_ground_truth", Label.MITOTIC_FIGURE, "mitosis", "m")]
        if str(self.config.options.get("hard_negatives", "yes")).lower() not in {"no", "false",
                                                                                 "0"}:
            folders.append(("nonmitoses_ground_truth", Label.MITOTIC_LIKE, "non-mitosis", "n"))
        ids = self._disk_images()
        anns: list[_Ann] = []
        for folder, label, name, prefix in folders:
            base = self.csv_dir / folder
            if not base.is_dir():
                continue
            for f in sorted(base.glob("*/*.csv")):
                iid = f"{f.parent.name}/{f.stem}"
                ids.add(iid)
                for k, (lineno, vals) in enumerate(
                        read_number_rows(f, min_fields=2, max_fields=3,
                                         names=("row", "col", "confidence")), start=1):
                    row, col = vals[0], vals[1]  # y first
                    anns.append(_Ann(iid, f"{prefix}{k}", col, row, label, name, self._rel(f),
                                     extra=self.extra_json(line=lineno)))
        return sorted(ids), anns

    def _stitch_offsets(self) -> dict[str, dict[str, tuple[float, float]]]:
        path = self.find(*_STITCH_JSON)
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SourceFormatError(path, f"invalid JSON ({exc})") from exc
        cases: Any = data.get("cases", data) if isinstance(data, dict) else None
        if not isinstance(cases, dict):
            raise SourceFormatError(path, "expected {case: {tile.tif: [x_off, y_off]}}")
        out: dict[str, dict[str, tuple[float, float]]] = {}
        for case, tiles in cases.items():
            if case.startswith("_"):
                continue
            if not case.isdigit():
                raise SourceFormatError(path, f"case {case!r}: expected a case number")
            at = Where(path, f"case {case}")
            offsets: dict[str, tuple[float, float]] = {}
            for t, v in F.mapping(tiles, at, "(tiles)").items():
                ox, oy = F.numbers(v, at, t, n=2)
                offsets[Path(t).stem] = (ox, oy)
            out[f"{int(case):02d}"] = offsets
        return out

    def _read_db_mode(self) -> tuple[list[str], list[_Ann]]:
        if self.db_path is None:
            raise RuntimeError("no database located")
        db = self.read_database(self.db_path)
        src = self._rel(self.db_path) if self.db_path.is_relative_to(self.root) \
            else self.db_path.as_posix()
        stitched = any("_stitched" in s.filename for s in db.slides.values()) or \
            not any(s.directory and s.directory.isdigit() for s in db.slides.values())
        offsets = self._stitch_offsets() if stitched else {}
        slide_tiles: dict[int, tuple[str, list[tuple[str, float, float]]]] = {}
        ids: set[str] = set()
        for s in db.slides.values():
            stem = Path(s.filename).stem
            if not stitched:
                case = f"{int(s.directory):02d}" if s.directory and s.directory.isdigit() \
                    else None
                if case is None:
                    raise SourceFormatError(self.db_path, f"slide {s.filename!r} has no case "
                                                          "folder in Slides.directory")
                slide_tiles[s.uid] = (case, [(stem, 0.0, 0.0)])
                ids.add(f"{case}/{stem}")
                continue
            case_part = stem.split("_stitched")[0]
            if not case_part.isdigit():
                raise SourceFormatError(self.db_path, f"slide {s.filename!r} is neither "
                                                      "NN_stitched1.tif nor NN.tif")
            case = f"{int(case_part):02d}"
            if "_stitched" in stem:
                if case not in offsets:
                    raise SourceFormatError(self.db_path, f"slide {s.filename!r}: case {case} "
                                                          "missing in the stitch offsets JSON")
                tiles = [(t, ox, oy) for t, (ox, oy) in sorted(offsets[case].items())]
            else:
                tiles = [("01", 0.0, 0.0)]
            slide_tiles[s.uid] = (case, tiles)
            ids.update(f"{case}/{t}" for t, _, _ in tiles)
        anns: list[_Ann] = []
        for sp in db.spots:
            name = db.classes.get(sp.class_id)
            label = spot_label(sp.class_id, name, {1: Label.MITOTIC_FIGURE})
            if label is None:
                continue
            case, tiles = slide_tiles[sp.slide_uid]
            hit = None
            if len(tiles) == 1 and tiles[0][1:] == (0.0, 0.0):
                hit = (tiles[0][0], sp.x, sp.y)
            else:
                hit = self._tile_of(case, tiles, sp.x, sp.y)
            if hit is None:
                self.dropped.append(f"{self.key}/{case}: annotation {sp.uid} at "
                                    f"({sp.x}, {sp.y}) lies in no tile")
                continue
            tile, x, y = hit
            extra = self.extra_json(stitched_xy=[sp.x, sp.y] if stitched else None,
                                    database=self.mode)
            anns.append(_Ann(f"{case}/{tile}", str(sp.uid), x, y, label, name, src,
                             vote_records(sp), extra))
        return sorted(ids), anns

    def _tile_of(self, case: str, tiles: list[tuple[str, float, float]], x: float,
                 y: float) -> tuple[str, float, float] | None:
        """Tile and tile coordinates of a stitched point.

        The original tile labels run 1..2000 (one lies at 2000, none at 0), so a point on a
        border shared by two tiles belongs to the left/top one: intervals ``(off, off+size]``
        first, then ``[off, off+size)`` for a point at the mosaic's own edge.
        """
        for closed_right in (True, False):
            for t, ox, oy in tiles:
                tw, th = self._tile_size(f"{case}/{t}")
                lx, ly = x - ox, y - oy
                inside = (0 < lx <= tw and 0 < ly <= th) if closed_right else \
                    (0 <= lx < tw and 0 <= ly < th)
                if inside:
                    return (t, lx, ly)
        return None

    def _tile_size(self, iid: str) -> tuple[float, float]:
        """Size of a tile: from its file when present, else the 2000 px of the release."""
        if not hasattr(self, "_sizes"):
            self._sizes: dict[str, tuple[float, float]] = {}
        if iid not in self._sizes:
            path = self.root / self.image_rel(iid)
            size = (float(TILE_PX), float(TILE_PX))
            if path.exists():
                try:
                    info = probe_image(path)
                    size = (float(info.width), float(info.height))
                except SourceFormatError:
                    pass  # unreadable: flagged when its record is built; the release size
            self._sizes[iid] = size
        return self._sizes[iid]

    def _collect(self) -> tuple[list[str], list[_Ann]]:
        if self._ids is None or self._anns is None:
            self._ids, self._anns = (self._read_csv_mode() if self.mode == "csv"
                                     else self._read_db_mode())
        return self._ids, self._anns

    # ------------------------------------------------------------------ contract
    def build_image_records(self) -> dict[str, ImageRecord]:
        ids, _ = self._collect()
        out: dict[str, ImageRecord] = {}
        for iid in ids:
            rel = self.image_rel(iid)
            out[iid] = self.region_image(iid, rel, split=Split.TRAIN.value,
                                         tumour_type="human breast cancer", species="human")
        return out

    def iter_objects(self) -> Iterator[ObjectRecord]:
        records = self.images_by_id
        _, anns = self._collect()
        for a in anns:
            img = records[a.image_id]
            rec = self.point_object(
                img, a.ann_id, a.x, a.y, label=a.label.value, source_label=a.source_label,
                source_file=a.source_file, votes=a.votes, extra=a.extra)
            if rec is not None:
                yield rec
