"""``refine-masks``: a nuclei mask for every annotated figure, prompted by its box.

For every image with annotations to refine (mitotic figures and mitotic-like figures whose
mask is missing or came from an earlier run), one executor task:

1. plans square windows around the annotations (:func:`plan_windows`): native-resolution
   ``1024`` px windows (``window="tile"``) or ``256`` px context crops per cluster
   (``window="context"``, what OMG-Net used); whole-slide images are only read there;
2. segments all prompt boxes of a window in one go (SAM: one image encoding, batched
   prompts; or the classical segmenter) and runs the automatic QA and re-prompting of
   :mod:`mfcurate.segment.qa`;
3. returns one row per object (mask RLE on the tight box, origin, score, areas, QA state
   and flags), which the executor writes to ``DATASET/.work/refine-masks/`` atomically.

When every image is done the rows are written as the ``refine`` layer of each source (one
commit, :mod:`mfcurate.dataset.parts`): the dataset decides by precedence which mask an object
shows, so masks a source gave (``mask_origin`` ``source``), pHH3-transferred and manual masks
stay in front, and objects a person reviewed are not prompted, unless ``overwrite`` (then the
refine rows are marked ``mask_forced``).  Prompts are always the annotation's own box
(``source_bbox_xyxy``) and the dataset is read without the ``refine`` layer, so a rerun
prompts exactly as the first run did.  Masks are cut to their image; an object whose
segmentation raises is flagged ``segment_failed`` and the run goes on.

A killed run restarted with the same command skips the images already done (task keys include
a hash of the configuration and of the image's prompts) and ends with exactly the table of an
uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from mfcurate.dataset import Dataset
from mfcurate.dataset.parts import DECIDED_STATES, MASK_RANK, PARTS
from mfcurate.errors import MfcurateError, UsageError
from mfcurate.pipelines.steps import StepContext, step
from mfcurate.schemas.vocab import FIGURE_LABELS
from mfcurate.segment import BoxSegmenter
from mfcurate.segment.qa import QAConfig
from mfcurate.units import MppUnknownError, mpp_of_row

WORK_SUBDIR = "refine-masks"
PART = "refine"
#: Mask origins that outrank a refined mask (see mfcurate.dataset.parts).
PROTECTED_ORIGINS = frozenset(o for o, r in MASK_RANK.items() if r > PARTS[PART].mask_rank)
WINDOW_SIZES = {"tile": 1024, "context": 256}

RESULT_SCHEMA = pa.schema([
    ("object_key", pa.string()),
    ("bbox_xyxy", pa.list_(pa.float64(), 4)),
    ("mask_rle", pa.string()),
    ("mask_origin", pa.string()),
    ("mask_score", pa.float64()),
    ("area_px", pa.int64()),
    ("area_um2", pa.float64()),
    ("qa_state", pa.string()),
    ("qa_flags", pa.list_(pa.string())),
    ("refine", pa.string()),
])


@dataclass(frozen=True)
class RefineConfig:
    """Everything that determines the masks (hashed into the task keys).

    Attributes:
        segmenter: ``classical`` or ``sam``.
        sam_checkpoint: SAM weights (``sam`` only).
        sam_model: ``vit_h``, ``vit_l``, ``vit_b`` or ``tiny``.
        device: torch device.
        sam_batch: most SAM prompts per decoder call (0: all boxes of a window at once).
        window: ``tile`` (1024 px native windows) or ``context`` (256 px crops).
        window_px: window side override (must divide 1024 for SAM).
        overwrite: also replace source/pHH3/manual masks and reviewed objects.
        all_labels: refine every object, not only mitotic and mitotic-like figures.
        default_mpp: µm/px for images whose mpp is unknown (None: such images are skipped
            and counted).
        qa: QA thresholds.
    """

    segmenter: str = "classical"
    sam_checkpoint: str | None = None
    sam_model: str = "vit_b"
    device: str = "cpu"
    sam_batch: int = 0
    window: str = "tile"
    window_px: int | None = None
    overwrite: bool = False
    all_labels: bool = False
    default_mpp: float | None = None
    qa: QAConfig = field(default_factory=QAConfig)

    def __post_init__(self) -> None:
        if self.window_px is not None and self.window_px < 16:
            raise UsageError(f"window_px must be at least 16 px (got {self.window_px})")
        if self.default_mpp is not None and not (self.default_mpp > 0):
            raise UsageError(f"default_mpp must be a positive µm/px (got {self.default_mpp})")
        if self.sam_batch < 0:
            raise UsageError(f"sam_batch must be >= 0 (got {self.sam_batch})")

    @property
    def side(self) -> int:
        """Window side in px."""
        return int(self.window_px or WINDOW_SIZES[self.window])

    def digest(self) -> str:
        """Short hash of the configuration (the checkpoint by path, size and mtime)."""
        d = asdict(self)
        if self.sam_checkpoint:
            p = Path(self.sam_checkpoint)
            st = p.stat()
            d["sam_checkpoint"] = [str(p.resolve()), st.st_size, st.st_mtime_ns]
        blob = json.dumps(d, sort_keys=True, default=str).encode()
        return hashlib.sha1(blob).hexdigest()[:10]

    def validate(self) -> None:
        """Raise :class:`UsageError` for inconsistent options."""
        if self.segmenter not in ("classical", "sam"):
            raise UsageError(f"unknown segmenter {self.segmenter!r}; choose classical or sam")
        if self.window not in WINDOW_SIZES:
            raise UsageError(f"unknown window {self.window!r}; choose tile or context")
        if self.segmenter == "sam":
            if not self.sam_checkpoint:
                raise UsageError("--segmenter sam needs --sam-checkpoint PATH")
            if 1024 % self.side != 0 or self.side < 64:
                raise UsageError(f"SAM windows must divide 1024 px (got {self.side})")
            if not Path(self.sam_checkpoint).is_file():
                raise MfcurateError(f"SAM checkpoint {self.sam_checkpoint} does not exist")


# ---------------------------------------------------------------------- planning
def plan_windows(boxes: npt.NDArray[np.float64], side: int, margin_frac: float = 0.5,
                 bounds: tuple[int, int] | None = None) -> list[tuple[int, int, list[int]]]:
    """Group prompt boxes into square windows of ``side`` px.

    Greedy and deterministic.  Every box needs its extent plus ``margin_frac`` of its side
    around it (clipped to the image ``bounds``) inside its window.  Boxes are taken in (y, x)
    order of their centres; the first unassigned box seeds a window whose top edge is at the
    top of the seed's need, shifted left as far as the unassigned boxes of that row band need
    (keeping the seed inside) and kept inside the image where the image is larger than the
    window; every unassigned box that fits joins it.  So an image no larger than the window is
    one window, and a slide costs one window per cluster of annotations.

    Args:
        boxes: ``(N, 4)`` xyxy level-0 boxes.
        side: window side in px.
        margin_frac: context required around a box inside its window.
        bounds: image ``(width, height)``, or None when unknown.

    Returns:
        ``(x, y, indices)`` per window: level-0 top-left and the boxes it holds.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    centres = (b[:, :2] + b[:, 2:]) / 2
    pad = margin_frac * np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
    lo = b[:, :2] - pad[:, None]
    hi = b[:, 2:] + pad[:, None]
    if bounds is not None:
        lo = np.maximum(lo, 0.0)
        hi = np.minimum(hi, np.asarray(bounds, dtype=np.float64))
    order = np.lexsort((centres[:, 0], centres[:, 1]))
    done = np.zeros(len(b), dtype=bool)
    windows: list[tuple[int, int, list[int]]] = []
    for i in order:
        if done[i]:
            continue
        if hi[i, 1] - lo[i, 1] > side:  # a box larger than the window: centre on it
            y = int(np.floor(centres[i, 1] - side / 2))
        else:
            y = int(np.floor(lo[i, 1]))
            if bounds is not None:
                y = min(y, max(bounds[1] - side, 0))
        band = ~done & (lo[:, 1] >= y) & (hi[:, 1] <= y + side)
        band[i] = True
        x = int(np.floor(min(max(float(lo[band, 0].min()), hi[i, 0] - side), lo[i, 0])))
        if bounds is not None:
            x = min(x, max(bounds[0] - side, 0))
        fits = (~done & (lo[:, 0] >= x) & (lo[:, 1] >= y)
                & (hi[:, 0] <= x + side) & (hi[:, 1] <= y + side))
        fits[i] = True
        idx = [int(j) for j in order if fits[j]]
        done[idx] = True
        windows.append((x, y, idx))
    return windows


