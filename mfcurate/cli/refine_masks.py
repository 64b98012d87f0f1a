"""``mfcurate refine-masks DATASET``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mfcurate.cli._common import (
    DatasetArg,
    SchedulerOpt,
    WorkersOpt,
    console,
    err_console,
    mpp_value,
    reports_errors,
)


def register(app: typer.Typer) -> None:
    """Attach the command to the app."""
    app.command(
        "refine-masks",
        help="Give every mitotic and mitotic-like figure a nuclei mask, prompted by its box "
             "(SAM, or the classical haematoxylin segmenter when no checkpoint is given), with "
             "automatic QA and re-prompting.\n\n"
             "Example: [bold]mfcurate refine-masks ds --segmenter sam --sam-checkpoint "
             "sam_vit_h_4b8939.pth --sam-model vit_h --device cuda[/bold]\n\n"
             "An interrupted run restarted with the same command resumes.",
    )(refine_masks_cmd)


@reports_errors
def refine_masks_cmd(
    dataset: DatasetArg,
    segmenter: Annotated[str | None, typer.Option(
        help="classical or sam (default: sam when --sam-checkpoint is given).")] = None,
    sam_checkpoint: Annotated[Path | None, typer.Option(
        help="SAM checkpoint file (never downloaded).")] = None,
    sam_model: Annotated[str, typer.Option(help="vit_h, vit_l, vit_b (or tiny for tests).")] =
    "vit_b",
    device: Annotated[str, typer.Option(help="Torch device for SAM.")] = "cpu",
    sam_batch: Annotated[int, typer.Option(
        min=0, help="Most SAM prompts per decoder call; 0: all boxes of a window at once "
                    "(bound it to save memory).")] = 0,
    window: Annotated[str, typer.Option(
        help="tile: 1024 px native windows; context: 256 px crops per cluster.")] = "tile",
    window_px: Annotated[int | None, typer.Option(
        min=16, max=8192, help="Window side override (px).")] = None,
    overwrite: Annotated[bool, typer.Option(
        help="Also replace source, pHH3 and manual masks and reviewed objects.")] = False,
    all_labels: Annotated[bool, typer.Option(
        help="Refine every object, not only mitotic and mitotic-like figures.")] = False,
    default_mpp: Annotated[float | None, typer.Option(
        callback=mpp_value, help="µm/px for images whose resolution is unknown (without "
                                 "it such images are skipped and counted).")] = None,
    workers: WorkersOpt = 1,
    scheduler: SchedulerOpt = None,
) -> None:
    """Refine the masks of a dataset."""
    from mfcurate.cli._common import progress_callback
    from mfcurate.pipelines.refine_masks import RefineConfig, refine_masks

    kind = segmenter or ("sam" if sam_checkpoint else "classical")
    if kind == "classical" and segmenter is None:
        err_console.print("refine-masks: no SAM checkpoint given, using the classical "
                          "haematoxylin segmenter")
    cfg = RefineConfig(segmenter=kind,
                       sam_checkpoint=str(sam_checkpoint) if sam_checkpoint else None,
                       sam_model=sam_model, device=device, sam_batch=sam_batch, window=window,
                       window_px=window_px, overwrite=overwrite, all_labels=all_labels,
                       default_mpp=default_mpp)
    cfg.validate()
    with progress_callback("refine-masks: images", unit="objects") as advance:
        summary = refine_masks(dataset, cfg, workers=workers, scheduler=scheduler,
                               progress=advance)
    console.print(f"[green]refined[/green] {summary.kept} masks on {summary.images} images "
                  f"({summary.reprompted} re-prompted, {summary.flagged} flagged for review)")
    if summary.failed:
        err_console.print(f"[yellow]warning:[/yellow] {summary.failed} objects could not be "
                          "segmented (flagged segment_failed for review)")
    if summary.missing_images:
        err_console.print(f"[yellow]warning:[/yellow] {summary.missing_images} objects skipped: "
                          "their image file is missing")
    if summary.images_without_mpp:
        err_console.print(f"[yellow]warning:[/yellow] {summary.images_without_mpp} images "
                          "skipped: no µm/px (give --default-mpp)")
