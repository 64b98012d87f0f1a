"""In-house collections: a folder of slides or images with optional QuPath GeoJSON."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from mfcurate.adapters import register
from mfcurate.adapters._labels import label_for_name
from mfcurate.adapters.base import SourceAdapter, SourceInfo
from mfcurate.errors import SourceFormatError, SourceNotFoundError
from mfcurate.geometry import mask_to_record
from mfcurate.io.geojson import Feature, polygon_to_mask, read_features
from mfcurate.schemas.tables import ImageRecord, ObjectRecord
from mfcurate.schemas.vocab import Label, LabelOrigin, MaskOrigin, Species, Split

IMAGE_SUFFIXES = (".svs", ".ndpi", ".mrxs", ".scn", ".tif", ".tiff", ".png", ".jpg", ".jpeg",
                  ".bmp", ".bif", ".vms")
CONFIG_NAMES = ("mfcurate.toml", "folder.toml")
IGNORE = "ignore"


@register
class Folder(SourceAdapter):
    """Any in-house collection: slides or images, with optional QuPath GeoJSON annotations.

    **Layout under ROOT**: image files (``.svs .ndpi .mrxs .tif .tiff .png .jpg ...``, searched
    recursively); for an image ``a/b.svs`` the annotations are ``a/b.geojson`` (or
    ``a/b.json``, or ``annotations/a/b.geojson``), as QuPath's *Export objects as GeoJSON*
    writes them.  An image without a GeoJSON is ingested with no objects (harvest and detect
    can still reach it).  Optional ``mfcurate.toml``::

        [dataset]
        name = "STMF"            # shown in the manifest
        license = "CC-BY-4.0"
        citation = "..."
        tumour_type = "canine soft tissue sarcoma"
        species = "canine"       # human, canine, feline, murine, other
        scanner = "Aperio GT450"
        split = "train"          # default split
        mpp = 0.25               # only for images whose file gives none
        default_label = "mitotic_figure"   # for features without a class

        [classes]                # class name (as in QuPath) -> label, or "ignore"
        "Mitosis" = "mitotic_figure"
        "Mitotic-like" = "mitotic_like"
        "Tumor" = "ignore"

        [images."case1/slide.svs"]   # per-image overrides of the [dataset] keys
        split = "test"

    **Geometry**: points -> centroid and a box of ``point_box_um``; rectangles -> box
    (``label_origin=box``); polygons -> a real mask (``mask_origin=source``,
    ``label_origin=polygon``).  Class names map through ``[classes]``, else the mfcurate
    vocabulary by name (``Mitotic figure``, ``mitotic_like``, ``Hard negative``...).

    **Licence**: whatever ``[dataset] license`` says (``unknown`` otherwise).
    """

    key: ClassVar[str] = "folder"
    info: ClassVar[SourceInfo] = SourceInfo(
        name="In-house folder", citation="", doi="", homepage="", license="unknown",
        annotation_kind="polygon", nominal_mpp=None,
    )

    @classmethod
    def expected_files(cls) -> Sequence[str]:
        return [f"*{s}" for s in IMAGE_SUFFIXES]

    def locate(self) -> None:
        self.config_path: Path | None = None
        for name in CONFIG_NAMES:
            if (self.root / name).exists():
                self.config_path = self.root / name
        self.settings = self._read_config()
        self._cache: list[tuple[Path, ImageRecord]] | None = None
        files = [p for p in sorted(self.root.rglob("*"))
                 if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                 and not any(part.startswith(".") for part in p.relative_to(self.root).parts)]
        if not files:
            raise SourceNotFoundError(self.root, self.expected_files(), self.key)
        self.files = files

    def _read_config(self) -> dict[str, Any]:
        if self.config_path is None:
            return {}
        try:
            cfg = tomllib.loads(self.config_path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SourceFormatError(self.config_path, f"invalid TOML ({exc})") from exc
        for name, value in cfg.get("classes", {}).items():
            if value != IGNORE and value not in {v.value for v in Label}:
                raise SourceFormatError(self.config_path, f"[classes] {name!r} = {value!r} is "
                                        f"not a label ({', '.join(v.value for v in Label)}) "
                                        f"or 'ignore'")
        return cfg

    def source_card(self) -> dict[str, Any]:  # type: ignore[override]
        card = super().source_card()
        ds = self.settings.get("dataset", {})
        for k in ("name", "license", "citation", "doi", "homepage"):
            if k in ds:
                card[k] = str(ds[k])
        return card

    # ------------------------------------------------------------------ helpers
    def _setting(self, rel: str, key: str) -> Any:
        per = self.settings.get("images", {}).get(rel, {})
        return per.get(key, self.settings.get("dataset", {}).get(key))

    def _image_id(self, path: Path) -> str:
        rel = path.relative_to(self.root).with_suffix("")
        return rel.as_posix()

    def _annotation_file(self, path: Path) -> Path | None:
        rel = path.relative_to(self.root)
        stem = rel.with_suffix("")
        for cand in (self.root / stem.with_suffix(".geojson"),
                     self.root / stem.with_suffix(".json"),
                     self.root / "annotations" / stem.with_suffix(".geojson")):
            if cand.exists():
                return cand
        return None

    def _images(self) -> list[tuple[Path, ImageRecord]]:
        if self._cache is not None:
            return self._cache
        out = []
        ids: dict[str, Path] = {}
        for path in self.files:
            rel = path.relative_to(self.root).as_posix()
            iid = self._image_id(path)
            if iid in ids:
                raise SourceFormatError(path, f"two images share the id {iid!r} "
                                              f"(also {ids[iid].name}); rename one")
            ids[iid] = path
            info = self.probe(rel)
            if info is None:
                raise SourceFormatError(path, "cannot read the image header")
            mpp_x = info.mpp_x or _float(self._setting(rel, "mpp")) or self.config.default_mpp
            mpp_y = info.mpp_y or mpp_x
            species = self._setting(rel, "species")
            if species is not None and species not in {s.value for s in Species}:
                raise SourceFormatError(self.config_path or path, f"species {species!r} is not "
                                        f"one of {[s.value for s in Species]}")
            split = str(self._setting(rel, "split") or Split.UNASSIGNED.value)
            if split not in {s.value for s in Split}:
                raise SourceFormatError(self.config_path or path, f"split {split!r} is not one "
                                        f"of {[s.value for s in Split]}")
            out.append((path, ImageRecord(
                image_key=self.image_key(iid), source=self.key, source_image_id=iid, path=rel,
                width=info.width, height=info.height, mpp_x=mpp_x, mpp_y=mpp_y,
                scanner=self._setting(rel, "scanner"), vendor=info.vendor,
                tumour_type=_lower(self._setting(rel, "tumour_type")), species=species,
                is_wsi=info.is_wsi, split=split, fold=None,
                license=str(self._setting(rel, "license") or "unknown"), file_found=True)))
        self._cache = out
        return out

    def _label(self, feat: Feature, path: Path) -> str | None:
        classes = self.settings.get("classes", {})
        name = feat.class_name
        if name is None:
            default = self.settings.get("dataset", {}).get("default_label")
            if default is None:
                raise SourceFormatError(path, f"feature {feat.index} has no classification; "
                                              "set [dataset] default_label in mfcurate.toml")
            return str(default)
        if name in classes:
            value = classes[name]
            return None if value == IGNORE else str(value)
        lab = label_for_name(name)
        if lab is None:
            raise SourceFormatError(path, f"feature {feat.index}: class {name!r} is not in the "
                                          "vocabulary; map it in mfcurate.toml [classes] "
                                          "(or to \"ignore\")")
        return lab.value

    # ------------------------------------------------------------------ contract
    def iter_images(self) -> Iterator[ImageRecord]:
        for _, rec in self._images():
            yield rec

    def iter_objects(self) -> Iterator[ObjectRecord]:
        for path, img in self._images():
            ann = self._annotation_file(path)
            if ann is None:
                continue
            source_file = ann.relative_to(self.root).as_posix()
            for n, feat in enumerate(read_features(ann)):
                label = self._label(feat, ann)
                if label is None:
                    continue
                rec = self._object(img, feat, n, label, source_file)
                if rec is not None:
                    yield rec

    def _object(self, img: ImageRecord, feat: Feature, n: int, label: str,
                source_file: str) -> ObjectRecord | None:
        key = f"{img.image_key}/{n}"
        common: dict[str, Any] = {
            "object_key": key, "image_key": img.image_key, "source": self.key,
            "source_annotation_id": str(n), "source_file": source_file, "label": label,
            "source_label": feat.class_name,
        }
        if feat.kind == "point":
            x, y = float(feat.coords[0, 0]), float(feat.coords[0, 1])
            box = self.clipped(self.point_box(x, y, img.mpp_x), img.width, img.height, key)
            if box is None:
                return None
            return ObjectRecord(**common, label_origin=LabelOrigin.CENTROID.value,
                                centroid_xy=(x, y), bbox_xyxy=box)
        if feat.is_rectangle:
            box = self.clipped(feat.bbox_xyxy, img.width, img.height, key)
            if box is None:
                return None
            return ObjectRecord(**common, label_origin=LabelOrigin.BOX.value,
                                centroid_xy=((box[0] + box[2]) / 2, (box[1] + box[3]) / 2),
                                bbox_xyxy=box)
        _, mask = polygon_to_mask(feat.coords, feat.holes)
        gx, gy = int(feat.coords[:, 0].min() // 1), int(feat.coords[:, 1].min() // 1)
        if img.width is not None and img.height is not None:
            x_lo, y_lo = max(0, -gx), max(0, -gy)
            x_hi = max(0, min(mask.shape[1], img.width - gx))
            y_hi = max(0, min(mask.shape[0], img.height - gy))
            mask = mask[y_lo:y_hi, x_lo:x_hi]
            gx, gy = gx + x_lo, gy + y_lo
        rec = mask_to_record(mask, (gx, gy))
        if rec is None:
            self.dropped.append(key)
            return None
        box, rle, area, centroid = rec
        area_um2 = area * img.mpp_x * img.mpp_y if img.mpp_x and img.mpp_y else None
        return ObjectRecord(**common, label_origin=LabelOrigin.POLYGON.value,
                            centroid_xy=centroid, bbox_xyxy=box, mask_rle=rle,
                            mask_origin=MaskOrigin.SOURCE.value, area_px=area,
                            area_um2=area_um2)


def _float(v: Any) -> float | None:
    try:
        return float(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def _lower(v: Any) -> str | None:
    return str(v).strip().lower() if v else None
