"""The patch store: one RGB crop and one binary mask per object, at one target resolution.

Crops are centred on the object's ``centroid_xy`` and resampled from the image's µm/px to the
target µm/px (default 0.25 µm/px, 64 x 64 px = 16 µm), so images from 0.23 and 0.5 µm/px
scanners look alike to the model.  Only the crop's footprint is read
(:meth:`ImageSource.read_region`), never the whole slide.

The object's mask is decoded from ``mask_rle`` on ``geometry.mask_grid(bbox_xyxy)``, placed in
the source window and resampled with the crop (bilinear, threshold 0.5).  Which objects become
patches is decided by :mod:`mfcurate.classifier.hygiene`: objects without a real mask (none,
or a fixed disk) are left out by default -- a perfect disk on every negative while figures
carry segmenter masks would be a trivially learnable cue; ``refine-masks`` gives every trained
label a mask of the figures' segmenter -- and so are negatives centred inside a mitotic
figure's box.  Both are counted per label in ``store.json`` (``disk_skipped_by_label``,
``in_figure_box_skipped_by_label``).  With ``include_disk`` such objects get a disk of
``disk_radius_um`` (default 4 µm, a typical nucleus) and ``mask_kind = "disk"`` in the index.

Layout (``OUT`` defaults to ``DATASET/patches``)::

    OUT/store.json              # commit point: config, counts, the live data folder
    OUT/data-<id>/index.parquet # one row per patch: keys, label, target, split, shard, row
    OUT/data-<id>/rgb-00000.npy # (n, S, S, 3) uint8, memory-mapped by the loader
    OUT/data-<id>/mask-00000.npy# (n, S, S) uint8 in {0, 1}
    OUT/.tasks/                 # per-image results of the executor (resume)

Why ``.npy`` shards: a training batch is a fancy index into a memory map, with no decoding,
no per-sample Python and no copies beyond the batch itself; the OS page cache shares the
pages between data-loader workers.  A shard holds at most 16,384 patches (192 MiB at 64 px)
so that stores of millions of objects stay within ordinary file sizes and a shard is written
in one go.  A rebuild writes a new ``data-<id>`` folder and then replaces ``store.json``
atomically, so a crash leaves the previous store intact.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mfcurate.dataset import (
    Dataset,
    Selection,
    atomic_write_json,
    iter_selected,
    select_images,
    write_parquet_atomic,
)
from mfcurate.errors import DatasetError
from mfcurate.executor import Task, run_tasks
from mfcurate.geometry import decode_mask, mask_grid
from mfcurate.schemas.vocab import TRAINABLE_LABELS

#: Labels that are the positive class; everything else (look-alikes, background and other
#: cells) is negative.
POSITIVE_LABELS = frozenset({"mitotic_figure"})

STORE_FILE = "store.json"
SHARD_SIZE = 16384

Reader = Callable[[int, int, int, int], npt.NDArray[np.uint8]]

TASK_SCHEMA = pa.schema([
    ("object_key", pa.string()),
    ("image_key", pa.string()),
    ("source", pa.string()),
    ("tumour_type", pa.string()),
    ("image_split", pa.string()),
    ("label", pa.string()),
    ("target", pa.int8()),
    ("mask_kind", pa.string()),
    ("rgb", pa.binary()),
    ("mask", pa.binary()),
])

INDEX_COLUMNS = ["object_key", "image_key", "source", "tumour_type", "image_split", "label",
                 "target", "mask_kind"]


@dataclass(frozen=True)
class PatchConfig:
    """Geometry of the patches.

    Attributes:
        size_px: side of the square crop in target pixels.
        mpp: target µm per pixel.
        disk_radius_um: radius of the disk mask of objects without a mask (only cut with
            ``include_disk``).
    """

    size_px: int = 64
    mpp: float = 0.25
    disk_radius_um: float = 4.0

    def key(self) -> str:
        """Short stable hash of the configuration (task keys depend on it)."""
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]


def resample_patch(
    read: Reader,
    center_xy: tuple[float, float],
    image_mpp: tuple[float, float],
    cfg: PatchConfig,
    mask: npt.NDArray[np.bool_] | None = None,
    mask_offset_xy: tuple[int, int] = (0, 0),
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """Cut one crop centred on ``center_xy`` and resample it to ``cfg.mpp``.

    Target pixel ``(u, v)`` (centre at ``u + 0.5``) samples level-0 position
    ``cx + (u + 0.5 - S/2) * f_x`` with ``f_x = cfg.mpp / mpp_x`` (level-0 px per target px),
    so the object centre lies at the crop centre.  Downsampling is anti-aliased with a
    Gaussian (σ = ½·√(f²−1) px).

    Args:
        read: ``read(x, y, w, h)`` -> ``(h, w, 3)`` uint8 level-0 window (white outside).
        center_xy: crop centre, level-0 px (x = column).
        image_mpp: ``(mpp_x, mpp_y)`` of the image.
        cfg: target geometry.
        mask: the object's ``(rows, cols)`` bool mask, or None for the fallback disk.
        mask_offset_xy: level-0 position of ``mask[0, 0]``.

    Returns:
        ``(rgb, mask)``: ``(S, S, 3)`` uint8 and ``(S, S)`` uint8 in {0, 1}.
    """
    import cv2

    s = cfg.size_px
    cx, cy = center_xy
    fx, fy = cfg.mpp / image_mpp[0], cfg.mpp / image_mpp[1]
    hx, hy = s / 2 * fx + 3, s / 2 * fy + 3
    x0, y0 = math.floor(cx - hx), math.floor(cy - hy)
    w, h = math.ceil(cx + hx) - x0, math.ceil(cy + hy) - y0
    window = read(x0, y0, w, h)
    if fx > 1.0 or fy > 1.0:
        sx = 0.5 * math.sqrt(max(fx * fx - 1.0, 0.0))
        sy = 0.5 * math.sqrt(max(fy * fy - 1.0, 0.0))
        window = np.asarray(cv2.GaussianBlur(window, (0, 0), sigmaX=max(sx, 1e-3),
                                             sigmaY=max(sy, 1e-3)), dtype=np.uint8)
    m = np.array([[fx, 0.0, cx - x0 + (0.5 - s / 2) * fx - 0.5],
                  [0.0, fy, cy - y0 + (0.5 - s / 2) * fy - 0.5]])
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    rgb = cv2.warpAffine(window, m, (s, s), flags=flags, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=(255, 255, 255))
    if mask is None:
        r = cfg.disk_radius_um / cfg.mpp
        yy, xx = np.mgrid[0:s, 0:s]
        out_mask = ((xx + 0.5 - s / 2) ** 2 + (yy + 0.5 - s / 2) ** 2 <= r * r)
        return np.ascontiguousarray(rgb), out_mask.astype(np.uint8)
    canvas = np.zeros((h, w), np.float32)
    mx, my = mask_offset_xy[0] - x0, mask_offset_xy[1] - y0
    mh, mw = mask.shape
    r0, c0 = max(0, -my), max(0, -mx)
    r1, c1 = min(mh, h - my), min(mw, w - mx)
    if r1 > r0 and c1 > c0:
        canvas[my + r0:my + r1, mx + c0:mx + c1] = mask[r0:r1, c0:c1]
    warped = cv2.warpAffine(canvas, m, (s, s), flags=flags, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=0)
    return np.ascontiguousarray(rgb), (warped >= 0.5).astype(np.uint8)


def target_of(label: str) -> int:
    """1 for a mitotic figure, 0 for every other class."""
    return 1 if label in POSITIVE_LABELS else 0


def extract_image_patches(payload: dict[str, Any]) -> pa.Table:
    """Executor task: all patches of one image (module level, picklable).

    Args:
        payload: ``path``, ``image_key``, ``source``, ``tumour_type``, ``split``, ``mpp``
            (``[mpp_x, mpp_y]``), ``config`` (a :class:`PatchConfig` as dict) and
            ``objects``: list of ``(object_key, label, cx, cy, bbox_xyxy, mask_rle,
            mask_origin)``; a row without a mask, or whose origin is ``disk``, is a disk
            stand-in (``mask_kind = "disk"``).

    Returns:
        One row per object (:data:`TASK_SCHEMA`).
    """
    from mfcurate.io import open_image

    cfg = PatchConfig(**payload["config"])
    mpp = (float(payload["mpp"][0]), float(payload["mpp"][1]))
    cols: dict[str, list[Any]] = {n: [] for n in TASK_SCHEMA.names}
    src = open_image(payload["path"])
    try:
        for key, label, cx, cy, bbox, rle, origin in payload["objects"]:
            mask = None
            offset = (0, 0)
            if rle is not None and origin != "disk":
                gx, gy, gw, gh = mask_grid(bbox)
                mask = decode_mask(rle, gh, gw).astype(bool)
                offset = (gx, gy)
            rgb, m = resample_patch(src.read_region, (cx, cy), mpp, cfg, mask, offset)
            cols["object_key"].append(key)
            cols["image_key"].append(payload["image_key"])
            cols["source"].append(payload["source"])
            cols["tumour_type"].append(payload["tumour_type"])
            cols["image_split"].append(payload["split"])
            cols["label"].append(label)
            cols["target"].append(target_of(label))
            cols["mask_kind"].append("object" if mask is not None else "disk")
            cols["rgb"].append(rgb.tobytes())
            cols["mask"].append(m.tobytes())
    finally:
        src.close()
    return pa.table({n: pa.array(cols[n], type=TASK_SCHEMA.field(n).type)
                     for n in TASK_SCHEMA.names}, schema=TASK_SCHEMA)


@dataclass
class BuildReport:
    """What :func:`build_patch_store` did."""

    out: Path
    n_images: int
    n_patches: int
    n_positive: int
    n_disk: int
    n_rejected_skipped: int
    n_disk_skipped: int = 0
    n_in_figure_box_skipped: int = 0
    skipped_by_label: dict[str, dict[str, int]] | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line: patches, figures, and what label hygiene left out (per label)."""
        sk = self.skipped_by_label or {}

        def per(d: dict[str, int]) -> str:
            return ", ".join(f"{k} {v}" for k, v in d.items())

        line = (f"{self.n_patches} patches from {self.n_images} images ({self.n_positive} "
                f"mitotic figures, {self.n_disk} with disk masks); left out: "
                f"{self.n_rejected_skipped} rejected, {self.n_disk_skipped} without a real "
                "mask")
        if sk.get("disk"):
            line += f" ({per(sk['disk'])})"
        line += f", {self.n_in_figure_box_skipped} negatives inside a mitotic figure's box"
        if sk.get("in_figure_box"):
            line += f" ({per(sk['in_figure_box'])})"
        return line


