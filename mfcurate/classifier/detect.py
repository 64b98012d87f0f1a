"""Detection: candidates from automatic segmentation on tissue tiles, classified by an ensemble.

For each image or slide:

1. tiles of ``tile`` px with ``overlap`` px over tissue (:func:`mfcurate.segment.tissue.
   tissue_tiles`), or a plain grid over the whole image (``all_tiles``, for ROI images);
2. every tile goes through the same automatic segmenter as ``harvest``
   (:func:`mfcurate.segment.auto.make_auto_segmenter`: SAM with a checkpoint, classical
   otherwise);
3. the one seam rule of :class:`mfcurate.tiling.TileGrid`: an object cut by an inner tile
   edge is dropped when another selected tile holds it whole (make the overlap exceed the
   largest nucleus), and objects found whole in two tiles are merged (centroids closer than
   ``dedup_um``); reading, segmentation and classification overlap
   (:mod:`mfcurate.classifier.tile_pipeline`: a prefetching reader thread, batches of
   ``batch_size`` patches gathered across tiles, memory bounded by a few tiles);
4. each candidate is cut exactly as the patch store cuts training objects (same centre rule,
   target µm/px, crop size and mask resampling, :func:`mfcurate.classifier.patches.
   resample_patch`) and classified by every member; the ensemble score is the **mean of the
   members' softmax P(mitotic figure)** (soft voting);
5. a candidate is a mitotic figure when ``score > threshold`` (default 0.5);
6. the parts of one multi-part figure (anaphase, telophase, tripolar masses, which the
   segmenter finds as separate nuclei) are joined into one detection
   (:func:`join_figure_parts`, after classification: see there why).

The mitotic count is reported per 10 high-power fields (2.37 mm²): the largest number of
detected figures inside a circle of 2.37 mm² (radius 868.6 µm) centred on a detected figure.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import torch

from mfcurate.classifier.model import IMAGENET_MEAN, IMAGENET_STD, MaskFusedResNet18
from mfcurate.classifier.patches import PatchConfig
from mfcurate.classifier.tile_pipeline import Candidate, TileTimes, detect_tiles
from mfcurate.errors import DatasetError, SourceFormatError, UsageError
from mfcurate.geometry import encode_mask
from mfcurate.segment import AutoSegmenter
from mfcurate.segment.figure_parts import DEFAULT_PART_GAP_UM, PartGrouping, join_figures
from mfcurate.tiling import Tile, TileGrid

#: Area of 10 high-power fields in mm² (the usual mitotic-count reference area).
HPF10_MM2 = 2.37

CANDIDATE_SCHEMA = pa.schema([
    ("image", pa.string()), ("x", pa.float64()), ("y", pa.float64()), ("score", pa.float64()),
    ("area_um2", pa.float64()), ("seg_score", pa.float64()), ("origin", pa.string()),
    ("member_scores", pa.string()),
])


@dataclass
class DetectConfig:
    """Options of ``detect``.

    Attributes:
        tile: tile side in level-0 px.
        overlap: overlap of neighbouring tiles in level-0 px.
        threshold: decision threshold on the mean P(mitotic figure).
        batch_size: patches per forward pass.
        all_tiles: tile the whole image instead of tissue only.
        dedup_um: candidates of neighbouring tiles closer than this are one object.
        device: torch device of the classifier.
        prefetch: tiles read ahead by the reader thread (memory: that many tiles).
        part_gap_um: mitotic-figure candidates whose masks are closer than this (µm) are
            the parts of one figure, joined into one detection (:func:`join_figure_parts`;
            a negative value turns joining off).
    """

    tile: int = 1024
    overlap: int = 128
    threshold: float = 0.5
    batch_size: int = 256
    all_tiles: bool = False
    dedup_um: float = 3.0
    device: str = "auto"
    prefetch: int = 2
    part_gap_um: float = DEFAULT_PART_GAP_UM


def resolve_models(paths: Sequence[Path | str]) -> list[Path]:
    """Expand run folders (``ensemble.json`` or ``seed-*/model.pt``) and model files.

    Raises:
        FileNotFoundError: a path does not exist or a run folder holds no model.
    """
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            ens = p / "ensemble.json"
            if ens.exists():
                out.extend(p / m for m in json.loads(ens.read_text())["members"])
                continue
            found = sorted(p.glob("seed-*/model.pt")) or sorted(p.glob("model.pt"))
            if not found:
                raise FileNotFoundError(f"{p}: no ensemble.json or seed-*/model.pt in it; "
                                        "train with `mfcurate train-classifier` first")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"model {p} does not exist")
    if not out:
        raise UsageError("give at least one model (--models RUN or a model.pt)")
    return out


class Ensemble:
    """The members of a run, averaging softmax probabilities.

    Args:
        model_paths: ``model.pt`` files written by training.
        device: torch device.
    """

    def __init__(self, model_paths: Sequence[Path | str], device: str = "auto") -> None:
        from mfcurate.segment.spec import resolve_device

        self.device = torch.device(resolve_device(device))
        self.models: list[MaskFusedResNet18] = []
        patch: dict[str, Any] | None = None
        for p in map(Path, model_paths):
            try:
                obj = torch.load(p, map_location="cpu", weights_only=False)
                state, use_mask, this_patch = obj["state_dict"], obj["use_mask"], obj["patch"]
            except (KeyError, TypeError) as exc:
                raise SourceFormatError(p, f"not an mfcurate model file (missing {exc})") from exc
            except Exception as exc:
                raise SourceFormatError(p, f"cannot read model ({exc})") from exc
            if patch is not None and this_patch != patch:
                raise UsageError(f"{p}: patch geometry {this_patch} differs from the other "
                                 f"members' {patch}")
            patch = this_patch
            m = MaskFusedResNet18(use_mask=bool(use_mask))
            m.load_state_dict(state)
            self.models.append(m.to(self.device).eval())
        if patch is None:
            raise UsageError("an ensemble needs at least one model")
        self.patch = PatchConfig(**patch)
        self.mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)

    def predict(self, rgb: npt.NDArray[np.uint8], mask: npt.NDArray[np.uint8],
                batch_size: int = 256) -> npt.NDArray[np.float64]:
        """Mean P(mitotic figure) of ``(N, S, S, 3)`` uint8 crops and ``(N, S, S)`` masks."""
        return self.predict_members(rgb, mask, batch_size).mean(0)

    @torch.no_grad()
    def predict_members(self, rgb: npt.NDArray[np.uint8], mask: npt.NDArray[np.uint8],
                        batch_size: int = 256) -> npt.NDArray[np.float64]:
        """``(K, N)`` P(mitotic figure) of each of the K members (model file order)."""
        out = np.zeros((len(self.models), len(rgb)), np.float64)
        for i in range(0, len(rgb), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(rgb[i:i + batch_size])).to(self.device)
            x = (x.permute(0, 3, 1, 2).float() / 255.0 - self.mean) / self.std
            m = torch.from_numpy(np.ascontiguousarray(mask[i:i + batch_size]))
            m = m.to(self.device)[:, None].float()
            with torch.autocast(device_type=self.device.type, dtype=torch.float16,
                                enabled=self.device.type == "cuda"):
                probs = torch.stack([torch.softmax(model(x, m).float(), 1)[:, 1]
                                     for model in self.models])
            out[:, i:i + batch_size] = probs.cpu().numpy()
        return out


def classify_image(src: Any, segmenter: AutoSegmenter, ensemble: Ensemble,
                   cfg: DetectConfig, mpp: tuple[float, float], grid: TileGrid,
                   tiles: Sequence[Tile]) -> tuple[list[Candidate], TileTimes]:
    """Segment and classify the ``tiles`` of one image, then merge duplicates.

    Reading, segmentation and classification overlap and memory is bounded by a few tiles
    (:mod:`mfcurate.classifier.tile_pipeline`).
    """
    cands, times = detect_tiles(
        src, segmenter, lambda rgb, mask: ensemble.predict_members(rgb, mask, cfg.batch_size),
        ensemble.patch, mpp, grid, tiles, batch_size=cfg.batch_size, prefetch=cfg.prefetch)
    out = _dedup(cands, cfg.dedup_um / math.sqrt(mpp[0] * mpp[1]))
    if cfg.part_gap_um >= 0:
        out = join_figure_parts(out, cfg.threshold, mpp, PartGrouping(max_gap_um=cfg.part_gap_um))
    times.candidates = len(out)
    times.figures_joined = sum(1 for c in out if c.n_parts > 1)
    return out, times


def join_figure_parts(cands: list[Candidate], threshold: float, mpp: tuple[float, float],
                      rule: PartGrouping | None = None) -> list[Candidate]:
    """Join the candidates that are parts of one mitotic figure into one candidate.

    Only candidates the ensemble calls figures (``score > threshold``) are joined, by
    :func:`mfcurate.segment.figure_parts.group_parts` (mask gap ``rule.max_gap_um`` in µm
    through ``mpp``, size limits).  A joined candidate sits at the centroid of the union of
    its parts' masks (between the masses, where annotators put a multi-part figure's point),
    has the union's area and ``n_parts``, and takes the scores of its best part.

    Why after classification, not before: in tumour tissue the gap between two ordinary
    neighbouring nuclei is often as small as the gap between the two masses of an anaphase
    (on the synthetic renderer 3-13 µm against 3-7 µm), so geometric grouping of every
    candidate would join nuclei pairs and cut their patches off-centre; the classifier is
    the cue that a mass is chromatin of a figure.  Under MIDOG scoring (one-to-one matching
    within 7.5 µm) two positive parts of one figure count one TP and one FP; joined they count
    one TP at the figure's centre.  A part the classifier does not call alone stays a
    separate (negative) candidate, so a neighbouring nucleus never moves a detection.
    Candidates below ``threshold`` are never joined, so thresholds tuned lower than the
    detection threshold see such parts separately.

    Args:
        cands: classified candidates of one image (level-0 px), with their masks.
        threshold: the detection threshold.
        mpp: ``(mpp_x, mpp_y)``.
        rule: the grouping limits (default :class:`PartGrouping`).

    Returns:
        Candidates: the unjoined ones in their order, then the joined figures.
    """
    from mfcurate.geometry import decode_mask

    pos = [i for i, c in enumerate(cands) if c.score > threshold and c.mask_rle]
    if len(pos) < 2:
        return cands
    masks = [decode_mask(cands[i].mask_rle, cands[i].mask_grid[3], cands[i].mask_grid[2])
             for i in pos]
    offsets = [(cands[i].mask_grid[0], cands[i].mask_grid[1]) for i in pos]
    figures = [f for f in join_figures(masks, offsets, mpp, rule) if f.multi_part]
    if not figures:
        return cands
    joined: set[int] = set()
    out_figs: list[Candidate] = []
    for f in figures:
        members = [cands[pos[k]] for k in f.members]
        joined.update(pos[k] for k in f.members)
        best = max(members, key=lambda c: c.score)
        m = f.mask
        out_figs.append(Candidate(
            f.centroid_xy[0], f.centroid_xy[1], f.area_px,
            float(np.mean([c.seg_score for c in members])), best.origin, best.score,
            best.member_scores, encode_mask(m),
            (f.offset_xy[0], f.offset_xy[1], int(m.shape[1]), int(m.shape[0])),
            sum(c.n_parts for c in members)))
    return [c for i, c in enumerate(cands) if i not in joined] + out_figs


def _dedup(cands: list[Candidate], radius_px: float) -> list[Candidate]:
    """Merge candidates found in two overlapping tiles (keep the larger mask)."""
    if len(cands) < 2:
        return cands
    from scipy.spatial import cKDTree

    xy = np.array([[c.x, c.y] for c in cands])
    order = np.argsort([-c.area_px for c in cands], kind="stable")
    tree = cKDTree(xy)
    dropped = np.zeros(len(cands), bool)
    for i in order:
        if dropped[i]:
            continue
        for j in tree.query_ball_point(xy[i], radius_px):
            if j != i:
                dropped[j] = True
    return [c for i, c in enumerate(cands) if not dropped[i]]


def hotspot_count(xy_px: npt.ArrayLike, mpp: tuple[float, float],
                  area_mm2: float = HPF10_MM2) -> dict[str, Any]:
    """Largest count of points inside a circle of ``area_mm2`` centred on one of them.

    Returns:
        ``{"count", "center_xy", "radius_um", "area_mm2"}`` (``center_xy`` None without points).
    """
    from scipy.spatial import cKDTree

    pts = np.asarray(xy_px, dtype=np.float64).reshape(-1, 2)
    radius_um = math.sqrt(area_mm2 / math.pi) * 1000.0
    if len(pts) == 0:
        return {"count": 0, "center_xy": None, "radius_um": radius_um, "area_mm2": area_mm2}
    um = pts * np.asarray(mpp)[None, :]
    counts = [len(n) for n in cKDTree(um).query_ball_point(um, radius_um)]
    best = int(np.argmax(counts))
    return {"count": int(counts[best]), "center_xy": [float(pts[best, 0]), float(pts[best, 1])],
            "radius_um": radius_um, "area_mm2": area_mm2}


# --------------------------------------------------------------------------- executor task
_CACHE: dict[str, Any] = {}


def _segmenter(spec: Any) -> AutoSegmenter:
    if not isinstance(spec, dict):
        return spec  # an AutoSegmenter object (tests, in-process runs)
    from mfcurate.segment.spec import SegmenterSpec, auto_segmenter

    if "sam_model" in spec or "sam_checkpoint" in spec:  # already a SegmenterSpec dict
        return auto_segmenter(spec)
    opts = dict(spec)  # make_auto_segmenter-style keywords
    return auto_segmenter(SegmenterSpec.make(
        str(opts.pop("kind", "classical")), opts.pop("checkpoint", None),
        str(opts.pop("model_type", "vit_h")), str(opts.pop("device", "auto")), **opts))


def _ensemble(paths: Sequence[str], device: str) -> Ensemble:
    key = json.dumps([list(paths), device])
    if key not in _CACHE:
        _CACHE[key] = Ensemble(paths, device)
    ens: Ensemble = _CACHE[key]
    return ens


def detect_task(payload: dict[str, Any]) -> pa.Table:
    """Executor task: every candidate of one image with its ensemble score."""
    from mfcurate.io import open_image

    cfg = DetectConfig(**payload["config"])
    src = open_image(payload["path"])
    try:
        mpp = _image_mpp(src, payload["path"], payload.get("mpp"))
        ens = _ensemble(payload["models"], cfg.device)
        seg = _segmenter(payload["segmenter"])
        grid = TileGrid(src.width, src.height, cfg.tile, cfg.overlap)
        if cfg.all_tiles:
            tiles = grid.tiles()
        else:
            from mfcurate.segment.tissue import tissue_tiles

            tiles = list(tissue_tiles(src, tile=cfg.tile, overlap=cfg.overlap))
        cands, times = classify_image(src, seg, ens, cfg, mpp, grid, tiles)
    finally:
        src.close()
    area = mpp[0] * mpp[1]
    return pa.table({
        "image": [payload["name"]] * len(cands), "x": [c.x for c in cands],
        "y": [c.y for c in cands], "score": [c.score for c in cands],
        "area_um2": [c.area_px * area for c in cands],
        "seg_score": [c.seg_score for c in cands], "origin": [c.origin for c in cands],
        "member_scores": [";".join(f"{v:.6g}" for v in c.member_scores) for c in cands],
    }, schema=CANDIDATE_SCHEMA.with_metadata({
        b"mpp": json.dumps(list(mpp)).encode(),
        b"size": json.dumps([payload.get("width"), payload.get("height")]).encode(),
        b"tiles": json.dumps({"grid": len(grid), **times.as_dict()}).encode()}))


def _image_mpp(src: Any, path: str, override: float | None) -> tuple[float, float]:
    if src.mpp_x is not None and src.mpp_y is not None:
        return float(src.mpp_x), float(src.mpp_y)
    if override is not None:
        return float(override), float(override)
    raise DatasetError(f"{path}: the image has no µm/px; give --mpp")


# --------------------------------------------------------------------------- driver
@dataclass
class ImageJob:
    """One image to run detection on.

    Attributes:
        name: what the ``image`` column will hold (file name or dataset image key).
        path: image file.
        mpp: µm/px to use when the file has none.
    """

    name: str
    path: Path
    mpp: float | None = None


@dataclass
class DetectReport:
    """Outputs and per-image summary of a detection run."""

    out: Path
    detections_csv: Path
    candidates_csv: Path
    geojson: Path
    summary_json: Path
    per_image: dict[str, dict[str, Any]]


def _task_key(job: ImageJob, models: Sequence[Path], cfg: DetectConfig, seg: Any) -> str:
    h = hashlib.sha1()
    for m in models:
        st = Path(m).stat()
        h.update(f"{Path(m).resolve()}:{st.st_mtime_ns}:{st.st_size}".encode())
    h.update(json.dumps(asdict(cfg), sort_keys=True).encode())
    h.update((json.dumps(seg, sort_keys=True) if isinstance(seg, dict)
              else type(seg).__name__).encode())
    return f"{job.name}|{h.hexdigest()[:12]}"


def run_detection(
    jobs: Sequence[ImageJob],
    models: Sequence[Path | str],
    out: Path | str,
    *,
    cfg: DetectConfig | None = None,
    segmenter: dict[str, Any] | AutoSegmenter | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    progress: Callable[..., Any] | None = None,
) -> DetectReport:
    """Detect mitotic figures on images; write CSV, QuPath GeoJSON and a summary.

    Args:
        jobs: the images.
        models: run folders or ``model.pt`` files (all members are averaged).
        out: output folder: ``detections.csv`` (``image,x,y,score,...`` with
            ``score > threshold``), ``candidates.csv`` (every candidate, for threshold tuning
            and precision-recall curves), ``detections.geojson`` (QuPath points),
            ``summary.json`` (per image: candidates, figures, count per 10 HPF).
        cfg: detection options.
        segmenter: ``make_auto_segmenter`` keyword arguments (default
            ``{"kind": "classical"}``) or an :class:`AutoSegmenter` object (in-process).
        workers: local worker processes (one image per task).
        scheduler: Dask scheduler address.
        progress: per-image progress callback.

    Returns:
        A :class:`DetectReport`.
    """
    from mfcurate.executor import Task, read_outputs, run_tasks
    from mfcurate.io.geojson import write_feature_collection

    cfg = cfg or DetectConfig()
    if not jobs:
        raise UsageError("no images to run detection on")
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):
        raise UsageError("two images share a name; use distinct file names or image keys")
    model_paths = resolve_models(models)
    Ensemble(model_paths, "cpu")  # fail early on a bad model file, in this process
    seg = segmenter if segmenter is not None else {"kind": "classical"}
    out_dir = Path(out)
    tasks = [Task(_task_key(j, model_paths, cfg, seg), {
        "name": j.name, "path": str(j.path), "mpp": j.mpp, "config": asdict(cfg),
        "models": [str(p) for p in model_paths], "segmenter": seg}) for j in jobs]
    outputs = run_tasks(detect_task, tasks, out_dir / ".tasks", workers=workers,
                        scheduler=scheduler, progress=progress)
    tables = read_outputs(outputs)
    allc = pa.concat_tables([t.cast(CANDIDATE_SCHEMA) for t in tables])
    return _write_outputs(out_dir, jobs, tables, allc, cfg, model_paths,
                          write_feature_collection)


def _write_outputs(out_dir: Path, jobs: Sequence[ImageJob], tables: list[pa.Table],
                   allc: pa.Table, cfg: DetectConfig, model_paths: Sequence[Path],
                   write_fc: Callable[..., Path]) -> DetectReport:
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    from mfcurate.dataset import atomic_write_bytes, atomic_write_json
    from mfcurate.io.geojson import feature_id

    det = allc.filter(pc.greater(allc.column("score"), cfg.threshold))

    def write_csv(path: Path, t: pa.Table) -> None:
        buf = pa.BufferOutputStream()
        pacsv.write_csv(t, buf)
        atomic_write_bytes(path, buf.getvalue().to_pybytes())

    write_csv(out_dir / "detections.csv", det)
    write_csv(out_dir / "candidates.csv", allc)
    features = []
    for i, r in enumerate(det.to_pylist()):
        features.append({
            "type": "Feature", "id": feature_id(f"{r['image']}/det/{i}"),
            "geometry": {"type": "Point", "coordinates": [r["x"], r["y"]]},
            "properties": {"objectType": "annotation", "name": r["image"],
                           "classification": {"name": "mitotic figure",
                                              "color": [220, 20, 60]},
                           "measurements": {"score": r["score"]}, "isLocked": False}})
    write_fc(out_dir / "detections.geojson", features)
    per_image: dict[str, dict[str, Any]] = {}
    for job, t in zip(jobs, tables, strict=True):
        meta = t.schema.metadata or {}
        mpp = tuple(json.loads(meta.get(b"mpp", b"[null, null]")))
        s = np.asarray(t.column("score").to_numpy(), dtype=np.float64)
        keep = s > cfg.threshold
        xy = np.stack([t.column("x").to_numpy(), t.column("y").to_numpy()], 1)[keep]
        hot = hotspot_count(xy, (float(mpp[0]), float(mpp[1]))) if mpp[0] else None
        per_image[job.name] = {"path": str(job.path), "mpp": list(mpp),
                               "candidates": t.num_rows, "mitotic_figures": int(keep.sum()),
                               "count_per_10hpf": hot,
                               "tiles": json.loads(meta.get(b"tiles", b"null"))}
    summary = {"threshold": cfg.threshold, "config": asdict(cfg),
               "models": [str(p) for p in model_paths], "images": per_image}
    atomic_write_json(out_dir / "summary.json", summary)
    return DetectReport(out_dir, out_dir / "detections.csv", out_dir / "candidates.csv",
                        out_dir / "detections.geojson", out_dir / "summary.json", per_image)


def dataset_jobs(dataset: Path | str, split: str | None = "test",
                 limit: int | None = None, selection: Any = None) -> list[ImageJob]:
    """Images of a dataset split as jobs (``image`` column = image key).

    ``selection`` (a :class:`mfcurate.dataset.Selection`) narrows the images further
    (``--source``, ``--species``, ``--tumour``, ``--images``); duplicates are left out.
    """
    from dataclasses import replace as _replace

    from mfcurate.dataset import Dataset, Selection, select_images

    ds = Dataset.open(dataset)
    sel = selection if selection is not None else Selection()
    if split not in (None, "all"):
        sel = _replace(sel, splits=(split,))
    jobs = [ImageJob(im["image_key"], ds.image_path(im), im["mpp_x"])
            for im in select_images(ds, sel.check(ds)).to_pylist()]
    if not jobs:
        raise DatasetError(f"{ds.root}: no images in split {split!r}"
                           + (" matching the selection" if selection is not None else ""))
    return jobs[:limit] if limit else jobs
