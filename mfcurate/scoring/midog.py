"""The MIDOG challenge protocol for point detections of mitotic figures.

Rule (an exact port of ``evalutils.scorers.score_detection`` as the MIDOG evaluation uses it):

* ground truth is the **mitotic figures only** (``label == "mitotic_figure"``, rejected
  objects excluded); look-alikes get no special treatment, a hit on one is a plain FP;
* coordinates are converted to µm with each image's own ``mpp_x``/``mpp_y``; a detection
  matches a ground-truth figure within ``7.5 µm`` (inclusive);
* greedy in ground-truth order: each figure takes its **nearest unused** detection within the
  radius (ties in distance go to the earlier detection in the file); a figure with none is a
  false negative; every unused detection is a false positive (duplicates included);
* TP/FP/FN are **pooled** over images, overall and within each tumour type;
  ``precision = TP/(TP+FP)``, ``recall = TP/(TP+FN)``, ``F1 = 2TP/(2TP+FP+FN)`` (0 when the
  denominator is 0);
* a detection counts when ``score > threshold``; the threshold is fixed, or tuned on the
  validation split (grid 0.00..0.99, best F1, lowest threshold on ties) and then applied to
  the scored split, never tuned on the split it scores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from mfcurate.dataset import Dataset, Selection, iter_selected, select_images
from mfcurate.errors import DatasetError, SourceFormatError, UsageError

#: Matching radius of the MIDOG protocol in µm.
RADIUS_UM = 7.5

#: Threshold grid of the validation sweep (as the MIDOG++ evaluation, extended down to 0).
THRESHOLD_GRID = np.round(np.arange(0.0, 1.0, 0.01), 2)

Points = npt.NDArray[np.float64]


def match_points(gt_um: npt.ArrayLike, det_um: npt.ArrayLike,
                 radius_um: float = RADIUS_UM) -> tuple[int, int, int, list[tuple[int, int]]]:
    """Greedy MIDOG matching of one image.

    Args:
        gt_um: ``(N, 2)`` ground-truth positions in µm, in ground-truth order.
        det_um: ``(M, 2)`` detection positions in µm, in file order.
        radius_um: inclusive matching radius.

    Returns:
        ``(tp, fp, fn, pairs)`` with ``pairs`` the ``(gt_index, det_index)`` matches.
    """
    from scipy.spatial import cKDTree

    gt = np.asarray(gt_um, dtype=np.float64).reshape(-1, 2)
    det = np.asarray(det_um, dtype=np.float64).reshape(-1, 2)
    if len(det) == 0 or len(gt) == 0:
        return 0, len(det), len(gt), []
    tree = cKDTree(det)
    near = tree.query_ball_point(gt, r=radius_um * (1 + 1e-9) + 1e-12)
    used = np.zeros(len(det), dtype=bool)
    pairs: list[tuple[int, int]] = []
    for g, cand in enumerate(near):
        if not cand:
            continue
        c = np.asarray(cand, dtype=np.int64)
        d = np.hypot(det[c, 0] - gt[g, 0], det[c, 1] - gt[g, 1])
        keep = d <= radius_um
        c, d = c[keep], d[keep]
        for j in c[np.lexsort((c, d))]:
            if not used[j]:
                used[j] = True
                pairs.append((g, int(j)))
                break
    tp = len(pairs)
    return tp, len(det) - tp, len(gt) - tp, pairs


@dataclass
class Counts:
    """Pooled TP/FP/FN with the derived rates."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, tp: int, fp: int, fn: int) -> None:
        """Add one image's counts."""
        self.tp += tp
        self.fp += fp
        self.fn += fn

    @property
    def precision(self) -> float:
        """TP / (TP + FP), 0 when nothing was detected."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        """TP / (TP + FN), 0 when there is no ground truth."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        """2TP / (2TP + FP + FN), 0 when the denominator is 0."""
        d = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / d if d else 0.0

    def to_dict(self) -> dict[str, float | int]:
        """``{"tp", "fp", "fn", "precision", "recall", "f1"}``."""
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "precision": self.precision,
                "recall": self.recall, "f1": self.f1}


@dataclass
class ImageTruth:
    """Ground truth of one image in the scored split.

    Attributes:
        image_key: dataset key.
        gt_px: ``(N, 2)`` mitotic-figure centres, level-0 px.
        mpp: ``(mpp_x, mpp_y)``.
        tumour: tumour type (``"unknown"`` when the dataset has none).
        split: the image's split.
        source: the image's source.
    """

    image_key: str
    gt_px: Points
    mpp: tuple[float, float]
    tumour: str
    split: str
    source: str = ""

    @property
    def group(self) -> str:
        """The per-tumour group ``"source | tumour"`` (two sources never pool under one name).

        ICPR 2012 and MIDOG++ both say "human breast cancer".
        """
        return f"{self.source} | {self.tumour}" if self.source else self.tumour


@dataclass
class ScoreResult:
    """Outcome of one scoring run."""

    overall: Counts
    per_tumour: dict[str, Counts]
    per_image: dict[str, Counts]
    threshold: float
    threshold_source: str
    split: str
    radius_um: float = RADIUS_UM
    pr_curve: list[dict[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    selection: dict[str, Any] = field(default_factory=dict)
    tuned_on: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written by ``mfcurate score --json``."""
        return {
            "overall": self.overall.to_dict(),
            "per_tumour": {k: v.to_dict() for k, v in sorted(self.per_tumour.items())},
            "threshold": self.threshold, "threshold_source": self.threshold_source,
            "split": self.split, "radius_um": self.radius_um,
            "n_images": len(self.per_image),
            "n_mitotic_figures": self.overall.tp + self.overall.fn,
            "selection": self.selection, "tuned_on": self.tuned_on,
            "per_image": {k: v.to_dict() for k, v in sorted(self.per_image.items())},
            "pr_curve": self.pr_curve, "notes": self.notes,
        }