def _image_tasks(ds: Dataset, cfg: PatchConfig, default_mpp: float | None,
                 sel: Selection, include_disk: bool = False
                 ) -> tuple[list[Task], int, dict[str, dict[str, int]]]:
    """One task per selected image with objects to cut.

    Images and objects are chosen by ``sel`` (:func:`mfcurate.dataset.iter_selected`), so
    duplicates and held-out images (and their copies) never reach the store; then label
    hygiene (:func:`mfcurate.classifier.hygiene.training_filter`) leaves out disk stand-ins
    and negatives inside a mitotic figure's box.

    Returns:
        The tasks, the number of rejected objects left out, and what hygiene left out.
    """
    from mfcurate.classifier.hygiene import training_filter
    from mfcurate.schemas.tables import OBJECTS_SCHEMA

    image_table = select_images(ds, sel)
    images = image_table.to_pylist()
    cols = ["object_key", "image_key", "label", "centroid_xy", "bbox_xyxy", "source_bbox_xyxy",
            "mask_rle", "mask_origin", "qa_state"]
    count_rejected = sel.qa_states is None and not sel.include_rejected
    read = replace(sel, include_rejected=True) if count_rejected else sel
    n_rejected = 0
    trainable = pa.array(sorted(TRAINABLE_LABELS))
    tables = []
    for t in iter_selected(ds, read, cols, images=image_table.select(["image_key", "source"])):
        if count_rejected:
            rejected = pc.equal(t.column("qa_state"), "rejected")
            n_rejected += int(pc.sum(rejected).as_py() or 0)
            t = t.filter(pc.invert(pc.fill_null(rejected, False)))
        # ``uncertain`` (label rounds that could not agree) is never trained as either class
        tables.append(t.filter(pc.is_in(t.column("label"), value_set=trainable)))
    objs = (pa.concat_tables(tables) if tables
            else OBJECTS_SCHEMA.empty_table().select(cols))
    keep, skipped = training_filter(objs, include_disk=include_disk)
    objs = objs.filter(pa.array(keep, pa.bool_()))
    by_image: dict[str, list[tuple[Any, ...]]] = {}
    for r in objs.to_pylist():
        cx, cy = r["centroid_xy"]
        by_image.setdefault(r["image_key"], []).append(
            (r["object_key"], r["label"], float(cx), float(cy), list(r["bbox_xyxy"]),
             r["mask_rle"], r["mask_origin"]))
    tasks = []
    for im in images:
        objects = by_image.get(im["image_key"])
        if not objects:
            continue
        mpp_x, mpp_y = im["mpp_x"], im["mpp_y"]
        if mpp_x is None or mpp_y is None:
            if default_mpp is None:
                raise DatasetError(f"{ds.image_path(im)}: image {im['image_key']} has no µm/px; "
                                   "give --default-mpp")
            mpp_x = mpp_y = default_mpp
        path = ds.image_path(im)
        if not path.exists():
            raise DatasetError(f"{path}: image file of {im['image_key']} not found")
        payload = {"path": str(path), "image_key": im["image_key"], "source": im["source"],
                   "tumour_type": im["tumour_type"], "split": im["split"],
                   "mpp": [mpp_x, mpp_y], "config": asdict(cfg), "objects": objects}
        # the key names the image, the geometry and exactly which objects are cut, so a
        # rerun reuses a result only when it would compute the same one
        which = hashlib.sha1(json.dumps(objects, sort_keys=True).encode()).hexdigest()[:10]
        tasks.append(Task(f"{im['image_key']}|{cfg.key()}|{which}", payload))
    return tasks, n_rejected, skipped