# ---------------------------------------------------------------------- worker side
_SEGMENTERS: dict[str, BoxSegmenter] = {}


def _segmenter(cfg: dict[str, Any]) -> BoxSegmenter:
    """One segmenter per worker process and configuration (SAM is loaded once)."""
    key = json.dumps(cfg, sort_keys=True)
    seg = _SEGMENTERS.get(key)
    if seg is None:
        from mfcurate.segment.box import make_box_segmenter

        opts = ({"batch_size": int(cfg.get("sam_batch") or 0) or None}
                if cfg["segmenter"] == "sam" else {})
        seg = make_box_segmenter(cfg["segmenter"], cfg.get("sam_checkpoint"),
                                 cfg.get("sam_model", "vit_b"), cfg.get("device", "cpu"), **opts)
        _SEGMENTERS[key] = seg
    return seg


def refine_image(payload: dict[str, Any]) -> pa.Table:
    """Executor task: refine the masks of one image (see the module docstring).

    Args:
        payload: ``path``, ``mpp`` (``[x, y]``), ``size`` (``[width, height]`` or nulls),
            ``side``, ``segmenter`` (dict), ``qa`` (dict) and ``objects``: a list of
            ``{"key", "box", "anchor"}`` in level-0 px.

    Returns:
        A :data:`RESULT_SCHEMA` table, one row per object, in the payload's order.
    """
    from mfcurate.io.reader import open_image

    qa_dict = dict(payload["qa"])
    qa_dict["area_um2"] = tuple(qa_dict["area_um2"])
    qa = QAConfig(**qa_dict)
    seg = _segmenter(payload["segmenter"])
    objs = payload["objects"]
    boxes = np.array([o["box"] for o in objs], dtype=np.float64).reshape(-1, 4)
    anchors = np.array([o["anchor"] for o in objs], dtype=np.float64).reshape(-1, 2)
    rows: dict[int, dict[str, Any]] = {}
    with open_image(payload["path"]) as img:
        size = (img.width, img.height)
        for wx, wy, idx in plan_windows(boxes, int(payload["side"]), bounds=size):
            rows.update(_refine_window(seg, img, (wx, wy), idx, boxes, anchors, objs,
                                       payload, qa))
    return pa.Table.from_pylist([rows[j] for j in sorted(rows)], schema=RESULT_SCHEMA)


