"""Label hygiene of the training patches: what may become a training sample, and the figures.

Two rules decide, before any patch is cut, which objects may train the classifier
(:func:`training_filter`, used by :func:`mfcurate.classifier.patches.build_patch_store`):

* **no disk stand-ins**: an object without a mask, or whose mask is a fixed disk
  (``mask_origin == "disk"``: refine-masks' fallback for an empty prompt), would train on a
  perfect circle while mitotic figures carry segmenter masks -- a cue the model learns
  instead of the chromatin.  Such objects are left out by default (``include_disk=True``
  keeps them, with a disk mask and ``mask_kind = "disk"`` in the index) and counted per label;
* **no negative inside a mitotic figure's box**: a negative (any label that is not a
  mitotic figure) whose centroid lies inside the box of a mitotic figure of the same image
  (the annotation's ``source_bbox_xyxy`` or its mask's ``bbox_xyxy``) is a piece of that
  figure, a duplicate of it or a look-alike drawn on top of it; it never trains as "not a
  figure".  Harvest already links such objects to their figure (``fragment_of_figure``,
  rejected); this rule also covers annotations from sources and objects of other steps.

:func:`hygiene_figures` measures a dataset and its patch store against the acceptance of
issue 12 (share of mitotic-figure masks with two or more parts, negative patches centred in a
figure box, disk-mask share per class); ``bench/hygiene_figures.py`` prints them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from mfcurate.classifier.patches import POSITIVE_LABELS
from mfcurate.geometry import count_parts, decode_mask, mask_grid, points_in_boxes

#: ``mask_origin`` of a disk stand-in.
DISK_ORIGIN = "disk"


def is_real_mask(rle: str | None, origin: str | None) -> bool:
    """Whether an object carries a segmented or drawn mask (not none, not a disk)."""
    return rle is not None and origin != DISK_ORIGIN


def _boxes(rows: Iterable[Any]) -> npt.NDArray[np.float64]:
    return np.asarray([b if b is not None else [np.nan] * 4 for b in rows],
                      np.float64).reshape(-1, 4)


def negatives_in_figure_boxes(table: pa.Table) -> npt.NDArray[np.bool_]:
    """Which rows are negatives centred inside a mitotic figure's box of their image.

    Args:
        table: objects with ``object_key``, ``image_key``, ``label``, ``centroid_xy``,
            ``bbox_xyxy`` and ``source_bbox_xyxy`` (level-0 px).  The figures are the
            mitotic-figure rows of ``table`` itself.

    Returns:
        ``(n,)`` bool; True for a negative whose centroid lies in (or on the edge of) the
        annotation box or the mask box of a mitotic figure of the same image.
    """
    n = table.num_rows
    out = np.zeros(n, bool)
    if n == 0:
        return out
    labels = np.asarray(table.column("label").to_pylist(), dtype=object)
    images = np.asarray(table.column("image_key").to_pylist(), dtype=object)
    pos = np.isin(labels, list(POSITIVE_LABELS))
    if not pos.any():
        return out
    # one STRtree over all figure boxes; a box is shifted to its image's own "lane" so that
    # points of one image never meet boxes of another (one query for the whole table)
    _, lane = np.unique(images, return_inverse=True)
    span = 1e9
    cent = np.asarray(table.column("centroid_xy").to_pylist(), np.float64).reshape(-1, 2)
    pts = cent + np.stack([lane * span, np.zeros(n)], axis=1)
    fig = np.flatnonzero(pos)
    for col in ("bbox_xyxy", "source_bbox_xyxy"):
        b = _boxes(table.column(col).to_pylist())[fig]
        ok = np.isfinite(b).all(axis=1)
        shift = (lane[fig][ok] * span)[:, None] * np.array([1.0, 0.0, 1.0, 0.0])
        pairs = points_in_boxes(pts, b[ok] + shift)
        hit = pairs[0][~pos[pairs[0]]]
        out[hit] = True
    return out


def training_filter(table: pa.Table, include_disk: bool = False
                    ) -> tuple[npt.NDArray[np.bool_], dict[str, Any]]:
    """Which objects may become training patches (see the module docstring).

    Args:
        table: the candidate objects (not rejected), with ``label``, ``mask_rle``,
            ``mask_origin`` and the columns :func:`negatives_in_figure_boxes` needs.
        include_disk: keep objects without a real mask (they get a disk).

    Returns:
        ``(keep, counts)``: ``(n,)`` bool and ``{"disk_skipped": {label: n},
        "in_figure_box_skipped": {label: n}}``.
    """
    labels = table.column("label").to_pylist()
    real = np.asarray([is_real_mask(r, o) for r, o in zip(
        table.column("mask_rle").to_pylist(), table.column("mask_origin").to_pylist(),
        strict=True)], bool)
    inside = negatives_in_figure_boxes(table)
    keep = ~inside & (real | include_disk)
    disk = ~inside & ~real & ~keep
    counts = {
        "disk_skipped": dict(sorted(Counter(labels[i] for i in np.flatnonzero(disk)).items())),
        "in_figure_box_skipped": dict(sorted(Counter(
            labels[i] for i in np.flatnonzero(inside)).items())),
    }
    return keep, counts


def hygiene_figures(dataset: Path | str, store: Path | str | None = None) -> dict[str, Any]:
    """Label-hygiene figures of a dataset and (optionally) its patch store.

    Args:
        dataset: dataset folder.
        store: patch store folder (``store.json``); None: dataset figures only.

    Returns:
        ``{"mf_masks", "mf_multi_part", "mf_multi_part_share", "negatives_in_mf_box":
        {"dataset": n, "patches": n}, "patches_by_label", "disk_by_label",
        "disk_share_by_label"}``.  ``mf_*`` count the effective (not rejected) mitotic
        figures with a real mask; a part is a component of at least
        :data:`mfcurate.geometry.MIN_PART_FRAC` of the largest one.  ``negatives_in_mf_box``
        counts negatives centred in a mitotic figure's box: among the dataset's trainable
        objects, and among the store's negative patches.
    """
    from mfcurate.classifier.patches import PatchStore
    from mfcurate.dataset import Dataset, Selection, select_objects

    ds = Dataset.open(dataset)
    cols = ["object_key", "image_key", "label", "centroid_xy", "bbox_xyxy",
            "source_bbox_xyxy", "mask_rle", "mask_origin"]
    objs = select_objects(ds, Selection(), columns=cols)
    rows = objs.to_pylist()
    n_mf = n_multi = 0
    for r in rows:
        if r["label"] in POSITIVE_LABELS and is_real_mask(r["mask_rle"], r["mask_origin"]):
            _, _, w, h = mask_grid(r["bbox_xyxy"])
            n_mf += 1
            n_multi += count_parts(decode_mask(r["mask_rle"], h, w)) >= 2
    inside = negatives_in_figure_boxes(objs)
    out: dict[str, Any] = {
        "mf_masks": n_mf, "mf_multi_part": n_multi,
        "mf_multi_part_share": round(n_multi / n_mf, 4) if n_mf else 0.0,
        "negatives_in_mf_box": {"dataset": int(inside.sum())},
    }
    if store is None:
        return out
    ps = PatchStore(store)
    idx = ps.index.to_pylist()
    keys_inside = {rows[i]["object_key"] for i in np.flatnonzero(inside)}
    out["negatives_in_mf_box"]["patches"] = sum(
        1 for r in idx if r["target"] == 0 and r["object_key"] in keys_inside)
    by_label = Counter(r["label"] for r in idx)
    disk = Counter(r["label"] for r in idx if r["mask_kind"] == "disk")
    out["patches_by_label"] = dict(sorted(by_label.items()))
    out["disk_by_label"] = {k: disk.get(k, 0) for k in sorted(by_label)}
    out["disk_share_by_label"] = {k: round(disk.get(k, 0) / v, 4)
                                  for k, v in sorted(by_label.items())}
    out["store_summary"] = {k: ps.meta[k] for k in ("n_disk_skipped", "disk_skipped_by_label",
                                                    "n_in_figure_box_skipped")
                            if k in ps.meta}
    return out
