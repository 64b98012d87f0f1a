"""A small synthetic dataset for the classifier: PNG images plus a committed mfcurate dataset.

Every image comes from :func:`mfcurate.synth.render.render_tissue`, so the truth is exact:
planted mitotic figures become ``mitotic_figure`` objects, look-alikes ``mitotic_like`` and
ordinary nuclei ``background`` objects, each with its exact mask (``mask_origin="source"``,
``label_origin="pixel"``).  Images are written as PNG with their resolution in the ``pHYs``
chunk (so the reader finds the µm/px) and the ``images`` table records ``mpp_x``/``mpp_y``,
the split and a tumour type.  The tests and ``mfcurate demo`` use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mfcurate.dataset import Dataset
from mfcurate.geometry import mask_to_record
from mfcurate.schemas.tables import ImageRecord, ObjectRecord, images_table, objects_table
from mfcurate.segment import AutoSegmenter
from mfcurate.segment.figure_parts import union_mask
from mfcurate.synth.images import write_png
from mfcurate.synth.render import MULTI_PART_FRAC, Planted, render_tissue

SOURCE_KEY = "synthetic"

_KIND_TO_LABEL = {"mitotic_figure": "mitotic_figure", "mitotic_like": "mitotic_like",
                  "nucleus": "background"}


@dataclass(frozen=True)
class SyntheticSplit:
    """How many images of each split to render.

    Attributes:
        train: images with ``split="train"``.
        val: images with ``split="val"``.
        test: images with ``split="test"``.
    """

    train: int = 6
    val: int = 0
    test: int = 2

    def labels(self) -> list[str]:
        """Split value of every image, in rendering order."""
        return ["train"] * self.train + ["val"] * self.val + ["test"] * self.test


def _object(image_key: str, idx: int, p: Planted, mpp: float) -> ObjectRecord | None:
    rec = mask_to_record(p.mask, p.offset_xy)
    if rec is None:
        return None
    box, rle, area, centroid = rec
    label = _KIND_TO_LABEL[p.kind]
    return ObjectRecord(
        object_key=f"{image_key}/{idx}", image_key=image_key, source=SOURCE_KEY,
        source_annotation_id=str(idx), label=label, source_label=p.kind,
        label_origin="pixel", centroid_xy=centroid, bbox_xyxy=box, mask_rle=rle,
        mask_origin="source", mask_score=1.0, area_px=area, area_um2=area * mpp * mpp)


def _segmented_objects(image_key: str, rgb: np.ndarray, planted: list[Planted], mpp: float,
                       segmenter: AutoSegmenter) -> list[ObjectRecord]:
    """Objects as ``segmenter`` sees them, labelled by the planted truth under their masks.

    Each planted object takes the instance that covers most of it (when that instance lies
    at least half on it); other instances on a planted object (fragments) are dropped,
    except on a multi-part figure, whose object is the union of all the instances on it
    (one mass each); the remaining instances are background.  Planted figures and
    look-alikes the segmenter missed keep their exact mask, so the ground truth stays
    complete.
    """
    h, w = rgb.shape[:2]
    owner = np.full((h, w), -1, np.int32)
    for i, p in enumerate(planted):
        ox, oy = p.offset_xy
        mh, mw = p.mask.shape
        sub = owner[oy:oy + mh, ox:ox + mw]
        sub[p.mask[:sub.shape[0], :sub.shape[1]]] = i
    best: dict[int, tuple[int, int]] = {}  # planted index -> (overlap, instance index)
    insts = segmenter.segment_tile(rgb, mpp)
    inst_owner: list[int] = []
    for k, inst in enumerate(insts):
        ox, oy = inst.offset_xy
        mh, mw = inst.mask.shape
        under = owner[oy:oy + mh, ox:ox + mw][inst.mask[:h - oy, :w - ox]]
        vals, counts = np.unique(under[under >= 0], return_counts=True)
        j = int(vals[np.argmax(counts)]) if len(vals) else -1
        if j >= 0 and counts.max() * 2 < inst.mask.sum():
            j = -2  # mostly off any planted object: a merged blob, ambiguous
        inst_owner.append(j)
        if j >= 0 and counts.max() > best.get(j, (0, -1))[0]:
            best[j] = (int(counts.max()), k)
    out: list[ObjectRecord] = []
    taken = {k: j for j, (_, k) in best.items()}
    for k, inst in enumerate(insts):
        j = inst_owner[k]
        if j >= 0 and taken.get(k) != j:
            continue  # a fragment of a planted object
        if j == -2:
            continue
        mask, off = inst.mask, inst.offset_xy
        if j >= 0 and planted[j].n_parts > 1:  # every mass of a multi-part figure
            mine = [insts[q] for q in range(len(insts)) if inst_owner[q] == j]
            mask, off = union_mask([q.mask for q in mine], [q.offset_xy for q in mine])
        rec = mask_to_record(mask, off)
        if rec is None:
            continue
        box, rle, area, centroid = rec
        kind = planted[j].kind if j >= 0 else "nucleus"
        out.append(ObjectRecord(
            object_key=f"{image_key}/seg{k}", image_key=image_key, source=SOURCE_KEY,
            source_annotation_id=f"seg{k}", label=_KIND_TO_LABEL[kind], source_label=kind,
            label_origin="pixel", centroid_xy=centroid, bbox_xyxy=box, mask_rle=rle,
            mask_origin="classical", mask_score=float(inst.score), area_px=area,
            area_um2=area * mpp * mpp))
    for j, p in enumerate(planted):
        if j not in best and p.kind != "nucleus":
            rec_obj = _object(image_key, j, p, mpp)
            if rec_obj is not None:
                out.append(rec_obj)
    return out


def build_classifier_dataset(
    root: Path | str,
    *,
    splits: SyntheticSplit | None = None,
    size_px: int = 384,
    mpp: float = 0.5,
    n_mitotic: int = 6,
    n_mitotic_like: int = 6,
    seed: int = 0,
    tumour_types: tuple[str, ...] = ("synthetic carcinoma", "synthetic sarcoma"),
    segmenter: AutoSegmenter | None = None,
    multi_part_frac: float = MULTI_PART_FRAC,
) -> Path:
    """Render images into ``root/images`` and commit them as a dataset at ``root/dataset``.

    Args:
        root: output folder (created).
        splits: images per split (default 6 train, 0 val, 2 test).
        size_px: side of each square image in pixels.
        mpp: µm per pixel of the images.
        n_mitotic: mitotic figures planted per image.
        n_mitotic_like: look-alikes planted per image.
        seed: seed of the whole dataset (image ``i`` uses ``seed * 1000 + i``).
        tumour_types: assigned to images in turn (so per-tumour scoring has groups).
        segmenter: if given, objects are what this segmenter finds, labelled by the planted
            truth under their masks (so training masks look like detection masks); planted
            figures it misses keep their exact masks.  Default: the exact planted masks.
        multi_part_frac: share of multi-part (anaphase/telophase/tripolar) figures
            (:func:`mfcurate.synth.render.render_tissue`, its default); a multi-part figure
            is one object with a multi-part mask (``detect`` joins its masses into one
            detection, :func:`mfcurate.classifier.detect.join_figure_parts`).

    Returns:
        The dataset folder.
    """
    splits = splits or SyntheticSplit()
    root = Path(root)
    img_dir = root / "images"
    images: list[ImageRecord] = []
    objects: list[ObjectRecord] = []
    for i, split in enumerate(splits.labels()):
        rng = np.random.default_rng(seed * 1000 + i)
        rgb, planted = render_tissue(rng, size_px, size_px, mpp=mpp, n_mitotic=n_mitotic,
                                     n_mitotic_like=n_mitotic_like,
                                     multi_part_frac=multi_part_frac)
        name = f"img{i:03d}.png"
        write_png(img_dir / name, rgb, mpp)
        key = f"{SOURCE_KEY}/{name}"
        images.append(ImageRecord(
            image_key=key, source=SOURCE_KEY, source_image_id=name, path=name, width=size_px,
            height=size_px, mpp_x=mpp, mpp_y=mpp, scanner="synthetic", vendor="png",
            tumour_type=tumour_types[i % len(tumour_types)], species="human", is_wsi=False,
            split=split, license="CC0-1.0", file_found=True))
        if segmenter is not None:
            objects.extend(_segmented_objects(key, rgb, planted, mpp, segmenter))
            continue
        for j, p in enumerate(planted):
            rec = _object(key, j, p, mpp)
            if rec is not None:
                objects.append(rec)
    ds_path = root / "dataset"
    ds = Dataset.open(ds_path, create=True)
    ds.commit_source(SOURCE_KEY, images_table(images), [objects_table(objects)],
                     info={"name": "Synthetic H&E (mfcurate.synth)", "license": "CC0-1.0",
                           "citation": "generated by mfcurate.synth.render_tissue",
                           "seed": seed}, root=img_dir)
    return ds_path