def build_patch_store(
    dataset: Path | str,
    out: Path | str | None = None,
    cfg: PatchConfig | None = None,
    *,
    sources: Sequence[str] | None = None,
    selection: Selection | None = None,
    holdout: Sequence[str] | None = None,
    default_mpp: float | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    progress: Callable[..., Any] | None = None,
    shard_size: int = SHARD_SIZE,
    include_disk: bool = False,
) -> BuildReport:
    """Build (or resume building) the patch store of a dataset.

    Rejected objects (``qa_state == "rejected"``) and ``uncertain`` ones (not in
    ``TRAINABLE_LABELS``) are skipped, and so are (see
    :func:`mfcurate.classifier.hygiene.training_filter`) objects without a real mask (unless
    ``include_disk``) and negatives centred inside a mitotic figure's box; these are
    counted in ``store.json`` and the report.  Per-image work runs through
    :func:`mfcurate.executor.run_tasks`, so a rerun after an interruption only does the images
    not yet done.

    Args:
        dataset: dataset folder.
        out: store folder (default ``DATASET/patches``).
        cfg: patch geometry.
        sources: only these sources (default all; ignored when ``selection`` is given).
        selection: which images and objects to cut (default: ``sources`` minus ``holdout``).
        holdout: ``SOURCE:SPLIT`` pairs left out (default ``midog++:test`` where present,
            see :func:`mfcurate.classifier.pool.holdout_pairs`).
        default_mpp: µm/px for images that have none (otherwise such images are an error).
        workers: local worker processes.
        scheduler: Dask scheduler address.
        progress: ``progress(n=1, total=None, objects=rows)`` per finished image.
        shard_size: patches per shard file.
        include_disk: also cut objects without a real mask, with a disk mask.

    Returns:
        A :class:`BuildReport`.
    """
    cfg = cfg or PatchConfig()
    ds = Dataset.open(dataset)
    out_dir = Path(out) if out is not None else ds.root / "patches"
    if selection is None:
        from mfcurate.classifier.pool import pool_selection

        selection, notes = pool_selection(ds, {"sources": sources}, holdout)
    else:
        notes = []
    sel = selection.check(ds)
    tasks, n_rejected, skipped = _image_tasks(ds, cfg, default_mpp, sel, include_disk)
    if not tasks:
        n_skip = sum(sum(v.values()) for v in skipped.values())
        raise DatasetError(f"{ds.root}: no objects to cut patches from ({n_rejected} rejected, "
                           f"{n_skip} without a real mask or inside a figure box; run "
                           "refine-masks first, or pass include_disk)")
    outputs = run_tasks(extract_image_patches, tasks, out_dir / ".tasks", workers=workers,
                        scheduler=scheduler, progress=progress)
    return _publish_store(outputs, out_dir, ds, cfg, sel, shard_size, include_disk,
                          n_images=len(tasks), n_rejected=n_rejected, skipped=skipped,
                          notes=notes)