def _refine_window(seg: BoxSegmenter, img: Any, xy: tuple[int, int], idx: list[int],
                   boxes: npt.NDArray[np.float64], anchors: npt.NDArray[np.float64],
                   objs: list[dict[str, Any]], payload: dict[str, Any], qa: QAConfig
                   ) -> dict[int, dict[str, Any]]:
    """Rows of the objects of one window; a window whose segmentation raises flags them."""
    from mfcurate.segment.qa import refine_window

    wx, wy = xy
    side = int(payload["side"])
    mpp_x, mpp_y = (float(v) for v in payload["mpp"])
    window = img.read_region(wx, wy, side, side)
    off = np.array([wx, wy, wx, wy], dtype=np.float64)
    try:
        results = refine_window(seg, window, boxes[idx] - off, anchors[idx] - off[:2],
                                float(np.sqrt(mpp_x * mpp_y)), qa)
    except Exception as exc:  # one window's failure must not fail the image or the run
        return {j: _failed_row(objs[j]["key"], f"{type(exc).__name__}: {exc}") for j in idx}
    out: dict[int, dict[str, Any]] = {}
    for j, r in zip(idx, results, strict=True):
        row = _result_row(objs[j]["key"], r, (wx, wy), img, payload, seg.name)
        out[j] = row if row is not None else _failed_row(objs[j]["key"], "empty mask")
    return out