@dataclass
class Detections:
    """Detections grouped by dataset image key: ``(M, 2)`` px positions and ``(M,)`` scores."""

    xy: dict[str, Points]
    score: dict[str, npt.NDArray[np.float64]]


def read_detections_csv(path: Path | str) -> tuple[list[str], Points, npt.NDArray[np.float64]]:
    """Read ``image,x,y,score`` rows (other columns are ignored); see :func:`read_candidates`."""
    names, xy, score, _ = read_candidates(path)
    return names, xy, score


def read_candidates(path: Path | str) -> tuple[list[str], Points, npt.NDArray[np.float64],
                                               npt.NDArray[np.float64] | None]:
    """Read ``image,x,y,score`` rows and, when present, the ``member_scores`` column.

    ``member_scores`` (written by ``detect``) holds each ensemble member's P(mitotic figure)
    joined by ``;``; it is returned as an ``(M, K)`` array (None when the column is absent).

    Raises:
        FileNotFoundError: no such file.
        SourceFormatError: missing columns or non-numeric values (with the line number).
    """
    import csv

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"detections file {p} does not exist")
    names: list[str] = []
    vals: list[tuple[float, float, float]] = []
    members: list[list[float]] = []
    with p.open(newline="") as f:
        reader = csv.DictReader(f)
        cols = set(reader.fieldnames or [])
        has_members = "member_scores" in cols
        missing = [c for c in ("image", "x", "y", "score") if c not in cols]
        if missing:
            raise SourceFormatError(p, f"missing column(s) {missing}; expected image,x,y,score")
        for line, row in enumerate(reader, start=2):
            try:
                x, y, s = float(row["x"]), float(row["y"]), float(row["score"])
            except (TypeError, ValueError):
                raise SourceFormatError(p, f"line {line}: x, y and score must be numbers "
                                           f"(got {row['x']!r}, {row['y']!r}, {row['score']!r})"
                                        ) from None
            if not (np.isfinite(x) and np.isfinite(y) and np.isfinite(s)):
                raise SourceFormatError(p, f"line {line}: non-finite value")
            if not row["image"]:
                raise SourceFormatError(p, f"line {line}: empty image name")
            names.append(row["image"])
            vals.append((x, y, s))
            if has_members:
                try:
                    members.append([float(v) for v in (row["member_scores"] or "").split(";")
                                    if v])
                except ValueError:
                    raise SourceFormatError(p, f"line {line}: member_scores must be numbers "
                                               "joined by ';'") from None
    arr = np.asarray(vals, dtype=np.float64).reshape(-1, 3)
    mem = None
    if has_members and members and len({len(m) for m in members}) == 1 and members[0]:
        mem = np.asarray(members, dtype=np.float64)
    elif has_members and members and len({len(m) for m in members}) > 1:
        raise SourceFormatError(p, "member_scores rows hold different numbers of members")
    return names, arr[:, :2], arr[:, 2], mem


