"""In-house collections: a folder of slides or images with optional QuPath GeoJSON."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from mfcurate.adapters import fields as F
from mfcurate.adapters import register
from mfcurate.adapters._labels import label_for_name
from mfcurate.adapters._mpp import plausible_mpp
from mfcurate.adapters.base import SourceAdapter, SourceInfo
from mfcurate.adapters.fields import Where
from mfcurate.errors import SourceFormatError, SourceNotFoundError
from mfcurate.geometry import mask_to_record
from mfcurate.io.geojson import Feature, polygon_to_mask, read_features
from mfcurate.schemas.tables import ImageRecord, ObjectRecord
from mfcurate.schemas.vocab import Label, LabelOrigin, MaskOrigin, Species, Split
from mfcurate.units import MPP_RANGE, is_plausible_mpp

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
        """``mfcurate.toml``, every table and key checked (unknown keys are refused)."""
        if self.config_path is None:
            return {}
        path = self.config_path
        try:
            cfg = tomllib.loads(path.read_text(encoding="utf-8-sig"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SourceFormatError(path, f"invalid TOML ({exc})") from exc
        top = Where(path, "")
        F.unknown_keys(cfg, ("dataset", "classes", "images"), top, "(top level)")
        _check_settings(F.mapping(cfg.get("dataset"), top, "dataset", optional=True),
                        Where(path, "table dataset"))
        labels = [v.value for v in Label]
        for name, value in F.mapping(cfg.get("classes"), top, "classes",
                                     optional=True).items():
            if value != IGNORE and value not in labels:
                raise SourceFormatError(path, f"table classes: {name!r} = {value!r} is "
                                        f"not a label ({', '.join(labels)}) or 'ignore'")
        for rel, per in F.mapping(cfg.get("images"), top, "images", optional=True).items():
            _check_settings(F.mapping(per, top, f"images.{rel!r}"),
                            Where(path, f"table images.{rel!r}"))
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
            if info is None and rel not in self.unreadable:
                raise SourceFormatError(path, "cannot read the image header")
            setting_mpp = self._setting(rel, "mpp")
            mpp_x = plausible_mpp(info.mpp_x if info else None) or \
                (float(setting_mpp) if setting_mpp is not None else None) or \
                self.config.default_mpp
            mpp_y = plausible_mpp(info.mpp_y if info else None) or mpp_x
            out.append((path, ImageRecord(
                image_key=self.image_key(iid), source=self.key, source_image_id=iid, path=rel,
                width=info.width if info else None, height=info.height if info else None,
                mpp_x=mpp_x, mpp_y=mpp_y, scanner=self._setting(rel, "scanner"),
                vendor=info.vendor if info else None,
                tumour_type=_lower(self._setting(rel, "tumour_type")),
                species=self._setting(rel, "species"),
                is_wsi=info.is_wsi if info else path.suffix.lower() in _WSI_SUFFIXES,
                split=str(self._setting(rel, "split") or Split.UNASSIGNED.value), fold=None,
                license=str(self._setting(rel, "license") or "unknown"),
                file_found=self.file_ok(rel))))
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


_TEXT_KEYS = ("name", "license", "citation", "doi", "homepage", "tumour_type", "scanner")
_SETTING_KEYS = (*_TEXT_KEYS, "species", "split", "mpp", "default_label")
_WSI_SUFFIXES = frozenset({".svs", ".ndpi", ".mrxs", ".scn", ".bif", ".vms"})


def _check_settings(table: Any, at: Where) -> None:
    """Types and values of a ``[dataset]`` or ``[images."..."]`` table."""
    F.unknown_keys(table, _SETTING_KEYS, at, "(table)")
    for k in _TEXT_KEYS:
        F.text(table.get(k), at, k, optional=True)
    F.text(table.get("species"), at, "species", optional=True,
           choices=[s.value for s in Species])
    F.text(table.get("split"), at, "split", optional=True, choices=[s.value for s in Split])
    F.text(table.get("default_label"), at, "default_label", optional=True,
           choices=[v.value for v in Label])
    mpp = F.number(table.get("mpp"), at, "mpp", optional=True, positive=True)
    if mpp is not None and not is_plausible_mpp(mpp):
        raise at.error("mpp", f"{mpp:g} µm/px is outside the plausible range "
                              f"{MPP_RANGE[0]:g}..{MPP_RANGE[1]:g}")


def _lower(v: Any) -> str | None:
    return str(v).strip().lower() if v else None