def _result_row(key: str, r: Any, xy: tuple[int, int], img: Any, payload: dict[str, Any],
                seg_name: str) -> dict[str, Any] | None:
    from mfcurate.geometry import clip_mask_to_image, mask_to_record
    from mfcurate.units import area_um2

    inst = r.instance
    mask, offset, clipped = clip_mask_to_image(
        inst.mask, (inst.offset_xy[0] + xy[0], inst.offset_xy[1] + xy[1]), img.width,
        img.height)
    rec = mask_to_record(mask, offset)
    if rec is None:
        return None
    bbox, rle, area, centroid = rec
    flags = list(r.flags) + (["clipped_to_image"] if clipped else [])
    info = {"strategy": r.strategy, "initial_flags": r.initial_flags,
            "quality": round(r.quality, 4), "window_xy": list(xy),
            "window_px": int(payload["side"]), "segmenter": seg_name,
            "stability": None if inst.stability is None else round(inst.stability, 4),
            "mask_centroid_xy": [round(centroid[0], 2), round(centroid[1], 2)]}
    mpp_x, mpp_y = (float(v) for v in payload["mpp"])
    return {"object_key": key, "bbox_xyxy": list(bbox), "mask_rle": rle,
            "mask_origin": inst.origin, "mask_score": float(inst.score), "area_px": int(area),
            "area_um2": area_um2(area, mpp_x, mpp_y),
            "qa_state": "flagged" if flags else "unreviewed", "qa_flags": flags,
            "refine": json.dumps(info, sort_keys=True)}


def _failed_row(key: str, why: str) -> dict[str, Any]:
    """A row without a mask: the object is flagged for review, the run goes on."""
    return {"object_key": key, "bbox_xyxy": None, "mask_rle": None, "mask_origin": None,
            "mask_score": None, "area_px": None, "area_um2": None, "qa_state": "flagged",
            "qa_flags": ["segment_failed"],
            "refine": json.dumps({"strategy": "failed", "error": why[:300]}, sort_keys=True)}


