"""ICPR 2012 (MITOS) adapter (``mfcurate ingest icpr2012 ROOT``): the only pixel-mask MF source."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from mfcurate.adapters import register
from mfcurate.adapters._point_csv import read_number_rows
from mfcurate.adapters._sliderunner_source import spot_label
from mfcurate.adapters.base import SourceAdapter, SourceInfo
from mfcurate.adapters.sliderunner import read_sliderunner
from mfcurate.errors import SourceNotFoundError, UsageError
from mfcurate.geometry import mask_to_record
from mfcurate.schemas.tables import ImageRecord, ObjectRecord
from mfcurate.schemas.vocab import Label, LabelOrigin, MaskOrigin, Split

#: HPF names of the contest test set (from MITOS2012_test.sqlite); the rest is train.
TEST_HPFS: frozenset[str] = frozenset(
    "00_00 00_08 01_04 01_06 01_09 02_00 02_01 02_03 02_07 03_00 03_01 03_04 04_03 04_07 "
    "04_09".split())
#: Nominal µm/px per scanner letter (A: Aperio ScanScope XT, H: Hamamatsu NanoZoomer).
SCANNERS = {"A": ("Aperio ScanScope XT", 0.2456), "H": ("Hamamatsu NanoZoomer 2.0-HT", 0.2273)}
_NAME = re.compile(r"^([AH])(\d\d)_(\d\d)$")
_IMAGE_EXT = (".bmp", ".tif", ".tiff", ".png")
_DBS = {"train": ("MITOS2012.sqlite", "databases/MITOS2012.sqlite"),
        "test": ("MITOS2012_test.sqlite", "databases/MITOS2012_test.sqlite")}


@dataclass
class _Obj:
    image_id: str
    ann_id: str
    source_file: str
    pixels: np.ndarray | None  # (n, 2) raw pairs as written (csv mode)
    center: tuple[float, float] | None  # (x, y) (sqlite mode)
    line: int | None = None


@register
class ICPR2012(SourceAdapter):
    """ICPR 2012 mitosis contest (MITOS): 50 breast-cancer HPFs with pixel-level MF masks.

    **Source card.**  Roux L, Racoceanu D, Loménie N, et al., "Mitosis detection in breast
    cancer histological images - An ICPR 2012 contest", J Pathol Inform 4:8 (2013),
    doi 10.4103/2153-3539.112693.  Data: ludo17.free.fr/mitos_2012 after registration; no
    explicit licence (research use).  SlideRunner conversions (centroids, scanner A only):
    DeepMicroscopy/SlideRunner ``databases/MITOS2012.sqlite`` and ``MITOS2012_test.sqlite``.

    **Layout under ROOT**: original release ``A00_v2/A00_01.bmp`` (image), ``A00_01.csv``
    (ground truth), ``A00_01.jpg`` (overlay), folders ``A00_v2 ... A04_v2`` and ``H00_v2 ...``
    (Hamamatsu ``.tif``), possibly one level down (``training/A00_v2``...) or directly in
    ROOT; or the SlideRunner
    conversions ``MITOS2012.sqlite`` (train) / ``MITOS2012_test.sqlite`` (test).

    **Counts**: 35 train HPFs / 226 MF, 15 test HPFs / 101 MF (scanner A); no imposters.

    **Quirks handled**:

    * Each csv line is one mitosis: the coordinates of *all* its pixels as ``a,b,a,b,...``.
      These are real masks: ``label_origin=pixel``, ``mask_origin=source``, RLE on the
      mask's tight box (``geometry.mask_to_record``), ``area_px``/``area_um2`` from it.
    * The pair order is not documented.  With ``pixel_order=auto`` (default) the adapter
      checks it on the data: against the ``.jpg`` overlays (the drawn outlines must hug the
      mask; the order whose masks meet more overlay-vs-image change wins), else against the
      SlideRunner centroids when those DBs lie in ROOT (nearest-centroid distance), else it
      falls back to ``xy`` (x = column first), the reading of the public parsers.  The
      decision and its evidence are in ``pixel_order_evidence`` and each object's ``extra``.
      Pixels outside the image are dropped.
    * The split is by HPF name (``A00_00`` ... test list of MITOS2012_test.sqlite), the same
      for both scanners.  An empty csv is an HPF without mitoses.
    * SQLite mode: centroids only (the pixel lists are lost), scanner A only, ``orderIdx``
      NULL, old schema; boxes from ``point_box``.

    Options: ``annotations`` = ``csv`` | ``sqlite`` (default: csv when pixel-list csv files
    exist); ``pixel_order`` = ``auto`` | ``xy`` | ``yx``.
    """

    key: ClassVar[str] = "icpr2012"
    info: ClassVar[SourceInfo] = SourceInfo(
        name="ICPR 2012 mitosis contest (MITOS)",
        citation="Roux L, et al. Mitosis detection in breast cancer histological images - An "
                 "ICPR 2012 contest. J Pathol Inform 4, 8 (2013).",
        doi="10.4103/2153-3539.112693",
        homepage="http://ludo17.free.fr/mitos_2012/",
        license="research-only",
        annotation_kind="pixel",
        nominal_mpp=0.2456,
    )

    @classmethod
    def expected_files(cls) -> Sequence[str]:
        return ["A00_v2/A00_01.csv", "*_v2/*.csv", *_DBS["train"][:1], *_DBS["test"][:1]]

    def locate(self) -> None:
        want = str(self.config.options.get("annotations") or "").lower() or None
        if want not in (None, "csv", "sqlite"):
            raise UsageError(f"icpr2012: option annotations={want!r}; choose csv or sqlite")
        order = str(self.config.options.get("pixel_order", "auto")).lower()
        if order not in {"auto", "xy", "yx"}:
            raise UsageError(f"icpr2012: option pixel_order={order!r}; choose auto, xy or yx")
        self.requested_order = order
        self.csv_files = sorted(
            (p for p in [*self.root.glob("*.csv"), *self.root.glob("*/*.csv"),
                         *self.root.glob("*/*/*.csv")]
             if _NAME.match(p.stem)), key=lambda p: (p.stem, p.as_posix()))
        self.db_paths: dict[str, Path] = {}
        for split, cands in _DBS.items():
            try:
                self.db_paths[split] = self.find(*cands)
            except SourceNotFoundError:
                pass
        if want == "csv" or (want is None and self.csv_files):
            if not self.csv_files:
                raise SourceNotFoundError(self.root, ["A00_v2/A00_01.csv", "*_v2/*.csv"],
                                          self.key)
            self.mode = "csv"
        elif self.db_paths:
            self.mode = "sqlite"
        else:
            raise SourceNotFoundError(self.root, self.expected_files(), self.key)
        self.pixel_order = order if order != "auto" else "xy"
        self.pixel_order_evidence = "option" if order != "auto" else "default"
        self._objs: list[_Obj] | None = None
        self._images: dict[str, tuple[str, str]] | None = None  # id -> (rel path, split)

    # ------------------------------------------------------------------ reading
    def _rel(self, p: Path) -> str:
        return p.relative_to(self.root).as_posix()

    def _image_file(self, folder: Path, stem: str) -> str:
        for ext in _IMAGE_EXT:
            if (folder / f"{stem}{ext}").exists():
                return self._rel(folder / f"{stem}{ext}")
        default = ".bmp" if stem.startswith("A") else ".tif"
        return self._rel(folder / f"{stem}{default}")

    def _collect(self) -> tuple[dict[str, tuple[str, str]], list[_Obj]]:
        if self._images is not None and self._objs is not None:
            return self._images, self._objs
        images: dict[str, tuple[str, str]] = {}
        objs: list[_Obj] = []
        if self.mode == "csv":
            for f in self.csv_files:
                stem = f.stem
                if stem in images:
                    continue  # same HPF in two folders: the first (sorted) wins
                images[stem] = (self._image_file(f.parent, stem), _split(stem))
                for k, (lineno, vals) in enumerate(read_number_rows(f, min_fields=2,
                                                                    even=True), start=1):
                    pix = np.asarray(vals, dtype=np.float64).reshape(-1, 2)
                    objs.append(_Obj(stem, str(k), self._rel(f), pix, None, lineno))
        else:
            for split, path in sorted(self.db_paths.items()):
                db = self.read_database(path)
                src = self._rel(path)
                for s in sorted(db.slides.values(), key=lambda s: s.filename):
                    stem = Path(s.filename).stem
                    rel = s.filename
                    for cand in (s.filename, *(p.as_posix() for p in
                                               self.root.glob(f"*/{s.filename}"))):
                        if (self.root / cand).exists():
                            rel = self._rel(self.root / cand)
                            break
                    images[stem] = (rel, split)
                by_uid = {s.uid: Path(s.filename).stem for s in db.slides.values()}
                for sp in db.spots:
                    lab = spot_label(sp.class_id, db.classes.get(sp.class_id),
                                     {1: Label.MITOTIC_FIGURE})
                    if lab is None:
                        continue
                    objs.append(_Obj(by_uid[sp.slide_uid], str(sp.uid), src, None,
                                     (sp.x, sp.y)))
        self._images, self._objs = dict(sorted(images.items())), objs
        if self.mode == "csv" and self.requested_order == "auto":
            self._decide_order(objs)
        return self._images, self._objs

    # ------------------------------------------------------------------ pixel order
    def _decide_order(self, objs: list[_Obj]) -> None:
        """Settle the pair order from the overlays, else the SlideRunner centroids."""
        if self._images is None:
            raise RuntimeError("images not collected")
        by_image: dict[str, list[np.ndarray]] = {}
        for o in objs:
            if o.pixels is not None and len(o.pixels):
                by_image.setdefault(o.image_id, []).append(o.pixels)
        votes = {"xy": 0.0, "yx": 0.0}
        checked = 0
        for iid, pix in by_image.items():
            rel = self._images[iid][0]
            overlay = (self.root / rel).with_suffix(".jpg")
            if not overlay.exists() or not (self.root / rel).exists():
                continue
            s = _overlay_scores(self.root / rel, overlay, pix)
            if s is None:
                continue
            votes["xy"] += s[0]
            votes["yx"] += s[1]
            checked += 1
            if checked >= 3:
                break
        if checked and max(votes.values()) > 1.5 * min(votes.values()) + 1e-9:
            self.pixel_order = max(votes, key=lambda k: votes[k])
            self.pixel_order_evidence = f"overlay ({checked} images)"
            return
        if "train" in self.db_paths or "test" in self.db_paths:
            dist = _centroid_distances(self.db_paths, by_image)
            if dist is not None and max(dist.values()) > 2.0 * min(dist.values()) + 1e-9:
                self.pixel_order = min(dist, key=lambda k: dist[k])
                self.pixel_order_evidence = "sliderunner centroids"

    # ------------------------------------------------------------------ contract
    def build_image_records(self) -> dict[str, ImageRecord]:
        images, _ = self._collect()
        out: dict[str, ImageRecord] = {}
        for iid, (rel, split) in images.items():
            scanner, nominal = SCANNERS.get(iid[:1], (None, self.info.nominal_mpp))
            out[iid] = self.region_image(iid, rel, split=split, tumour_type="human breast cancer",
                                         species="human", scanner=scanner, nominal_mpp=nominal)
        return out

    def iter_objects(self) -> Iterator[ObjectRecord]:
        records = self.images_by_id
        _, objs = self._collect()
        for o in objs:
            img = records[o.image_id]
            what = f"{img.image_key}/{o.ann_id}"
            if o.pixels is None or o.center is not None:
                cx, cy = o.center or (0.0, 0.0)
                point = self.point_object(
                    img, o.ann_id, cx, cy, label=Label.MITOTIC_FIGURE.value,
                    source_label="Mitosis", source_file=o.source_file,
                    extra=self.extra_json(database=o.source_file))
                if point is not None:
                    yield point
                continue
            rec = _pixels_to_mask(o.pixels, self.pixel_order, img.width, img.height)
            if rec is None:
                self.dropped.append(what)
                continue
            box, rle, area, centroid = rec
            area_um2 = area * img.mpp_x * img.mpp_y if img.mpp_x and img.mpp_y else None
            yield ObjectRecord(
                object_key=what, image_key=img.image_key, source=self.key,
                source_annotation_id=o.ann_id, source_file=o.source_file,
                label=Label.MITOTIC_FIGURE.value, source_label="mitosis",
                label_origin=LabelOrigin.PIXEL.value, centroid_xy=centroid, bbox_xyxy=box,
                mask_rle=rle, mask_origin=MaskOrigin.SOURCE.value, area_px=area,
                area_um2=area_um2,
                extra=self.extra_json(line=o.line, pixel_order=self.pixel_order,
                                      pixel_order_evidence=self.pixel_order_evidence))


def _split(stem: str) -> str:
    m = _NAME.match(stem)
    hpf = f"{m.group(2)}_{m.group(3)}" if m else stem
    return Split.TEST.value if hpf in TEST_HPFS else Split.TRAIN.value


def _xy(pixels: np.ndarray, order: str) -> tuple[np.ndarray, np.ndarray]:
    """Columns and rows (int) of raw pairs read in ``order``."""
    a = np.rint(pixels[:, 0]).astype(np.int64)
    b = np.rint(pixels[:, 1]).astype(np.int64)
    return (a, b) if order == "xy" else (b, a)


def _pixels_to_mask(pixels: np.ndarray, order: str, width: int | None, height: int | None
                    ) -> tuple[tuple[float, float, float, float], str, int,
                               tuple[float, float]] | None:
    """Rasterise a pixel list into ``mask_to_record`` output (None if no pixel is inside)."""
    xs, ys = _xy(pixels, order)
    keep = (xs >= 0) & (ys >= 0)
    if width is not None:
        keep &= xs < width
    if height is not None:
        keep &= ys < height
    xs, ys = xs[keep], ys[keep]
    if xs.size == 0:
        return None
    x0, y0 = int(xs.min()), int(ys.min())
    m = np.zeros((int(ys.max()) - y0 + 1, int(xs.max()) - x0 + 1), dtype=bool)
    m[ys - y0, xs - x0] = True
    return mask_to_record(m, (x0, y0))


def _overlay_scores(image: Path, overlay: Path, pixels: list[np.ndarray]
                    ) -> tuple[float, float] | None:
    """Mean overlay-vs-image change next to the masks read as xy and as yx.

    The overlay draws each mitosis' outline on the image, so the change concentrates around
    the masks of the right order.  None when the files cannot be compared.
    """
    import cv2
    from PIL import Image

    try:
        with Image.open(image) as a, Image.open(overlay) as b:
            img = np.asarray(a.convert("RGB"), dtype=np.int16)
            ovl = np.asarray(b.convert("RGB"), dtype=np.int16)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None  # an unreadable image or overlay gives no evidence
    if img.shape != ovl.shape:
        return None
    changed = np.abs(ovl - img).sum(axis=2) > 90
    h, w = changed.shape
    kernel = np.ones((9, 9), np.uint8)
    out = []
    for order in ("xy", "yx"):
        near = np.zeros((h, w), np.uint8)
        for p in pixels:
            xs, ys = _xy(p, order)
            ok = (xs >= 0) & (ys >= 0) & (xs < w) & (ys < h)
            near[ys[ok], xs[ok]] = 1
        near = cv2.dilate(near, kernel).astype(bool)
        out.append(float(changed[near].mean()) if near.any() else 0.0)
    return out[0], out[1]


def _centroid_distances(db_paths: dict[str, Path], by_image: dict[str, list[np.ndarray]]
                        ) -> dict[str, float] | None:
    """Median distance from each mask centroid (per order) to the nearest DB spot."""
    spots: dict[str, list[tuple[float, float]]] = {}
    for path in db_paths.values():
        db = read_sliderunner(path)
        for sp in db.spots:
            spots.setdefault(Path(db.slides[sp.slide_uid].filename).stem, []).append(
                (sp.x, sp.y))
    out: dict[str, list[float]] = {"xy": [], "yx": []}
    for iid, pix in by_image.items():
        pts = np.asarray(spots.get(iid, []), dtype=float).reshape(-1, 2)
        if not len(pts):
            continue
        for order in out:
            for p in pix:
                xs, ys = _xy(p, order)
                c = np.array([xs.mean(), ys.mean()])
                out[order].append(float(np.min(np.hypot(*(pts - c).T))))
    if not out["xy"]:
        return None
    return {k: float(np.median(v)) for k, v in out.items()}
