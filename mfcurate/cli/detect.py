"""``mfcurate detect IMAGE...``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mfcurate.cli._common import (
    SchedulerOpt,
    WorkersOpt,
    console,
    mpp_value,
    probability,
    progress_callback,
    reports_errors,
)
from mfcurate.cli._select import ImagesOpt, SourceOpt, SpeciesOpt, TumourOpt, selection_options
from mfcurate.segment.figure_parts import DEFAULT_PART_GAP_UM


def register(app: typer.Typer) -> None:
    """Attach the command to the app."""
    app.command(
        "detect",
        help="Detect mitotic figures on images or slides: automatic segmentation on tissue "
             "tiles, ensemble classification, CSV + QuPath GeoJSON + count per 10 HPF.\n\n"
             "Example: [bold]mfcurate detect slide.svs --models runs/omg --out det[/bold]\n\n"
             "Or every image of a dataset split: [bold]mfcurate detect --dataset ds "
             "--split test --models runs/omg --out det[/bold]",
    )(detect)


@reports_errors
def detect(
    images: Annotated[list[Path] | None, typer.Argument(
        help="Image or slide files.", show_default=False)] = None,
    models: Annotated[list[Path] | None, typer.Option(
        "--models", "-m", help="Run folder or model.pt (repeatable; all are averaged).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("detections"),
    dataset: Annotated[Path | None, typer.Option(
        help="Run on the images of a dataset instead (image column = image key).")] = None,
    split: Annotated[str, typer.Option(help="Dataset split with --dataset (or all).")] = "test",
    source: SourceOpt = None,
    species: SpeciesOpt = None,
    tumour: TumourOpt = None,
    image_list: ImagesOpt = None,
    segmenter: Annotated[str, typer.Option(help="classical or sam.")] = "classical",
    sam_checkpoint: Annotated[Path | None, typer.Option(help="SAM checkpoint file.")] = None,
    sam_model: Annotated[str, typer.Option(
        help="SAM model type (vit_h, the paper's; vit_l, vit_b).")] = "vit_h",
    tile: Annotated[int, typer.Option(min=64, help="Tile side in level-0 px.")] = 1024,
    overlap: Annotated[int, typer.Option(min=0, help="Tile overlap in level-0 px.")] = 128,
    all_tiles: Annotated[bool, typer.Option(
        help="Tile the whole image (no tissue detection), e.g. for ROI images.")] = False,
    threshold: Annotated[float, typer.Option(
        callback=probability, help="Decision threshold on mean P(MF).")] = 0.5,
    batch_size: Annotated[int, typer.Option(min=1)] = 256,
    part_gap_um: Annotated[float, typer.Option(
        help="Mitotic-figure candidates whose masks are closer than this (µm) are the "
             "masses of one multi-part figure (anaphase/telophase), joined into one "
             "detection; negative: never join.")] = DEFAULT_PART_GAP_UM,
    mpp: Annotated[float | None, typer.Option(
        callback=mpp_value, help="µm/px of images that have none.")] = None,
    device: Annotated[str, typer.Option(
        help="torch device (cpu, cuda; auto: CUDA when available).")] = "auto",
    workers: WorkersOpt = 1,
    scheduler: SchedulerOpt = None,
) -> None:
    """Run detection."""
    from mfcurate.classifier.detect import DetectConfig, ImageJob, dataset_jobs, run_detection
    from mfcurate.errors import UsageError

    if not models:
        raise UsageError("give --models RUN (a train-classifier run folder or model.pt)")
    if bool(images) == bool(dataset):
        raise UsageError("give image files or --dataset, not both or neither")
    if images and (source or species or tumour or image_list):
        raise UsageError("--source, --species, --tumour and --images go with --dataset")
    if segmenter not in ("classical", "sam"):
        raise UsageError(f"--segmenter must be classical or sam (got {segmenter!r})")
    if segmenter == "sam" and sam_checkpoint is None:
        raise UsageError("--segmenter sam needs --sam-checkpoint")
    if images:
        for p in images:
            if not p.exists():
                raise FileNotFoundError(f"image file {p} does not exist")
        jobs = [ImageJob(p.name, p, mpp) for p in images]
    else:
        assert dataset is not None  # noqa: S101 - checked above
        from mfcurate.dataset import Selection

        sel = Selection.from_options(**selection_options(
            source=source, species=species, tumour=tumour, images=image_list))
        jobs = dataset_jobs(dataset, split, selection=sel)
        jobs = [ImageJob(j.name, j.path, j.mpp or mpp) for j in jobs]
    seg: dict[str, object] = {"kind": segmenter}
    if segmenter == "sam":
        seg.update(checkpoint=str(sam_checkpoint), model_type=sam_model, device=device)
    cfg = DetectConfig(tile=tile, overlap=overlap, threshold=threshold, batch_size=batch_size,
                       all_tiles=all_tiles, device=device, part_gap_um=part_gap_um)
    with progress_callback("detect", total=len(jobs), unit="candidates") as advance:
        rep = run_detection(jobs, models, out, cfg=cfg, segmenter=seg, workers=workers,
                            scheduler=scheduler, progress=advance)
    for name, info in rep.per_image.items():
        hot = info["count_per_10hpf"] or {}
        console.print(f"{name}: {info['mitotic_figures']} mitotic figures of "
                      f"{info['candidates']} candidates; {hot.get('count', 0)} per 10 HPF")
    console.print(f"[green]wrote[/green] {rep.detections_csv}, {rep.geojson}, "
                  f"{rep.candidates_csv}, {rep.summary_json}")
