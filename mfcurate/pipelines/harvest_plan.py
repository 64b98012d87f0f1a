"""Harvest planning: which images and tiles a harvest segments (level-0 px, x = column).

Per image: open it, resolve its µm/px, choose tiles over tissue (optionally only inside
regions: the annotations' surroundings or a user GeoJSON, and with ``within="tumour-region"``
only inside the source's tumour regions minus its exclusions), and cut each image's tiles into
executor task payloads for :func:`mfcurate.pipelines.harvest.harvest_tiles`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from mfcurate.errors import SourceFormatError, UsageError
from mfcurate.units import MppUnknownError, mpp_of_row

if TYPE_CHECKING:
    from mfcurate.executor import Task
    from mfcurate.pipelines.harvest import HarvestConfig, HarvestReport


@dataclass
class _ImagePlan:
    """One image to harvest: its file, size (level-0 px), µm/px and tiles on tissue."""

    source: str
    image_key: str
    path: Path
    width: int
    height: int
    mpp: float
    mpp_xy: tuple[float, float]
    tiles: list[tuple[int, int, int, int]]
    grid_total: int
    #: where objects may lie (shapely, level-0 px; ``within="tumour-region"``), else None
    allowed: Any = None


def _regions_for(cfg: HarvestConfig, path: Path, ann_boxes: np.ndarray, mpp: float
                 ) -> list[Any] | None:
    """The regions tiles must fall in (``None``: all tissue), level-0 px."""
    from mfcurate.segment.tissue import load_geojson_regions

    if cfg.regions == "tissue":
        return None
    if cfg.regions == "annotations":
        m = cfg.region_margin_um / mpp
        return [(b[0] - m, b[1] - m, b[2] + m, b[3] + m) for b in ann_boxes]
    p = Path(cfg.regions)
    if p.is_dir():
        f = p / f"{path.stem}.geojson"
        return load_geojson_regions(f) if f.exists() else []
    if not p.exists():
        raise UsageError(f"--regions {cfg.regions!r}: not 'tissue', 'annotations' or an "
                         "existing GeoJSON file/folder")
    return load_geojson_regions(p)


def _restrict(regions: list[Any] | None, allowed: Any) -> list[Any]:
    """``regions`` (None: everywhere) cut to the ``allowed`` area (level-0 px)."""
    from shapely.geometry import box

    if regions is None:
        return [allowed]
    return [allowed.intersection(box(*r) if isinstance(r, tuple | list) else r)
            for r in regions]


def _plan_image(cfg: HarvestConfig, source: str, row: dict[str, Any], path: Path,
                ann_boxes: np.ndarray, allowed: Any = None) -> _ImagePlan | str:
    """Plan one image, or return why it is skipped (one line naming the image).

    ``allowed``: the area objects may lie in (tumour regions minus cuts), or None.
    """
    from mfcurate.io.reader import open_image
    from mfcurate.segment.tissue import tile_grid, tissue_mask, tissue_tiles

    try:
        img = open_image(path)
    except (SourceFormatError, FileNotFoundError, OSError) as exc:
        return f"{row['image_key']}: cannot open {path} ({exc})"
    try:
        try:
            res = mpp_of_row(row, file_mpp=(img.mpp_x, img.mpp_y), default=cfg.default_mpp)
        except MppUnknownError:
            return f"{row['image_key']}: no µm/px (pass --default-mpp)"
        mx, my, mpp = res.x, res.y, res.iso
        regions = _regions_for(cfg, path, ann_boxes, mpp)
        if allowed is not None:
            regions = _restrict(regions, allowed)
        mask = tissue_mask(img)
        tiles = tissue_tiles(img, tile=cfg.tile, overlap=cfg.overlap, mask=mask,
                             regions=regions, min_tissue=cfg.min_tissue)
        total = len(tile_grid(img.width, img.height, cfg.tile, cfg.overlap))
        return _ImagePlan(source, str(row["image_key"]), path, img.width, img.height, mpp,
                          (float(mx), float(my)), tiles, total, allowed)
    finally:
        img.close()


def _plan_sources(ds: Any, cfg: HarvestConfig, chosen: Sequence[str],
                  exclude_parts: list[str], report: HarvestReport
                  ) -> tuple[list[_ImagePlan], dict[str, pa.Table]]:
    """Plan every image of the chosen sources; count tiles and skipped images in ``report``.

    Returns the plans (sources in order, images in table order) and each source's
    annotations (objects without the parts in ``exclude_parts``).  With
    ``cfg.within == "tumour-region"`` each image with tumour regions is planned inside them
    (counted in ``report.within_regions``), the others as before (``report.within_fallback``).
    """
    from mfcurate.regions import allowed_by_image

    plans: list[_ImagePlan] = []
    anns_by_source: dict[str, pa.Table] = {}
    for src in chosen:
        areas = allowed_by_image(ds.regions(src)) if cfg.within == "tumour-region" else {}
        anns = ds.objects(sources=[src], exclude_parts=exclude_parts)
        anns_by_source[src] = anns
        images = ds.images(sources=[src]).to_pylist()
        akeys = np.asarray(anns.column("image_key").to_pylist(), dtype=object)
        aboxes = np.asarray(anns.column("bbox_xyxy").to_pylist(), dtype=np.float64
                            ).reshape(-1, 4)
        for row in images:
            if not row["file_found"]:
                report.images_skipped.append(f"{row['image_key']}: file not found at ingest")
                continue
            allowed = areas.get(str(row["image_key"]))
            plan = _plan_image(cfg, src, row, ds.image_path(row),
                               aboxes[akeys == row["image_key"]] if len(akeys) else aboxes,
                               allowed)
            if isinstance(plan, str):
                report.images_skipped.append(plan)
                continue
            if cfg.within != "all" and allowed is None:
                report.within_fallback.append(plan.image_key)
            elif allowed is not None:
                report.within_regions += 1
            plans.append(plan)
            report.tiles_total += plan.grid_total
            report.tiles_on_tissue += len(plan.tiles)
    return plans, anns_by_source


def tiles_digest(tiles: Sequence[tuple[int, int, int, int]]) -> str:
    """12 hex digits of sha1 over an image's selected tiles ``(x, y, w, h)`` (level-0 px)."""
    text = json.dumps([[int(v) for v in t] for t in tiles], separators=(",", ":"))
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _tile_tasks(plans: Sequence[_ImagePlan], cfg: HarvestConfig, spec: dict[str, Any]
                ) -> list[Task]:
    """Executor tasks of ``cfg.tiles_per_task`` tiles each (ids ``<image_key>|<first>``).

    A task's output depends on its image's whole tile plan (tile indices, the seam rule's
    neighbours); ``cfg.digest()`` names that plan's settings, but with ``within`` set the plan
    also follows the image's regions, which a re-ingest may change under the same settings.
    Then the id is ``<image_key>|<tiles_digest>|<first>``: tiles planned anew from changed
    regions are segmented anew, and an unchanged plan reuses its outputs.  Without
    ``within`` the ids (and so earlier work folders) stay as they were.
    """
    from mfcurate.executor import Task

    tasks: list[Task] = []
    for plan in plans:
        prefix = plan.image_key
        if cfg.within != "all":
            prefix = f"{plan.image_key}|{tiles_digest(plan.tiles)}"
        for b in range(0, len(plan.tiles), max(cfg.tiles_per_task, 1)):
            idx = list(range(b, min(b + cfg.tiles_per_task, len(plan.tiles))))
            payload = {"path": str(plan.path), "image_key": plan.image_key, "mpp": plan.mpp,
                       "width": plan.width, "height": plan.height, "tiles": idx,
                       "tile": cfg.tile, "overlap": cfg.overlap,
                       "all_tiles": plan.tiles, "spec": spec}
            tasks.append(Task(f"{prefix}|{b}", payload))
    return tasks