# ---------------------------------------------------------------------- driver side
@dataclass
class RefineSummary:
    """What a run did."""

    images: int = 0
    objects: int = 0
    kept: int = 0
    flagged: int = 0
    failed: int = 0
    reprompted: int = 0
    missing_images: int = 0
    images_without_mpp: int = 0
    by_source: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (step summary)."""
        return asdict(self)


def _select(ds: Dataset, cfg: RefineConfig) -> pa.Table:
    """The objects to prompt, read without the ``refine`` layer (reruns prompt the same)."""
    from mfcurate.dataset import Selection, select_objects

    cols = ["object_key", "image_key", "source", "label", "centroid_xy", "source_bbox_xyxy",
            "mask_origin", "mask_rle", "qa_state"]
    sel = Selection(labels=None if cfg.all_labels else tuple(sorted(FIGURE_LABELS)),
                    include_duplicates=True, exclude_parts=(PART,))
    t = select_objects(ds, sel, columns=cols)
    if t.num_rows == 0 or cfg.overwrite:
        return t
    origin = pc.if_else(pc.is_valid(t.column("mask_rle")), t.column("mask_origin"), "")
    keep = pc.invert(pc.is_in(pc.fill_null(origin, ""),
                              value_set=pa.array(sorted(PROTECTED_ORIGINS))))
    keep = pc.and_(keep, pc.invert(pc.is_in(t.column("qa_state"),
                                            value_set=pa.array(sorted(DECIDED_STATES)))))
    return t.filter(keep)


def build_tasks(ds: Dataset, cfg: RefineConfig) -> tuple[list[Any], int, int]:
    """Executor tasks, one per image with objects to refine (sorted by image key).

    Returns:
        The tasks, the number of objects skipped because their image file is missing, and
        the number of images skipped because their µm/px is unknown.
    """
    from mfcurate.executor import Task

    sel = _select(ds, cfg)
    images = {r["image_key"]: r for r in ds.images().to_pylist()}
    by_image: dict[str, list[dict[str, Any]]] = {}
    for row in sel.to_pylist():
        by_image.setdefault(row["image_key"], []).append(row)
    seg_cfg = {"segmenter": cfg.segmenter, "sam_checkpoint": cfg.sam_checkpoint,
               "sam_model": cfg.sam_model, "device": cfg.device, "sam_batch": cfg.sam_batch}
    digest = cfg.digest()
    tasks, missing, no_mpp = [], 0, 0
    for key in sorted(by_image):
        img = images[key]
        path = ds.image_path(img)
        if not img["file_found"] or not path.exists():
            missing += len(by_image[key])
            continue
        try:
            mpp = mpp_of_row(img, default=cfg.default_mpp, what=f"{key} ({path})")
        except MppUnknownError:
            no_mpp += 1
            continue
        objs = sorted(by_image[key], key=lambda r: r["object_key"])
        payload = {
            "path": str(path), "mpp": [mpp.x, mpp.y], "side": cfg.side, "segmenter": seg_cfg,
            "qa": asdict(cfg.qa),
            "objects": [{"key": o["object_key"], "box": [float(v) for v in o["source_bbox_xyxy"]],
                         "anchor": [float(v) for v in o["centroid_xy"]]} for o in objs],
        }
        # the key names the image, the configuration and exactly which prompts are refined,
        # so a rerun reuses a result only when it would compute the same one
        prompts = hashlib.sha1(json.dumps([payload["objects"], payload["mpp"]],
                                          sort_keys=True).encode()).hexdigest()[:10]
        tasks.append(Task(key=f"{key}|{digest}|{prompts}", payload=payload))
    return tasks, missing, no_mpp


def layer_rows(results: pa.Table, forced: bool) -> pa.Table:
    """The ``refine`` layer rows of a run's results (LAYER_SCHEMA columns)."""
    n = results.num_rows
    return pa.table({
        "object_key": results.column("object_key"),
        **{c: results.column(c) for c in ("bbox_xyxy", "mask_rle", "mask_origin",
                                          "mask_score", "area_px", "area_um2", "qa_state",
                                          "qa_flags")},
        "mask_forced": pa.array([forced] * n, pa.bool_()),
        "step_info": results.column("refine"),
    })


def merge_results(ds: Dataset, results: pa.Table, forced: bool = False) -> dict[str, int]:
    """Write the run's rows as the ``refine`` layer of their sources (one commit)."""
    if results.num_rows == 0:
        return {}
    objs = ds.objects(columns=["object_key", "source"], exclude_parts=[PART])
    pos = pc.index_in(results.column("object_key"), value_set=objs.column("object_key"))
    src = pc.take(objs.column("source"), pos)
    rows = layer_rows(results, forced)
    parts, counts = {}, {}
    for source in sorted(set(src.to_pylist()) - {None}):
        sub = rows.filter(pc.equal(src, source))
        parts[(source, PART)] = [sub]
        counts[source] = sub.num_rows
    ds.write_parts(parts)
    return counts