def _publish_store(outputs: Sequence[Path], out_dir: Path, ds: Dataset, cfg: PatchConfig,
                   sel: Selection, shard_size: int, include_disk: bool, *, n_images: int,
                   n_rejected: int, skipped: dict[str, dict[str, int]],
                   notes: list[str]) -> BuildReport:
    """Write the shards, ``store.json`` and drop older ``data-*`` folders; report.

    Shards of the per-image ``outputs`` go into a fresh ``data-*`` folder, then
    ``store.json`` (atomically) points at it.

    ``skipped`` maps ``"disk_skipped"`` / ``"in_figure_box_skipped"`` to counts per label.
    """
    data_name = f"data-{uuid.uuid4().hex[:12]}"
    data_dir = out_dir / data_name
    data_dir.mkdir(parents=True)
    try:
        index = _write_shards(outputs, data_dir, cfg, shard_size)
    except BaseException:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise
    targets = np.asarray(index.column("target").to_numpy(), dtype=np.int64)
    n_disk = int(pc.sum(pc.equal(index.column("mask_kind"), "disk")).as_py() or 0)
    n_disk_skipped = sum(skipped["disk_skipped"].values())
    n_inside = sum(skipped["in_figure_box_skipped"].values())
    meta = {
        "format": "mfcurate-patches", "version": 1, "data": data_name,
        "config": asdict(cfg), "dataset": str(ds.root.resolve()),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "n_patches": index.num_rows, "n_positive": int(targets.sum()), "n_disk": n_disk,
        "n_images": n_images, "n_rejected_skipped": n_rejected,
        "include_disk": include_disk, "n_disk_skipped": n_disk_skipped,
        "disk_skipped_by_label": skipped["disk_skipped"],
        "n_in_figure_box_skipped": n_inside,
        "in_figure_box_skipped_by_label": skipped["in_figure_box_skipped"],
        "patches_by_label": _by_label(index), "disk_by_label": _by_label(index, "disk"),
        "shard_size": shard_size, "selection": sel.describe(), "notes": notes,
    }
    atomic_write_json(out_dir / STORE_FILE, meta)
    for old in out_dir.glob("data-*"):
        if old.name != data_name and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return BuildReport(out_dir, n_images, index.num_rows, int(targets.sum()), n_disk,
                       n_rejected, n_disk_skipped, n_inside,
                       {"disk": skipped["disk_skipped"],
                        "in_figure_box": skipped["in_figure_box_skipped"]}, notes)