def _image_resolver(images: list[dict[str, Any]]) -> dict[str, str]:
    """Map every accepted image name (key, file name, source id) to the image key."""
    names: dict[str, set[str]] = {}
    for im in images:
        key = im["image_key"]
        for name in (key, Path(str(im["path"])).name, str(im["path"]), im["source_image_id"]):
            names.setdefault(str(name), set()).add(key)
    return {n: next(iter(k)) if len(k) == 1 else "" for n, k in names.items()}


def group_detections(names: Sequence[str], xy: Points, score: npt.NDArray[np.float64],
                     images: list[dict[str, Any]], csv_path: Path | str = "detections"
                     ) -> Detections:
    """Resolve image names to dataset keys and group the detections (file order kept).

    Raises:
        SourceFormatError: an image name is unknown or ambiguous in the dataset.
    """
    resolve = _image_resolver(images)
    keys = []
    for n in names:
        k = resolve.get(n)
        if k is None:
            raise SourceFormatError(csv_path, f"image {n!r} is not in the dataset "
                                              "(use its image key or file name)")
        if k == "":
            raise SourceFormatError(csv_path, f"image name {n!r} is ambiguous in the dataset; "
                                              "use the image key")
        keys.append(k)
    karr = np.asarray(keys, dtype=object)
    out = Detections({}, {})
    for k in dict.fromkeys(keys):
        sel = karr == k
        out.xy[k] = xy[sel]
        out.score[k] = score[sel]
    return out


def load_truth(ds: Dataset, selection: Selection | Sequence[str] | None,
               default_mpp: float | None) -> dict[str, ImageTruth]:
    """Ground-truth mitotic figures of the images a selection keeps.

    ``selection`` is a :class:`~mfcurate.dataset.Selection` (its label filter is replaced by
    mitotic figures; rejected objects and duplicate images are left out as everywhere), a
    list of splits, or None (every image).

    Raises:
        DatasetError: an image has no µm/px and ``default_mpp`` is None.
    """
    if selection is None or not isinstance(selection, Selection):
        selection = Selection(splits=tuple(selection) if selection is not None else None)
    sel = replace(selection, labels=("mitotic_figure",), qa_states=None,
                  include_rejected=False, masked_only=False)
    images = select_images(ds, sel.check(ds))
    pts: dict[str, list[list[float]]] = {}
    for t in iter_selected(ds, sel, ["image_key", "centroid_xy"],
                           images=images.select(["image_key", "source"])):
        for k, c in zip(t.column("image_key").to_pylist(), t.column("centroid_xy").to_pylist(),
                        strict=True):
            pts.setdefault(k, []).append(c)
    out: dict[str, ImageTruth] = {}
    for im in images.to_pylist():
        mx, my = im["mpp_x"], im["mpp_y"]
        if mx is None or my is None:
            if default_mpp is None:
                raise DatasetError(f"image {im['image_key']} has no µm/px in {ds.root}; "
                                   "give --mpp")
            mx = my = default_mpp
        gt = np.asarray(pts.get(im["image_key"], []), dtype=np.float64).reshape(-1, 2)
        out[im["image_key"]] = ImageTruth(im["image_key"], gt, (float(mx), float(my)),
                                          im["tumour_type"] or "unknown", im["split"],
                                          im["source"])
    return out


def _to_um(xy: Points, mpp: tuple[float, float]) -> Points:
    return np.asarray(xy, dtype=np.float64).reshape(-1, 2) * np.asarray(mpp)[None, :]


def count(truth: Mapping[str, ImageTruth], det: Detections, threshold: float,
          radius_um: float = RADIUS_UM) -> tuple[Counts, dict[str, Counts], dict[str, Counts]]:
    """Pooled counts over ``truth``'s images for detections with ``score > threshold``."""
    overall = Counts()
    per_tumour: dict[str, Counts] = {}
    per_image: dict[str, Counts] = {}
    empty = np.zeros((0, 2))
    for key, t in truth.items():
        xy = det.xy.get(key, empty)
        s = det.score.get(key, np.zeros(0))
        kept = xy[s > threshold]
        tp, fp, fn, _ = match_points(_to_um(t.gt_px, t.mpp), _to_um(kept, t.mpp), radius_um)
        overall.add(tp, fp, fn)
        per_tumour.setdefault(t.group, Counts()).add(tp, fp, fn)
        per_image[key] = Counts(tp, fp, fn)
    return overall, per_tumour, per_image