def refine_masks(dataset: Path | str, cfg: RefineConfig | None = None, *, workers: int = 1,
                 scheduler: str | None = None,
                 progress: Callable[..., Any] | None = None,
                 on_plan: Callable[[int, int], None] | None = None) -> RefineSummary:
    """Run ``refine-masks`` on a dataset (see the module docstring).

    Args:
        dataset: dataset folder.
        cfg: configuration (default: classical segmenter, 1024 px windows).
        workers: local worker processes.
        scheduler: Dask scheduler address (``tcp://HOST:PORT``) or ``"local"``.
        progress: ``progress(n=1, total=None, objects=rows)`` per finished image.
        on_plan: called with ``(images, objects)`` once the tasks are known.

    Returns:
        A :class:`RefineSummary`.

    Raises:
        MfcurateError: there were objects to refine but none of their images could be read.
    """
    from mfcurate.executor import read_outputs, run_tasks

    cfg = cfg or RefineConfig()
    cfg.validate()
    ds = Dataset.open(dataset)
    tasks, missing, no_mpp = build_tasks(ds, cfg)
    n_obj = sum(len(t.payload["objects"]) for t in tasks)
    if on_plan is not None:
        on_plan(len(tasks), n_obj)
    summary = RefineSummary(images=len(tasks), objects=n_obj, missing_images=missing,
                            images_without_mpp=no_mpp)
    if not tasks:
        if missing or no_mpp:
            raise MfcurateError(f"{dataset}: no image to refine could be read ({missing} "
                                f"objects on missing image files, {no_mpp} images without "
                                "µm/px: give --default-mpp)")
        return summary
    outputs = run_tasks(refine_image, tasks, ds.work_dir / WORK_SUBDIR, workers=workers,
                        scheduler=scheduler, progress=progress)
    results = pa.concat_tables([t.cast(RESULT_SCHEMA) if t.num_rows else
                                RESULT_SCHEMA.empty_table() for t in read_outputs(outputs)])
    summary.by_source = merge_results(ds, results, forced=cfg.overwrite)
    summary.kept = int(pc.sum(pc.is_valid(results.column("mask_rle"))).as_py() or 0)
    summary.failed = results.num_rows - summary.kept
    summary.flagged = int(pc.sum(pc.equal(results.column("qa_state"), "flagged")).as_py() or 0)
    summary.reprompted = sum(1 for r in results.column("refine").to_pylist()
                             if json.loads(r)["strategy"] not in ("box", "failed"))
    return summary


def config_from_options(options: dict[str, Any]) -> RefineConfig:
    """Build a :class:`RefineConfig` from step/recipe options (unknown keys are ignored)."""
    ckpt = options.get("sam_checkpoint")
    segmenter = options.get("segmenter") or ("sam" if ckpt else "classical")
    return RefineConfig(
        segmenter=str(segmenter), sam_checkpoint=str(ckpt) if ckpt else None,
        sam_model=str(options.get("sam_model", "vit_b")), device=str(options.get("device", "cpu")),
        sam_batch=int(options.get("sam_batch", 0)),
        window=str(options.get("window", "tile")),
        window_px=int(options["window_px"]) if options.get("window_px") else None,
        overwrite=bool(options.get("overwrite", False)),
        all_labels=bool(options.get("all_labels", False)),
    )


@step("refine-masks")
def refine_masks_step(ctx: StepContext, *, segmenter: str | None = None,
                      sam_checkpoint: str | None = None, sam_model: str = "vit_b",
                      device: str = "cpu", sam_batch: int = 0, window: str = "tile",
                      window_px: int | None = None, overwrite: bool = False,
                      all_labels: bool = False) -> dict[str, Any]:
    """Recipe/demo step: refine masks with the classical segmenter, or SAM given a checkpoint.

    The options are those of ``mfcurate refine-masks``.
    """
    cfg = config_from_options({
        "segmenter": segmenter, "sam_checkpoint": sam_checkpoint, "sam_model": sam_model,
        "device": device, "sam_batch": sam_batch, "window": window, "window_px": window_px,
        "overwrite": overwrite, "all_labels": all_labels})
    if cfg.segmenter == "classical" and segmenter is None:
        ctx.console.print("refine-masks: no SAM checkpoint given, using the classical "
                          "haematoxylin segmenter")
    summary = refine_masks(ctx.dataset, cfg, workers=ctx.workers, scheduler=ctx.scheduler)
    return summary.as_dict()
