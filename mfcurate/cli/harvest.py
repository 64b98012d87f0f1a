"""``mfcurate harvest DATASET [--sources ...]``: SAM-AUG background objects."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mfcurate.cli._common import (
    DatasetArg,
    SchedulerOpt,
    WorkersOpt,
    console,
    err_console,
    mpp_value,
    positive,
    progress_callback,
    reports_errors,
)

if TYPE_CHECKING:
    from mfcurate.pipelines.harvest import HarvestConfig, HarvestReport


def register(app: typer.Typer) -> None:
    """Attach the command to the app."""
    app.command(
        "harvest",
        help="Harvest every cell-scale object on the tissue as background objects (SAM-AUG).\n\n"
             "Example: [bold]mfcurate harvest ds --checkpoint sam_vit_h_4b8939.pth "
             "--device cuda[/bold]\n\n"
             "Without --checkpoint the classical nucleus segmenter is used.  Objects matching "
             "an annotated figure, and pieces of it (centred in its box or overlapping its "
             "mask), are linked to it and never negatives; objects near any annotation are "
             "flagged "
             "other_cell (or dropped with --near-policy drop), never background.  Rerunning "
             "with the same settings resumes.",
    )(harvest)


@reports_errors
def harvest(
    dataset: DatasetArg,
    sources: Annotated[list[str] | None, typer.Option(
        "--source", "--sources", "-s",
        help="Source key(s) to harvest (repeatable or comma-separated); default: all.")]
    = None,
    checkpoint: Annotated[Path | None, typer.Option(
        help="SAM checkpoint (.pth); default: classical segmenter.")] = None,
    model_type: Annotated[str, typer.Option(
        help="SAM architecture of the checkpoint: vit_h, vit_l, vit_b, tiny.")] = "vit_h",
    backend: Annotated[str, typer.Option(
        help="auto, sam, sam_stock (segment_anything's generator) or classical.")] = "auto",
    device: Annotated[str, typer.Option(
        help="Torch device for SAM (cpu, cuda; auto: CUDA when available).")] = "auto",
    tile: Annotated[int, typer.Option(help="Tile side in level-0 px.")] = 1024,
    overlap: Annotated[int, typer.Option(help="Tile overlap in level-0 px.")] = 128,
    tiles_per_task: Annotated[int, typer.Option(help="Tiles per executor task.")] = 4,
    regions: Annotated[str, typer.Option(
        help="tissue (all tissue), annotations (tissue near annotations) or a GeoJSON "
             "file/folder of regions in level-0 px.")] = "tissue",
    within: Annotated[str, typer.Option(
        help="all, or tumour-region: only inside the sources' tumour regions minus their "
             "exclusion/necrosis/blurred regions (kept at ingest: CMC _ROI, CCMCT "
             "Tumorzone), on images that have them; others are harvested as --regions "
             "says.")] = "all",
    points_per_side: Annotated[int | None, typer.Option(
        help="SAM point grid side (default 64).")] = None,
    points_per_batch: Annotated[int | None, typer.Option(
        help="SAM prompts decoded together (default 64).")] = None,
    pred_iou_thresh: Annotated[float | None, typer.Option(
        help="SAM: keep predicted IoU above this (default 0.8).")] = None,
    stability_score_thresh: Annotated[float | None, typer.Option(
        help="SAM: keep stability at least this (default 0.8).")] = None,
    box_nms_thresh: Annotated[float | None, typer.Option(
        help="SAM: box NMS IoU (default 0.7).")] = None,
    point_prior: Annotated[str | None, typer.Option(
        help="SAM: prompt grid points on nuclei (default), tissue, or none (every point, "
             "as segment_anything).")] = None,
    min_area_um2: Annotated[float, typer.Option(help="Smallest mask area, µm².")] = 2.25,
    max_area_um2: Annotated[float, typer.Option(help="Largest mask area, µm².")] = 225.0,
    match_radius_um: Annotated[float, typer.Option(
        callback=positive,
        help="Centroid distance of a match with an annotated figure, µm.")] = 7.5,
    exclusion_radius_um: Annotated[float, typer.Option(
        callback=positive,
        help="Objects this close to any annotation are never background, µm.")] = 15.0,
    near_policy: Annotated[str, typer.Option(
        help="flag (keep as flagged other_cell) or drop.")] = "flag",
    default_mpp: Annotated[float | None, typer.Option(
        callback=mpp_value, help="µm/px for images without one (else they are skipped).")] = None,
    overlay: Annotated[Path | None, typer.Option(
        help="Write a PNG overlay of one tile here.")] = None,
    workers: WorkersOpt = 1,
    scheduler: SchedulerOpt = None,
) -> None:
    """Harvest background objects."""
    from mfcurate.pipelines.harvest import harvest_dataset

    srcs = [s.strip() for item in (sources or []) for s in item.split(",") if s.strip()]
    sam_opts = {"points_per_side": points_per_side, "points_per_batch": points_per_batch,
                "pred_iou_thresh": pred_iou_thresh,
                "stability_score_thresh": stability_score_thresh,
                "box_nms_thresh": box_nms_thresh, "point_prior": point_prior}
    cfg = _config(sam_opts, backend=backend, checkpoint=checkpoint, model_type=model_type,
                  device=device, tile=tile, overlap=overlap, tiles_per_task=tiles_per_task,
                  regions=regions, within=within, min_area_um2=min_area_um2,
                  max_area_um2=max_area_um2,
                  match_radius_um=match_radius_um, exclusion_radius_um=exclusion_radius_um,
                  near_policy=near_policy, default_mpp=default_mpp)
    with progress_callback("harvest tiles", unit="objects") as advance:
        rep = harvest_dataset(dataset, cfg, srcs or None, workers=workers,
                              scheduler=scheduler, progress=advance, overlay=overlay)
    _print_summary(rep)


def _config(sam_opts: Mapping[str, object], *, backend: str, checkpoint: Path | None,
            model_type: str, device: str, tile: int, overlap: int, tiles_per_task: int,
            regions: str, within: str, min_area_um2: float, max_area_um2: float,
            match_radius_um: float,
            exclusion_radius_um: float, near_policy: str,
            default_mpp: float | None) -> HarvestConfig:
    """The pipeline's config from the command's options.

    ``sam_opts`` are the SAM generator options as given (None: not given); the given ones
    override the defaults in ``HarvestConfig.amg``.

    Raises:
        UsageError: SAM options given while the classical segmenter is used.
    """
    from mfcurate.pipelines.harvest import HarvestConfig

    amg: dict[str, object] = {"min_area_um2": min_area_um2, "max_area_um2": max_area_um2}
    given = {k: v for k, v in sam_opts.items() if v is not None}
    cfg = HarvestConfig(backend=backend, checkpoint=str(checkpoint) if checkpoint else None,
                        model_type=model_type, device=device, tile=tile, overlap=overlap,
                        tiles_per_task=tiles_per_task, regions=regions, within=within,
                        match_radius_um=match_radius_um,
                        exclusion_radius_um=exclusion_radius_um, near_policy=near_policy,
                        default_mpp=default_mpp, amg={**amg, **given})
    if cfg.kind == "classical" and given:
        from mfcurate.errors import UsageError

        raise UsageError(f"SAM option(s) {sorted(given)} need --checkpoint (the classical "
                         "segmenter has no point grid)")
    return cfg


def _print_summary(rep: HarvestReport) -> None:
    """Print the run's counts, the overlay path and up to 5 skipped images."""
    skipped = rep.tiles_total - rep.tiles_on_tissue
    console.print(
        f"[green]harvested[/green] {rep.images} images with {rep.backend}: "
        f"{rep.tiles_on_tissue} tiles on tissue ({skipped} of {rep.tiles_total} skipped as "
        f"glass/outside regions), {rep.background} background, {rep.matched} matched to "
        f"figures, {rep.parts} parts of figures linked, {rep.near} near annotations "
        f"(flagged), {rep.near_dropped} dropped, "
        f"{rep.seam_duplicates} seam duplicates removed, {rep.annotation_masks_filled} "
        f"annotation masks filled")
    if rep.within_line():
        console.print(rep.within_line(), markup=False)
    if rep.overlay:
        console.print(f"overlay: {rep.overlay}")
    for msg in rep.images_skipped[:5]:
        err_console.print(f"[yellow]warning:[/yellow] skipped {msg}")
    if len(rep.images_skipped) > 5:
        err_console.print(f"[yellow]warning:[/yellow] ... {len(rep.images_skipped) - 5} more "
                          "images skipped")
