"""SAM-AUG: harvest every cell-scale object on the tissue as background objects.

Flow (``mfcurate harvest DATASET``; step ``harvest`` in recipes and the demo):

1. per image: tissue mask from a low-resolution level, tiles of ``tile`` px at level 0 with
   ``overlap`` px overlap over tissue (optionally only inside regions: the annotations'
   surroundings or a user GeoJSON; with ``within="tumour-region"`` only inside the source's
   tumour regions minus their exclusions, :mod:`mfcurate.regions`) -- glass never reaches
   the segmenter;
2. tile batches go through :func:`mfcurate.executor.run_tasks` (local processes or Dask,
   resumable; per-task Parquet in ``DATASET/.work/harvest/<settings-hash>/``): each tile is
   segmented by the automatic segmenter (SAM when a checkpoint is given, classical
   otherwise) with the area filter in µm² through the image's µm/px, and objects cut by a
   tile edge are dropped when another tile holds them whole;
3. per image: duplicates across seams are removed, objects are labelled against the
   annotations (:mod:`mfcurate.pipelines.harvest_merge`: the match of a figure, the parts of
   a figure -- an object centred inside a figure's box or overlapping its mask is linked to
   it and never a negative --, objects near an annotation, background), and written as part
   ``harvest`` of the source (keys ``<image_key>/harvest/<n>``, numbered by position);
   annotations of figures without a mask get the union of the matched object's and the
   parts' masks through the ``harvest-fill`` layer.
   Both parts of a source are one commit, and harvest reads the dataset without them, so a
   rerun is a no-op and a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from mfcurate.errors import MfcurateError, UsageError
from mfcurate.pipelines.harvest_plan import _ImagePlan, _plan_sources, _tile_tasks
from mfcurate.pipelines.harvest_report import HarvestReport
from mfcurate.pipelines.steps import StepContext, step
from mfcurate.units import area_um2

HARVEST_PART = "harvest"
FILL_PART = "harvest-fill"
#: Values of :attr:`HarvestConfig.within`.
WITHIN = ("all", "tumour-region")


@dataclass(frozen=True)
class HarvestConfig:
    """Settings of a harvest run (all µm values go through each image's µm/px).

    Attributes:
        backend: ``"auto"`` (SAM when ``checkpoint`` is set, else classical), ``"sam"``,
            ``"sam_stock"`` or ``"classical"``.
        checkpoint: SAM weights file.
        model_type: SAM architecture of the checkpoint (``vit_h`` as in the paper).
        device: torch device for SAM.
        tile: tile side, level-0 px.
        overlap: tile overlap, level-0 px (larger than the largest object).
        tiles_per_task: tiles per executor task.
        min_tissue: minimal tissue fraction of a tile.
        regions: ``"tissue"`` (all tissue), ``"annotations"`` (tissue within
            ``region_margin_um`` of any annotation) or a GeoJSON file (applies to every
            image) / folder of ``<image stem>.geojson`` files, level-0 px.
        region_margin_um: margin around annotations for ``regions="annotations"``.
        within: ``"all"`` (the tiles ``regions`` chooses) or ``"tumour-region"``: only inside
            the source's tumour regions minus its exclusion, necrosis and blurred regions
            (the ``regions`` table, :func:`mfcurate.regions.allowed_area`), on images that
            have them; tiles must overlap that area and objects whose centre lies outside it
            are dropped.  Images without tumour regions keep ``regions`` (and are listed in
            :attr:`HarvestReport.within_fallback`).
        match_radius_um: centroid distance of a match with an annotated figure.
        match_iou: mask IoU of a match where the annotation has a mask.
        exclusion_radius_um: objects this close to any annotation are never background.
        near_policy: ``"flag"`` (keep as flagged ``other_cell``) or ``"drop"``.
        seam_iou: mask IoU above which two objects from different tiles are duplicates.
        fill_annotation_masks: give matched figure annotations without a mask (or with a
            ``disk`` placeholder) the harvested mask.
        default_mpp: µm/px for images whose table and file give none (else they are skipped).
        amg: segmenter options (SAM keyword names, or the classical options), e.g.
            ``{"points_per_side": 64, "pred_iou_thresh": 0.8}``; ``min_area_um2`` and
            ``max_area_um2`` (default 2.25, 225) apply to both backends.
    """

    backend: str = "auto"
    checkpoint: str | None = None
    model_type: str = "vit_h"
    device: str = "auto"
    tile: int = 1024
    overlap: int = 128
    tiles_per_task: int = 4
    min_tissue: float = 0.02
    regions: str = "tissue"
    region_margin_um: float = 128.0
    within: str = "all"
    match_radius_um: float = 7.5
    match_iou: float = 0.5
    exclusion_radius_um: float = 15.0
    near_policy: str = "flag"
    seam_iou: float = 0.5
    fill_annotation_masks: bool = True
    default_mpp: float | None = None
    amg: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.backend not in ("auto", "sam", "sam_stock", "classical"):
            raise UsageError(f"unknown backend {self.backend!r}; choose auto, sam, sam_stock "
                             "or classical")
        if self.within not in WITHIN:
            raise UsageError(f"within must be one of {', '.join(WITHIN)}, not {self.within!r}")
        if self.near_policy not in ("flag", "drop"):
            raise UsageError(f"near_policy must be 'flag' or 'drop', not {self.near_policy!r}")
        if self.tile < 64 or not 0 <= self.overlap < self.tile:
            raise UsageError(f"need tile >= 64 and 0 <= overlap < tile (tile={self.tile}, "
                             f"overlap={self.overlap})")
        if self.kind != "classical" and not self.checkpoint:
            raise UsageError(f"backend {self.backend!r} needs --checkpoint")
        if self.kind != "classical":
            self._amg_options()  # a bad SAM option is a usage error before any work

    def _amg_options(self) -> dict[str, Any]:
        """Every SAM generator setting, defaults resolved (part of the digest)."""
        from mfcurate.segment.auto_sam import AmgOptions

        try:
            return AmgOptions.from_kwargs(**self.amg).as_dict()
        except (TypeError, ValueError) as exc:
            raise UsageError(str(exc)) from exc

    @property
    def kind(self) -> str:
        """The segmenter kind this config resolves to."""
        if self.backend == "auto":
            return "sam" if self.checkpoint else "classical"
        return self.backend

    def segmenter_spec(self) -> dict[str, Any]:
        """Picklable description of the segmenter (a :class:`SegmenterSpec` as a dict)."""
        from mfcurate.segment.spec import SegmenterSpec

        sam = self.kind != "classical"
        return SegmenterSpec.make(self.kind, self.checkpoint if sam else None,
                                  self.model_type, self.device if sam else "auto",
                                  **dict(self.amg)).to_dict()

    def digest(self) -> str:
        """Hash of everything that changes the per-tile results (names the work folder)."""
        d = {"seg": self.segmenter_spec(), "tile": self.tile, "overlap": self.overlap,
             "min_tissue": self.min_tissue, "regions": self.regions,
             "margin": self.region_margin_um}
        if self.within != "all":  # the tiles chosen change; "all" keeps earlier digests
            d["within"] = self.within
        if self.kind != "classical":  # defaults (e.g. the point prior) change the results
            d["amg"] = self._amg_options()
        if self.checkpoint:
            p = Path(self.checkpoint)
            d["ckpt"] = [str(p.resolve()), p.stat().st_size if p.exists() else None,
                         p.stat().st_mtime if p.exists() else None]
        return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]


# --------------------------------------------------------------------------- worker side
def _segmenter(spec: dict[str, Any]) -> Any:
    """The worker's segmenter (the one cache of :mod:`mfcurate.segment.spec`)."""
    from mfcurate.segment.spec import auto_segmenter

    return auto_segmenter(spec)


def harvest_tiles(payload: dict[str, Any]) -> pa.Table:
    """Executor task: segment a batch of tiles of one image; return candidate rows.

    ``payload`` keys: ``path``, ``image_key``, ``mpp``, ``width``, ``height``, ``tiles``
    (indices into ``all_tiles``), ``all_tiles`` (every selected tile of the image, for the
    edge rule), ``spec`` (segmenter spec).
    """
    from mfcurate.geometry import mask_to_record
    from mfcurate.io.reader import open_image
    from mfcurate.tiling import TileGrid

    seg = _segmenter(payload["spec"])
    all_tiles = [(int(t[0]), int(t[1]), int(t[2]), int(t[3])) for t in payload["all_tiles"]]
    selected = set(all_tiles)
    grid = TileGrid(int(payload["width"]), int(payload["height"]), int(payload["tile"]),
                    int(payload["overlap"]))
    cols: dict[str, list[Any]] = {c: [] for c in _CANDIDATE_SCHEMA.names}
    img = open_image(Path(payload["path"]))
    try:
        for ti in payload["tiles"]:
            tx, ty, tw, th = all_tiles[ti]
            rgb = img.read_region(tx, ty, tw, th)
            for n, inst in enumerate(seg.segment_tile(rgb, float(payload["mpp"]))):
                ox, oy = inst.offset_xy
                rec = mask_to_record(inst.mask, (tx + ox, ty + oy))
                if rec is None:
                    continue
                box, rle, area, (cx, cy) = rec
                if not grid.keep(box, all_tiles[ti], selected):
                    continue  # cut by the seam; another tile holds it whole
                for k, v in (("image_key", payload["image_key"]), ("tile_index", ti),
                             ("inst_index", n), ("x0", box[0]), ("y0", box[1]),
                             ("x1", box[2]), ("y1", box[3]), ("rle", rle), ("area_px", area),
                             ("cx", cx), ("cy", cy), ("score", float(inst.score)),
                             ("stability", inst.stability), ("origin", inst.origin)):
                    cols[k].append(v)
    finally:
        img.close()
    return pa.table(cols, schema=_CANDIDATE_SCHEMA)


_CANDIDATE_SCHEMA = pa.schema([
    ("image_key", pa.string()), ("tile_index", pa.int64()), ("inst_index", pa.int64()),
    ("x0", pa.float64()), ("y0", pa.float64()), ("x1", pa.float64()), ("y1", pa.float64()),
    ("rle", pa.string()), ("area_px", pa.int64()), ("cx", pa.float64()), ("cy", pa.float64()),
    ("score", pa.float64()), ("stability", pa.float64()), ("origin", pa.string()),
])



# --------------------------------------------------------------------------- main entry
def harvest_dataset(
    dataset: Path | str,
    config: HarvestConfig | None = None,
    sources: Sequence[str] | None = None,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    progress: Callable[..., Any] | None = None,
    overlay: Path | None = None,
) -> HarvestReport:
    """Harvest background objects for some (default all) sources of a dataset.

    Args:
        dataset: dataset folder.
        config: settings (default: classical backend, paper settings).
        sources: source keys (default: every source).
        workers: local worker processes.
        scheduler: Dask scheduler address (or ``"local"``).
        progress: ``progress(n=1, total=None, objects=0)`` per finished task.
        overlay: write a PNG overlay of one tile here (the tile with the most annotated
            figures, else the most objects).

    Returns:
        A :class:`HarvestReport`.

    Raises:
        UsageError: unknown source or bad settings.
        MfcurateError: the dataset cannot be read or written.
    """
    from mfcurate.dataset import Dataset
    from mfcurate.executor import run_tasks

    cfg = config or HarvestConfig()
    if cfg.checkpoint and not Path(cfg.checkpoint).is_file():
        raise MfcurateError(f"SAM checkpoint {cfg.checkpoint} does not exist (download it "
                            "yourself; mfcurate never downloads weights)")
    ds = Dataset.open(dataset)
    chosen = list(sources) if sources else ds.sources
    unknown = [s for s in chosen if s not in ds.sources]
    if unknown:
        raise UsageError(f"source(s) {unknown} not in {dataset} (has {ds.sources})")
    work = ds.work_dir / "harvest" / cfg.digest()
    report = HarvestReport(backend=cfg.kind, work_dir=str(work))
    spec = cfg.segmenter_spec()
    plans, anns_by_source = _plan_sources(ds, cfg, chosen, [HARVEST_PART, FILL_PART], report)
    report.images = len(plans)
    if not plans and report.images_skipped:
        raise MfcurateError(f"{dataset}: no image to harvest could be read "
                            f"({len(report.images_skipped)} skipped, e.g. "
                            f"{report.images_skipped[0]}); nothing was changed")
    tasks = _tile_tasks(plans, cfg, spec)
    outputs = run_tasks(harvest_tiles, tasks, work / "tiles", workers=workers,
                        scheduler=scheduler, progress=progress)
    by_image: dict[str, list[Path]] = {}
    for t, out in zip(tasks, outputs, strict=True):
        by_image.setdefault(t.payload["image_key"], []).append(out)
    _merge_and_write(ds, cfg, plans, by_image, anns_by_source, report, overlay)
    return report


def _candidates(paths: Sequence[Path]) -> pa.Table:
    from mfcurate.executor import read_outputs

    tables = [t.cast(_CANDIDATE_SCHEMA) for t in read_outputs(paths)]
    return pa.concat_tables(tables) if tables else _CANDIDATE_SCHEMA.empty_table()


def _merge_and_write(ds: Any, cfg: HarvestConfig, plans: list[_ImagePlan],
                     by_image: dict[str, list[Path]], anns_by_source: dict[str, pa.Table],
                     report: HarvestReport, overlay: Path | None) -> None:
    """Per source, stream one image at a time: seams, labels, rows -> part ``harvest``."""
    import pyarrow.compute as pc

    from mfcurate.schemas.tables import OBJECTS_SCHEMA

    by_source: dict[str, list[_ImagePlan]] = {}
    for p in plans:
        by_source.setdefault(p.source, []).append(p)
    best: dict[str, Any] = {"score": None}
    for src, src_plans in by_source.items():
        anns = anns_by_source[src]
        fills: dict[str, dict[str, Any]] = {}
        counts = {"background": 0, "match": 0, "part": 0, "near": 0, "near_dropped": 0}

        def tables(src_plans: list[_ImagePlan] = src_plans, anns: pa.Table = anns,
                   counts: dict[str, int] = counts,
                   fills: dict[str, dict[str, Any]] = fills) -> Any:
            for plan in src_plans:
                sub = _candidates(by_image.get(plan.image_key, []))
                report.candidates += sub.num_rows
                img_anns = anns.filter(pc.equal(anns.column("image_key"), plan.image_key))
                out = _image_rows(cfg, plan, sub, img_anns, report, counts, fills)
                for ti, score in out["tile_scores"].items():
                    if best["score"] is None or score > best["score"]:
                        best.update(score=score, plan=plan, tile=ti, data=out)
                yield pa.Table.from_pylist(out["rows"], schema=OBJECTS_SCHEMA)

        _write_source(ds, src, tables(), fills)
        report.by_source[src] = dict(counts)
        report.background += counts["background"]
        report.matched += counts["match"]
        report.parts += counts["part"]
        report.near += counts["near"]
        report.near_dropped += counts["near_dropped"]
        report.annotation_masks_filled += len(fills)
    if overlay is not None and best["score"] is not None:
        _write_overlay(overlay, cfg, best["plan"], best["tile"], best["data"])
        report.overlay = str(overlay)


def _image_rows(cfg: HarvestConfig, plan: _ImagePlan, sub: pa.Table, img_anns: pa.Table,
                report: HarvestReport, counts: dict[str, int],
                fills: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One image's seam de-duplication, labels and object rows (in position order).

    Counts into ``report``/``counts``; adds the image's ``harvest-fill`` values to ``fills``.
    Returns ``rows``, ``tile_scores`` (tile -> (figures, objects)), ``cands``, ``kinds``
    and ``ann`` (the last three for the overlay).
    """
    from mfcurate.pipelines.harvest_merge import dedup_seams, label_candidates

    c = _candidates_of(sub)
    keep = dedup_seams(c, cfg.seam_iou)
    report.seam_duplicates += len(c) - len(keep)
    c = c.take(keep)
    if plan.allowed is not None:  # within the tumour regions: centres inside the area
        from mfcurate.regions import inside

        ok = inside(plan.allowed, c.centroids)
        report.outside_region += int((~ok).sum())
        c = c.take(np.flatnonzero(ok))
    # stable numbering by position (row-major on the centroid), then tile/instance
    order = np.lexsort((c.inst_index, c.tile_index, np.round(c.centroids[:, 0], 3),
                        np.round(c.centroids[:, 1], 3)))
    c = c.take(order)
    a = img_anns.to_pydict()
    ann = _annotations_of(a)
    res = label_candidates(c, ann, plan.mpp, cfg.match_radius_um, cfg.match_iou,
                           cfg.exclusion_radius_um)
    rows: list[dict[str, Any]] = []
    n = 0
    pieces: dict[str, list[tuple[str, int, str]]] = {}  # figure -> (kind, candidate, key)
    tile_scores: dict[int, tuple[int, int]] = {}
    kinds: list[str] = []
    for i, dec in enumerate(res.decisions):
        ti = int(c.tile_index[i])
        fig = 1 if dec.kind == "match" else 0
        s = tile_scores.get(ti, (0, 0))
        tile_scores[ti] = (s[0] + fig, s[1] + 1)
        kinds.append(dec.kind)
        if dec.kind == "near" and cfg.near_policy == "drop":
            counts["near_dropped"] += 1
            continue
        counts[dec.kind] += 1
        key = f"{plan.image_key}/harvest/{n}"
        n += 1
        row = _object_row(cfg, plan, c, i, dec, key, n - 1)
        if dec.kind in ("match", "part"):
            k_ann = int(dec.annotation or 0)
            akey = ann.keys[k_ann]
            flag = "duplicate_of_annotation" if dec.kind == "match" else "fragment_of_figure"
            row.update(label=ann.labels[k_ann], parent_key=akey, qa_state="rejected",
                       qa_flags=[flag])
            orig_rle = a["mask_rle"][k_ann]
            orig_origin = a["mask_origin"][k_ann]
            if cfg.fill_annotation_masks and (orig_rle is None or orig_origin == "disk"):
                pieces.setdefault(akey, []).append((dec.kind, i, key))
        elif dec.kind == "near":
            row.update(label="other_cell", parent_key=ann.keys[int(dec.annotation or 0)],
                       qa_state="flagged", qa_flags=["near_annotation"])
        rows.append(row)
    for akey, items in pieces.items():
        fill = _fill_of(c, items, plan)
        if fill is not None:
            fills[akey] = fill
    return {"rows": rows, "tile_scores": tile_scores, "cands": c, "kinds": kinds,
            "ann": ann}


def _candidates_of(sub: pa.Table) -> Any:
    """The candidate table of one image as :class:`~.harvest_merge.Candidates` arrays."""
    from mfcurate.pipelines.harvest_merge import Candidates

    d = sub.to_pydict()
    return Candidates(
        np.asarray(d["tile_index"], np.int64), np.asarray(d["inst_index"], np.int64),
        np.asarray([d["x0"], d["y0"], d["x1"], d["y1"]], np.float64).T.reshape(-1, 4),
        list(d["rle"]), np.asarray(d["area_px"], np.int64),
        np.asarray([d["cx"], d["cy"]], np.float64).T.reshape(-1, 2),
        np.asarray(d["score"], np.float64), list(d["stability"]), list(d["origin"]))


def _annotations_of(a: dict[str, list[Any]]) -> Any:
    """One image's annotation rows (``to_pydict``) as :class:`~.harvest_merge.Annotations`."""
    from mfcurate.pipelines.harvest_merge import Annotations

    return Annotations(list(a["object_key"]), list(a["label"]),
                       np.asarray(a["centroid_xy"], np.float64).reshape(-1, 2),
                       np.asarray(a["bbox_xyxy"], np.float64).reshape(-1, 4),
                       [r if o != "disk" else None  # a disk placeholder is no nucleus mask
                        for r, o in zip(a["mask_rle"], a["mask_origin"], strict=True)],
                       np.asarray([b if b is not None else [np.nan] * 4
                                   for b in a["source_bbox_xyxy"]], np.float64).reshape(-1, 4))


def _object_row(cfg: HarvestConfig, plan: _ImagePlan, c: Any, i: int, dec: Any, key: str,
                n: int) -> dict[str, Any]:
    """The ``OBJECTS_SCHEMA`` row of candidate ``i`` as background (key ``key``, number ``n``)."""
    from mfcurate.pipelines.harvest_merge import decision_extra

    ti = int(c.tile_index[i])
    return {
        "object_key": key, "image_key": plan.image_key, "source": plan.source,
        "source_annotation_id": f"harvest/{n}", "source_file": None,
        "label": "background", "source_label": None, "label_origin": "model",
        "votes": None, "confidence": None,
        "centroid_xy": [float(c.centroids[i, 0]), float(c.centroids[i, 1])],
        "bbox_xyxy": [float(v) for v in c.boxes[i]], "mask_rle": c.rles[i],
        "mask_origin": c.origin[i],
        "mask_score": float(c.score[i]), "area_px": int(c.area_px[i]),
        "area_um2": area_um2(int(c.area_px[i]), *plan.mpp_xy), "qa_state": "unreviewed",
        "qa_flags": None, "parent_key": None,
        "extra": decision_extra(dec, plan.tiles[ti], c.stability[i], cfg.kind),
    }


def _fill_of(c: Any, items: list[tuple[str, int, str]], plan: _ImagePlan
             ) -> dict[str, Any] | None:
    """The ``harvest-fill`` values of a figure: its match's mask united with its parts'.

    Only figures with a match are filled (parts alone are pieces, not the figure); the
    score is the match's.
    """
    from mfcurate.geometry import mask_to_record

    match = next((it for it in items if it[0] == "match"), None)
    if match is None:
        return None
    idx = [match[1]] + [i for kind, i, _ in items if kind == "part"]
    x0 = int(min(np.floor(c.boxes[i][0]) for i in idx))
    y0 = int(min(np.floor(c.boxes[i][1]) for i in idx))
    x1 = int(max(np.ceil(c.boxes[i][2]) for i in idx))
    y1 = int(max(np.ceil(c.boxes[i][3]) for i in idx))
    canvas = np.zeros((y1 - y0, x1 - x0), bool)
    for i in idx:
        m = c.mask(i)
        bx, by = int(np.floor(c.boxes[i][0])) - x0, int(np.floor(c.boxes[i][1])) - y0
        canvas[by:by + m.shape[0], bx:bx + m.shape[1]] |= m
    rec = mask_to_record(canvas, (x0, y0))
    if rec is None:
        return None
    box, rle, area, _ = rec
    i = match[1]
    return {"bbox_xyxy": [float(v) for v in box], "mask_rle": rle,
            "mask_origin": c.origin[i], "mask_score": float(c.score[i]),
            "area_px": int(area), "area_um2": area_um2(int(area), *plan.mpp_xy),
            "from": match[2], "parts": [k for kind, _, k in items if kind == "part"]}


def _write_source(ds: Any, src: str, tables: Any, fills: dict[str, dict[str, Any]]) -> None:
    """One commit: part ``harvest`` (streamed), then the ``harvest-fill`` layer."""
    ds.write_parts({(src, HARVEST_PART): tables, (src, FILL_PART): _fill_rows(fills)})


def _fill_rows(fills: dict[str, dict[str, Any]]) -> Any:
    """The ``harvest-fill`` layer rows.

    A generator: the commit reads it after streaming the ``harvest`` part, when ``fills``
    is complete.
    """
    from mfcurate.schemas.tables import LAYER_SCHEMA

    rows = []
    for key in sorted(fills):
        f = fills[key]
        row = {k: v for k, v in f.items() if k not in ("from", "parts")}
        info: dict[str, Any] = {"from": f["from"]}
        if f.get("parts"):
            info["parts"] = f["parts"]
        row.update(object_key=key, qa_state="unreviewed",
                   step_info=json.dumps(info, sort_keys=True))
        rows.append(row)
    yield pa.Table.from_pylist(rows, schema=LAYER_SCHEMA)


def _write_overlay(path: Path, cfg: HarvestConfig, plan: _ImagePlan, ti: int,
                   data: dict[str, Any]) -> None:
    import cv2

    from mfcurate.io.reader import open_image
    from mfcurate.pipelines.harvest_merge import draw_overlay

    tx, ty, tw, th = plan.tiles[ti]
    with open_image(plan.path) as img:
        rgb = img.read_region(tx, ty, tw, th)
    c = data["cands"]
    objs = []
    for i in range(len(c)):
        b = c.boxes[i]
        if b[2] <= tx or b[0] >= tx + tw or b[3] <= ty or b[1] >= ty + th:
            continue
        objs.append((b, c.mask(i), data["kinds"][i]))
    ann = data["ann"]
    anns = [((float(ann.centroids[k, 0]), float(ann.centroids[k, 1])), ann.labels[k])
            for k in range(len(ann))]
    out = draw_overlay(rgb, (tx, ty), objs, anns, plan.mpp, cfg.exclusion_radius_um)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    if not cv2.imwrite(str(tmp), cv2.cvtColor(out, cv2.COLOR_RGB2BGR)):
        raise MfcurateError(f"{path}: could not write the overlay PNG")
    tmp.replace(path)


# --------------------------------------------------------------------------- the step
@step("harvest")
def harvest_step(ctx: StepContext, sources: Sequence[Any] | None = None,
                 overlay: bool = True, sam_checkpoint: str | None = None,
                 sam_model: str | None = None, **options: Any) -> dict[str, Any]:
    """Recipe/demo step: harvest background objects (options as :class:`HarvestConfig`).

    Options that are not fields of :class:`HarvestConfig` are segmenter options (e.g.
    ``points_per_side``); ``sam_checkpoint``/``sam_model`` (what ``mfcurate demo
    --sam-checkpoint`` passes to every step) are aliases of ``checkpoint``/``model_type``.
    Writes ``harvest_overlay.png`` (one tile with the harvested outlines) into
    ``ctx.work_dir`` and returns the report as a dict.
    """
    known = set(HarvestConfig.__dataclass_fields__)
    if sam_checkpoint:
        options.setdefault("checkpoint", str(sam_checkpoint))
    if sam_model:
        options.setdefault("model_type", sam_model)
    amg = dict(options.pop("amg", {}) or {})
    for k in list(options):
        if k not in known:
            amg[k] = options.pop(k)
    cfg = HarvestConfig(amg=amg, **options)
    png = Path(ctx.work_dir) / "harvest_overlay.png" if overlay else None
    ctx.console.print(f"harvest: backend {cfg.kind}, tiles {cfg.tile} px, overlap "
                      f"{cfg.overlap} px")
    # a recipe hands its [[sources]] entries ({key, root, options}); a caller may pass keys
    keys = [str(s["key"]) if isinstance(s, dict) else str(s) for s in sources or []]
    rep = harvest_dataset(ctx.dataset, cfg, keys or None, workers=ctx.workers,
                          scheduler=ctx.scheduler, overlay=png)
    if rep.within_line():
        ctx.console.print(rep.within_line(), markup=False)
    ctx.state["harvest"] = rep.as_dict()
    return rep.as_dict()