def _by_label(index: pa.Table, mask_kind: str | None = None) -> dict[str, int]:
    """Patches per label (of one ``mask_kind`` when given)."""
    t = index if mask_kind is None else index.filter(pc.equal(index.column("mask_kind"),
                                                              mask_kind))
    labels = t.column("label").to_pylist()
    return {k: labels.count(k) for k in sorted(set(labels))}


def _write_shards(outputs: Sequence[Path], data_dir: Path, cfg: PatchConfig,
                  shard_size: int) -> pa.Table:
    s = cfg.size_px
    meta_tables: list[pa.Table] = []
    rgb_buf: list[np.ndarray] = []
    mask_buf: list[np.ndarray] = []
    shard_ids: list[np.ndarray] = []
    rows_in: list[np.ndarray] = []
    state = {"shard": 0, "filled": 0}

    def flush() -> None:
        if not rgb_buf:
            return
        _save_npy(data_dir / f"rgb-{state['shard']:05d}.npy", np.concatenate(rgb_buf))
        _save_npy(data_dir / f"mask-{state['shard']:05d}.npy", np.concatenate(mask_buf))
        rgb_buf.clear()
        mask_buf.clear()
        state["shard"] += 1
        state["filled"] = 0

    for path in outputs:
        t = pq.read_table(path)
        if t.num_rows == 0:
            continue
        rgb_all = np.frombuffer(b"".join(t.column("rgb").to_pylist()), np.uint8)
        rgb_all = rgb_all.reshape(t.num_rows, s, s, 3)
        mask_all = np.frombuffer(b"".join(t.column("mask").to_pylist()), np.uint8)
        mask_all = mask_all.reshape(t.num_rows, s, s)
        start = 0
        while start < t.num_rows:
            take = min(shard_size - state["filled"], t.num_rows - start)
            rgb_buf.append(rgb_all[start:start + take])
            mask_buf.append(mask_all[start:start + take])
            shard_ids.append(np.full(take, state["shard"], np.int32))
            rows_in.append(np.arange(state["filled"], state["filled"] + take, dtype=np.int64))
            state["filled"] += take
            start += take
            if state["filled"] >= shard_size:
                flush()
        meta_tables.append(t.select(INDEX_COLUMNS))
    flush()
    index = pa.concat_tables(meta_tables) if meta_tables else \
        pa.schema([TASK_SCHEMA.field(n) for n in INDEX_COLUMNS]).empty_table()
    index = index.append_column("shard", pa.array(
        np.concatenate(shard_ids) if shard_ids else np.zeros(0, np.int32)))
    index = index.append_column("row", pa.array(
        np.concatenate(rows_in) if rows_in else np.zeros(0, np.int64)))
    write_parquet_atomic(data_dir / "index.parquet", [index], index.schema)
    return index