def tune_threshold(truth: Mapping[str, ImageTruth], det: Detections,
                   grid: npt.ArrayLike = THRESHOLD_GRID,
                   radius_um: float = RADIUS_UM) -> tuple[float, float]:
    """Threshold of ``grid`` with the best pooled F1 on ``truth`` (lowest on ties)."""
    best_t, best_f1 = float(np.asarray(grid)[0]), -1.0
    for t in np.asarray(grid, dtype=np.float64):
        f1 = count(truth, det, float(t), radius_um)[0].f1
        if f1 > best_f1 + 1e-12:
            best_t, best_f1 = float(t), f1
    return best_t, best_f1


def pr_curve(truth: Mapping[str, ImageTruth], det: Detections,
             grid: npt.ArrayLike = THRESHOLD_GRID,
             radius_um: float = RADIUS_UM) -> list[dict[str, float]]:
    """Pooled precision, recall and F1 at each threshold of ``grid``."""
    out = []
    for t in np.asarray(grid, dtype=np.float64):
        c = count(truth, det, float(t), radius_um)[0]
        out.append({"threshold": float(t), "precision": c.precision, "recall": c.recall,
                    "f1": c.f1})
    return out


def score_detections(
    detections_csv: Path | str,
    dataset: Path | str,
    *,
    split: str = "test",
    threshold: float | None = None,
    mpp: float | None = None,
    radius_um: float = RADIUS_UM,
    image_keys: Sequence[str] | None = None,
    selection: Selection | None = None,
    tune_split: str | None = None,
    tune_images: Sequence[str] | None = None,
    run: Path | str | None = None,
    member: int | None = None,
) -> ScoreResult:
    """Score a detections CSV against a dataset's mitotic figures (the ``score`` command).

    Args:
        detections_csv: ``image,x,y,score`` (image = file name or image key; level-0 px).
        dataset: the dataset folder.
        split: ``train``, ``val``, ``test``, ``unassigned`` or ``all``.
        threshold: fixed detection threshold; None tunes it (see ``tune_*``), else 0.5.
        mpp: µm/px for images whose dataset row has none.
        radius_um: matching radius (7.5 µm in the MIDOG protocol).
        image_keys: score only these images of the split (e.g. those a demo detected on).
        selection: narrows the scored images (``--source``, ``--species``, ``--tumour``,
            ``--images``); its split is replaced by ``split``.
        tune_split: tune on the images of this split (``"val"`` or ``"SOURCE:SPLIT"``).
        tune_images: tune on these image keys.
        run: the training run (``RUN/splits.json``); default: found from the models listed in
            the ``summary.json`` beside the CSV.  Tuning refuses images any member trained
            on; without ``tune_*`` it tunes on the member's validation images (``member``)
            or on the run's validation images no member trained on (the ensemble).
        member: score the K-th member's column of ``member_scores`` instead of the ensemble.

    Returns:
        A :class:`ScoreResult`.
    """
    from mfcurate.scoring.tuning import choose_threshold, detections_of, run_context

    valid = {"train", "val", "test", "unassigned", "all"}
    if split not in valid:
        raise UsageError(f"--split must be one of {sorted(valid)} (got {split!r})")
    ds = Dataset.open(dataset)
    det = detections_of(detections_csv, ds, member)
    sel = replace(selection or Selection(), splits=None if split == "all" else (split,))
    truth = load_truth(ds, sel, mpp)
    if image_keys is not None:
        wanted = set(image_keys)
        truth = {k: v for k, v in truth.items() if k in wanted}
    if not truth:
        raise DatasetError(f"{ds.root}: no images in split {split!r}"
                           + (" matching the selection" if selection is not None else ""))
    splits, mem = run_context(detections_csv, run, member)
    notes: list[str] = []
    thr, source, tuned_on = choose_threshold(
        ds, det, truth, threshold=threshold, mpp=mpp, radius_um=radius_um,
        tune_split=tune_split, tune_images=tune_images, splits=splits, member=mem,
        notes=notes)
    missing = [k for k in truth if k not in det.xy]
    if missing:
        notes.append(f"{len(missing)} image(s) of split {split!r} have no detections "
                     f"(their figures count as FN), e.g. {missing[0]}")
    tuned_set = set(tuned_on)
    ignored = [k for k in det.xy if k not in truth and k not in tuned_set]
    if ignored:
        notes.append(f"detections on {len(ignored)} image(s) outside the scored images "
                     "ignored")
    overall, per_tumour, per_image = count(truth, det, thr, radius_um)
    curve = pr_curve(truth, det, radius_um=radius_um)
    return ScoreResult(overall, per_tumour, per_image, thr, source, split, radius_um, curve,
                       notes, sel.describe(), sorted(tuned_on))
