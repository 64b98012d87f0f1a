"""pHH3 re-stain adapter (``mfcurate ingest phh3 ROOT``): reads what ``register-phh3`` writes."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from mfcurate.adapters import fields as F
from mfcurate.adapters import register
from mfcurate.adapters._mpp import plausible_mpp
from mfcurate.adapters.base import SourceAdapter, SourceInfo
from mfcurate.adapters.fields import Where
from mfcurate.errors import SourceNotFoundError
from mfcurate.geometry import (
    BoxXYXY,
    box_is_valid,
    clip_box,
    clip_mask_to_image,
    decode_mask,
    mask_grid,
    mask_to_record,
    rle_area,
)
from mfcurate.schemas.tables import ImageRecord, ObjectRecord
from mfcurate.schemas.vocab import MaskOrigin, QAFlag, Species
from mfcurate.units import MPP_RANGE, is_plausible_mpp
from mfcurate.units import area_um2 as area_um2_of


@register
class PHH3(SourceAdapter):
    """Mitotic figures from pHH3 re-stains registered to their H&E slides.

    **Source card.**  In-house data produced by ``mfcurate register-phh3`` (the STMF way of
    labelling: the H&E section is de-stained, re-stained with anti-phospho-histone H3, both are
    scanned, the pHH3 slide is registered to the H&E and the DAB-positive nuclei are carried
    over).  Cite Shen et al. (OMG-Net) for the protocol and the data owner for the slides.
    Licence: set with ``--option license=...`` (default ``unknown``).

    **Layout under ROOT**: one folder per pair (or ROOT itself is one pair folder), each with
    ``pair.json`` (``pair_id``, ``he_slide`` (absolute, or relative to the pair folder),
    ``he_mpp``, ``he_width``, ``he_height``, ``tumour_type``, ``species``...),
    ``objects.parquet`` or ``objects.csv`` (one row per transferred object) and
    ``transform.json``.

    **Objects**: label ``mitotic_figure``, label_origin ``ihc``, mask from the pHH3
    (``mask_origin`` ``phh3``, or ``sam_box``/``classical`` when refined), pHH3 coordinates,
    DAB mean and the local registration residual in ``extra``; objects with QA flags
    (``registration_residual``, ``registration_fallback``, ``outside_he``, ``area_changed``)
    are ``qa_state = flagged``.

    **Quirks**: pHH3-positive is not the same as an H&E-visible mitosis (G2/prophase nuclei
    are pHH3-positive too), so these labels are noisy; the H&E slide path is stored relative
    to ROOT and may lie outside it.  Options: ``license``, ``split`` (default ``unassigned``).
    """

    key: ClassVar[str] = "phh3"
    info: ClassVar[SourceInfo] = SourceInfo(
        name="pHH3 re-stain (register-phh3)",
        citation="Shen Z, et al. OMG-Net: a deep learning framework deploying Segment Anything "
                 "to detect pan-cancer mitotic figures from haematoxylin and eosin-stained "
                 "slides (pHH3 re-stain protocol).",
        doi="",
        homepage="https://github.com/",
        license="unknown",
        annotation_kind="ihc",
        nominal_mpp=None,
    )

    @classmethod
    def expected_files(cls) -> Sequence[str]:
        return ["*/pair.json", "pair.json"]

    def locate(self) -> None:
        if (self.root / "pair.json").exists():
            self.pairs = [self.root]
        else:
            self.pairs = sorted(p.parent for p in self.root.glob("*/pair.json"))
        if not self.pairs:
            raise SourceNotFoundError(self.root, self.expected_files(), self.key)
        self._meta: dict[Path, dict[str, Any]] = {}

    def _pair(self, folder: Path) -> dict[str, Any]:
        """``pair.json``, each field checked (see :func:`_typed_pair`)."""
        from mfcurate.registration.outputs import PAIR_FILE, read_pair_json

        if folder not in self._meta:
            self._meta[folder] = _typed_pair(read_pair_json(folder), folder / PAIR_FILE)
        return self._meta[folder]

    def _image_key(self, folder: Path) -> str:
        return self.image_key(str(self._pair(folder)["pair_id"]))

    def _rel(self, folder: Path, p: str) -> str:
        """The H&E path relative to ROOT (``pair.json`` paths are relative to their folder)."""
        path = Path(p)
        if not path.is_absolute():
            path = folder / path
        return os.path.relpath(path, self.root)

    def build_image_records(self) -> dict[Path, ImageRecord]:
        return {folder: self._image_record(folder) for folder in self.pairs}

    def _image_record(self, folder: Path) -> ImageRecord:
        d = self._pair(folder)
        rel = self._rel(folder, d["he_slide"])
        info = self.probe(rel)
        mpp_x, mpp_y = d["he_mpp"]
        return ImageRecord(
            image_key=self._image_key(folder), source=self.key,
            source_image_id=d["pair_id"], path=rel,
            width=info.width if info else d["he_width"],
            height=info.height if info else d["he_height"],
            mpp_x=plausible_mpp(info.mpp_x if info else None) or mpp_x,
            mpp_y=plausible_mpp(info.mpp_y if info else None) or mpp_y,
            scanner=d["scanner"], vendor=info.vendor if info else None,
            tumour_type=d["tumour_type"].lower() if d["tumour_type"] else None,
            species=d["species"], is_wsi=True,
            split=str(self.config.options.get("split", "unassigned")),
            license=str(self.config.options.get("license", self.info.license)),
            file_found=self.file_ok(rel),
        )

    def iter_objects(self) -> Iterator[ObjectRecord]:
        from mfcurate.registration.outputs import OBJECTS_CSV, OBJECTS_PARQUET, read_objects

        origins = {m.value for m in MaskOrigin}
        for folder in self.pairs:
            d = self._pair(folder)
            image_key = self._image_key(folder)
            table = read_objects(folder)
            src = folder / (OBJECTS_PARQUET if (folder / OBJECTS_PARQUET).exists()
                            else OBJECTS_CSV)
            img = self.images_by_id[folder]
            mpp_x, mpp_y = img.mpp_x, img.mpp_y
            for i, r in enumerate(table.to_pylist()):
                at = Where(src, f"row {i + 1}")
                oid = F.identifier(r["object_id"], at, "object_id")
                he = [F.req_number(r[k], at, k) for k in ("he_x", "he_y", "he_x0", "he_y0",
                                                            "he_x1", "he_y1")]
                if he[4] <= he[2] or he[5] <= he[3]:
                    raise at.error("he_x0..he_y1", f"box {he[2:]} is not x0 < x1, y0 < y1")
                area = F.integer(r["area_px"], at, "area_px", lo=0, optional=True)
                area_um2 = F.number(r["area_um2"], at, "area_um2", lo=0.0, optional=True)
                score = F.number(r["mask_score"], at, "mask_score", optional=True)
                origin = r["mask_origin"] if r["mask_origin"] in origins else "phh3"
                flags = [f for f in (r["qa_flags"] or "").split(";") if f]
                bad = [f for f in flags if f not in _FLAGS]
                if bad:
                    raise at.error("qa_flags", f"unknown flag(s) {', '.join(bad)}")
                fit = _fit_to_image((he[2], he[3], he[4], he[5]), r["mask_rle"] or None,
                                    img.width, img.height)
                if fit is None:
                    self.dropped.append(f"{image_key}/{oid}")
                    continue
                box, rle, clipped = fit
                if clipped:
                    flags.append(QAFlag.CLIPPED_TO_IMAGE.value)
                    area = rle_area(rle, int(box[3] - box[1]), int(box[2] - box[0])) \
                        if rle else area
                    area_um2 = None
                if area_um2 is None and area is not None:
                    area_um2 = area_um2_of(area, mpp_x, mpp_y)
                yield ObjectRecord(
                    object_key=f"{image_key}/{oid}", image_key=image_key, source=self.key,
                    source_annotation_id=oid, source_file=os.path.relpath(src, self.root),
                    label="mitotic_figure", source_label="pHH3-positive", label_origin="ihc",
                    centroid_xy=(he[0], he[1]), bbox_xyxy=box,
                    mask_rle=rle, mask_origin=origin if rle else None,
                    mask_score=score, area_px=area if rle else None,
                    area_um2=area_um2 if rle else None,
                    qa_state="flagged" if flags else "unreviewed",
                    qa_flags=flags or None,
                    extra=self.extra_json(
                        pair_id=d["pair_id"],
                        phh3_xy=[r["phh3_x"], r["phh3_y"]],
                        phh3_bbox_xyxy=[r["phh3_x0"], r["phh3_y0"], r["phh3_x1"], r["phh3_y1"]],
                        phh3_area_px=r["phh3_area_px"], dab_mean=r["dab_mean"],
                        residual_um=r["residual_um"], phh3_slide=d["phh3_slide"],
                        unclipped_bbox_xyxy=he[2:] if clipped else None),
                )


_FLAGS = frozenset(f.value for f in QAFlag)


def _fit_to_image(box: BoxXYXY, rle: str | None, width: int | None, height: int | None
                  ) -> tuple[BoxXYXY, str | None, bool] | None:
    """``(box, rle, clipped)`` cut to the image; None when nothing of it is inside.

    A mask is decoded on its box grid, cut with ``geometry.clip_mask_to_image`` and
    re-encoded on its new tight box.
    """
    c = clip_box(box, width, height)
    if not box_is_valid(c):
        return None
    if c == tuple(float(v) for v in box):
        return box, rle, False
    if rle is None:
        return c, None, True
    x0, y0, w, h = mask_grid(box)
    inside, off, _ = clip_mask_to_image(decode_mask(rle, h, w), (x0, y0), width, height)
    rec = mask_to_record(inside, off)
    if rec is None:
        return None
    return rec[0], rec[1], True


def _typed_pair(d: dict[str, Any], path: Path) -> dict[str, Any]:
    """The fields of ``pair.json`` the adapter uses, each checked for type and range.

    ``he_mpp`` is ``[mpp_x, mpp_y]`` (or ``[mpp]``, or null); sizes are positive integers or
    null; ``species`` one of the vocabulary's.
    """
    at = Where(path, "")
    mpp_raw = F.items(d.get("he_mpp"), at, "he_mpp", optional=True)
    if len(mpp_raw) > 2:
        raise at.error("he_mpp", f"expected [mpp_x, mpp_y], got {len(mpp_raw)} values")
    mpp: list[float] = []
    for k, v in enumerate(mpp_raw):
        f = F.number(v, at, f"he_mpp[{k}]", positive=True, optional=True)
        if f is not None and not is_plausible_mpp(f):
            raise at.error(f"he_mpp[{k}]", f"{f:g} µm/px is outside the plausible range "
                                           f"{MPP_RANGE[0]:g}..{MPP_RANGE[1]:g}")
        mpp += [f] if f is not None else []
    species = F.text(d.get("species"), at, "species", optional=True,
                     choices=[s.value for s in Species])
    return {
        "pair_id": F.identifier(d.get("pair_id"), at, "pair_id"),
        "he_slide": F.req_text(d.get("he_slide"), at, "he_slide", nonempty=True),
        "phh3_slide": F.text(d.get("phh3_slide"), at, "phh3_slide", optional=True),
        "he_mpp": (mpp[0] if mpp else None, mpp[-1] if mpp else None),
        "he_width": F.size_px(d.get("he_width"), at, "he_width"),
        "he_height": F.size_px(d.get("he_height"), at, "he_height"),
        "tumour_type": F.text(d.get("tumour_type"), at, "tumour_type", optional=True),
        "species": species,
        "scanner": F.text(d.get("scanner"), at, "scanner", optional=True),
    }