def _save_npy(path: Path, arr: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as f:
        np.save(f, arr)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


class PatchStore:
    """Read side of a patch store: the index in memory, shards memory-mapped.

    Args:
        path: the store folder (the one holding ``store.json``).

    Attributes:
        config: the :class:`PatchConfig` the store was built with.
        index: the index table (one row per patch, in global patch order).
        targets: ``(N,)`` int64 class of each patch (1 = mitotic figure).
        image_keys: ``(N,)`` object array of image keys.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        meta_path = self.path / STORE_FILE
        if not meta_path.exists():
            raise DatasetError(f"{self.path}: not a patch store (no {STORE_FILE}); "
                               "run `mfcurate build-patches` first")
        try:
            self.meta: dict[str, Any] = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{meta_path}: invalid JSON ({exc})") from exc
        self.config = PatchConfig(**self.meta["config"])
        data = self.path / self.meta["data"]
        self.index = pq.read_table(data / "index.parquet")
        self.targets = np.asarray(self.index.column("target").to_numpy(), dtype=np.int64)
        self.image_keys = np.asarray(self.index.column("image_key").to_pylist(), dtype=object)
        self.image_splits = np.asarray(self.index.column("image_split").to_pylist(), dtype=object)
        self._shard = np.asarray(self.index.column("shard").to_numpy(), dtype=np.int64)
        self._row = np.asarray(self.index.column("row").to_numpy(), dtype=np.int64)
        n_shards = int(self._shard.max()) + 1 if len(self._shard) else 0
        self._rgb = [np.load(data / f"rgb-{i:05d}.npy", mmap_mode="r") for i in range(n_shards)]
        self._mask = [np.load(data / f"mask-{i:05d}.npy", mmap_mode="r")
                      for i in range(n_shards)]

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the path only (memory maps are reopened in the receiving process)."""
        return {"path": str(self.path)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Reopen the store in a data-loader worker."""
        self.__init__(state["path"])  # type: ignore[misc]

    def __len__(self) -> int:
        """Number of patches."""
        return int(self.index.num_rows)

    def get(self, idx: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Patches at global positions ``idx``.

        Returns:
            ``(rgb, mask, target)``: ``(B, S, S, 3)`` uint8, ``(B, S, S)`` uint8 and
            ``(B,)`` int64, in the order of ``idx``.
        """
        ids = np.asarray(idx, dtype=np.int64)
        s = self.config.size_px
        rgb = np.empty((len(ids), s, s, 3), np.uint8)
        mask = np.empty((len(ids), s, s), np.uint8)
        shards = self._shard[ids]
        for sh in np.unique(shards):
            sel = np.flatnonzero(shards == sh)
            rows = self._row[ids[sel]]
            order = np.argsort(rows, kind="stable")  # sequential reads from the map
            rgb[sel[order]] = self._rgb[sh][rows[order]]
            mask[sel[order]] = self._mask[sh][rows[order]]
        return rgb, mask, self.targets[ids]

    def positions(self, splits: Sequence[str] | None = None) -> np.ndarray:
        """Global positions of patches whose image split is in ``splits`` (all if None)."""
        if splits is None:
            return np.arange(len(self))
        return np.flatnonzero(np.isin(self.image_splits, list(splits)))

    def iter_batches(self, idx: np.ndarray, batch: int) -> Iterator[tuple[np.ndarray, ...]]:
        """Yield ``get`` results for consecutive slices of ``idx``."""
        for i in range(0, len(idx), batch):
            yield self.get(idx[i:i + batch])
