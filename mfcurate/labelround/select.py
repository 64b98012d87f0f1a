"""Which objects a round reviews: detector candidates, uncertain/flagged objects, a sample.

* **Detector candidates** come from the ``candidates.csv`` (or ``detections.csv``) that
  ``mfcurate detect`` writes: columns ``image, x, y, score`` (level-0 px, x = column; ``image``
  is the dataset image key with ``detect --dataset``, else the image's file name) and
  optionally ``area_um2, seg_score, origin``.  Candidates with ``score >= min_score`` are
  kept.  A candidate within ``match_um`` µm of an existing object *is* that object: it is
  reviewed only when that object is ``uncertain`` or ``flagged`` (an annotated figure needs
  no second look).  The others are **new detections**: objects of the ``detect`` base part
  with label ``uncertain`` (not judged yet, never trained), ``label_origin = model``, no
  mask and a box of the candidate's area (a disk of ``DISK_RADIUS_UM`` without one).
  Their keys are ``<image key>/det-<round>-<x>-<y>`` (``-2``, ``-3``... when two candidates
  of the round round to one pixel) and ``extra.detect.round`` names the round, so a rerun of
  an interrupted round makes the same objects again and recognises the ones it committed.
* **Uncertain / flagged objects** of the dataset (``--include uncertain,flagged``).
* **A seeded sample** of the selection's objects (``--sample N``), e.g. to measure agreement
  on objects already labelled.

Rows that cannot be used (an image not in the dataset, a point outside its image, a
non-numeric value) are counted and skipped, never fatal; a file without the columns is.

The round's own detections already in the dataset (``skip``: committed by a run of the same
round that was killed before it finished) are left out of everything the selection reads, so
the resumed selection equals the uninterrupted one.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from mfcurate.dataset import Dataset, Selection, select_images, select_objects
from mfcurate.errors import SourceFormatError, UsageError
from mfcurate.labelround.round import RoundObject
from mfcurate.schemas.tables import ObjectRecord
from mfcurate.schemas.vocab import Label, LabelOrigin, QAState

#: Radius (µm) of the box of a candidate without an area.
DISK_RADIUS_UM = 4.0
#: Columns a candidates file must have.
REQUIRED = ("image", "x", "y", "score")
_OBJ_COLS = ["object_key", "image_key", "source", "label", "qa_state", "centroid_xy"]


@dataclass
class Selected:
    """The objects of a new round and the detections it adds to the dataset.

    Attributes:
        objects: the objects to review, in selection order.
        new_records: ``source -> detect-part records`` for the new detections.
        counts: what was kept and skipped, by reason.
    """

    objects: list[RoundObject] = field(default_factory=list)
    new_records: dict[str, list[ObjectRecord]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, obj: RoundObject) -> None:
        if obj.object_key not in {o.object_key for o in self.objects}:
            self.objects.append(obj)

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n


def read_candidates(path: Path | str) -> list[dict[str, Any]]:
    """Rows of a detector CSV as dicts (``image`` str; ``x, y, score`` float or None).

    Raises:
        SourceFormatError: unreadable file or a missing required column.
    """
    import pyarrow.csv as pacsv

    p = Path(path)
    if not p.exists():
        raise SourceFormatError(p, "candidates file does not exist")
    try:
        t = pacsv.read_csv(p, convert_options=pacsv.ConvertOptions(
            column_types={"image": pa.string()}, strings_can_be_null=True))
    except (pa.ArrowInvalid, OSError) as exc:
        raise SourceFormatError(p, f"not a readable CSV ({exc})") from None
    missing = [c for c in REQUIRED if c not in t.column_names]
    if missing:
        raise SourceFormatError(p, f"missing column(s) {', '.join(missing)}; expected the "
                                   f"candidates.csv of `mfcurate detect` ({', '.join(REQUIRED)})")
    rows = t.to_pylist()
    for r in rows:
        for c in ("x", "y", "score", "area_um2", "seg_score"):
            r[c] = _num(r.get(c))
    return rows


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def image_lookup(images: pa.Table) -> dict[str, dict[str, Any]]:
    """``name -> images row`` by image key, and by file name where the name is unique."""
    rows = images.to_pylist()
    out = {r["image_key"]: r for r in rows}
    by_name: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_name.setdefault(Path(str(r["path"])).name, []).append(r)
    for name, rs in by_name.items():
        if len(rs) == 1 and name not in out:
            out[name] = rs[0]
    return out


def select_detections(ds: Dataset, sel: Selection, candidates: Sequence[dict[str, Any]],
                      out: Selected, *, min_score: float, match_um: float, csv_name: str,
                      round_id: str, skip: Collection[str] = ()) -> None:
    """Add the candidates above ``min_score`` to ``out`` (see the module docstring).

    ``skip``: object keys the selection must not see (the round's own earlier detections).
    """
    from scipy.spatial import cKDTree

    images = image_lookup(select_images(ds, sel))
    existing = _objects(ds, sel, skip)
    per_image: dict[str, list[dict[str, Any]]] = {}
    for r in existing:
        per_image.setdefault(r["image_key"], []).append(r)
    trees: dict[str, Any] = {}
    taken = {k for src in ds.sources if "detect" in ds.parts(src)
             for k in ds.part(src, "detect", ["object_key"]).column("object_key").to_pylist()
             } - set(skip)
    for c in candidates:
        if c["score"] is None or c["score"] < min_score:
            out.count("below min score")
            continue
        im = images.get(str(c["image"]))
        if im is None:
            out.count("image not in the selection")
            continue
        x, y = c["x"], c["y"]
        w, h = im["width"], im["height"]
        if x is None or y is None or x < 0 or y < 0 or (w and x >= w) or (h and y >= h):
            out.count("outside its image")
            continue
        mpp = math.sqrt((im["mpp_x"] or 0.25) * (im["mpp_y"] or 0.25))
        objs = per_image.get(im["image_key"], [])
        if objs and im["image_key"] not in trees:
            trees[im["image_key"]] = cKDTree(np.array([o["centroid_xy"] for o in objs]))
        if objs:
            d, j = trees[im["image_key"]].query([x, y])
            if d * mpp <= match_um:
                o = objs[int(j)]
                if o["label"] == Label.UNCERTAIN or o["qa_state"] == QAState.FLAGGED:
                    out.add(_existing(o, "detector", c["score"]))
                    out.count("detector: existing uncertain/flagged object")
                else:
                    out.count("detector: matches a labelled object")
                continue
        rec = _new_record(im, c, mpp, csv_name, taken, round_id)
        taken.add(rec.object_key)
        out.new_records.setdefault(rec.source, []).append(rec)
        out.add(RoundObject(rec.object_key, rec.image_key, rec.source,
                            (float(x), float(y)), new=True, score=float(c["score"]),
                            why="detector"))
        out.count("detector: new detection")


def _objects(ds: Dataset, sel: Selection, skip: Collection[str]) -> list[dict[str, Any]]:
    """The selection's effective objects (``_OBJ_COLS``) without the ``skip`` keys."""
    rows = select_objects(ds, sel, _OBJ_COLS).to_pylist()
    if not skip:
        return rows
    gone = set(skip)
    return [r for r in rows if r["object_key"] not in gone]


def round_tag(round_id: str) -> str:
    """The round id as it appears in its detections' keys (letters, digits, ``._-``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", round_id)


def _new_record(im: dict[str, Any], c: dict[str, Any], mpp: float, csv_name: str,
                taken: set[str], round_id: str) -> ObjectRecord:
    """A ``detect``-part object for a candidate: a box of its area, label uncertain.

    Its key depends on the round, the image, the rounded centre and the keys ``taken``
    before it (the dataset's other detections and the round's earlier candidates) only.
    """
    x, y = float(c["x"]), float(c["y"])
    area = c.get("area_um2")
    r_px = (math.sqrt(area / math.pi) if area and area > 0 else DISK_RADIUS_UM) / mpp
    w = float(im["width"]) if im["width"] else x + r_px + 1
    h = float(im["height"]) if im["height"] else y + r_px + 1
    box = (max(0.0, x - r_px), max(0.0, y - r_px), min(w, x + r_px), min(h, y + r_px))
    ann = f"det-{round_tag(round_id)}-{x:.0f}-{y:.0f}"
    key, k = f"{im['image_key']}/{ann}", 1
    while key in taken:
        k += 1
        key = f"{im['image_key']}/{ann}-{k}"
    extra = {"detect": {k: c.get(k) for k in ("score", "seg_score", "origin", "area_um2")
                        if c.get(k) is not None} | {"file": csv_name, "round": round_id}}
    return ObjectRecord(
        object_key=key, image_key=im["image_key"], source=im["source"],
        source_annotation_id=key.rsplit("/", 1)[1], source_file=csv_name,
        label=Label.UNCERTAIN.value, source_label="detector candidate",
        label_origin=LabelOrigin.MODEL.value, confidence=float(c["score"]),
        centroid_xy=(x, y), bbox_xyxy=box, qa_state=QAState.UNREVIEWED.value,
        extra=json.dumps(extra, sort_keys=True))


def _existing(o: dict[str, Any], why: str, score: float | None = None) -> RoundObject:
    cx, cy = o["centroid_xy"]
    return RoundObject(o["object_key"], o["image_key"], o["source"], (float(cx), float(cy)),
                       new=False, score=score, why=why)


def select_existing(ds: Dataset, sel: Selection, include: Iterable[str], out: Selected,
                    sample: int = 0, seed: int = 0, skip: Collection[str] = ()) -> None:
    """Add the selection's uncertain and/or flagged objects, then a seeded sample of the rest.

    ``skip``: object keys the selection must not see (the round's own earlier detections).

    Raises:
        UsageError: an ``include`` value other than ``uncertain`` or ``flagged``.
    """
    inc = set(include)
    bad = inc - {"uncertain", "flagged"}
    if bad:
        raise UsageError(f"--include: unknown value(s) {', '.join(sorted(bad))}; "
                         "choose uncertain and/or flagged")
    if not inc and sample <= 0:
        return
    objs = _objects(ds, sel, skip)
    objs.sort(key=lambda o: o["object_key"])
    for o in objs:
        if "uncertain" in inc and o["label"] == Label.UNCERTAIN:
            out.add(_existing(o, "uncertain"))
            out.count("uncertain object")
        elif "flagged" in inc and o["qa_state"] == QAState.FLAGGED:
            out.add(_existing(o, "flagged"))
            out.count("flagged object")
    if sample > 0:
        chosen = {o.object_key for o in out.objects}
        rest = [o for o in objs if o["object_key"] not in chosen]
        rng = np.random.default_rng(seed)
        for i in sorted(rng.permutation(len(rest))[:sample].tolist()):
            out.add(_existing(rest[i], "sample"))
        out.count("sample", min(sample, len(rest)))
