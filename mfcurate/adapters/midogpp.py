"""MIDOG++ adapter (``mfcurate ingest midog++ ROOT``)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from mfcurate.adapters import fields as F
from mfcurate.adapters import register
from mfcurate.adapters._labels import label_for_name
from mfcurate.adapters._mpp import plausible_mpp
from mfcurate.adapters.base import SourceAdapter, SourceInfo
from mfcurate.adapters.fields import Where
from mfcurate.adapters.sliderunner import last_vote_per_person
from mfcurate.errors import SourceFormatError, SourceNotFoundError
from mfcurate.schemas.tables import ImageRecord, ObjectRecord
from mfcurate.schemas.vocab import LabelOrigin, Species, Split

#: Nominal µm/px per scanner (used only when the image file is absent).
SCANNER_MPP = {
    "hamamatsu xr": 0.23,
    "hamamatsu s360": 0.23,
    "aperio cs2": 0.25,
    "3d histech": 0.25,
    "leica gt450": 0.26,
}
_SCANNER_SPELLING = {"hamammatsu": "Hamamatsu", "3dhistech": "3D Histech"}
_XVAL_COLUMNS = ["Slide", "Dataset", "Tumor", "Scanner", "Origin", "Species"]


def normalise_scanner(name: str | None) -> str | None:
    """Fix the known misspellings (``Hamammatsu XR`` -> ``Hamamatsu XR``)."""
    if not name:
        return None
    out = name.strip()
    for wrong, right in _SCANNER_SPELLING.items():
        if out.lower().startswith(wrong):
            out = right + out[len(wrong):]
    return out


def normalise_tumour(name: str | None) -> str | None:
    """Lower-case tumour type; ``canine lymphosarcoma`` (JSON) = ``canine lymphoma`` (csv)."""
    if not name:
        return None
    t = " ".join(name.strip().lower().split())
    return {"canine lymphosarcoma": "canine lymphoma"}.get(t, t)


@dataclass(frozen=True)
class _ImageMeta:
    image_id: int
    file_name: str
    width: int | None
    height: int | None
    split: str
    tumour_type: str | None
    scanner: str | None
    species: str | None
    origin: str | None


@register
class MIDOGpp(SourceAdapter):
    """MIDOG++: 503 labelled 2 mm² regions of 7 tumour types, human and canine.

    **Source card.**  Aubreville et al., "A comprehensive multi-domain dataset for mitotic
    figure assessment", Sci Data 10:484 (2023), doi 10.1038/s41597-023-02327-4.  Annotations
    on GitHub (DeepMicroscopy/MIDOGpp), images (65 GB, ``images/NNN.tiff``) on figshare.
    Licence: CC0 (declared in the JSON).

    **Layout under ROOT** (any of): ``MIDOG++.json`` or ``MIDOG++.sqlite`` (also under
    ``databases/``), ``datasets_xvalidation.csv``, ``images/001.tiff ...``.

    **Counts**: 503 labelled images (392 train / 111 test), 11,937 mitotic figures,
    14,349 imposters ("not mitotic figure" -> ``mitotic_like``).

    **Quirks handled**:

    * ``bbox`` in the JSON is ``[x1, y1, x2, y2]`` (50 x 50 px), not COCO's xywh.
    * The JSON lists 553 images; 50 (human breast, ids 151-200) are unlabelled and absent from
      ``datasets_xvalidation.csv``: the csv is the image list, so they never become images
      with zero MF.
    * ``datasets_xvalidation.csv`` is ``;``-separated; the scanner is spelled
      ``Hamammatsu XR`` in places, the tumour ``canine lymphosarcoma`` (JSON) vs
      ``canine lymphoma`` (csv): both are normalised.
    * Coordinates may be ``.5``; 274 boxes stick out of their image and 2 centres lie just
      outside it: boxes are clipped to the image, the centroid stays as annotated; only an
      object whose box lies wholly outside its image is dropped (and reported).
    * ``labels`` holds each expert's vote (category ids); kept as ``votes``.
    * The SQLite alternative: spots only, deleted rows skipped, machine votes
      (``RetinaNet``) excluded, annotations without any vote dropped (as the official loader).

    Options (``AdapterConfig.options``): ``annotations`` = ``json`` (default when present) or
    ``sqlite``.
    """

    key: ClassVar[str] = "midog++"
    info: ClassVar[SourceInfo] = SourceInfo(
        name="MIDOG++",
        citation="Aubreville M, et al. A comprehensive multi-domain dataset for mitotic figure "
                 "assessment. Sci Data 10, 484 (2023).",
        doi="10.1038/s41597-023-02327-4",
        homepage="https://github.com/DeepMicroscopy/MIDOGpp",
        license="CC0-1.0",
        annotation_kind="box",
        nominal_mpp=0.25,
    )
    json_names: ClassVar[tuple[str, ...]] = ("MIDOG++.json", "databases/MIDOG++.json")
    sqlite_names: ClassVar[tuple[str, ...]] = ("MIDOG++.sqlite", "databases/MIDOG++.sqlite")
    machine_persons: ClassVar[tuple[str, ...]] = ("RetinaNet",)

    @classmethod
    def expected_files(cls) -> Sequence[str]:
        return [*cls.json_names, *cls.sqlite_names, "datasets_xvalidation.csv"]

    def locate(self) -> None:
        want = self.config.options.get("annotations")
        self.json_path: Path | None = None
        self.sqlite_path: Path | None = None
        if want in (None, "json"):
            try:
                self.json_path = self.find(*self.json_names)
            except SourceNotFoundError:
                if want == "json":
                    raise
        if self.json_path is None:
            self.sqlite_path = self.find(*self.sqlite_names)
        self.xval_path = self.locate_xval()
        self.image_dir = self.root / "images" if (self.root / "images").is_dir() else self.root
        self._meta: list[_ImageMeta] | None = None
        self._annotations: list[dict[str, Any]] | None = None

    def locate_xval(self) -> Path | None:
        """The cross-validation csv (required for MIDOG++)."""
        return self.find("datasets_xvalidation.csv", "*/datasets_xvalidation.csv")

    # ------------------------------------------------------------------ reading
    def _read_xval(self) -> dict[int, dict[str, str]]:
        assert_path = self.xval_path
        if assert_path is None:
            return {}
        try:
            return self._parse_xval(assert_path)
        except UnicodeDecodeError as exc:
            raise SourceFormatError(assert_path, f"not UTF-8 text ({exc})") from exc

    def _parse_xval(self, assert_path: Path) -> dict[int, dict[str, str]]:
        out: dict[int, dict[str, str]] = {}
        species_ok = {s.value for s in Species}
        splits_ok = {s.value for s in Split}
        with assert_path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=";")
            header = next(reader, None)
            if header is None or [h.strip() for h in header[:6]] != _XVAL_COLUMNS:
                raise SourceFormatError(assert_path, f"line 1: expected header "
                                                     f"{';'.join(_XVAL_COLUMNS)}, got {header}")
            for lineno, row in enumerate(reader, start=2):
                if not row or not "".join(row).strip():
                    continue
                if len(row) < 6:
                    raise SourceFormatError(assert_path, f"line {lineno}: expected 6 fields "
                                                         f"separated by ';', got {len(row)}")
                try:
                    sid = int(row[0])
                except ValueError as exc:
                    raise SourceFormatError(assert_path, f"line {lineno}: Slide {row[0]!r} is "
                                                         "not an integer") from exc
                rec = dict(zip(_XVAL_COLUMNS, (c.strip() for c in row), strict=False))
                if rec["Species"].lower() not in species_ok:
                    raise SourceFormatError(assert_path, f"line {lineno}: Species "
                                                         f"{rec['Species']!r} is not one of "
                                                         f"{sorted(species_ok)}")
                if rec["Dataset"].lower() not in splits_ok:
                    raise SourceFormatError(assert_path, f"line {lineno}: Dataset "
                                                         f"{rec['Dataset']!r} is not one of "
                                                         f"{sorted(splits_ok)}")
                out[sid] = rec
        return out

    def _load_json(self) -> tuple[dict[int, dict[str, Any]], dict[int, str], list[dict[str, Any]]]:
        """Images (id -> typed fields), categories (id -> name) and the raw annotation list."""
        path = self.json_path
        if path is None:
            raise RuntimeError("no JSON located")
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError as exc:
            raise SourceFormatError(path, f"invalid JSON at line {exc.lineno} column "
                                          f"{exc.colno}: {exc.msg}") from exc
        except UnicodeDecodeError as exc:
            raise SourceFormatError(path, f"not UTF-8 text ({exc})") from exc
        if not isinstance(data, dict) or not {"images", "annotations", "categories"} <= set(data):
            raise SourceFormatError(path, "expected a COCO-like object with 'images', "
                                          "'annotations' and 'categories'")
        top = Where(path, "")
        images: dict[int, dict[str, Any]] = {}
        for i, im in enumerate(F.items(data["images"], top, "images")):
            at = Where(path, f"images[{i}]")
            im = F.mapping(im, at.sub(""), f"images[{i}]")
            iid = F.req_integer(im.get("id"), at, "id")
            if iid in images:
                raise at.error("id", f"duplicate image id {iid}")
            images[iid] = {
                "file_name": F.text(im.get("file_name"), at, "file_name", optional=True,
                                    nonempty=True) or f"{iid:03d}.tiff",
                "width": F.size_px(im.get("width"), at, "width"),
                "height": F.size_px(im.get("height"), at, "height"),
                "tumor_type": F.text(im.get("tumor_type"), at, "tumor_type", optional=True)}
        cats: dict[int, str] = {}
        for i, c in enumerate(F.items(data["categories"], top, "categories")):
            at = Where(path, f"categories[{i}]")
            c = F.mapping(c, at.sub(""), f"categories[{i}] (expected {{id, name}})")
            cats[F.req_integer(c.get("id"), at, "id")] = F.req_text(c.get("name"), at, "name")
        anns = F.items(data["annotations"], top, "annotations")
        return images, cats, anns

    def _json_annotations(self, images: dict[int, dict[str, Any]], cats: dict[int, str],
                          anns: list[Any]) -> list[dict[str, Any]]:
        """Typed annotations of the JSON; unknown image or class ids are skipped (named)."""
        path = self.json_path
        if path is None:
            raise RuntimeError("no JSON located")
        rel = path.relative_to(self.root).as_posix()
        out: list[dict[str, Any]] = []
        seen: dict[int, int] = {}
        for i, a in enumerate(anns):
            at = Where(path, f"annotations[{i}]")
            a = F.mapping(a, at.sub(""), f"annotations[{i}]")
            aid = F.req_integer(a.get("id"), at, "id")
            if aid in seen:
                raise at.error("id", f"duplicate annotation id {aid} (also annotations"
                                     f"[{seen[aid]}])")
            seen[aid] = i
            x0, y0, x1, y1 = F.numbers(a.get("bbox"), at, "bbox", n=4)
            if x1 <= x0 or y1 <= y0:
                raise at.error("bbox", f"{[x0, y0, x1, y1]} is not [x1, y1, x2, y2] with "
                                       "x2 > x1 and y2 > y1")
            cat = F.req_integer(a.get("category_id"), at, "category_id")
            iid = F.req_integer(a.get("image_id"), at, "image_id")
            votes_raw = [F.req_integer(v, at, f"labels[{k}]")
                         for k, v in enumerate(F.items(a.get("labels"), at, "labels",
                                                       optional=True))]
            if iid not in images:
                self.skip(f"{rel}: annotations[{i}] (id {aid})", f"unknown image id {iid}")
                continue
            if cat not in cats:
                self.skip(f"{rel}: annotations[{i}] (id {aid})", f"unknown category id {cat}")
                continue
            votes = [{"annotator": f"expert {k + 1}", "label": _lab(cats.get(v))}
                     for k, v in enumerate(votes_raw)]
            out.append({"id": aid, "image_id": iid, "box": (x0, y0, x1, y1),
                        "class_name": cats[cat], "votes": votes or None,
                        "origin": LabelOrigin.BOX.value, "file": rel})
        return out

    def labelled(self, image_id: int, xval: dict[int, dict[str, str]],
                 annotated: set[int]) -> bool:
        """Whether an image of the JSON/DB is a labelled image of the dataset."""
        return image_id in xval

    def _collect(self) -> tuple[list[_ImageMeta], list[dict[str, Any]]]:
        if self._meta is not None and self._annotations is not None:
            return self._meta, self._annotations
        xval = self._read_xval()
        annotations: list[dict[str, Any]] = []
        files: dict[int, tuple[str, int | None, int | None, str | None]] = {}
        if self.json_path is not None:
            images, cats, anns = self._load_json()
            for iid, im in images.items():
                files[iid] = (im["file_name"], im["width"], im["height"], im["tumor_type"])
            annotations = self._json_annotations(images, cats, anns)
        else:
            assert_sql = self.sqlite_path
            if assert_sql is None:
                raise RuntimeError("no SQLite located")
            db = self.read_database(assert_sql)
            for uid, s in db.slides.items():
                iid = _id_from_filename(s.filename, uid)
                files[iid] = (s.filename, s.width, s.height, None)
            for sp in db.spots:
                human = last_vote_per_person(sp.votes, exclude=self.machine_persons)
                if not sp.votes:
                    continue  # the official loader drops annotations nobody voted on
                iid = _id_from_filename(db.slides[sp.slide_uid].filename, sp.slide_uid)
                annotations.append({
                    "id": sp.uid, "image_id": iid, "center": (sp.x, sp.y),
                    "class_name": db.classes.get(sp.class_id),
                    "votes": [{"annotator": v.person, "label": _lab(v.class_name)}
                              for v in human] or None,
                    "origin": LabelOrigin.CENTROID.value,
                    "file": assert_sql.relative_to(self.root).as_posix()})
        annotated = {int(a["image_id"]) for a in annotations}
        meta = []
        for iid in sorted(set(files) | set(xval)):
            if not self.labelled(iid, xval, annotated):
                continue
            fn, w, h, tumour = files.get(iid, (f"{iid:03d}.tiff", None, None, None))
            row = xval.get(iid, {})
            split = row.get("Dataset", "").strip().lower() or self.default_split()
            if split not in {s.value for s in Split}:
                raise SourceFormatError(self.xval_path or self.root,
                                        f"Slide {iid}: unknown Dataset value {split!r}")
            species = row.get("Species", "").strip().lower() or self.default_species()
            meta.append(_ImageMeta(iid, fn, w, h, split,
                                   normalise_tumour(row.get("Tumor") or tumour
                                                    or self.default_tumour(iid)),
                                   normalise_scanner(row.get("Scanner")
                                                     or self.default_scanner(iid)),
                                   species or None, row.get("Origin")))
        keep = {m.image_id for m in meta}
        self._meta = meta
        self._annotations = [a for a in annotations if a["image_id"] in keep]
        return self._meta, self._annotations

    def default_split(self) -> str:
        """Split for images the csv does not list."""
        return Split.UNASSIGNED.value

    def default_species(self) -> str | None:
        """Species for images the csv does not list."""
        return None

    def default_tumour(self, image_id: int) -> str | None:
        """Tumour type for images the csv does not list."""
        return None

    def default_scanner(self, image_id: int) -> str | None:
        """Scanner for images the csv does not list."""
        return None

    # ------------------------------------------------------------------ contract
    def build_image_records(self) -> dict[int, ImageRecord]:
        meta, _ = self._collect()
        out: dict[int, ImageRecord] = {}
        for m in meta:
            rel = (self.image_dir / m.file_name).relative_to(self.root).as_posix()
            probed = self.probe(rel)
            nominal = SCANNER_MPP.get((m.scanner or "").lower())
            w: int | None
            h: int | None
            if probed is not None:
                w, h, mx, my, vendor = (probed.width, probed.height, probed.mpp_x,
                                        probed.mpp_y, probed.vendor)
            else:
                w, h, mx, my, vendor = m.width, m.height, None, None, None
            mpp_x = plausible_mpp(mx) or self.config.default_mpp or nominal \
                or self.info.nominal_mpp
            mpp_y = plausible_mpp(my) or mpp_x
            out[m.image_id] = ImageRecord(
                image_key=self.image_key(str(m.image_id)), source=self.key,
                source_image_id=str(m.image_id), path=rel, width=w, height=h,
                mpp_x=mpp_x, mpp_y=mpp_y, scanner=m.scanner, vendor=vendor,
                tumour_type=m.tumour_type, species=m.species, is_wsi=False, split=m.split,
                fold=None, license=self.info.license, file_found=self.file_ok(rel))
        return out

    def iter_objects(self) -> Iterator[ObjectRecord]:
        records = self.images_by_id
        _, anns = self._collect()
        for a in sorted(anns, key=lambda a: (a["image_id"], a["id"])):
            img = records[a["image_id"]]
            label = label_for_name(a["class_name"])
            if label is None:
                self.skip(f"{a['file']}: annotation {a['id']}",
                          f"class {a['class_name']!r} is not a cell class of the vocabulary")
                continue
            if "box" in a:
                x0, y0, x1, y1 = a["box"]
                cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
                box = (x0, y0, x1, y1)
            else:
                cx, cy = a["center"]
                box = self.point_box(cx, cy, img.mpp_x)
            what = f"{img.image_key}/{a['id']}"
            clipped = self.clipped(box, img.width, img.height, what)
            if clipped is None:
                continue
            yield ObjectRecord(
                object_key=f"{img.image_key}/{a['id']}", image_key=img.image_key,
                source=self.key, source_annotation_id=str(a["id"]), source_file=a["file"],
                label=label.value, source_label=a["class_name"], label_origin=a["origin"],
                votes=a["votes"], centroid_xy=(cx, cy), bbox_xyxy=clipped)


def _lab(name: str | None) -> str | None:
    lab = label_for_name(name)
    return lab.value if lab is not None else None


def _id_from_filename(filename: str, fallback: int) -> int:
    stem = Path(filename).stem
    return int(stem) if stem.isdigit() else fallback
